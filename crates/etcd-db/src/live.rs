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
    visit: impl FnMut(&KeyValue<'_>),
) -> Result<LiveStats> {
    visit_live_upto(db, i64::MAX, matches, visit)
}

/// [`visit_live`] as of revision `upto`: revisions above it are counted but not seen, so each key
/// has the value it had at `upto`. Callers check `upto` against the compaction
/// ([`crate::history::visit_at`]).
pub(crate) fn visit_live_upto(
    db: &bbolt::Db,
    upto: i64,
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
        if revision.main > upto {
            continue;
        }
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

/// Decodes a revision key of the `key` bucket.
pub(crate) fn parse_revision(key: &[u8]) -> Result<Revision> {
    Revision::parse(key).map_err(|e| Error::Malformed {
        bucket: "key".into(),
        detail: e.0,
    })
}

/// Decodes a `key` bucket value stored at `revision`.
pub(crate) fn decode(value: &[u8], revision: Revision) -> Result<KeyValue<'_>> {
    KeyValue::decode(value).map_err(|e| Error::Malformed {
        bucket: "key".into(),
        detail: format!("revision {}_{}: {e}", revision.main, revision.sub),
    })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    //! `visit_live` on small databases laid out by hand: one root leaf naming a `key` bucket whose
    //! entries sit on one (possibly overflowing) leaf page; no etcd needed.

    use super::*;

    const PAGE: usize = 4096;

    /// A bbolt image whose root holds bucket `key` with `entries` (sorted by the caller): the
    /// bucket's leaf at page 2, the root leaf at page 3.
    fn image(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        use bbolt::build::{bucket_kv, bucket_value, kv, Builder};
        let mut b = Builder::new(PAGE);
        let entries: Vec<_> = entries.iter().map(|(k, v)| kv(k, v)).collect();
        let key_root = b.leaf(&entries).unwrap();
        let root = b
            .leaf(&[bucket_kv(b"key", bucket_value(key_root))])
            .unwrap();
        b.finish(root, bbolt::PGID_NO_FREELIST, 2)
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// An `mvccpb.KeyValue` (a tombstone carries only the key, as etcd writes it).
    fn kv(key: &[u8], create: i64, rev: i64, version: i64, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x0a];
        varint(key.len() as u64, &mut out);
        out.extend_from_slice(key);
        for (tag, v) in [(0x10, create), (0x18, rev), (0x20, version)] {
            if v != 0 {
                out.push(tag);
                varint(v as u64, &mut out);
            }
        }
        if !value.is_empty() {
            out.push(0x2a);
            varint(value.len() as u64, &mut out);
            out.extend_from_slice(value);
        }
        out
    }

    /// A `key` bucket entry: revision key and `mvccpb.KeyValue`.
    type Entry = (Vec<u8>, Vec<u8>);
    /// A live key as visited: key, value, mod revision.
    type Live = (Vec<u8>, Vec<u8>, i64);

    /// One change to the store, in the order etcd applies them.
    enum Op<'a> {
        Put(&'a [u8], &'a [u8]),
        Delete(&'a [u8]),
    }

    /// Applies transactions (each a list of ops, sub revisions 0, 1, ...) as etcd's mvcc does,
    /// from revision 2; returns the `key` bucket entries and, per key, the expected live value.
    fn history(txns: &[Vec<Op<'_>>]) -> (Vec<Entry>, Vec<Live>) {
        use std::collections::BTreeMap;
        let mut entries = Vec::new();
        // key -> (create, version, value, mod revision) of live keys
        let mut state: BTreeMap<Vec<u8>, (i64, i64, Vec<u8>, i64)> = BTreeMap::new();
        for (i, ops) in txns.iter().enumerate() {
            let main = i as i64 + 2;
            for (sub, op) in ops.iter().enumerate() {
                let sub = sub as i64;
                match op {
                    Op::Put(k, v) => {
                        let (create, version) = match state.get(*k) {
                            Some((c, ver, _, _)) => (*c, ver + 1),
                            None => (main, 1),
                        };
                        state.insert(k.to_vec(), (create, version, v.to_vec(), main));
                        let rev = Revision {
                            main,
                            sub,
                            tombstone: false,
                        };
                        entries.push((rev.encode(), kv(k, create, main, version, v)));
                    }
                    Op::Delete(k) => {
                        assert!(state.remove(*k).is_some(), "test deletes a live key");
                        let rev = Revision {
                            main,
                            sub,
                            tombstone: true,
                        };
                        entries.push((rev.encode(), kv(k, 0, 0, 0, b"")));
                    }
                }
            }
        }
        let live = state
            .into_iter()
            .map(|(k, (_, _, v, rev))| (k, v, rev))
            .collect();
        (entries, live)
    }

    /// Visits with `matches`, returning (key, value, mod revision) in visiting order.
    fn visited(db: &bbolt::Db, matches: impl Fn(&[u8]) -> bool) -> (Vec<Live>, LiveStats) {
        let mut seen = Vec::new();
        let stats = visit_live(db, matches, |kv| {
            seen.push((kv.key.to_vec(), kv.value.to_vec(), kv.mod_revision))
        })
        .unwrap();
        (seen, stats)
    }

    #[test]
    fn tombstones_recreation_and_sub_revisions() {
        let (entries, want) = history(&[
            vec![Op::Put(b"/a", b"a1")],
            vec![
                Op::Put(b"/b", b"b1"),
                Op::Put(b"/c", b"c1"),
                Op::Put(b"/a", b"a2"),
            ],
            vec![Op::Delete(b"/b")],
            vec![Op::Put(b"/d", b"d1"), Op::Delete(b"/d")], // created and deleted in one txn
            vec![Op::Delete(b"/c"), Op::Put(b"/c", b"c2")], // deleted and re-created in one txn
            vec![Op::Put(b"/b", b"b2")],                    // re-created after a delete
            vec![Op::Put(b"/e", b"e1"), Op::Delete(b"/a")],
        ]);
        let db = bbolt::Db::from_bytes(image(&entries)).unwrap();
        let (seen, stats) = visited(&db, |_| true);
        assert_eq!(stats.key_revisions, entries.len() as u64);
        assert_eq!(stats.revision, 8);
        assert_eq!(stats.live, 3);
        // In revision order: /c at 6_1, /b at 7_0, /e at 8_0.
        let mut by_rev = want.clone();
        by_rev.sort_by_key(|(_, _, rev)| *rev);
        assert_eq!(seen, by_rev);
        assert_eq!(
            seen.iter()
                .map(|(k, v, _)| (k.as_slice(), v.as_slice()))
                .collect::<Vec<_>>(),
            [(&b"/c"[..], &b"c2"[..]), (b"/b", b"b2"), (b"/e", b"e1")]
        );
        // A filter that keeps only deleted keys sees nothing.
        let (seen, stats) = visited(&db, |k| k == b"/a" || k == b"/d");
        assert!(seen.is_empty(), "{seen:?}");
        assert_eq!(stats.live, 0);
    }

    #[test]
    fn lookup_and_scan_paths_agree() {
        // Many revisions of a few keys: one match is far below 1/LOOKUP_RATIO (point lookups),
        // all keys are above it (a scan). Both must see what a plain model says.
        let mut txns = Vec::new();
        let values: Vec<Vec<u8>> = (0..300).map(|i| format!("v{i}").into_bytes()).collect();
        let keys: Vec<Vec<u8>> = (0..6).map(|i| format!("/k{i}").into_bytes()).collect();
        let mut alive = [false; 6];
        for (i, v) in values.iter().enumerate() {
            let k = i % 6;
            if i % 7 == 3 && alive[k] {
                txns.push(vec![Op::Delete(&keys[k])]);
                alive[k] = false;
            } else {
                txns.push(vec![Op::Put(&keys[k], v)]);
                alive[k] = true;
            }
        }
        let (entries, want) = history(&txns);
        // All six keys: 6 * LOOKUP_RATIO >= revisions, the scan; one key: far below, lookups.
        assert!(entries.len() as u64 > LOOKUP_RATIO * 2);
        assert!(entries.len() as u64 <= LOOKUP_RATIO * keys.len() as u64);
        let db = bbolt::Db::from_bytes(image(&entries)).unwrap();
        let (all, stats) = visited(&db, |_| true);
        assert_eq!(stats.live as usize, want.len());
        let mut by_rev = want.clone();
        by_rev.sort_by_key(|(_, _, rev)| *rev);
        assert_eq!(all, by_rev);
        for key in &keys {
            // One key: the lookup path (1 * LOOKUP_RATIO < revisions).
            let (one, _) = visited(&db, |k| k == key.as_slice());
            let expected: Vec<_> = all.iter().filter(|(k, _, _)| k == key).cloned().collect();
            assert_eq!(one, expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn no_key_bucket_is_empty() {
        let mut img = image(&[]);
        // Rename the bucket: the database then has no `key` bucket.
        let root_leaf = 3 * PAGE;
        let name = img[root_leaf + 32..root_leaf + 35].to_vec();
        assert_eq!(name, b"key");
        img[root_leaf + 32..root_leaf + 35].copy_from_slice(b"kez");
        let db = bbolt::Db::from_bytes(img).unwrap();
        let (seen, stats) = visited(&db, |_| true);
        assert!(seen.is_empty());
        assert_eq!(stats, LiveStats::default());
    }
}
