//! `etcd-snap-status --log DIR|FILE|-`: verify a revision log (docs/revision-log.md), the way
//! `etcd-snap-restore --log` will read it (chain, checksums, consecutive revisions, one
//! cluster), and print what it covers: cluster ID, revision and time range, counts.

use crate::cli::Options;
use etcd_common::output::{json, print_stdout, table, Format};
use etcd_common::{Error, ExitCode, Result};
use etcd_revlog::LogInfo;
use serde::Serialize;
use std::path::Path;

/// The JSON form of the report.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(rename = "clusterId")]
    cluster_id: String,
    #[serde(rename = "firstRevision")]
    first_revision: i64,
    #[serde(rename = "lastRevision")]
    last_revision: i64,
    #[serde(rename = "firstTime")]
    first_time: String,
    #[serde(rename = "lastTime")]
    last_time: String,
    segments: u64,
    revisions: u64,
    events: u64,
    #[serde(rename = "partialFiles")]
    partial_files: &'a [String],
}

/// Verifies the log at `path` (a directory of segments, a file or `-` for stdin holding a
/// stream of segments) and prints its report.
pub fn run(path: &Path, options: &Options) -> Result<ExitCode> {
    let info = verify(path)?;
    print_stdout(&render(&info, options.format))?;
    for name in &info.partial_files {
        eprintln!(
            "Warning: {}: a segment its writer never closed (a killed etcd-snap-log); not part \
             of the log",
            path.join(name).display()
        );
    }
    Ok(ExitCode::Success)
}

fn verify(path: &Path) -> Result<LogInfo> {
    let result = if path == Path::new("-") {
        etcd_revlog::verify_stream(std::io::stdin().lock())
    } else {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        if meta.is_dir() {
            etcd_revlog::verify_dir(path)
        } else {
            let file = std::fs::File::open(path)
                .map_err(|e| Error::io(format!("cannot open {}", path.display()), &e))?;
            etcd_revlog::verify_stream(std::io::BufReader::with_capacity(1 << 16, file))
        }
    };
    result.map_err(Error::from)
}

/// The report in `format`.
pub fn render(info: &LogInfo, format: Format) -> String {
    let cluster = format!("{:x}", info.cluster_id);
    let first = rfc3339(info.first_unix_nanos);
    let last = rfc3339(info.last_unix_nanos);
    match format {
        Format::Json => json::to_line(&Report {
            cluster_id: cluster,
            first_revision: info.first_revision,
            last_revision: info.last_revision,
            first_time: first,
            last_time: last,
            segments: info.segments,
            revisions: info.revisions,
            events: info.events,
            partial_files: &info.partial_files,
        }),
        Format::Simple => format!(
            "{cluster}, {}, {}, {first}, {last}, {}, {}, {}\n",
            info.first_revision, info.last_revision, info.segments, info.revisions, info.events
        ),
        Format::Table => table::render(
            &[
                "CLUSTER ID",
                "FIRST REVISION",
                "LAST REVISION",
                "FIRST TIME",
                "LAST TIME",
                "SEGMENTS",
                "REVISIONS",
                "EVENTS",
            ],
            &[vec![
                cluster,
                info.first_revision.to_string(),
                info.last_revision.to_string(),
                first,
                last,
                info.segments.to_string(),
                info.revisions.to_string(),
                info.events.to_string(),
            ]],
        ),
    }
}

pub use etcd_revlog::rfc3339;
