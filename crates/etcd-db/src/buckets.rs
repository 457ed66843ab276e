//! The names of etcd's buckets and meta keys (all top-level buckets; etcd nests none).

/// Revision key → `mvccpb.KeyValue`.
pub const KEY: &[u8] = b"key";
/// Consistent index, term, compaction revisions, confState.
pub const META: &[u8] = b"meta";
/// Lease ID → `leasepb.Lease`.
pub const LEASE: &[u8] = b"lease";
/// Marshaled `AlarmMember` → empty.
pub const ALARM: &[u8] = b"alarm";
/// `authEnabled`, `authRevision`.
pub const AUTH: &[u8] = b"auth";
/// User name → `authpb.User`.
pub const AUTH_USERS: &[u8] = b"authUsers";
/// Role name → `authpb.Role`.
pub const AUTH_ROLES: &[u8] = b"authRoles";
/// Member ID (hex) → member JSON.
pub const MEMBERS: &[u8] = b"members";
/// Member ID (hex) → `removed`.
pub const MEMBERS_REMOVED: &[u8] = b"members_removed";
/// `clusterVersion`, `downgrade`.
pub const CLUSTER: &[u8] = b"cluster";

/// `meta` key: raft index of the last applied entry, u64 big-endian.
pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
/// `meta` key: raft term (3.5+), u64 big-endian.
pub const TERM: &[u8] = b"term";
/// `meta` key: the last finished compaction, a 17-byte revision key.
pub const FINISHED_COMPACT_REV: &[u8] = b"finishedCompactRev";
/// `meta` key: the last scheduled compaction, a 17-byte revision key.
pub const SCHEDULED_COMPACT_REV: &[u8] = b"scheduledCompactRev";
/// `meta` key: JSON of the raft ConfState (3.5+).
pub const CONF_STATE: &[u8] = b"confState";
/// `meta` key: the storage schema version (3.6+).
pub const STORAGE_VERSION: &[u8] = b"storageVersion";
/// `cluster` key: the cluster version, e.g. `3.5.0`.
pub const CLUSTER_VERSION: &[u8] = b"clusterVersion";
/// `cluster` key: the downgrade in progress, JSON `{"target-version":"…","enabled":…}` (3.5+).
pub const DOWNGRADE: &[u8] = b"downgrade";
/// `auth` key: `1` when authentication is enabled.
pub const AUTH_ENABLED: &[u8] = b"authEnabled";

/// A big-endian u64 from an 8-byte value.
pub fn be_u64(value: &[u8]) -> Option<u64> {
    value.try_into().ok().map(u64::from_be_bytes)
}
