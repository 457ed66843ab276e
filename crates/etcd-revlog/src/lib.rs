//! The revision log: every etcd revision after a snapshot, as `etcd-snap-log` observed it, in
//! hash-chained, checksummed segments that `etcd-snap-restore --log` replays offline and
//! `etcd-snap-status --log` verifies. This crate is the format only (docs/revision-log.md): no
//! etcd client, no async runtime, so the offline tools can read a log without either.
//!
//! A log is a sequence of segments, in a directory (one file per segment, named so that `ls`
//! sorts them) or concatenated in one stream (stdout, a pipe through zstd or age). Each segment
//! is a header (cluster ID, first revision, SHA-256 of the previous segment's trailer), one
//! record per revision (bounded in size, CRC-32C each), and a trailer (last revision, counts,
//! SHA-256 of the whole segment). Reading checks all of it as it goes, holding one record at a
//! time.

mod format;
mod read;
mod write;

pub use format::{MAX_RECORD_BYTES, SEGMENT_SUFFIX};
pub use read::{verify_dir, verify_stream, Reader};
pub use write::{Writer, WriterOptions};

/// An observation time (Unix nanoseconds) as RFC 3339 in UTC, as Go prints `time.RFC3339Nano`:
/// the fraction's trailing zeros dropped. How every tool prints a log's times.
pub fn rfc3339(nanos: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(nanos);
    let mut text = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = t.timestamp_subsec_nanos();
    if frac != 0 {
        text.push('.');
        text.push_str(format!("{frac:09}").trim_end_matches('0'));
    }
    text.push('Z');
    text
}

use std::fmt;

/// What one event did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created or overwritten.
    Put,
    /// The key was deleted (by a delete, a txn, or its lease's revocation or expiry).
    Delete,
}

/// One key change of a revision, as etcd's watch reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key.
    pub key: Vec<u8>,
    /// The new value (empty for a delete).
    pub value: Vec<u8>,
    /// The revision the key was created at (0 for a delete).
    pub create_revision: i64,
    /// The revision of this change: always the revision the event belongs to.
    pub mod_revision: i64,
    /// The key's version after the change (0 for a delete).
    pub version: i64,
    /// The lease the key is attached to after a put (0: none).
    pub lease: i64,
}

/// One etcd revision: every event of it in the order etcd applied them (a txn may hold several;
/// their index is etcd's sub-revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// etcd's main revision.
    pub revision: i64,
    /// When the follower saw the revision complete, in nanoseconds since the Unix epoch: the
    /// commit time as observed, an upper bound of the real one.
    pub observed_unix_nanos: i64,
    /// The events, in etcd's order; never empty.
    pub events: Vec<Event>,
    /// The leases first seen (attached to a put) at this revision.
    pub leases: Vec<Lease>,
}

/// A lease first seen (attached to a put) at this revision, with the TTL it was granted with
/// (LeaseTimeToLive when the follower saw it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The lease ID.
    pub id: i64,
    /// The TTL in seconds it was granted with; -1 when it had already expired or been revoked
    /// when the follower asked.
    pub granted_ttl: i64,
}

/// What a log (or the part of it read so far) covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogInfo {
    /// The etcd cluster ID every segment names.
    pub cluster_id: u64,
    /// The first revision of the log.
    pub first_revision: i64,
    /// The last revision of the log.
    pub last_revision: i64,
    /// When the first revision was observed (ns since the Unix epoch).
    pub first_unix_nanos: i64,
    /// When the last revision was observed (ns since the Unix epoch).
    pub last_unix_nanos: i64,
    /// Complete segments.
    pub segments: u64,
    /// Revisions (records).
    pub revisions: u64,
    /// Events over all revisions.
    pub events: u64,
    /// `.part` files in the directory: segments a writer had not closed when it stopped (a
    /// killed follower); never read, only reported.
    pub partial_files: Vec<String>,
}

/// Which kind of failure an [`Error`] is, so that a tool exits with the right code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The log is damaged, incomplete, out of order, foreign or not a log: exit 4.
    Integrity,
    /// Reading or writing local files failed: exit 6.
    Io,
    /// The writer refuses: the directory holds another cluster's log, or it would leave a gap
    /// or duplicate a revision: exit 5.
    Refused,
}

/// A failure reading, verifying or writing a log: one line, naming the segment and revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn integrity(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Integrity, message)
    }

    pub(crate) fn io(what: impl fmt::Display, err: &std::io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("{what}: {}", etcd_common::error::io_reason(err)),
        )
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the log itself is bad (exit 4), as opposed to local I/O or a refusal.
    pub fn is_integrity(&self) -> bool {
        self.kind == ErrorKind::Integrity
    }

    /// The exit code a tool reports this failure with.
    pub fn exit_code(&self) -> etcd_common::ExitCode {
        match self.kind {
            ErrorKind::Integrity => etcd_common::ExitCode::Integrity,
            ErrorKind::Io => etcd_common::ExitCode::LocalIo,
            ErrorKind::Refused => etcd_common::ExitCode::Refused,
        }
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for etcd_common::Error {
    fn from(e: Error) -> Self {
        etcd_common::Error::new(e.exit_code(), e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_764_842_400_123_000_000),
            "2025-12-04T10:00:00.123Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
