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
        }
    }
}

impl std::error::Error for Error {}

impl From<bbolt::Error> for Error {
    fn from(e: bbolt::Error) -> Self {
        Error::Bbolt(e)
    }
}
