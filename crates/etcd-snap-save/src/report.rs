//! The summary after a successful save: to stdout when the snapshot went to a file, to stderr when
//! stdout carried the snapshot itself.

use crate::cli::Options;
use crate::prove::Proof;
use etcd_common::output::escape::escape;
use etcd_common::output::{json, print_stdout, table, Format};
use etcd_common::progress::human;
use etcd_common::Result;
use serde::Serialize;
use std::io::Write;

/// What was saved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The file written, or `None` for stdout.
    pub path: Option<String>,
    /// The endpoint that served the snapshot.
    pub endpoint: String,
    /// Its member ID, hex.
    pub member_id: String,
    /// Whether that member is a learner (JSON `isLearner`, only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_learner: bool,
    /// The store revision when the snapshot started.
    pub revision: i64,
    /// The storage version the server sent with the snapshot (etcd 3.6+, e.g. `3.6.0`; what
    /// etcdctl 3.6 prints as `Server version`). `None` when the server sent none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_version: Option<String>,
    /// Bytes of the database (without the trailer).
    pub db_size: u64,
    /// Bytes written to the destination (after compression and encryption).
    pub bytes_written: u64,
    /// SHA-256 of the database, verified against the server's trailer.
    pub sha256: String,
    /// Whether the output is zstd-compressed.
    pub compressed: bool,
    /// Whether the output is age-encrypted.
    pub encrypted: bool,
    /// Seconds from the first byte to the durable file.
    pub elapsed_seconds: f64,
    /// With `--prove`: every member's `HashKV` at the snapshot's revision and the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
}

impl Summary {
    fn rate(&self) -> String {
        format!(
            "{}/s",
            human(self.db_size as f64 / self.elapsed_seconds.max(1e-6))
        )
    }
}

/// Prints the summary in the chosen format; `--quiet` silences it only when it would go to stderr.
pub fn print(summary: &Summary, options: &Options) -> Result<()> {
    let mut text = match options.format {
        Format::Simple => {
            let mut first = match &summary.path {
                Some(path) => format!("Snapshot saved at {path}"),
                None => "Snapshot written to stdout".to_string(),
            };
            // etcdctl 3.6+ prints this second line when the server names a storage version.
            if let Some(version) = &summary.storage_version {
                first.push_str(&format!("\nServer version {version}"));
            }
            format!(
                "{first}\nendpoint={} member={} revision={} db_size={} written={} sha256={} elapsed={:.3}s rate={}\n",
                summary.endpoint,
                summary.member_id,
                summary.revision,
                summary.db_size,
                summary.bytes_written,
                summary.sha256,
                summary.elapsed_seconds,
                summary.rate().replace(' ', ""),
            )
        }
        Format::Json => json::to_line(summary),
        Format::Table => {
            let mut header = vec![
                "path", "endpoint", "member", "revision", "db size", "written", "sha256",
                "elapsed", "rate",
            ];
            let mut row = vec![
                summary.path.clone().unwrap_or_else(|| "-".into()),
                summary.endpoint.clone(),
                summary.member_id.clone(),
                summary.revision.to_string(),
                human(summary.db_size as f64),
                human(summary.bytes_written as f64),
                summary.sha256.clone(),
                format!("{:.3}s", summary.elapsed_seconds),
                summary.rate(),
            ];
            // Only when the server names one, so that 3.4/3.5 tables stay as they were.
            if let Some(version) = &summary.storage_version {
                header.push("storage version");
                row.push(version.clone());
            }
            table::render(&header, &[row])
        }
    };
    if let Some(proof) = &summary.proof {
        text.push_str(&proof_text(proof, options.format));
    }
    if summary.path.is_some() {
        print_stdout(&text)
    } else {
        if !options.quiet {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
        Ok(())
    }
}

/// The proof after the summary: `simple` as `key=value` lines (one for the snapshot, one per
/// member), `table` as a table of the members; JSON carries it inside the summary object.
fn proof_text(proof: &Proof, format: Format) -> String {
    let verdict = proof.verdict.name();
    let result = |m: &crate::prove::MemberProof| m.result.name().to_string();
    let name = |m: &crate::prove::MemberProof| escape(&m.name).into_owned();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    match format {
        Format::Json => String::new(),
        Format::Simple => {
            let mut text = format!(
                "proof revision={} hash={} compact_revision={} verdict={verdict}\n",
                proof.revision, proof.hash, proof.compact_revision
            );
            for m in &proof.members {
                text.push_str(&format!(
                    "member name={} id={} endpoint={} hash={} compact_revision={} result={}\n",
                    name(m),
                    m.id,
                    m.endpoint,
                    opt(m.hash.map(|h| h.to_string())),
                    opt(m.compact_revision.map(|c| c.to_string())),
                    result(m),
                ));
            }
            text
        }
        Format::Table => {
            let header = [
                "member",
                "id",
                "endpoint",
                "hash",
                "compact revision",
                "result",
            ];
            let mut rows = vec![vec![
                "(snapshot)".to_string(),
                String::new(),
                format!("revision {}", proof.revision),
                proof.hash.to_string(),
                proof.compact_revision.to_string(),
                verdict.to_string(),
            ]];
            for m in &proof.members {
                rows.push(vec![
                    name(m),
                    m.id.clone(),
                    m.endpoint.clone(),
                    opt(m.hash.map(|h| h.to_string())),
                    opt(m.compact_revision.map(|c| c.to_string())),
                    result(m),
                ]);
            }
            table::render(&header, &rows)
        }
    }
}
