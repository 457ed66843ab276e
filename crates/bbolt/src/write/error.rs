//! The error type of the editor.
//!
//! Why it exists: an edit can fail because the file cannot be read or written, because the file is
//! damaged where the edit has to look, or because the caller asked for something bbolt does not
//! allow (an empty key, duplicate keys, an append that does not sort last). Each reaches the caller
//! as a value that says which, never as a panic.

use std::fmt;
use std::io;

/// Result alias of the editor.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while editing a bbolt file.
#[derive(Debug)]
pub enum Error {
    /// Opening the file as a bbolt database failed (bad metas, truncated file, ...).
    Open(crate::Error),
    /// An operating-system error, with what the editor was doing.
    Io {
        /// What the editor was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A page the edit has to read is damaged.
    Corrupt {
        /// The page (for an inline bucket, the page that holds it; 0 when not about one page).
        page: u64,
        /// What is wrong.
        detail: String,
    },
    /// The request itself is not allowed (empty or oversized key, duplicate keys, append out of
    /// order, a bucket name that holds a plain value, ...).
    InvalidInput(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corrupt(page: u64, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            page,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Error {
        Error::InvalidInput(detail.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open(e) => write!(f, "{e}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Corrupt { page, detail } => write!(f, "page {page}: {detail}"),
            Error::InvalidInput(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Error {
        Error::Open(e)
    }
}
