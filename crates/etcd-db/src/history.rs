//! The store as it was: its compact and current revisions, every stored revision of one key, and
//! the live keys as of an older revision.
//!
//! Why it exists: a snapshot keeps every revision since the last compaction, so it can show an
//! object as it was before an incident (`etcd-snap-get --rev`, `--history`) and be hashed or
//! diffed at any revision it still holds. The bounds are the ones etcd's mvcc store uses after it
//! boots from the database (`server/storage/mvcc/kvstore.go`, `restore`): the compact revision is
//! `meta/finishedCompactRev`, raised to `meta/scheduledCompactRev` when a compaction was scheduled
//! but not finished (etcd resumes it at boot), `-1` when there is neither; the current revision is
//! the last `main` of the `key` bucket (1 for an empty one), raised to both compaction marks.

use crate::buckets;
use crate::error::{Error, Result};
use crate::live::{decode, parse_revision};
use crate::proto::KeyValue;
use crate::revision::Revision;

/// A store's revision bounds, as etcd computes them at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The compact revision etcd reports (`compact_revision` of `HashKV`): `-1` when the store
    /// was never compacted.
    pub compact: i64,
    /// The current revision: what a request for revision 0 reads.
    pub current: i64,
    /// `meta/finishedCompactRev`.
    pub finished: Option<i64>,
    /// `meta/scheduledCompactRev`.
    pub scheduled: Option<i64>,
}

impl Bounds {
    /// Reads the compaction marks and scans the `key` bucket for its last revision.
    pub fn read(db: &bbolt::Db) -> Result<Bounds> {
        let (finished, scheduled) = compaction_marks(db)?;
        let mut last = 1;
        if let Some(bucket) = db.bucket(buckets::KEY)? {
            for entry in bucket.entries() {
                let entry = entry?;
                last = parse_revision(entry.key())?.main;
            }
        }
        Ok(Bounds::new(finished, scheduled, last))
    }

    /// The bounds from the marks and the last `main` of the `key` bucket (1 when it is empty).
    pub fn new(finished: Option<i64>, scheduled: Option<i64>, last_main: i64) -> Bounds {
        let mut compact = finished.unwrap_or(-1);
        // etcd reads a missing scheduledCompactRev as 0 and resumes only a later one.
        let pending = scheduled.unwrap_or(0);
        if pending > compact && pending != 0 {
            compact = pending;
        }
        let current = last_main.max(compact).max(scheduled.unwrap_or(0));
        Bounds {
            compact,
            current,
            finished,
            scheduled,
        }
    }

    /// Whether a compaction was scheduled and not finished: entries it would delete may still be
    /// in the `key` bucket.
    pub fn unfinished(&self) -> bool {
        match self.scheduled {
            Some(s) if s != 0 => s > self.finished.unwrap_or(-1),
            _ => false,
        }
    }

    /// The revision a read at `at` sees: `None` or 0 is the current revision; below the compact
    /// revision is [`Error::Compacted`], above the current one [`Error::FutureRevision`] (etcd
    /// 3.5.17+, 3.6 and 3.7 accept the compact revision itself for `Range` and `HashKV`).
    pub fn resolve(&self, at: Option<i64>) -> Result<i64> {
        match at {
            None | Some(0) => Ok(self.current),
            Some(r) if r < self.compact => Err(Error::Compacted {
                requested: r,
                compact: self.compact,
            }),
            Some(r) if r < 0 => Err(Error::Compacted {
                requested: r,
                compact: self.compact.max(0),
            }),
            Some(r) if r > self.current => Err(Error::FutureRevision {
                requested: r,
                current: self.current,
            }),
            Some(r) => Ok(r),
        }
    }
}

/// `meta/finishedCompactRev` and `meta/scheduledCompactRev` (17-byte revision keys).
fn compaction_marks(db: &bbolt::Db) -> Result<(Option<i64>, Option<i64>)> {
    let Some(meta) = db.bucket(buckets::META)? else {
        return Ok((None, None));
    };
    let read = |name: &[u8]| -> Result<Option<i64>> {
        let Some(entry) = meta.get(name)? else {
            return Ok(None);
        };
        Revision::parse(entry.value())
            .map(|r| Some(r.main))
            .map_err(|e| Error::Malformed {
                bucket: "meta".into(),
                detail: format!("{}: {e}", String::from_utf8_lossy(name)),
            })
    };
    Ok((
        read(buckets::FINISHED_COMPACT_REV)?,
        read(buckets::SCHEDULED_COMPACT_REV)?,
    ))
}

/// Calls `visit` with every stored revision of `key` (puts and deletions), oldest first; returns
/// how many there were. One pass over the `key` bucket, nothing kept.
pub fn history(
    db: &bbolt::Db,
    key: &[u8],
    mut visit: impl FnMut(Revision, &KeyValue<'_>),
) -> Result<u64> {
    let Some(bucket) = db.bucket(buckets::KEY)? else {
        return Ok(0);
    };
    let mut seen = 0;
    for entry in bucket.entries() {
        let entry = entry?;
        let Some(value) = entry.plain_value() else {
            continue;
        };
        let revision = parse_revision(entry.key())?;
        let kv = decode(value, revision)?;
        if kv.key == key {
            seen += 1;
            visit(revision, &kv);
        }
    }
    Ok(seen)
}

/// Calls `visit` once per key satisfying `matches` that was live at revision `at` (`None`: the
/// current revision), with its value as of `at`, in revision order; returns the revision read.
/// A revision below the compact revision or above the current one is refused, naming the bound,
/// as etcd's `Range` refuses it. Memory: as [`crate::live::visit_live`].
pub fn visit_at(
    db: &bbolt::Db,
    at: Option<i64>,
    matches: impl Fn(&[u8]) -> bool,
    visit: impl FnMut(&KeyValue<'_>),
) -> Result<i64> {
    let at = Bounds::read(db)?.resolve(at)?;
    crate::live::visit_live_upto(db, at, matches, visit)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_etcd_restore() {
        let never = Bounds::new(None, None, 9);
        assert_eq!((never.compact, never.current), (-1, 9));
        assert!(!never.unfinished());
        let done = Bounds::new(Some(5), Some(5), 9);
        assert_eq!((done.compact, done.current), (5, 9));
        assert!(!done.unfinished());
        let pending = Bounds::new(Some(5), Some(7), 9);
        assert_eq!(pending.compact, 7);
        assert!(pending.unfinished());
        // Every key up to the compaction deleted: the current revision is the compaction's.
        let emptied = Bounds::new(Some(12), Some(12), 1);
        assert_eq!(emptied.current, 12);
        assert!(matches!(
            done.resolve(Some(4)),
            Err(Error::Compacted {
                requested: 4,
                compact: 5
            })
        ));
        assert_eq!(done.resolve(Some(5)).ok(), Some(5));
        assert_eq!(done.resolve(None).ok(), Some(9));
        assert!(matches!(
            done.resolve(Some(10)),
            Err(Error::FutureRevision {
                requested: 10,
                current: 9
            })
        ));
        assert!(never.resolve(Some(-3)).is_err());
    }
}
