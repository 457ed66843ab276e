//! The ground every etcd-snap tool stands on.
//!
//! Each tool is a thin `main.rs` over a library; what they share lives here so that every tool reads
//! the same flags and `ETCDCTL_*` variables, speaks TLS the same way, prints the same output formats
//! and maps failures to the same exit codes (see `docs/design.md`).

pub mod args;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod conn;
pub mod duration;
pub mod error;
pub mod exit;
pub mod hardening;
pub mod help;
pub mod layers;
pub mod output;
pub mod progress;
pub mod safe_fs;
pub mod snapshot;
#[cfg(feature = "client")]
pub mod tls;
pub mod version;

pub use error::{Error, Result};
pub use exit::ExitCode;
