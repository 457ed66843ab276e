//! etcd's `HashKV` of a database, offline: the hash that `etcdctl endpoint hashkv --rev R` asks a
//! live member for and `etcdutl hashkv --rev R` computes from a db file, so that a backup can be
//! proven equal to what the cluster held.
//!
//! What etcd hashes (read at v3.5.1, v3.5.17, v3.6.14 and v3.7.1: `server/storage/mvcc/hash.go`
//! `kvHasher.WriteKeyValue`, `kvstore.go` `hashByRev`, `key_index.go` `keep`/`doCompact`; 3.5 has
//! them under `server/mvcc/`): CRC-32 Castagnoli over the bucket name `key`, then, in bucket
//! order, the raw revision key and raw value of every entry with `main <= R`, except that an
//! entry with `main <= C` (the compact revision) is skipped unless it is in the *keep set* of
//! revision R, and a deletion with `main == C` is always skipped. The keep set
//! (`treeIndex.Keep(R)`) holds, for every key of the in-memory index, its latest revision at or
//! below R when that revision is not a deletion: the revisions live at R. When the keep set is
//! empty (no key live at R) the filter is off and every entry up to R is hashed. The result is
//! `{hash, compactRevision: C, hashRevision: R}` with R = the current revision when none is given.
//!
//! Version differences: 3.5.1 to 3.5.15 refuse R == C (`rev <= compactRev`), later versions only
//! R < C; 3.5.16+/3.6/3.7 keep a deletion at exactly C on disk when compacting and skip it when
//! hashing (so a database from either line hashes the same), 3.5.1 to 3.5.15 delete it and have
//! no skip rule. This module implements the 3.5.16+/3.6/3.7 rules, which give the same hash as
//! older versions on databases those versions wrote.
//!
//! Cost: two passes over the `key` bucket after [`Bounds::read`]'s (one when the store was never
//! compacted: the filter cannot drop anything then). Memory: the user keys changed in `(C, R]`
//! (a set; none when never compacted), plus, when a compaction is scheduled but unfinished, the
//! latest revision at or below C of every key; nothing else, and no value is kept.

use crate::buckets;
use crate::error::Result;
use crate::history::Bounds;
use crate::live::{decode, parse_revision};
use crate::revision::Revision;
use std::collections::HashMap;

/// The result of `HashKV`, with the key names of `etcdutl hashkv -w json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashKv {
    /// CRC-32C as described in the module documentation.
    pub hash: u32,
    /// The compact revision (`-1` when never compacted).
    pub compact_revision: i64,
    /// The revision hashed.
    pub hash_revision: i64,
}

/// `HashKV` at revision `at` (`None` or 0: the current revision). A revision below the compact
/// revision or above the current one is refused as etcd 3.6 refuses it.
pub fn hash_kv(db: &bbolt::Db, at: Option<i64>) -> Result<HashKv> {
    let bounds = Bounds::read(db)?;
    let rev = bounds.resolve(at)?;
    hash_kv_within(db, &bounds, rev)
}

/// `HashKV` at `rev`, already checked against `bounds` (read from the same database).
pub fn hash_kv_within(db: &bbolt::Db, bounds: &Bounds, rev: i64) -> Result<HashKv> {
    let compact = bounds.compact;
    let mut all = crc32c::crc32c(buckets::KEY);
    let result = |hash| HashKv {
        hash,
        compact_revision: compact,
        hash_revision: rev,
    };
    let Some(bucket) = db.bucket(buckets::KEY)? else {
        return Ok(result(all));
    };
    // Pass 1: which keys changed after the compaction, and whether each was live at `rev`; for
    // an unfinished compaction, the latest revision of each key at or below it.
    let mut changed: HashMap<Box<[u8]>, bool> = HashMap::new();
    let mut below: HashMap<Box<[u8]>, Revision> = HashMap::new();
    let unfinished = bounds.unfinished();
    // Never compacted (no entry at or below the compact revision): the keep filter cannot drop
    // anything, both hashes below are the same, and pass 1 (memory: every key) is not needed.
    let entries = if compact < 1 {
        None
    } else {
        Some(bucket.entries())
    };
    for entry in entries.into_iter().flatten() {
        let entry = entry?;
        let revision = parse_revision(entry.key())?;
        if revision.main > rev {
            break;
        }
        let Some(value) = entry.plain_value() else {
            continue;
        };
        if revision.main <= compact && !unfinished {
            continue;
        }
        let kv = decode(value, revision)?;
        let map_put = |map: &mut HashMap<Box<[u8]>, _>, v| match map.get_mut(kv.key) {
            Some(slot) => *slot = v,
            None => {
                map.insert(kv.key.into(), v);
            }
        };
        if revision.main > compact {
            map_put(&mut changed, !revision.tombstone);
        } else {
            match below.get_mut(kv.key) {
                Some(slot) => *slot = revision,
                None => {
                    below.insert(kv.key.into(), revision);
                }
            }
        }
    }
    let mut any_live = changed.values().any(|live| *live);
    // Pass 2: the hash with the keep filter (`kept`) and without it (`all`, for an empty keep
    // set); which one etcd computes is known only at the end.
    let mut kept = all;
    for entry in bucket.entries() {
        let entry = entry?;
        let (k, revision) = (entry.key(), parse_revision(entry.key())?);
        if revision.main > rev {
            break;
        }
        let v = entry.value();
        if revision.main > compact {
            all = crc32c::crc32c_append(crc32c::crc32c_append(all, k), v);
            kept = crc32c::crc32c_append(crc32c::crc32c_append(kept, k), v);
            continue;
        }
        if revision.tombstone && revision.main == compact {
            continue;
        }
        all = crc32c::crc32c_append(crc32c::crc32c_append(all, k), v);
        if revision.tombstone || entry.is_bucket() {
            continue;
        }
        let kv = decode(v, revision)?;
        let latest =
            !changed.contains_key(kv.key) && (!unfinished || below.get(kv.key) == Some(&revision));
        if latest {
            any_live = true;
            kept = crc32c::crc32c_append(crc32c::crc32c_append(kept, k), v);
        }
    }
    Ok(result(if any_live { kept } else { all }))
}
