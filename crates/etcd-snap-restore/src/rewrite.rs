//! The database edits of a restore (etcdutl 3.5's, which every version boots): the members and
//! members_removed buckets replaced by the new membership, consistent index = number of members,
//! term = 1, and with a bump a key at latest+N marked as the scheduled compaction.

use etcd_db::buckets;
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

/// Edits the database at `db` for `plan`, copy-on-write.
pub fn rewrite(db: &Path, plan: &etcd_wal::RestorePlan, bump: u64) -> Result<Revisions, String> {
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
    editor
        .upsert(buckets::META, meta)
        .map_err(|e| e.to_string())?;
    editor.commit().map_err(|e| e.to_string())?;
    Ok(Revisions { before, after })
}
