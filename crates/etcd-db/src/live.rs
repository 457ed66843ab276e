//! The live keys of a snapshot: for each user key, its latest revision at the snapshot's
//! revision, unless that revision is a deletion (tombstone). What `etcdctl get --prefix` would
//! have returned from the snapshot, read offline.
//!
//! Why it exists: Kubernetes-aware tools (the `--k8s` inventory of `etcd-snap-status`,
//! `etcd-snap-get`) must count and show objects as the API server sees them, not every revision
//! etcd still keeps.
//!
//! How, and what it costs: the `key` bucket is ordered by revision `{main, sub}`, so a key's last
//! entry is its latest revision. A first pass over the bucket keeps, per matching user key, only
//! its latest revision (a tombstone removes the key); a second pass hands the visitor the values
//! at exactly those revisions, in revision order. Memory is bounded by the number of live
//! matching keys, each costing its key bytes plus about 60 bytes (hash table slot and
//! allocation) during the first pass and 24 bytes during the second; no value is kept. When few keys match (getting one object), the
//! second pass is a point lookup per key instead of a scan.

use crate::buckets;
use crate::error::{Error, Result};
use crate::proto::KeyValue;
use crate::revision::Revision;
use std::collections::HashMap;

/// What the passes found, besides what the visitor saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Revisions in the `key` bucket (all keys, live, historical and tombstones).
    pub key_revisions: u64,
    /// Live keys that matched and were visited.
    pub live: u64,
    /// Main revision of the last entry of the `key` bucket: the snapshot's revision.
    pub revision: i64,
}

/// Below this ratio of matches to revisions, the second pass looks keys up instead of scanning.
const LOOKUP_RATIO: u64 = 64;

/// Calls `visit` once per live key whose user key satisfies `matches`, with the key's latest
/// `mvccpb.KeyValue`, in revision order. See the module documentation for the memory bound.
pub fn visit_live(
    db: &bbolt::Db,
    matches: impl Fn(&[u8]) -> bool,
    mut visit: impl FnMut(&KeyValue<'_>),
) -> Result<LiveStats> {
    let mut stats = LiveStats::default();
    let Some(bucket) = db.bucket(buckets::KEY)? else {
        return Ok(stats);
    };
    let mut latest: HashMap<Box<[u8]>, Revision> = HashMap::new();
    for entry in bucket.entries() {
        let entry = entry?;
        stats.key_revisions += 1;
        let Some(value) = entry.plain_value() else {
            continue;
        };
        let revision = parse_revision(entry.key())?;
        stats.revision = revision.main;
        let kv = decode(value, revision)?;
        if !matches(kv.key) {
            continue;
        }
        if revision.tombstone {
            latest.remove(kv.key);
        } else if let Some(slot) = latest.get_mut(kv.key) {
            *slot = revision;
        } else {
            latest.insert(kv.key.into(), revision);
        }
    }
    let mut wanted: Vec<Revision> = latest.into_values().collect();
    wanted.sort_unstable();
    stats.live = wanted.len() as u64;
    if wanted.len() as u64 * LOOKUP_RATIO < stats.key_revisions {
        for revision in &wanted {
            let entry = bucket
                .get(&revision.encode())?
                .ok_or_else(|| Error::Malformed {
                    bucket: "key".into(),
                    detail: format!("revision {}_{} vanished", revision.main, revision.sub),
                })?;
            visit(&decode(entry.value(), *revision)?);
        }
        return Ok(stats);
    }
    let mut next = wanted.iter().peekable();
    for entry in bucket.entries() {
        let Some(want) = next.peek() else {
            break;
        };
        let entry = entry?;
        let revision = parse_revision(entry.key())?;
        if revision != **want {
            continue;
        }
        next.next();
        visit(&decode(entry.value(), revision)?);
    }
    Ok(stats)
}

fn parse_revision(key: &[u8]) -> Result<Revision> {
    Revision::parse(key).map_err(|e| Error::Malformed {
        bucket: "key".into(),
        detail: e.0,
    })
}

fn decode(value: &[u8], revision: Revision) -> Result<KeyValue<'_>> {
    KeyValue::decode(value).map_err(|e| Error::Malformed {
        bucket: "key".into(),
        detail: format!("revision {}_{}: {e}", revision.main, revision.sub),
    })
}
