//! Errors of the etcd layer: a damaged bbolt file, or a bucket whose contents are not what etcd writes.

use std::fmt;

/// What is wrong with a database.
#[derive(Debug)]
pub enum Error {
    /// The bbolt file cannot be read.
    Bbolt(bbolt::Error),
    /// The bbolt consistency check failed: how many errors, and the first few.
    Check {
        /// Errors found (at most the check's limit).
        count: usize,
        /// Their descriptions.
        errors: Vec<String>,
    },
    /// An etcd record does not decode.
    Malformed {
        /// The bucket.
        bucket: String,
        /// What is wrong.
        detail: String,
    },
    /// A revision below the store's compact revision was asked for: etcd's `ErrCompacted`.
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The compact revision.
        compact: i64,
    },
    /// A revision above the store's current revision was asked for: etcd's `ErrFutureRev`.
    FutureRevision {
        /// The revision asked for.
        requested: i64,
        /// The current revision.
        current: i64,
    },
    /// A temporary file (the spill of a sorted key walk) could not be written or read.
    Spill(std::io::Error),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bbolt(e) => write!(f, "{e}"),
            Error::Check { count, errors } => {
                write!(
                    f,
                    "integrity check failed: {count} error{} found",
                    if *count == 1 { "" } else { "s" }
                )?;
                if let Some(first) = errors.first() {
                    write!(f, ", first: {first}")?;
                }
                Ok(())
            }
            Error::Malformed { bucket, detail } => write!(f, "bucket {bucket:?}: {detail}"),
            Error::Compacted { requested, compact } => write!(
                f,
                "revision {requested} has been compacted: the compact revision is {compact}"
            ),
            Error::FutureRevision { requested, current } => write!(
                f,
                "revision {requested} is a future revision: the current revision is {current}"
            ),
            Error::Spill(e) => write!(f, "temporary file for sorting keys: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<bbolt::Error> for Error {
    fn from(e: bbolt::Error) -> Self {
        Error::Bbolt(e)
    }
}
