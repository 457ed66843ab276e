//! One error type for every tool: a message for the user and the exit code it maps to.

use crate::exit::ExitCode;
use std::fmt;

/// A failure to report as `Error: <message>` on stderr, exiting with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The exit code this failure maps to.
    pub code: ExitCode,
    /// What failed and why, on one line, naming the file or endpoint.
    pub message: String,
    /// Exit without printing anything (stdout's reader went away).
    quiet: bool,
}

/// The result type of this crate and of the tools' libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure with an explicit exit code.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: one_line(message.into()),
            quiet: false,
        }
    }

    /// Stdout's reader went away (`| head`): the tool stops and exits 0 without a word, like
    /// ripgrep and the coreutils do.
    pub fn broken_pipe() -> Self {
        Error {
            code: ExitCode::Success,
            message: "broken pipe".into(),
            quiet: true,
        }
    }

    /// Whether this error ends the tool without a message.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// A usage error (exit 2): bad flag, bad value, missing argument.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }

    /// A transient failure (exit 3): cannot connect, timeout, broken stream.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Transient, message)
    }

    /// A local I/O failure (exit 6), naming what was being done with which path.
    pub fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        Self::new(ExitCode::LocalIo, format!("{what}: {}", io_reason(err)))
    }

    /// Prefixes the message with context, keeping the exit code.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<lexopt::Error> for Error {
    fn from(err: lexopt::Error) -> Self {
        Error::usage(err.to_string())
    }
}

/// An `io::Error` as a short reason without Rust's "(os error N)" suffix.
pub fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Folds a message onto one line: an error is always one line on stderr.
fn one_line(message: String) -> String {
    if message.contains(['\n', '\r']) {
        message
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_folded_onto_one_line() {
        let err = Error::usage("first\nsecond\r\n third");
        assert_eq!(err.message, "first; second; third");
        assert_eq!(err.code, ExitCode::Usage);
    }

    #[test]
    fn io_reasons_drop_the_os_error_number() {
        let err = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&err), "No such file or directory");
        let err = Error::io("reading /x", &err).context("loading --cacert");
        assert_eq!(
            err.message,
            "loading --cacert: reading /x: No such file or directory"
        );
        assert_eq!(err.code, ExitCode::LocalIo);
    }
}
