//! `must`: unwrap a `Result` or `Option` in harness code, panicking with a message that says
//! what failed (the workspace lints forbid bare `unwrap`/`expect`).

use std::fmt::Display;

/// Unwraps a value or panics with `what` and the underlying error.
pub(crate) trait Must<T> {
    /// The value, or a panic naming `what` (built lazily) and the cause.
    fn must(self, what: impl FnOnce() -> String) -> T;
}

impl<T, E: Display> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self, what: impl FnOnce() -> String) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{}: {e}", what()),
        }
    }
}

impl<T> Must<T> for Option<T> {
    #[track_caller]
    fn must(self, what: impl FnOnce() -> String) -> T {
        match self {
            Some(v) => v,
            None => panic!("{}", what()),
        }
    }
}
