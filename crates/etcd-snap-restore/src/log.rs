//! Point-in-time restore: a revision log (etcd-snap-log) applied on top of the snapshot.
//!
//! Why it exists: a snapshot loses what happened after it; the log has every revision since.
//! The log is read twice: first whole, to verify it (chain, checksums, cluster, contiguity from
//! the snapshot through the target revision) and to find the target (`--to-rev`, `--to-time`),
//! before anything is written; then again to append the revisions after the snapshot through the
//! target into the database ([`etcd_db::apply`]). A log on stdin (possibly zstd/age layered) is
//! spooled to an unnamed temporary file for the second pass. Memory: one revision at a time.

use etcd_common::layers::decode::{self, Identity, Layer};
use etcd_common::layers::spool;
use etcd_common::{Error, ExitCode, Result};
use etcd_db::apply::{Applied, Applier, Change, Kind};
use etcd_revlog::{EventKind, Reader};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

/// Where the log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// A directory of segments.
    Dir(PathBuf),
    /// Standard input (a stream of segments, maybe zstd/age layered).
    Stdin,
}

/// Which revision to restore to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The log's last revision.
    Last,
    /// This revision.
    Revision(i64),
    /// The last revision observed at or before this time (Unix nanoseconds).
    Time(i64),
}

/// What the log's verification found, and how to read it again.
pub struct Plan {
    source: Opened,
    /// The revision the database will be at (the snapshot's when it is nothing to apply).
    pub to_revision: i64,
    /// The log's first and last revision.
    pub log_range: (i64, i64),
    /// The log's cluster ID.
    pub cluster_id: u64,
}

enum Opened {
    Dir(PathBuf),
    Spool(File),
}

/// What was applied, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSummary {
    /// The log's first and last revisions.
    pub log_range: (i64, i64),
    /// What went into the database.
    pub applied: Applied,
}

fn log_error(e: &etcd_revlog::Error) -> Error {
    Error::new(e.exit_code(), format!("log: {}", e.message()))
}

/// Reads the snapshot's cluster ID candidates: the ID of its members, and of its members and
/// removed members (a cluster's ID is fixed when it is created; members may have changed since).
fn snapshot_cluster_ids(db: &bbolt::Db) -> Vec<u64> {
    let ids_of = |bucket: &[u8]| -> Vec<u64> {
        let Ok(Some(b)) = db.bucket(bucket) else {
            return Vec::new();
        };
        b.entries()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                std::str::from_utf8(e.key())
                    .ok()
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
            })
            .collect()
    };
    let members = ids_of(etcd_db::buckets::MEMBERS);
    let mut all = members.clone();
    all.extend(ids_of(etcd_db::buckets::MEMBERS_REMOVED));
    let mut out = vec![etcd_wal::ids::cluster_id(&members)];
    if all.len() > members.len() {
        out.push(etcd_wal::ids::cluster_id(&all));
    }
    out
}

/// The log, read whole and verified (chain, checksums, one cluster, consecutive revisions),
/// before anything is written.
pub struct Scan {
    source: Opened,
    first: i64,
    last: i64,
    cluster_id: u64,
    last_unix_nanos: i64,
    /// For `--to-time`: the last revision observed at or before it.
    by_time: Option<i64>,
    target: Target,
}

/// Reads and verifies the whole log (exit 4 when it is damaged, reordered, incomplete or not a
/// log), and remembers what the target needs.
pub fn scan(source: &LogSource, identities: &[Identity], target: Target) -> Result<Scan> {
    let (opened, mut reader) = match source {
        LogSource::Dir(dir) => (
            Opened::Dir(dir.clone()),
            Reader::open_dir(dir).map_err(|e| log_error(&e))?,
        ),
        LogSource::Stdin => {
            let spooled = spool_stdin(identities)?;
            let reader = reader_of(&spooled)?;
            (Opened::Spool(spooled), reader)
        }
    };
    let mut first: Option<i64> = None;
    let mut by_time: Option<i64> = None;
    for rev in reader.by_ref() {
        let rev = rev.map_err(|e| log_error(&e))?;
        first.get_or_insert(rev.revision);
        if let Target::Time(t) = target {
            if rev.observed_unix_nanos <= t {
                by_time = Some(rev.revision);
            }
        }
    }
    let info = reader.info_so_far();
    let Some(first) = first else {
        return Err(Error::new(
            ExitCode::Integrity,
            "log: it holds no revision; point --log at the segments etcd-snap-log wrote",
        ));
    };
    Ok(Scan {
        source: opened,
        first,
        last: info.last_revision,
        cluster_id: info.cluster_id,
        last_unix_nanos: info.last_unix_nanos,
        by_time,
        target,
    })
}

/// Checks the log against the snapshot (`snapshot_db`, at revision `snap_rev`): its cluster,
/// no gap after the snapshot; and picks the target revision. Exit 4 for an unrelated log, 5 for
/// a target outside it.
pub fn plan(
    scan: Scan,
    snapshot_db: &bbolt::Db,
    snap_rev: i64,
    expected_cluster: Option<u64>,
) -> Result<Plan> {
    let (first, last) = (scan.first, scan.last);
    let cluster_ok = match expected_cluster {
        Some(id) => id == scan.cluster_id,
        None => snapshot_cluster_ids(snapshot_db).contains(&scan.cluster_id),
    };
    if !cluster_ok {
        return Err(Error::new(
            ExitCode::Integrity,
            format!(
                "log: it is cluster {:x}'s, not the snapshot's; if the cluster's members changed since it was created, check and pass --log-cluster-id {:x}",
                scan.cluster_id, scan.cluster_id
            ),
        ));
    }
    // An empty store is at revision 1 (etcd's initial revision, which holds no event) although
    // its snapshot shows 0: a log from such a snapshot starts at 2.
    let snap_rev = snap_rev.max(1);
    if first > snap_rev.saturating_add(1) {
        return Err(Error::new(
            ExitCode::Integrity,
            format!(
                "log: it starts at revision {first}, after the snapshot's {snap_rev} + 1: revisions {} to {} are missing; use an older snapshot or a log from --from-rev {}",
                snap_rev + 1,
                first - 1,
                snap_rev + 1
            ),
        ));
    }
    let to_revision = match scan.target {
        Target::Last => last,
        Target::Revision(r) => {
            if r > last {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!("log ends at revision {last}; --to-rev {r} is later"),
                ));
            }
            if r < snap_rev {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!("--to-rev {r} is before the snapshot's revision {snap_rev}; use an older snapshot"),
                ));
            }
            r
        }
        Target::Time(t) => {
            if t > scan.last_unix_nanos {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "log ends at {} (revision {last}); --to-time {} is later",
                        rfc3339(scan.last_unix_nanos),
                        rfc3339(t)
                    ),
                ));
            }
            match scan.by_time {
                Some(r) if r > snap_rev => r,
                _ => {
                    eprintln!(
                        "etcd-snap-restore: --to-time {} is before the first logged revision after the snapshot: restoring the snapshot itself (revision {snap_rev})",
                        rfc3339(t)
                    );
                    snap_rev
                }
            }
        }
    };
    Ok(Plan {
        source: scan.source,
        to_revision: to_revision.max(snap_rev),
        log_range: (first, last),
        cluster_id: scan.cluster_id,
    })
}

/// Most layers of compression and encryption peeled off a log stream.
const MAX_LAYERS: usize = 4;

/// Copies stdin, its zstd/age layers peeled, into an unnamed temporary file. (The snapshot
/// decoder of etcd-common insists on a database inside; a log is not one, so the layers are
/// recognised here by the same magic numbers.)
fn spool_stdin(identities: &[Identity]) -> Result<File> {
    let name = "log on stdin";
    let integrity = |what: String| Error::new(ExitCode::Integrity, format!("{name}: {what}"));
    let mut reader: Box<dyn Read> = decode::stdin();
    let mut layers = Vec::new();
    loop {
        let mut prefix = Vec::with_capacity(64);
        (&mut reader)
            .take(64)
            .read_to_end(&mut prefix)
            .map_err(|e| decode::read_error(name, &layers, &e))?;
        let again: Box<dyn Read> = Box::new(io::Cursor::new(prefix.clone()).chain(reader));
        let trimmed = prefix
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(&[][..], |at| &prefix[at..]);
        let layer = if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Layer::Zstd
        } else if prefix.starts_with(b"age-encryption.org/") {
            Layer::Age
        } else if trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----") {
            Layer::AgeArmored
        } else {
            reader = again;
            break;
        };
        if layers.len() >= MAX_LAYERS {
            return Err(integrity(format!(
                "more than {MAX_LAYERS} layers of compression and encryption"
            )));
        }
        layers.push(layer);
        reader = match layer {
            Layer::Zstd => Box::new(zstd::stream::read::Decoder::new(again).map_err(|e| {
                integrity(format!(
                    "corrupt zstd data: {}",
                    etcd_common::error::io_reason(&e)
                ))
            })?),
            _ => {
                if identities.is_empty() {
                    return Err(Error::usage(format!(
                        "{name}: the input is age-encrypted: did you forget -i/--identity KEYFILE?"
                    )));
                }
                let armored = age::armor::ArmoredReader::new(io::BufReader::new(again));
                let decryptor = age::Decryptor::new(armored)
                    .map_err(|e| integrity(format!("corrupt age header: {e}")))?;
                Box::new(
                    decryptor
                        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                        .map_err(|e| integrity(format!("cannot decrypt the age data: {e}")))?,
                )
            }
        };
    }
    let mut file = spool::unnamed_file()
        .map_err(|e| Error::io("creating a temporary file for the log on stdin", &e))?;
    io::copy(&mut reader, &mut file).map_err(|e| decode::read_error(name, &layers, &e))?;
    Ok(file)
}

fn reader_of(file: &File) -> Result<Reader> {
    let mut again = file
        .try_clone()
        .map_err(|e| Error::io("reopening the spooled log", &e))?;
    again
        .rewind()
        .map_err(|e| Error::io("rewinding the spooled log", &e))?;
    Reader::from_stream(Box::new(again)).map_err(|e| log_error(&e))
}

/// Appends the log's revisions in (snapshot revision, target] to the database at `db`.
pub fn apply(plan: &Plan, db: &Path, check: &dyn Fn() -> Result<()>) -> Result<LogSummary> {
    let integrity = |e: String| Error::new(ExitCode::Integrity, format!("log: {e}"));
    let mut applier = Applier::open(db)
        .map_err(|e| Error::new(ExitCode::Integrity, format!("the snapshot's database: {e}")))?;
    let snap_rev = applier.last_revision();
    if plan.to_revision > snap_rev {
        let reader = match &plan.source {
            Opened::Dir(dir) => Reader::open_dir(dir).map_err(|e| log_error(&e))?,
            Opened::Spool(file) => reader_of(file)?,
        };
        for (n, rev) in reader.enumerate() {
            let rev = rev.map_err(|e| log_error(&e))?;
            if rev.revision <= snap_rev {
                continue;
            }
            if rev.revision > plan.to_revision {
                break;
            }
            for lease in &rev.leases {
                applier.grant(lease.id, lease.granted_ttl);
            }
            let changes: Vec<Change<'_>> = rev
                .events
                .iter()
                .map(|e| Change {
                    kind: match e.kind {
                        EventKind::Put => Kind::Put,
                        EventKind::Delete => Kind::Delete,
                    },
                    key: &e.key,
                    value: &e.value,
                    create_revision: e.create_revision,
                    mod_revision: e.mod_revision,
                    version: e.version,
                    lease: e.lease,
                })
                .collect();
            applier.apply(rev.revision, &changes).map_err(integrity)?;
            if n % 4096 == 0 {
                check()?;
            }
        }
        if applier.last_revision() != plan.to_revision {
            return Err(integrity(format!(
                "it changed while it was read: revision {} was not found the second time",
                plan.to_revision
            )));
        }
    }
    let applied = applier.finish().map_err(|e| {
        Error::new(
            ExitCode::LocalIo,
            format!("writing the log's revisions: {e}"),
        )
    })?;
    Ok(LogSummary {
        log_range: plan.log_range,
        applied,
    })
}

/// Parses `--to-time`: RFC 3339, to Unix nanoseconds.
pub fn parse_time(text: &str) -> std::result::Result<i64, String> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        format!("--to-time: expected an RFC 3339 time (2026-12-04T10:00:00Z), got {text:?}: {e}")
    })?;
    t.timestamp_nanos_opt()
        .ok_or_else(|| format!("--to-time: {text:?} is out of range"))
}

pub use etcd_revlog::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_print() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00"), Ok(1_000_000_000));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }
}
