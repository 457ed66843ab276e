//! Appending revisions to a database as etcd's MVCC store writes them, offline: what a
//! point-in-time restore does with a revision log on top of a snapshot.
//!
//! Why it exists: a revision log (etcd-snap-log) records every change after a snapshot; writing
//! those changes into the snapshot's `key` bucket exactly as etcd would (revision key
//! `main`\_`sub` big-endian, `t` for a deletion, the value an `mvccpb.KeyValue` marshalled as gogo
//! does) yields the database the cluster had at the chosen revision, history included, without
//! replaying through a running etcd. Leases first seen in the log go into the `lease` bucket.
//!
//! The input types are this module's own (the log format crate is not a dependency). Memory is
//! one revision plus the bbolt editor's working set: complete leaves are written out every
//! megabyte ([`bbolt::write::Editor::write_appended`]).

use crate::buckets;
use crate::revision::Revision;
use bbolt::write::Editor;
use protowire::{put_len_field, put_varint_field};
use std::collections::HashSet;
use std::path::Path;

/// Bytes appended between two writes of complete leaves.
const WRITE_EVERY: usize = 1 << 20;

/// etcd's fill percent for the `key` bucket (`UnsafeSeqPut`: revisions only grow).
const KEY_FILL_PERCENT: f64 = 0.9;

/// What a change does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A put: a new version of the key.
    Put,
    /// A delete: a tombstone.
    Delete,
}

/// One change of a revision, as a watch reports it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// Put or delete.
    pub kind: Kind,
    /// The user key.
    pub key: &'a [u8],
    /// The value (empty for a delete).
    pub value: &'a [u8],
    /// Revision of the key's creation (puts).
    pub create_revision: i64,
    /// Revision of the change: must be the revision it is applied at.
    pub mod_revision: i64,
    /// Version of the key after the put (1 on creation).
    pub version: i64,
    /// Attached lease ID, 0 for none.
    pub lease: i64,
}

/// What [`Applier::finish`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The database's latest revision before.
    pub from_revision: i64,
    /// The latest revision after.
    pub to_revision: i64,
    /// Revisions appended.
    pub revisions: u64,
    /// Changes (revision keys) appended.
    pub changes: u64,
    /// Leases added to the `lease` bucket.
    pub leases_added: u64,
}

/// Appends revisions to the `key` bucket of one database (one bbolt write transaction).
pub struct Applier {
    editor: Editor,
    existing_leases: HashSet<i64>,
    new_leases: Vec<(Vec<u8>, Vec<u8>)>,
    applied: Applied,
    since_write: usize,
}

/// The value etcd stores for a revision: `mvccpb.KeyValue` as gogo marshals it (fields in order,
/// zero values left out). A tombstone holds the key alone.
pub fn encode_key_value(change: &Change<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(change.key.len() + change.value.len() + 40);
    if !change.key.is_empty() {
        put_len_field(&mut out, 1, change.key);
    }
    if change.kind == Kind::Delete {
        return out;
    }
    for (field, v) in [
        (2, change.create_revision),
        (3, change.mod_revision),
        (4, change.version),
    ] {
        if v != 0 {
            put_varint_field(&mut out, field, v as u64);
        }
    }
    if !change.value.is_empty() {
        put_len_field(&mut out, 5, change.value);
    }
    if change.lease != 0 {
        put_varint_field(&mut out, 6, change.lease as u64);
    }
    out
}

/// The value etcd stores for a lease: `leasepb.Lease{ID, TTL}` (RemainingTTL 0, as on grant).
pub fn encode_lease(id: i64, ttl: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(22);
    if id != 0 {
        put_varint_field(&mut out, 1, id as u64);
    }
    if ttl != 0 {
        put_varint_field(&mut out, 2, ttl as u64);
    }
    out
}

impl Applier {
    /// Opens the database at `db` (not in use by anything else) for appending.
    pub fn open(db: &Path) -> Result<Applier, String> {
        let existing_leases = {
            let read = bbolt::Db::open(db).map_err(|e| e.to_string())?;
            let mut ids = HashSet::new();
            if let Some(bucket) = read.bucket(buckets::LEASE).map_err(|e| e.to_string())? {
                for entry in bucket.entries() {
                    let entry = entry.map_err(|e| e.to_string())?;
                    if let Ok(bytes) = <[u8; 8]>::try_from(entry.key()) {
                        ids.insert(i64::from_be_bytes(bytes));
                    }
                }
            }
            ids
        };
        let mut editor = Editor::open(db).map_err(|e| e.to_string())?;
        editor.set_fill_percent(KEY_FILL_PERCENT);
        let last = match editor.last_key(buckets::KEY).map_err(|e| e.to_string())? {
            Some(key) => {
                Revision::parse(&key)
                    .map_err(|e| format!("the last key of the key bucket: {e}"))?
                    .main
            }
            // An empty key bucket: etcd stands at its initial revision 1, which holds no event,
            // so the first write it makes is revision 2.
            None => 1,
        };
        Ok(Applier {
            editor,
            existing_leases,
            new_leases: Vec::new(),
            applied: Applied {
                from_revision: last,
                to_revision: last,
                ..Applied::default()
            },
            since_write: 0,
        })
    }

    /// The database's latest revision so far.
    pub fn last_revision(&self) -> i64 {
        self.applied.to_revision
    }

    /// Appends `revision` with its `changes` in etcd's order (sub-revision 0, 1, ...). It must be
    /// the next revision, and every change must say so (its mod revision); a put's version and
    /// create revision must be plausible. Errors describe the log, not the database.
    pub fn apply(&mut self, revision: i64, changes: &[Change<'_>]) -> Result<(), String> {
        let expected = self.applied.to_revision.saturating_add(1);
        if revision != expected {
            return Err(format!(
                "revision {revision} follows {} (expected {expected})",
                self.applied.to_revision
            ));
        }
        for (sub, change) in changes.iter().enumerate() {
            if change.key.is_empty() {
                return Err(format!("revision {revision}: a change with an empty key"));
            }
            if change.mod_revision != revision {
                return Err(format!(
                    "revision {revision}: a change says mod revision {}",
                    change.mod_revision
                ));
            }
            if change.kind == Kind::Put
                && (change.version < 1
                    || change.create_revision < 1
                    || change.create_revision > revision
                    || (change.version == 1) != (change.create_revision == revision))
            {
                return Err(format!(
                    "revision {revision}: a put with create revision {} and version {}",
                    change.create_revision, change.version
                ));
            }
            let key = Revision {
                main: revision,
                sub: sub as i64,
                tombstone: change.kind == Kind::Delete,
            }
            .encode();
            let value = encode_key_value(change);
            self.since_write += key.len() + value.len() + 16;
            self.editor
                .append(buckets::KEY, key, value)
                .map_err(|e| e.to_string())?;
            self.applied.changes += 1;
        }
        self.applied.to_revision = revision;
        self.applied.revisions += 1;
        if self.since_write >= WRITE_EVERY {
            self.editor
                .write_appended(buckets::KEY)
                .map_err(|e| e.to_string())?;
            self.since_write = 0;
        }
        Ok(())
    }

    /// Adds lease `id` with `ttl` to the `lease` bucket unless the database already has it.
    pub fn grant(&mut self, id: i64, ttl: i64) {
        if id != 0 && self.existing_leases.insert(id) {
            self.new_leases
                .push((id.to_be_bytes().to_vec(), encode_lease(id, ttl)));
        }
    }

    /// Writes everything (one commit: the new pages, fsync, the meta, fsync).
    pub fn finish(mut self) -> Result<Applied, String> {
        self.applied.leases_added = self.new_leases.len() as u64;
        if !self.new_leases.is_empty() {
            self.editor
                .upsert(buckets::LEASE, std::mem::take(&mut self.new_leases))
                .map_err(|e| e.to_string())?;
        }
        self.editor.commit().map_err(|e| e.to_string())?;
        Ok(self.applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_marshalled_as_gogo_does() {
        let put = Change {
            kind: Kind::Put,
            key: b"a",
            value: b"b",
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 7,
        };
        let bytes = encode_key_value(&put);
        assert_eq!(
            bytes,
            [0x0a, 1, b'a', 0x10, 2, 0x18, 3, 0x20, 2, 0x2a, 1, b'b', 0x30, 7]
        );
        let back = crate::proto::KeyValue::decode(&bytes);
        assert_eq!(back.map(|kv| (kv.version, kv.lease)), Ok((2, 7)));
        let delete = Change {
            kind: Kind::Delete,
            value: b"",
            lease: 0,
            ..put
        };
        assert_eq!(encode_key_value(&delete), [0x0a, 1, b'a']);
        assert_eq!(encode_lease(5, 60), [0x08, 5, 0x10, 60]);
    }
}
