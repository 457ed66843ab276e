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

/// Nanoseconds since the Unix epoch as RFC 3339 in UTC with nanoseconds, as Go prints
/// `time.RFC3339Nano` (trailing zeros of the fraction dropped).
pub fn rfc3339(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_764_842_400_123_000_000),
            "2025-12-04T10:00:00.123Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
