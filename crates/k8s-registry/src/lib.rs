//! Facts about how the Kubernetes API server stores its objects in etcd, for the offline tools that
//! read snapshots (`etcd-snap-status --k8s`, `etcd-snap-get`, `etcd-snap-diff --k8s`): where an
//! object's key is ([`layout`]), which resources exist and what kubectl calls them
//! ([`resources`]), what a stored value is ([`value`], [`encryption`]), how to decrypt it with the
//! user's keys ([`decrypt`]), the version the API server serves it in ([`served`]), the manifest
//! it is shown as and how two of them compare ([`object`]), and a bounded-memory tally of a
//! snapshot's objects ([`inventory`]). No command line, no network, no etcd client.

pub mod decrypt;
pub mod encryption;
pub mod inventory;
pub mod layout;
pub mod object;
pub mod resources;
pub mod served;
pub mod value;

pub use decrypt::{DecryptError, EncryptionConfig};
pub use encryption::Encryption;
pub use inventory::Inventory;
pub use layout::Location;
pub use resources::Builtin;
pub use value::{TypeMeta, ValueFormat};

/// The key prefix the API server uses unless `--etcd-prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "/registry";
