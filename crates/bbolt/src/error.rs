//! The one error type of this crate.
//!
//! Why it exists: every defect a reader can meet in a bbolt file (a bad meta page, a truncated file,
//! a page that says it is something it is not, an element that points outside its page) must reach
//! the caller as a value that names the page and what is wrong, never as a panic. The type is written
//! by hand so that the crate needs nothing beyond `std`.

use std::fmt;
use std::io;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while opening or reading a bbolt file.
#[derive(Debug)]
pub enum Error {
    /// An operating-system error, with what was being done when it happened
    /// (e.g. `reading page 17 (4096 bytes at offset 69632)`).
    Io {
        /// What the reader was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Neither meta page is usable: the input is not a bbolt file, or both metas are damaged.
    InvalidMeta {
        /// Why meta page 0 was rejected.
        meta0: String,
        /// Why meta page 1 was rejected.
        meta1: String,
    },
    /// The file is shorter than its meta page says it must be.
    Truncated {
        /// Bytes the active meta needs (`pgid * page_size`).
        needed: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// A structural defect in one page.
    Corrupt {
        /// The page where the defect is (for an inline bucket, the page that holds it).
        page: u64,
        /// What is wrong, in words.
        detail: String,
    },
}

impl Error {
    /// Builds an [`Error::Corrupt`] for `page` (also for callers layering their own checks on top).
    pub fn corrupt(page: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            page,
            detail: detail.into(),
        }
    }

    /// Builds an [`Error::Io`] with a context message.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The page id this error is about, when it is about one page.
    pub fn page(&self) -> Option<u64> {
        match self {
            Error::Corrupt { page, .. } => Some(*page),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::InvalidMeta { meta0, meta1 } => {
                write!(
                    f,
                    "not a valid bbolt database: meta page 0: {meta0}; meta page 1: {meta1}"
                )
            }
            Error::Truncated { needed, actual } => write!(
                f,
                "file is truncated: the meta page needs {needed} bytes but the file has {actual}"
            ),
            Error::Corrupt { page, detail } => write!(f, "page {page}: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
