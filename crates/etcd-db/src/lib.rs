//! etcd's backend database, read through the bbolt crate: the bucket layout, revision keys, meta
//! keys, member records and the protobuf values that `snapshot status` reports and `snapshot
//! restore` rewrites. No command line and no network here.

pub mod analyze;
pub mod apply;
pub mod buckets;
pub mod diff;
pub mod error;
pub mod go_semver;
pub mod hashkv;
pub mod history;
pub mod live;
pub mod member;
pub mod proto;
pub mod revision;
pub mod schema;
pub mod sorted;

pub use analyze::{analyze, Analysis, BucketStats, Details, Status};
pub use error::{Error, Result};
pub use hashkv::{hash_kv, HashKv};
pub use history::Bounds;
pub use live::{visit_live, LiveStats};
pub use revision::Revision;
pub use schema::SchemaVersion;
