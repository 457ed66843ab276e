//! The database edits of a restore (etcdutl 3.5's, which every version boots, and 3.6's and
//! 3.7's, which are the same): the members and members_removed buckets replaced by the new
//! membership, consistent index = number of members, term = 1, and with a bump a key at latest+N
//! marked as the scheduled compaction. With `--target-version`, also the version keys that
//! etcd's own downgrade changes (see [`etcd_db::schema::retarget`]).

use etcd_db::buckets;
use etcd_db::schema::Retarget;
use etcd_db::Revision;
use std::path::Path;

/// The latest revision before and after the bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revisions {
    /// Main revision of the last key in the snapshot.
    pub before: i64,
    /// After the bump.
    pub after: i64,
}

/// Key/value pairs of a bucket.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Every plain entry of the `meta` bucket but `storageVersion`, for a downgrade to 3.5 that
/// deletes that key (the editor replaces the whole, small, bucket).
fn meta_without_storage_version(db: &Path) -> Result<Entries, String> {
    let db = bbolt::Db::open(db).map_err(|e| e.to_string())?;
    let Some(meta) = db.bucket(buckets::META).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    for entry in meta.entries() {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.key() == buckets::STORAGE_VERSION {
            continue;
        }
        let Some(value) = entry.plain_value() else {
            return Err("the meta bucket holds a nested bucket, which etcd never writes".into());
        };
        kept.push((entry.key().to_vec(), value.to_vec()));
    }
    Ok(kept)
}

/// Edits the database at `db` for `plan`, copy-on-write, with the version edits of `target`.
pub fn rewrite(
    db: &Path,
    plan: &etcd_wal::RestorePlan,
    bump: u64,
    target: &Retarget,
) -> Result<Revisions, String> {
    let old_meta = match target.storage_version {
        Some(None) => Some(meta_without_storage_version(db)?),
        _ => None,
    };
    let mut editor = bbolt::write::Editor::open(db).map_err(|e| e.to_string())?;
    let members = plan
        .members
        .iter()
        .map(|m| {
            (
                format!("{:x}", m.id).into_bytes(),
                etcd_wal::member_json(m).into_bytes(),
            )
        })
        .collect();
    editor
        .replace_bucket(buckets::MEMBERS, members)
        .map_err(|e| e.to_string())?;
    editor
        .replace_bucket(buckets::MEMBERS_REMOVED, Vec::new())
        .map_err(|e| e.to_string())?;
    editor
        .ensure_bucket(buckets::CLUSTER)
        .map_err(|e| e.to_string())?;
    let before = editor
        .last_key(buckets::KEY)
        .map_err(|e| e.to_string())?
        .and_then(|k| Revision::main_of(&k))
        .unwrap_or(0);
    let mut meta = vec![
        (
            buckets::CONSISTENT_INDEX.to_vec(),
            (plan.members.len() as u64).to_be_bytes().to_vec(),
        ),
        (buckets::TERM.to_vec(), 1u64.to_be_bytes().to_vec()),
    ];
    let mut after = before;
    if bump > 0 {
        let bump =
            i64::try_from(bump).map_err(|_| format!("--bump-revision {bump} is too large"))?;
        after = before
            .checked_add(bump)
            .ok_or_else(|| format!("revision {before} + {bump} overflows"))?;
        let key = Revision {
            main: after,
            sub: 0,
            tombstone: false,
        }
        .encode();
        editor
            .append(buckets::KEY, key.clone(), Vec::new())
            .map_err(|e| e.to_string())?;
        meta.push((buckets::SCHEDULED_COMPACT_REV.to_vec(), key));
    }
    if let Some(Some(version)) = &target.storage_version {
        meta.push((
            buckets::STORAGE_VERSION.to_vec(),
            version.as_bytes().to_vec(),
        ));
    }
    match old_meta {
        // Down to 3.5: the same bucket without storageVersion, with this restore's keys.
        Some(mut all) => {
            all.retain(|(k, _)| !meta.iter().any(|(m, _)| m == k));
            all.extend(meta);
            editor.replace_bucket(buckets::META, all)
        }
        None => editor.upsert(buckets::META, meta),
    }
    .map_err(|e| e.to_string())?;
    let mut cluster = Vec::new();
    if let Some(version) = &target.cluster_version {
        cluster.push((
            buckets::CLUSTER_VERSION.to_vec(),
            version.as_bytes().to_vec(),
        ));
    }
    if let Some(downgrade) = &target.downgrade {
        cluster.push((buckets::DOWNGRADE.to_vec(), downgrade.clone()));
    }
    if !cluster.is_empty() {
        editor
            .upsert(buckets::CLUSTER, cluster)
            .map_err(|e| e.to_string())?;
    }
    editor.commit().map_err(|e| e.to_string())?;
    Ok(Revisions { before, after })
}
