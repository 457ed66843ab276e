//! How `--k8s` shows the inventory: a `k8s` object in JSON, and sections after the status line
//! or table in `simple` (aligned columns) and `table` (etcdctl's ASCII tables). Resource,
//! group, namespace, provider names and keys come from the snapshot: `simple` and `table` show
//! them escaped (`etcd_common::output::escape`), JSON escapes as JSON does.

use etcd_common::output::{escape, humanize_bytes, table};
use k8s_registry::inventory::{self, Count, Formats, Inventory, COUNTED};
use serde::Serialize;
use std::collections::BTreeMap;

/// The `k8s` object of `-w json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sJson {
    prefix: String,
    counted: &'static str,
    objects: u64,
    bytes: u64,
    resources: Vec<ResourceJson>,
    namespaces: Vec<NamespaceJson>,
    cluster_scoped: Count,
    largest: Vec<LargestJson>,
    events: EventsJson,
    secrets: SecretsJson,
    other: Count,
    outside_prefix: Count,
    warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceJson {
    name: String,
    resource: String,
    group: String,
    objects: u64,
    bytes: u64,
    namespaced_objects: u64,
    formats: Formats,
    encrypted: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct NamespaceJson {
    namespace: String,
    objects: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct LargestJson {
    key: String,
    bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventsJson {
    objects: u64,
    bytes: u64,
    /// Events' bytes over every live key's bytes, 0 to 1.
    share: f64,
}

#[derive(Serialize)]
struct SecretsJson {
    total: u64,
    plaintext: u64,
    encrypted: BTreeMap<String, u64>,
}

/// Builds the JSON object (rows sorted by bytes, largest first).
pub fn to_json(inv: &Inventory) -> K8sJson {
    let mut resources: Vec<ResourceJson> = inv
        .resources
        .iter()
        .map(|((group, resource), r)| ResourceJson {
            name: inventory::display_name(group.as_deref(), resource, r),
            resource: resource.clone(),
            group: inventory::group_of(group.as_deref(), r),
            objects: r.count.objects,
            bytes: r.count.bytes,
            namespaced_objects: r.namespaced,
            formats: r.formats,
            encrypted: r.encrypted.clone(),
        })
        .collect();
    resources.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    let mut namespaces: Vec<NamespaceJson> = inv
        .namespaces
        .iter()
        .map(|(ns, c)| NamespaceJson {
            namespace: ns.clone(),
            objects: c.objects,
            bytes: c.bytes,
        })
        .collect();
    namespaces.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.namespace.cmp(&b.namespace))
    });
    let under = inv.under_prefix();
    let events = inv.events();
    let secrets = inv.secrets().cloned().unwrap_or_default();
    K8sJson {
        prefix: inv.prefix.clone(),
        counted: COUNTED,
        objects: under.objects,
        bytes: under.bytes,
        resources,
        namespaces,
        cluster_scoped: inv.cluster_scoped,
        largest: inv
            .largest()
            .into_iter()
            .map(|(key, bytes)| LargestJson { key, bytes })
            .collect(),
        events: EventsJson {
            objects: events.objects,
            bytes: events.bytes,
            share: share(events.bytes, inv.total.bytes),
        },
        secrets: SecretsJson {
            total: secrets.count.objects,
            plaintext: secrets.count.objects - secrets.formats.encrypted,
            encrypted: secrets.encrypted,
        },
        other: inv.other,
        outside_prefix: inv.outside,
        warnings: warnings(inv),
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The plaintext-secrets warning, if secrets are stored unencrypted.
pub fn warnings(inv: &Inventory) -> Vec<String> {
    let Some(secrets) = inv.secrets() else {
        return Vec::new();
    };
    let plaintext = secrets.count.objects - secrets.formats.encrypted;
    if plaintext == 0 {
        return Vec::new();
    }
    vec![format!(
        "{plaintext} of {} secrets are stored in plaintext: anyone who can read this backup can read them; guard it like the secrets themselves (encrypt it, e.g. etcd-snap-save -r AGE-RECIPIENT)",
        secrets.count.objects
    )]
}

/// One section: title, headers, rows.
type Section = (String, Vec<&'static str>, Vec<Vec<String>>);

/// The sections of the report.
fn sections(inv: &Inventory) -> Vec<Section> {
    let j = to_json(inv);
    let providers = |m: &BTreeMap<String, u64>| {
        if m.is_empty() {
            "-".to_string()
        } else {
            m.iter()
                .map(|(p, n)| format!("{}:{n}", escape(p)))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let resources = j
        .resources
        .iter()
        .map(|r| {
            vec![
                escape(&r.name).into_owned(),
                if r.group.is_empty() {
                    "core".into()
                } else {
                    escape(&r.group).into_owned()
                },
                r.objects.to_string(),
                r.bytes.to_string(),
                r.formats.protobuf.to_string(),
                r.formats.json.to_string(),
                r.formats.encrypted.to_string(),
                r.formats.other.to_string(),
                providers(&r.encrypted),
            ]
        })
        .collect();
    let mut namespaces: Vec<Vec<String>> = j
        .namespaces
        .iter()
        .map(|n| {
            vec![
                escape(&n.namespace).into_owned(),
                n.objects.to_string(),
                n.bytes.to_string(),
            ]
        })
        .collect();
    if j.cluster_scoped.objects > 0 {
        namespaces.push(vec![
            "(cluster-scoped)".into(),
            j.cluster_scoped.objects.to_string(),
            j.cluster_scoped.bytes.to_string(),
        ]);
    }
    let largest = j
        .largest
        .iter()
        .map(|l| vec![escape(&l.key).into_owned(), l.bytes.to_string()])
        .collect();
    vec![
        (
            "resources".into(),
            vec![
                "resource",
                "group",
                "objects",
                "bytes",
                "protobuf",
                "json",
                "encrypted",
                "other",
                "encrypted by",
            ],
            resources,
        ),
        (
            "namespaces".into(),
            vec!["namespace", "objects", "bytes"],
            namespaces,
        ),
        (
            format!("largest {} objects", j.largest.len()),
            vec!["key", "bytes"],
            largest,
        ),
    ]
}

/// The summary lines under the tables.
fn summary(inv: &Inventory) -> Vec<String> {
    let j = to_json(inv);
    let mut lines = vec![
        format!(
            "events: {} objects, {} bytes, {:.1}% of the live data",
            j.events.objects,
            j.events.bytes,
            j.events.share * 100.0
        ),
        format!(
            "secrets: {} total, {} plaintext, {} encrypted{}",
            j.secrets.total,
            j.secrets.plaintext,
            j.secrets.total - j.secrets.plaintext,
            if j.secrets.encrypted.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    j.secrets
                        .encrypted
                        .iter()
                        .map(|(p, n)| format!("{}: {n}", escape(p)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        format!(
            "other keys under {}: {} ({} bytes); keys outside it: {} ({} bytes)",
            escape(&j.prefix),
            j.other.objects,
            j.other.bytes,
            j.outside_prefix.objects,
            j.outside_prefix.bytes
        ),
    ];
    lines.extend(j.warnings.iter().map(|w| format!("WARNING: {w}")));
    lines
}

fn headline(inv: &Inventory) -> String {
    let under = inv.under_prefix();
    format!(
        "Kubernetes objects under {}: {} objects, {} bytes ({}); counted: {COUNTED}\n",
        escape(&inv.prefix),
        under.objects,
        under.bytes,
        humanize_bytes(under.bytes)
    )
}

/// `-w simple`: a headline, aligned columns per section, the summary lines.
pub fn simple(inv: &Inventory) -> String {
    let mut out = headline(inv);
    for (title, headers, rows) in sections(inv) {
        out.push_str(&format!("\n{}:\n", title.to_uppercase()));
        out.push_str(&columns(&headers, &rows));
    }
    out.push('\n');
    for line in summary(inv) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `-w table`: the same in etcdctl's ASCII tables.
pub fn tables(inv: &Inventory) -> String {
    let mut out = headline(inv);
    for (_, headers, rows) in sections(inv) {
        out.push_str(&table::render(&headers, &rows));
    }
    for line in summary(inv) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Left-aligned columns separated by two spaces, kubectl style (upper-case headers).
fn columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}
