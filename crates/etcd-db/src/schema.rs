//! etcd's storage schema versions and what moving a database between them takes, as etcd's own
//! `server/storage/schema/{schema,migration,version}.go` (3.6, 3.7) define them.
//!
//! A database says which etcd wrote it through `meta/storageVersion` (`"3.6.0"`, `"3.7.0"`;
//! written by 3.6 and later, deleted again by a downgrade to 3.5). Without it, etcd 3.6+ calls a
//! database with a non-zero `meta/term` a 3.5 one. A binary boots a database whose version it
//! can migrate to its own: up any number of minors, down only through versions whose changes it
//! knows, so 3.6 refuses a `3.7.0` database. The changes etcd lists per version are: 3.6 added
//! `meta/storageVersion`; 3.7 added nothing. Taking a database down a version is therefore only
//! a matter of rewriting (or, for 3.5, deleting) `storageVersion` — plus what a downgraded
//! cluster must no longer say: a `cluster/clusterVersion` above the target, which every 3.6+
//! binary panics on (`MustDetectDowngrade`), and a `cluster/downgrade` still in progress.

use std::fmt;

/// A storage schema version, major.minor (etcd ignores the patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVersion {
    /// Major version: 3.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
}

impl SchemaVersion {
    /// etcd 3.4: no `term`, no `storageVersion`.
    pub const V3_4: SchemaVersion = SchemaVersion::new(3, 4);
    /// etcd 3.5: `meta/term` but no `storageVersion`.
    pub const V3_5: SchemaVersion = SchemaVersion::new(3, 5);
    /// etcd 3.6: `meta/storageVersion` = `3.6.0`.
    pub const V3_6: SchemaVersion = SchemaVersion::new(3, 6);
    /// etcd 3.7: `meta/storageVersion` = `3.7.0`; no other schema change.
    pub const V3_7: SchemaVersion = SchemaVersion::new(3, 7);
    /// The newest version whose schema changes this crate knows.
    pub const NEWEST_KNOWN: SchemaVersion = SchemaVersion::V3_7;

    /// `major.minor`.
    pub const fn new(major: u64, minor: u64) -> SchemaVersion {
        SchemaVersion { major, minor }
    }

    /// Parses a semantic version the way etcd does (`github.com/coreos/go-semver`'s
    /// `NewVersion`): `MAJOR.MINOR.PATCH`, each a decimal number, optionally followed by
    /// `-prerelease` and/or `+metadata`; anything else (`""`, `"3.6"`) is `None`. The patch is
    /// dropped.
    pub fn parse_semver(text: &[u8]) -> Option<SchemaVersion> {
        let text = std::str::from_utf8(text).ok()?;
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let mut number = || -> Option<u64> {
            let p = parts.next()?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let (major, minor, _patch) = (number()?, number()?, number()?);
        if parts.next().is_some() {
            return None;
        }
        Some(SchemaVersion::new(major, minor))
    }

    /// The value etcd stores for this version in `meta/storageVersion` and
    /// `cluster/clusterVersion`: `"3.6.0"`.
    pub fn stored(&self) -> String {
        format!("{}.{}.0", self.major, self.minor)
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The schema version of a database from its `meta/storageVersion` and `meta/term`, as etcd
/// 3.6+ detects it (`UnsafeDetectSchemaVersion`): a parsable `storageVersion` wins (an
/// unparsable one counts as absent, as in etcd); else 3.5 when `term` is non-zero; else 3.4
/// (etcd says "missing term information"; a restore writes `term` = 1, which makes it 3.5).
pub fn detect(storage_version: Option<&[u8]>, term: Option<u64>) -> SchemaVersion {
    match storage_version.and_then(SchemaVersion::parse_semver) {
        Some(v) => v,
        None if term.is_some_and(|t| t != 0) => SchemaVersion::V3_5,
        None => SchemaVersion::V3_4,
    }
}

/// One change etcd records in its schema for a version (`schemaChanges` in `schema.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChange {
    /// 3.6: the `meta/storageVersion` key (deleted when going down to 3.5).
    AddStorageVersion,
}

/// The changes etcd lists for version `v`: `None` for a version this crate does not know
/// (newer than [`SchemaVersion::NEWEST_KNOWN`]) or one before schemas were tracked (3.5 and
/// older).
pub fn changes_in(v: SchemaVersion) -> Option<&'static [SchemaChange]> {
    match v {
        SchemaVersion::V3_6 => Some(&[SchemaChange::AddStorageVersion]),
        SchemaVersion::V3_7 => Some(&[]),
        _ => None,
    }
}

/// What a database holds about its version, read before a restore rewrites it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionState {
    /// `meta/storageVersion`, raw.
    pub storage_version: Option<Vec<u8>>,
    /// `meta/term`.
    pub term: Option<u64>,
    /// `cluster/clusterVersion`, raw.
    pub cluster_version: Option<Vec<u8>>,
    /// `cluster/downgrade`, raw JSON.
    pub downgrade: Option<Vec<u8>>,
}

impl VersionState {
    /// Reads the four keys from a database.
    pub fn read(db: &bbolt::Db) -> bbolt::Result<VersionState> {
        let get = |bucket: &[u8], key: &[u8]| -> bbolt::Result<Option<Vec<u8>>> {
            let Some(b) = db.bucket(bucket)? else {
                return Ok(None);
            };
            Ok(b.get(key)?
                .and_then(|e| e.plain_value().map(<[u8]>::to_vec)))
        };
        use crate::buckets::{
            be_u64, CLUSTER, CLUSTER_VERSION, DOWNGRADE, META, STORAGE_VERSION, TERM,
        };
        Ok(VersionState {
            storage_version: get(META, STORAGE_VERSION)?,
            term: get(META, TERM)?.as_deref().and_then(be_u64),
            cluster_version: get(CLUSTER, CLUSTER_VERSION)?,
            downgrade: get(CLUSTER, DOWNGRADE)?,
        })
    }

    /// The schema version etcd detects (see [`detect`]).
    pub fn version(&self) -> SchemaVersion {
        detect(self.storage_version.as_deref(), self.term)
    }
}

/// `cluster/downgrade` as etcd writes it when no downgrade is in progress (what a cancelled or
/// finished downgrade leaves: `DowngradeInfo{Enabled: false}`).
pub const NO_DOWNGRADE: &[u8] = br#"{"target-version":"","enabled":false}"#;

/// The edits that make a database one that the etcd of a target version boots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retarget {
    /// The schema version before.
    pub from: Option<SchemaVersion>,
    /// The version asked for.
    pub to: Option<SchemaVersion>,
    /// `Some(Some(v))`: set `meta/storageVersion` to `v`; `Some(None)`: delete it; `None`:
    /// leave it.
    pub storage_version: Option<Option<String>>,
    /// A new `cluster/clusterVersion` (the old one was above the target).
    pub cluster_version: Option<String>,
    /// A new `cluster/downgrade` ([`NO_DOWNGRADE`]).
    pub downgrade: Option<Vec<u8>>,
}

impl Retarget {
    /// Whether nothing is to change.
    pub fn is_empty(&self) -> bool {
        self.storage_version.is_none() && self.cluster_version.is_none() && self.downgrade.is_none()
    }
}

/// Why a database cannot be made bootable for the version asked for (a refusal, not damage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Plans the edits for restoring a database in `state` for etcd `target` (`None`: for the
/// version that wrote it, which changes nothing).
///
/// Refused: a database newer than [`SchemaVersion::NEWEST_KNOWN`] (its changes are unknown, so
/// neither its own etcd's needs nor a way down can be known), and a target below 3.5 (etcd 3.4
/// has no schema versions; nothing newer can be taken to it). Going down is allowed through
/// every version whose only schema change is `storageVersion` (all of 3.6 and 3.7); going up is
/// left to etcd, which migrates the schema itself once the cluster version is decided.
pub fn retarget(state: &VersionState, target: Option<SchemaVersion>) -> Result<Retarget, Refusal> {
    let from = state.version();
    let newest = SchemaVersion::NEWEST_KNOWN;
    if from.major != newest.major || from > newest {
        return Err(Refusal(match target {
            Some(to) => format!(
                "the snapshot's storage version is {from}, which cannot be restored for etcd {to}: this tool knows etcd's storage up to {newest} only"
            ),
            None => format!(
                "the snapshot's storage version is {from}, newer than {newest}, the newest etcd storage this tool knows; etcd {newest} refuses it"
            ),
        }));
    }
    let Some(to) = target else {
        return Ok(Retarget {
            from: Some(from),
            ..Retarget::default()
        });
    };
    if to.major != newest.major || to < SchemaVersion::V3_5 || to > newest {
        return Err(Refusal(format!(
            "the snapshot's storage version is {from}; restoring it for etcd {to} is not supported (3.5 to {newest})"
        )));
    }
    let mut plan = Retarget {
        from: Some(from),
        to: Some(to),
        ..Retarget::default()
    };
    if to < from {
        // Every version above the target must have storageVersion as its only change.
        let mut v = from;
        while v > to {
            match changes_in(v) {
                Some(changes)
                    if changes
                        .iter()
                        .all(|c| matches!(c, SchemaChange::AddStorageVersion)) => {}
                _ => {
                    return Err(Refusal(format!(
                        "the snapshot's storage version is {from}; taking it down to etcd {to} needs more than rewriting its version (storage {v} changed more), which etcd cannot downgrade"
                    )))
                }
            }
            v = SchemaVersion::new(v.major, v.minor - 1);
        }
        plan.storage_version = Some(if to >= SchemaVersion::V3_6 {
            Some(to.stored())
        } else {
            None
        });
    }
    let cluster = state
        .cluster_version
        .as_deref()
        .and_then(SchemaVersion::parse_semver);
    if cluster.is_some_and(|c| c > to) {
        plan.cluster_version = Some(to.stored());
    }
    if state
        .downgrade
        .as_deref()
        .is_some_and(|d| d != NO_DOWNGRADE)
    {
        plan.downgrade = Some(NO_DOWNGRADE.to_vec());
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sv: Option<&str>, term: u64, cv: Option<&str>, dg: Option<&str>) -> VersionState {
        VersionState {
            storage_version: sv.map(|s| s.as_bytes().to_vec()),
            term: Some(term),
            cluster_version: cv.map(|s| s.as_bytes().to_vec()),
            downgrade: dg.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn semver_like_go_semver() {
        let p = |s: &str| SchemaVersion::parse_semver(s.as_bytes());
        assert_eq!(p("3.6.0"), Some(SchemaVersion::V3_6));
        assert_eq!(p("3.7.3-rc.0+abc"), Some(SchemaVersion::V3_7));
        assert_eq!(p(""), None);
        assert_eq!(p("3.6"), None);
        assert_eq!(p("3.6.0.1"), None);
        assert_eq!(p("v3.6.0"), None);
        assert_eq!(SchemaVersion::V3_6.stored(), "3.6.0");
    }

    #[test]
    fn detection_follows_etcd() {
        assert_eq!(detect(Some(b"3.7.0"), Some(1)), SchemaVersion::V3_7);
        assert_eq!(detect(Some(b""), Some(2)), SchemaVersion::V3_5);
        assert_eq!(detect(None, Some(2)), SchemaVersion::V3_5);
        assert_eq!(detect(None, Some(0)), SchemaVersion::V3_4);
        assert_eq!(detect(None, None), SchemaVersion::V3_4);
    }

    #[test]
    fn no_target_changes_nothing() {
        let s = state(
            Some("3.7.0"),
            2,
            Some("3.7.0"),
            Some(r#"{"target-version":"3.6.0","enabled":true}"#),
        );
        let r = retarget(&s, None).ok().unwrap_or_default();
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn downgrades_rewrite_the_version_cap_and_clear() {
        let s = state(
            Some("3.7.0"),
            2,
            Some("3.7.0"),
            Some(r#"{"target-version":"3.6.0","enabled":true}"#),
        );
        let r = retarget(&s, Some(SchemaVersion::V3_6))
            .ok()
            .unwrap_or_default();
        assert_eq!(r.storage_version, Some(Some("3.6.0".into())));
        assert_eq!(r.cluster_version.as_deref(), Some("3.6.0"));
        assert_eq!(r.downgrade.as_deref(), Some(NO_DOWNGRADE));
        let s = state(Some("3.6.0"), 2, Some("3.6.0"), None);
        let r = retarget(&s, Some(SchemaVersion::V3_5))
            .ok()
            .unwrap_or_default();
        assert_eq!(r.storage_version, Some(None));
        assert_eq!(r.cluster_version.as_deref(), Some("3.5.0"));
        assert_eq!(r.downgrade, None);
        let r = retarget(
            &state(Some("3.7.0"), 2, None, None),
            Some(SchemaVersion::V3_5),
        );
        assert_eq!(r.ok().map(|r| r.storage_version), Some(Some(None)));
    }

    #[test]
    fn same_or_up_leaves_the_storage_version_to_etcd() {
        let s = state(
            None,
            2,
            Some("3.5.0"),
            Some(std::str::from_utf8(NO_DOWNGRADE).unwrap_or_default()),
        );
        let r = retarget(&s, Some(SchemaVersion::V3_6))
            .ok()
            .unwrap_or_default();
        assert!(r.is_empty(), "{r:?}");
        let s = state(Some("3.6.0"), 2, Some("3.7.0"), None);
        let r = retarget(&s, Some(SchemaVersion::V3_6))
            .ok()
            .unwrap_or_default();
        assert_eq!(r.storage_version, None);
        assert_eq!(r.cluster_version.as_deref(), Some("3.6.0"));
    }

    #[test]
    fn unknown_versions_are_refused_naming_both() {
        let s = state(Some("3.8.0"), 2, None, None);
        let e = retarget(&s, Some(SchemaVersion::V3_7))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(e.contains("3.8") && e.contains("3.7"), "{e}");
        let e = retarget(&s, None).err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("3.8") && e.contains("3.7"), "{e}");
        let e = retarget(&state(Some("4.0.0"), 2, None, None), None);
        assert!(e.is_err());
        let e = retarget(
            &state(Some("3.6.0"), 2, None, None),
            Some(SchemaVersion::V3_4),
        );
        assert!(e.is_err());
    }
}
