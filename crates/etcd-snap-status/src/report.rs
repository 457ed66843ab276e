//! The report: etcdutl's line, table and JSON, plus our details.

use crate::cli::Options;
use crate::etcdutl::Etcdutl;
use crate::Described;
use etcd_common::layers::trailer::Trailer;
use etcd_common::output::{escape, json, print_stdout, table, Format};
use etcd_common::Result;
use serde::Serialize;

/// A member in the JSON report (IDs as hex strings).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberJson<'a> {
    id: String,
    name: &'a str,
    #[serde(rename = "peerURLs")]
    peer_urls: &'a [String],
    #[serde(rename = "clientURLs")]
    client_urls: &'a [String],
    is_learner: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlarmJson<'a> {
    member_id: String,
    alarm: &'a str,
}

#[derive(Serialize)]
struct BucketJson<'a> {
    name: &'a str,
    entries: u64,
    bytes: u64,
}

/// etcdutl's fields first, in its order (`version` from 3.6 on), then ours.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportJson<'a> {
    hash: u32,
    revision: i64,
    total_key: u64,
    total_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    sha256: Option<&'a str>,
    sha256_verified: bool,
    live_keys: u64,
    key_revisions: u64,
    tombstones: u64,
    compact_revision: Option<i64>,
    scheduled_compact_revision: Option<i64>,
    consistent_index: Option<u64>,
    term: Option<u64>,
    cluster_version: Option<&'a str>,
    storage_version: Option<&'a str>,
    members: Vec<MemberJson<'a>>,
    removed_members: Vec<String>,
    leases: u64,
    auth_enabled: bool,
    users: u64,
    roles: u64,
    alarms: Vec<AlarmJson<'a>>,
    buckets: Vec<BucketJson<'a>>,
    page_size: u32,
    free_pages: u64,
    layers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k8s: Option<crate::k8s_report::K8sJson>,
}

fn to_json(d: &Described, etcdutl: Etcdutl) -> ReportJson<'_> {
    let s = &d.analysis.status;
    let x = &d.analysis.details;
    let sha256 = match &d.trailer {
        Trailer::Verified(h) => Some(h.as_str()),
        _ => None,
    };
    ReportJson {
        hash: s.hash,
        revision: s.revision,
        total_key: etcdutl.total_key(&d.analysis),
        total_size: s.total_size,
        version: etcdutl.version(&d.analysis),
        sha256,
        sha256_verified: sha256.is_some(),
        live_keys: x.live_keys,
        key_revisions: x.key_revisions,
        tombstones: x.tombstones,
        compact_revision: x.compact_revision,
        scheduled_compact_revision: x.scheduled_compact_revision,
        consistent_index: x.consistent_index,
        term: x.term,
        cluster_version: x.cluster_version.as_deref(),
        storage_version: x.storage_version.as_deref(),
        members: x
            .members
            .iter()
            .map(|m| MemberJson {
                id: format!("{:x}", m.id),
                name: &m.name,
                peer_urls: &m.peer_urls,
                client_urls: &m.client_urls,
                is_learner: m.is_learner,
            })
            .collect(),
        removed_members: x
            .removed_members
            .iter()
            .map(|id| format!("{id:x}"))
            .collect(),
        leases: x.leases,
        auth_enabled: x.auth_enabled,
        users: x.users,
        roles: x.roles,
        alarms: x
            .alarms
            .iter()
            .map(|(id, alarm)| AlarmJson {
                member_id: format!("{id:x}"),
                alarm,
            })
            .collect(),
        buckets: x
            .buckets
            .iter()
            .map(|b| BucketJson {
                name: &b.name,
                entries: b.entries,
                bytes: b.bytes,
            })
            .collect(),
        page_size: x.page_size,
        free_pages: x.free_pages,
        layers: d.layers.iter().map(ToString::to_string).collect(),
        k8s: d.k8s.as_ref().map(crate::k8s_report::to_json),
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |v| escape(&v.to_string()).into_owned())
}

/// The detail rows: field and value.
fn detail_rows(d: &Described) -> Vec<(String, String)> {
    let x = &d.analysis.details;
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut rows = vec![
        (
            "sha256".to_string(),
            match &d.trailer {
                Trailer::Verified(h) => format!("{h} (verified)"),
                _ => "no trailer (--skip-hash-check)".to_string(),
            },
        ),
        (
            "layers".into(),
            if d.layers.is_empty() {
                "none".into()
            } else {
                etcd_common::layers::decode::describe(&d.layers)
            },
        ),
        ("live keys".into(), x.live_keys.to_string()),
        ("key revisions".into(), x.key_revisions.to_string()),
        ("tombstones".into(), x.tombstones.to_string()),
        ("compacted revision".into(), opt(&x.compact_revision)),
        (
            "scheduled compaction".into(),
            opt(&x.scheduled_compact_revision),
        ),
        ("consistent index".into(), opt(&x.consistent_index)),
        ("term".into(), opt(&x.term)),
        ("cluster version".into(), opt(&x.cluster_version)),
        ("storage version".into(), opt(&x.storage_version)),
        ("leases".into(), x.leases.to_string()),
        ("auth enabled".into(), yes_no(x.auth_enabled)),
        ("users".into(), x.users.to_string()),
        ("roles".into(), x.roles.to_string()),
        (
            "alarms".into(),
            if x.alarms.is_empty() {
                "none".into()
            } else {
                x.alarms
                    .iter()
                    .map(|(id, a)| format!("{} on {id:x}", escape(a)))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("page size".into(), x.page_size.to_string()),
        ("free pages".into(), x.free_pages.to_string()),
    ];
    for m in &x.members {
        rows.push((
            format!("member {:x}", m.id),
            format!(
                "name={} peers={} clients={}{}",
                if m.name.is_empty() {
                    "-".into()
                } else {
                    escape(&m.name)
                },
                escape(&m.peer_urls.join(",")),
                if m.client_urls.is_empty() {
                    "-".to_string()
                } else {
                    escape(&m.client_urls.join(",")).into_owned()
                },
                if m.is_learner { " learner" } else { "" }
            ),
        ));
    }
    for id in &x.removed_members {
        rows.push((format!("removed member {id:x}"), "removed".into()));
    }
    for b in &x.buckets {
        rows.push((
            format!("bucket {}", escape(&b.name)),
            format!("{} entries, {} bytes", b.entries, b.bytes),
        ));
    }
    rows
}

/// Prints the report in the chosen format, the status part as `options.as_etcdutl` (by default
/// the snapshot's own etcdutl) prints it.
pub fn print(d: &Described, options: &Options) -> Result<()> {
    let etcdutl = options
        .as_etcdutl
        .unwrap_or_else(|| Etcdutl::detect(&d.analysis));
    let text = match options.format {
        Format::Json => json::to_line(&to_json(d, etcdutl)),
        Format::Simple => {
            let mut text = etcdutl.simple(&d.analysis);
            if options.detail {
                for (field, value) in detail_rows(d) {
                    text.push_str(&format!("{field}: {value}\n"));
                }
            }
            if let Some(inventory) = &d.k8s {
                text.push_str(&crate::k8s_report::simple(inventory));
            }
            text
        }
        Format::Table => {
            let mut text = etcdutl.table(&d.analysis);
            if options.detail {
                let rows: Vec<Vec<String>> = detail_rows(d)
                    .into_iter()
                    .map(|(f, v)| vec![f, v])
                    .collect();
                text.push_str(&table::render(&["detail", "value"], &rows));
            }
            if let Some(inventory) = &d.k8s {
                text.push_str(&crate::k8s_report::tables(inventory));
            }
            text
        }
    };
    print_stdout(&text)
}
