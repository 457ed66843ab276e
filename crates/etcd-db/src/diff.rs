//! What changed between two keyspaces: two databases (last night's and tonight's backup), or two
//! revisions of one, compared key by key.
//!
//! Why it exists: "what changed between these backups" is the first question after an incident,
//! and etcd has no answer offline. How: each side's live keys are walked in user-key order with
//! [`SortedLive`] (an external sort, memory bounded by its run size) and the two walks are merged;
//! a key on one side only is added or removed, a key on both whose value or lease differs is
//! changed (compared by lookup, one value of each side at a time). Nothing else is kept.

use crate::error::Result;
use crate::history::Bounds;
use crate::proto::KeyValue;
use crate::sorted::SortedLive;
use std::cmp::Ordering;

/// One side of a diff.
#[derive(Clone, Copy)]
pub struct Side<'db> {
    /// The database.
    pub db: &'db bbolt::Db,
    /// The revision to read (`None`: the current revision).
    pub at: Option<i64>,
}

/// How a key differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Live on side B only.
    Added,
    /// Live on side A only.
    Removed,
    /// Live on both, with a different value or lease.
    Changed,
}

/// One difference, as the visitor sees it: the key and its value on each side where it is live.
#[derive(Debug)]
pub struct Change<'a> {
    /// Added, removed or changed.
    pub kind: Kind,
    /// The user key.
    pub key: &'a [u8],
    /// The key on side A (removed, changed).
    pub a: Option<KeyValue<'a>>,
    /// The key on side B (added, changed).
    pub b: Option<KeyValue<'a>>,
}

/// What the merge found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiffStats {
    /// Revision read on side A.
    pub revision_a: i64,
    /// Revision read on side B.
    pub revision_b: i64,
    /// Live keys on side A.
    pub keys_a: u64,
    /// Live keys on side B.
    pub keys_b: u64,
    /// Keys added.
    pub added: u64,
    /// Keys removed.
    pub removed: u64,
    /// Keys changed.
    pub changed: u64,
}

impl DiffStats {
    /// Whether the two keyspaces are equal.
    pub fn same(&self) -> bool {
        self.added == 0 && self.removed == 0 && self.changed == 0
    }
}

/// Why a diff stopped: the database, or the visitor.
#[derive(Debug)]
pub enum Failed<E> {
    /// Reading either database failed.
    Db(crate::Error),
    /// The visitor returned an error.
    Visit(E),
}

impl<E> From<crate::Error> for Failed<E> {
    fn from(e: crate::Error) -> Self {
        Failed::Db(e)
    }
}

/// Compares the keys satisfying `matches` of `a` and `b`, calling `visit` per difference in key
/// order; `run_bytes` bounds each walk's memory ([`crate::sorted::DEFAULT_RUN_BYTES`]). Each
/// side's revision is checked against its own compaction ([`Bounds::resolve`]).
pub fn diff<E>(
    a: Side<'_>,
    b: Side<'_>,
    run_bytes: usize,
    matches: impl Fn(&[u8]) -> bool + Copy,
    mut visit: impl FnMut(&Change<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<DiffStats, Failed<E>> {
    let revision_a = Bounds::read(a.db)?.resolve(a.at)?;
    let revision_b = Bounds::read(b.db)?.resolve(b.at)?;
    let mut wa = SortedLive::build(a.db, revision_a, run_bytes, matches)?;
    let mut wb = SortedLive::build(b.db, revision_b, run_bytes, matches)?;
    let mut stats = DiffStats {
        revision_a,
        revision_b,
        ..DiffStats::default()
    };
    let mut na = wa.next_live()?;
    let mut nb = wb.next_live()?;
    loop {
        let order = match (&na, &nb) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            Ordering::Less => {
                if let Some((key, rev)) = &na {
                    stats.keys_a += 1;
                    stats.removed += 1;
                    let entry = fetch(&wa, *rev)?;
                    let kv = SortedLive::decode(&entry, *rev)?;
                    visit(&Change {
                        kind: Kind::Removed,
                        key,
                        a: Some(kv),
                        b: None,
                    })
                    .map_err(Failed::Visit)?;
                }
                na = wa.next_live()?;
            }
            Ordering::Greater => {
                if let Some((key, rev)) = &nb {
                    stats.keys_b += 1;
                    stats.added += 1;
                    let entry = fetch(&wb, *rev)?;
                    let kv = SortedLive::decode(&entry, *rev)?;
                    visit(&Change {
                        kind: Kind::Added,
                        key,
                        a: None,
                        b: Some(kv),
                    })
                    .map_err(Failed::Visit)?;
                }
                nb = wb.next_live()?;
            }
            Ordering::Equal => {
                if let (Some((key, ra)), Some((_, rb))) = (&na, &nb) {
                    stats.keys_a += 1;
                    stats.keys_b += 1;
                    let (ea, eb) = (fetch(&wa, *ra)?, fetch(&wb, *rb)?);
                    let (kva, kvb) = (SortedLive::decode(&ea, *ra)?, SortedLive::decode(&eb, *rb)?);
                    if kva.value != kvb.value || kva.lease != kvb.lease {
                        stats.changed += 1;
                        visit(&Change {
                            kind: Kind::Changed,
                            key,
                            a: Some(kva),
                            b: Some(kvb),
                        })
                        .map_err(Failed::Visit)?;
                    }
                }
                na = wa.next_live()?;
                nb = wb.next_live()?;
            }
        }
    }
    Ok(stats)
}

/// The stored entry at `rev`, which the walk just found.
fn fetch(walk: &SortedLive<'_>, rev: crate::Revision) -> Result<bbolt::Entry> {
    walk.value(rev)?.ok_or_else(|| crate::Error::Malformed {
        bucket: "key".into(),
        detail: format!("revision {}_{} vanished", rev.main, rev.sub),
    })
}
