//! The summary after a restore: what was built where, for which member of which cluster.

use crate::cli::Options;
use crate::Summary;
use etcd_common::output::{humanize_bytes, json, print_stdout, table, Format};
use etcd_common::Result;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberJson<'a> {
    id: String,
    name: &'a str,
    #[serde(rename = "peerURLs")]
    peer_urls: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryJson<'a> {
    name: &'a str,
    member_id: String,
    cluster_id: String,
    members: Vec<MemberJson<'a>>,
    data_dir: String,
    wal_dir: String,
    revision: i64,
    revision_after: i64,
    compacted: bool,
    db_size: u64,
    sha256: Option<&'a str>,
    layers: Vec<String>,
    moved_aside: Vec<String>,
    elapsed_seconds: f64,
    /// Only with `--target-version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    target_version: Option<String>,
    /// Only with `--target-version`: the snapshot's storage version.
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_version_before: Option<String>,
}

/// The line that says what `--target-version` changed, or `None` without it.
fn target_line(s: &Summary) -> Option<String> {
    let r = &s.retarget;
    let (from, to) = (r.from?, r.to?);
    let mut changes = Vec::new();
    match &r.storage_version {
        Some(Some(_)) => changes.push(format!("storage version {from} -> {to}")),
        Some(None) => changes.push(format!("storage version {from} removed (3.5 has none)")),
        None => changes.push(format!("storage version {from} kept")),
    }
    if let Some(v) = &r.cluster_version {
        changes.push(format!("cluster version capped at {v}"));
    }
    if r.downgrade.is_some() {
        changes.push("pending downgrade cleared".to_string());
    }
    Some(format!("for etcd {to}: {}\n", changes.join(", ")))
}

/// Prints the summary in the chosen format.
pub fn print(s: &Summary, options: &Options) -> Result<()> {
    let members: Vec<String> = s
        .plan
        .members
        .iter()
        .map(|m| format!("{}={:x}", m.name, m.id))
        .collect();
    let text = match options.format {
        Format::Json => json::to_line(&SummaryJson {
            name: &s.name,
            member_id: format!("{:x}", s.plan.local),
            cluster_id: format!("{:x}", s.plan.cluster_id),
            members: s
                .plan
                .members
                .iter()
                .map(|m| MemberJson {
                    id: format!("{:x}", m.id),
                    name: &m.name,
                    peer_urls: &m.peer_urls,
                })
                .collect(),
            data_dir: s.data_dir.display().to_string(),
            wal_dir: s.wal_dir.display().to_string(),
            revision: s.revision,
            revision_after: s.revision_after,
            compacted: s.compacted,
            db_size: s.db_size,
            sha256: s.sha256.as_deref(),
            layers: s.layers.iter().map(ToString::to_string).collect(),
            moved_aside: s
                .moved_aside
                .iter()
                .map(|m| m.to.display().to_string())
                .collect(),
            elapsed_seconds: s.elapsed_seconds,
            target_version: s.retarget.to.map(|v| v.to_string()),
            storage_version_before: s.retarget.to.and(s.retarget.from).map(|v| v.to_string()),
        }),
        Format::Simple => {
            let mut text = format!(
                "Restored member {} ({:x}) of cluster {:x} into {}\n",
                s.name,
                s.plan.local,
                s.plan.cluster_id,
                s.data_dir.display()
            );
            text.push_str(&format!(
                "members: {}\nrevision: {}{}\ndb: {} ({} bytes), {:.3}s\n",
                members.join(", "),
                s.revision,
                if s.revision_after != s.revision {
                    format!(
                        " bumped to {} (older revisions compacted)",
                        s.revision_after
                    )
                } else {
                    String::new()
                },
                humanize_bytes(s.db_size),
                s.db_size,
                s.elapsed_seconds
            ));
            if let Some(line) = target_line(s) {
                text.push_str(&line);
            }
            for m in &s.moved_aside {
                text.push_str(&format!(
                    "moved aside: {} -> {}\n",
                    m.from.display(),
                    m.to.display()
                ));
            }
            text
        }
        Format::Table => table::render(
            &[
                "name",
                "member id",
                "cluster id",
                "members",
                "revision",
                "db size",
                "data dir",
            ],
            &[vec![
                s.name.clone(),
                format!("{:x}", s.plan.local),
                format!("{:x}", s.plan.cluster_id),
                members.join(", "),
                if s.revision_after != s.revision {
                    format!("{} -> {}", s.revision, s.revision_after)
                } else {
                    s.revision.to_string()
                },
                humanize_bytes(s.db_size),
                s.data_dir.display().to_string(),
            ]],
        ),
    };
    print_stdout(&text)
}
