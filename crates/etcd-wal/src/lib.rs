//! The raft-side files of an etcd data directory that `etcd-snap-restore` writes, byte for
//! byte as `etcdutl snapshot restore` (3.5) writes them: the first WAL segment, the v2 `.snap`
//! file, the member and cluster IDs, the member JSON, and the small protobuf messages they hold.
//! No command line and no network here; the bolt database is another crate's job.
//!
//! ```
//! let plan = etcd_wal::plan("default", "default=http://localhost:2380", "etcd-cluster",
//!                           "http://localhost:2380").unwrap();
//! assert_eq!(format!("{:x}", plan.local), "8e9e05c52164694d");
//! assert_eq!(format!("{:x}", plan.cluster_id), "cdf818194e3a8c32");
//! ```

pub mod error;
pub mod gostr;
pub mod ids;
pub mod member;
pub mod peer_url;
pub mod proto;
pub mod restore;
pub mod snap;
pub mod v2store;
pub mod wal;

pub use error::{Error, Result};
pub use member::{member_json, ClusterMember};
pub use restore::{plan, write_snap, write_wal, RestorePlan, RESTORE_TERM};
