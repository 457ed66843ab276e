//! The exit codes shared by every tool, so that a script can branch on the same numbers everywhere.

/// What a process exit code tells the calling script (docs/design.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitCode {
    /// 0: success (all endpoints healthy; snapshot valid; restore done).
    Success = 0,
    /// 1: the check failed: an endpoint is unhealthy.
    CheckFailed = 1,
    /// 2: usage error: unknown flag, bad value, missing argument, wrong credentials.
    Usage = 2,
    /// 3: transient: cannot connect, timeout, stream broken, leader lost.
    Transient = 3,
    /// 4: integrity: input not a snapshot, truncated, hash mismatch, bad decryption.
    Integrity = 4,
    /// 5: refused: destination exists or is not empty, binary output to a terminal.
    Refused = 5,
    /// 6: local I/O: disk full, permission denied, cannot write.
    LocalIo = 6,
    /// 7 (etcd-health only): degraded, fewer than all but at least `--min-healthy` endpoints healthy.
    Degraded = 7,
    /// 130: stopped by SIGINT (Ctrl-C), after cleaning up.
    Interrupted = 130,
    /// 143: stopped by SIGTERM, after cleaning up.
    Terminated = 143,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// The exit-code table as `--help` prints it, shared so every tool documents the same numbers.
pub const EXIT_CODES_HELP: &str = "\
EXIT CODES:
  0  success
  1  check failed: an endpoint is unhealthy
  2  usage error: unknown flag, bad value, missing argument, wrong credentials
  3  transient: cannot connect, timeout, stream broken (retry)
  4  integrity: not a snapshot, truncated, hash mismatch, bad decryption
  5  refused: destination exists or is not empty, binary output to a terminal
  6  local I/O: disk full, permission denied, cannot write";

/// The exit-code lines of the tools that clean up after SIGINT/SIGTERM (save, restore).
pub const SIGNAL_EXIT_HELP: &str = "\
130  interrupted (SIGINT), 143 terminated (SIGTERM), after cleaning up";
