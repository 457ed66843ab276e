//! One pass over a snapshot: bbolt's consistency check, `etcdutl snapshot status`'s numbers (hash,
//! revision, total keys, total size), and what else an operator wants to know about a backup.

use crate::buckets::{self, be_u64};
use crate::error::{Error, Result};
use crate::member::Member;
use crate::proto::{AlarmMember, KeyValue};
use crate::revision::Revision;
use bbolt::ScanEvent;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// What `etcdutl snapshot status` 3.5 reports. etcdutl 3.6 and 3.7 report the same hash,
/// revision and size, but count [`Details::live_keys`] as `totalKey` and add a `version` column
/// ([`Details::etcdutl_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// CRC-32C over every top-level bucket's name, keys and values, in order.
    pub hash: u32,
    /// Main revision of the last key in the `key` bucket.
    pub revision: i64,
    /// Entries in all top-level buckets (etcdutl 3.5 and etcdctl 3.4's `totalKey`).
    pub total_key: u64,
    /// `pgid * page size` of the active meta page.
    pub total_size: u64,
}

/// Entries and bytes of one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketStats {
    /// The bucket's name (lossy UTF-8).
    pub name: String,
    /// Entries in it.
    pub entries: u64,
    /// Bytes of its keys and values.
    pub bytes: u64,
}

/// What else the snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Distinct live user keys at the snapshot's revision: keys whose newest revision in the
    /// `key` bucket is not a deletion, which is etcdutl 3.6+'s `totalKey`
    /// (`etcdutl/snapshot/v3_snapshot.go`, `Status`: `len(seenKeys)`).
    pub live_keys: u64,
    /// Revisions stored in the `key` bucket (live, historical and tombstones).
    pub key_revisions: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// The last finished compaction.
    pub compact_revision: Option<i64>,
    /// The last scheduled compaction.
    pub scheduled_compact_revision: Option<i64>,
    /// Raft index of the last applied entry.
    pub consistent_index: Option<u64>,
    /// Raft term (etcd 3.5+).
    pub term: Option<u64>,
    /// Cluster version, e.g. `3.5.0`.
    pub cluster_version: Option<String>,
    /// Storage schema version (etcd 3.6+).
    pub storage_version: Option<String>,
    /// Members, by ID.
    pub members: Vec<Member>,
    /// IDs of removed members.
    pub removed_members: Vec<u64>,
    /// Leases.
    pub leases: u64,
    /// Whether authentication is enabled.
    pub auth_enabled: bool,
    /// Users.
    pub users: u64,
    /// Roles.
    pub roles: u64,
    /// Active alarms: member ID and alarm name.
    pub alarms: Vec<(u64, String)>,
    /// Every top-level bucket.
    pub buckets: Vec<BucketStats>,
    /// The database page size.
    pub page_size: u32,
    /// Free pages.
    pub free_pages: u64,
}

impl Details {
    /// `meta/storageVersion` as etcdutl 3.6+ prints it in its `version` column: parsed and
    /// printed by go-semver; `None` (etcdutl prints the empty string) when the key is missing or
    /// go-semver rejects it.
    pub fn etcdutl_version(&self) -> Option<crate::go_semver::GoSemver> {
        self.storage_version
            .as_deref()
            .and_then(|v| crate::go_semver::GoSemver::parse(v.as_bytes()))
    }
}

/// The full picture of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// etcdutl's numbers.
    pub status: Status,
    /// Everything else.
    pub details: Details,
}

/// How many check errors to collect before giving up.
const CHECK_LIMIT: usize = 10;

/// The state carried through the scan.
#[derive(Default)]
struct Walk {
    crc: u32,
    revision: i64,
    total_key: u64,
    bucket: Vec<u8>,
    details: Details,
    live: HashSet<u64>,
    first_error: Option<Error>,
}

impl Walk {
    fn malformed(&mut self, detail: String) {
        if self.first_error.is_none() {
            self.first_error = Some(Error::Malformed {
                bucket: String::from_utf8_lossy(&self.bucket).into_owned(),
                detail,
            });
        }
    }

    fn top_level_bucket(&mut self, name: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, name);
        self.bucket = name.to_vec();
        self.details.buckets.push(BucketStats {
            name: String::from_utf8_lossy(name).into_owned(),
            entries: 0,
            bytes: 0,
        });
    }

    fn entry(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.crc = crc32c::crc32c_append(self.crc, key);
        if let Some(v) = value {
            self.crc = crc32c::crc32c_append(self.crc, v);
        }
        self.total_key += 1;
        if let Some(stats) = self.details.buckets.last_mut() {
            stats.entries += 1;
            stats.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        }
        let value = value.unwrap_or_default();
        match self.bucket.as_slice() {
            buckets::KEY => self.key_entry(key, value),
            buckets::META => self.meta_entry(key, value),
            buckets::LEASE => self.details.leases += 1,
            buckets::AUTH_USERS => self.details.users += 1,
            buckets::AUTH_ROLES => self.details.roles += 1,
            buckets::AUTH if key == buckets::AUTH_ENABLED => {
                self.details.auth_enabled = value == [1];
            }
            buckets::CLUSTER if key == buckets::CLUSTER_VERSION => {
                self.details.cluster_version = Some(String::from_utf8_lossy(value).into_owned());
            }
            buckets::MEMBERS => match Member::decode(value) {
                Ok(m) => self.details.members.push(m),
                Err(e) => self.malformed(e),
            },
            buckets::MEMBERS_REMOVED => {
                match u64::from_str_radix(&String::from_utf8_lossy(key), 16) {
                    Ok(id) => self.details.removed_members.push(id),
                    Err(_) => self.malformed(format!("removed member key {key:?} is not a hex ID")),
                }
            }
            buckets::ALARM => match AlarmMember::decode(key) {
                Ok(a) => self
                    .details
                    .alarms
                    .push((a.member_id, a.name().to_string())),
                Err(e) => self.malformed(format!("alarm key: {e}")),
            },
            _ => {}
        }
    }

    fn key_entry(&mut self, key: &[u8], value: &[u8]) {
        // etcdutl 3.5 takes the first 8 bytes of the last key, without validation.
        if let Some(main) = Revision::main_of(key) {
            self.revision = main;
        }
        self.details.key_revisions += 1;
        let revision = match Revision::parse(key) {
            Ok(r) => r,
            Err(e) => return self.malformed(e.0),
        };
        let kv = match KeyValue::decode(value) {
            Ok(kv) => kv,
            Err(e) => {
                return self.malformed(format!("revision {}_{}: {e}", revision.main, revision.sub))
            }
        };
        let mut hasher = DefaultHasher::new();
        kv.key.hash(&mut hasher);
        let h = hasher.finish();
        if revision.tombstone {
            self.details.tombstones += 1;
            self.live.remove(&h);
        } else {
            self.live.insert(h);
        }
    }

    fn meta_entry(&mut self, key: &[u8], value: &[u8]) {
        match key {
            buckets::CONSISTENT_INDEX => self.details.consistent_index = be_u64(value),
            buckets::TERM => self.details.term = be_u64(value),
            buckets::FINISHED_COMPACT_REV => {
                self.details.compact_revision = Revision::main_of(value)
            }
            buckets::SCHEDULED_COMPACT_REV => {
                self.details.scheduled_compact_revision = Revision::main_of(value);
            }
            buckets::STORAGE_VERSION => {
                self.details.storage_version = Some(String::from_utf8_lossy(value).into_owned());
            }
            _ => {}
        }
    }
}

/// Checks the database and reads everything `snapshot status` reports, in one pass.
pub fn analyze(db: &bbolt::Db) -> Result<Analysis> {
    let mut walk = Walk::default();
    let report = db.scan(CHECK_LIMIT, &mut |event| match event {
        ScanEvent::Bucket { depth: 1, entry } => walk.top_level_bucket(entry.key()),
        ScanEvent::Entry { depth: 1, entry } => walk.entry(entry.key(), entry.plain_value()),
        _ => {}
    });
    if !report.errors.is_empty() {
        return Err(Error::Check {
            count: report.errors.len(),
            errors: report.errors.iter().map(ToString::to_string).collect(),
        });
    }
    if let Some(e) = walk.first_error {
        return Err(e);
    }
    let mut details = walk.details;
    details.live_keys = walk.live.len() as u64;
    details.page_size = db.page_size();
    details.free_pages = report.stats.free_pages;
    details.members.sort_by_key(|m| m.id);
    Ok(Analysis {
        status: Status {
            hash: walk.crc,
            revision: walk.revision,
            total_key: walk.total_key,
            total_size: db.total_size(),
        },
        details,
    })
}
