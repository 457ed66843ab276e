//! A read-only reader for Go [bbolt](https://github.com/etcd-io/bbolt) database files, the storage
//! format of etcd's backend and of etcd snapshots.
//!
//! Why it exists: `snapshot status` and `snapshot restore` must read, verify and walk a bbolt file
//! without Go, without `mmap`, with flat memory, and without ever panicking on a damaged file. This
//! crate knows the file format only; it knows nothing about etcd's buckets or a command line.
//!
//! ```no_run
//! # fn main() -> bbolt::Result<()> {
//! let db = bbolt::Db::open("snapshot.db")?;
//! assert!(db.check().is_empty());
//! for name in db.buckets()? {
//!     let bucket = db.bucket(&name)?.ok_or(bbolt::Error::corrupt(0, "bucket vanished"))?;
//!     for entry in bucket.entries() {
//!         let entry = entry?;
//!         println!("{:?} => {} bytes", entry.key(), entry.value().len());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! To verify a file and read everything in it with one pass over the file (what `snapshot status`
//! needs), use [`Db::scan`]: it runs the consistency check and shows every bucket and entry to a
//! visitor on the way. [`Db::check`] alone is the equivalent of bbolt's `tx.Check()`.
//!
//! Nested buckets: iterating one bucket is bounded by the file's size on any input, but a caller
//! that recursively opens nested buckets of an unchecked, hostile file should bound its own work,
//! because damaged inline buckets can overlap and nest many times over; [`Db::check`] reports such
//! files.
//!
//! Hostile input: no length field makes the reader allocate more than the format allows. A page run
//! is refused before it is read when it passes the high-water mark or is longer than a page of its
//! kind can be ([`max_run_pages`]: [`MAX_BRANCH_NODE_SIZE`], [`MAX_LEAF_NODE_SIZE`], a freelist of at
//! most one id per page); freelists above a few MiB are read in pieces; nested buckets queued by the
//! check hold a copy of their own entry, not their parent's page. Fuzzed with
//! `-malloc_limit_mb=64` over inputs read both as they are and as the head of a 1 GiB sparse file
//! (`fuzz/`; the runs and what they found: `docs/fuzzing.md`).
//!
//! Reading strategy: pages are read with positioned reads (`pread`) through a read-ahead window that
//! grows while reads move forward through the file, and branch pages are kept in a small cache with
//! a byte budget ([`ReadOptions`]). A file truncated or rewritten under the reader gives an
//! [`Error`], never a signal.

#![forbid(unsafe_code)]

pub mod build;
mod check;
mod cursor;
mod db;
mod error;
mod freelist;
pub mod layout;
mod meta;
mod page;
mod source;
mod store;
pub mod write;

pub use check::{CheckError, CheckReport, ScanEvent, Stats};
pub use cursor::Entries;
pub use db::{Bucket, Db, Entry, Written, DEFAULT_CHECK_LIMIT, MAX_TREE_DEPTH};
pub use error::{Error, Result};
pub use freelist::FREELIST_COUNT_OVERFLOW;
pub use meta::{
    fnv1a64, Meta, MetaProblem, MAGIC, MAX_PAGE_SIZE, META_PAGE_PREFIX, MIN_PAGE_SIZE,
    PGID_NO_FREELIST, VERSION,
};
pub use page::{
    max_run_pages, PageHeader, PageKind, BRANCH_PAGE_FLAG, BUCKET_LEAF_FLAG,
    ETCD_MAX_REQUEST_BYTES, FREELIST_PAGE_FLAG, LEAF_PAGE_FLAG, MAX_BRANCH_NODE_SIZE, MAX_KEY_SIZE,
    MAX_LEAF_NODE_SIZE, META_PAGE_FLAG, MIN_KEYS_PER_PAGE,
};
pub use store::{IoStats, ReadOptions};
