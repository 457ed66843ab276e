//! The one error type of this crate: a refused restore configuration (with etcdutl's wording), a
//! file that cannot be written, or raft data that does not decode.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong.
#[derive(Debug)]
pub enum Error {
    /// The restore flags (`--name`, `--initial-cluster`, `--initial-advertise-peer-urls`, token)
    /// are refused. The text is etcdutl 3.5's where it has one, e.g.
    /// `couldn't find local name "x" in the initial cluster configuration`.
    Config(String),
    /// A file or directory could not be created, written or synced.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. `create`, `write`, `fsync`.
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// Bytes that should hold a raft record, a protobuf message or a snap file do not decode.
    Corrupt(String),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// An [`Error::Corrupt`] with `what`.
    pub(crate) fn corrupt(what: impl Into<String>) -> Error {
        Error::Corrupt(what.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(msg) => f.write_str(msg),
            Error::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::Corrupt(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Config(_) | Error::Corrupt(_) => None,
        }
    }
}
