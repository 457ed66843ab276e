//! Which `etcdutl snapshot status` the report imitates, and what that one prints.
//!
//! The status line, table and JSON differ between etcd releases (etcd's
//! `etcdutl/snapshot/v3_snapshot.go` `Status` and `etcdutl/etcdutl/printer*.go`):
//!
//! - 3.5 (and etcd 3.4's `etcdctl snapshot status`): `hash, revision, total keys, total size`,
//!   where total keys counts the entries of every top-level bucket; an ASCII table
//!   (olekukonko/tablewriter 0.0.5).
//! - 3.6: a fifth column `version`, the storage version (`meta/storageVersion` through
//!   go-semver, empty when the snapshot has none, so the simple line then ends in `, `); total
//!   keys counts the distinct keys whose newest revision is not a deletion. JSON gains
//!   `"version"`. Same ASCII table.
//! - 3.7: the numbers and line of 3.6; the table is drawn with box-drawing characters
//!   (tablewriter 1.1, `etcdutl/etcdutl/printer_table.go`).

use etcd_common::output::{humanize_bytes, table};
use etcd_common::{Error, Result};
use etcd_db::go_semver::GoSemver;
use etcd_db::Analysis;

/// An `etcdutl snapshot status` whose output we reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Etcdutl {
    /// etcdutl 3.5 (and etcdctl 3.4): four columns, every bucket entry counted.
    V3_5,
    /// etcdutl 3.6: a `version` column, unique live keys counted.
    V3_6,
    /// etcdutl 3.7: as 3.6, with a box-drawn table.
    V3_7,
}

impl Etcdutl {
    /// Parses the value of `--as-etcdutl`: `3.5`, `3.6` or `3.7` (a patch, `3.6.16`, is allowed).
    pub fn parse(text: &str) -> Result<Etcdutl> {
        let mut parts = text.splitn(3, '.');
        let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let patch_ok = parts
            .next()
            .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match (major, minor, patch_ok) {
            ("3", "5", true) => Ok(Etcdutl::V3_5),
            ("3", "6", true) => Ok(Etcdutl::V3_6),
            ("3", "7", true) => Ok(Etcdutl::V3_7),
            ("3", "4", true) => Err(Error::usage(format!(
                "--as-etcdutl: {text:?}: etcd 3.4 has no etcdutl; its `etcdctl snapshot status` prints what 3.5's etcdutl prints: use 3.5"
            ))),
            _ => Err(Error::usage(format!(
                "--as-etcdutl: {text:?} is not one of 3.5, 3.6, 3.7"
            ))),
        }
    }

    /// The etcdutl of the snapshot's own version: by its `meta/storageVersion` (etcd 3.6 and
    /// later write it); without one, by a `cluster/clusterVersion` of 3.6 or later (etcd 3.6
    /// writes the storage version only a moment after the cluster version is decided, so an
    /// early snapshot of a new cluster has the one without the other); else 3.5 (etcd 3.4 and
    /// 3.5 snapshots, and those of a cluster still upgrading from 3.5). Versions newer than 3.7
    /// are shown as 3.7 shows them.
    pub fn detect(analysis: &Analysis) -> Etcdutl {
        let cluster_version = || {
            let cv = analysis.details.cluster_version.as_deref()?;
            GoSemver::parse(cv.as_bytes()).filter(|v| (v.major, v.minor) >= (3, 6))
        };
        match analysis.details.etcdutl_version().or_else(cluster_version) {
            None => Etcdutl::V3_5,
            Some(v) if (v.major, v.minor) <= (3, 6) => Etcdutl::V3_6,
            Some(_) => Etcdutl::V3_7,
        }
    }

    /// `3.5`, `3.6` or `3.7`.
    pub fn label(self) -> &'static str {
        match self {
            Etcdutl::V3_5 => "3.5",
            Etcdutl::V3_6 => "3.6",
            Etcdutl::V3_7 => "3.7",
        }
    }

    /// Whether this etcdutl has the `version` column and JSON field.
    pub fn has_version(self) -> bool {
        self >= Etcdutl::V3_6
    }

    /// This etcdutl's `totalKey`.
    pub fn total_key(self, analysis: &Analysis) -> u64 {
        match self {
            Etcdutl::V3_5 => analysis.status.total_key,
            Etcdutl::V3_6 | Etcdutl::V3_7 => analysis.details.live_keys,
        }
    }

    /// This etcdutl's `version`: `Some("")` when the snapshot has none, `None` before 3.6.
    pub fn version(self, analysis: &Analysis) -> Option<String> {
        self.has_version().then(|| {
            analysis
                .details
                .etcdutl_version()
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
    }

    /// The column headers, as etcdutl passes them to its table writer.
    fn headers(self) -> &'static [&'static str] {
        if self.has_version() {
            &["hash", "revision", "total keys", "total size", "version"]
        } else {
            &["hash", "revision", "total keys", "total size"]
        }
    }

    /// The cells of the one row (`makeDBStatusTable`).
    pub fn cells(self, analysis: &Analysis) -> Vec<String> {
        let s = &analysis.status;
        let mut cells = vec![
            format!("{:x}", s.hash),
            s.revision.to_string(),
            self.total_key(analysis).to_string(),
            humanize_bytes(s.total_size),
        ];
        cells.extend(self.version(analysis));
        cells
    }

    /// `-w simple`: the cells joined by `, `, one line.
    pub fn simple(self, analysis: &Analysis) -> String {
        format!("{}\n", self.cells(analysis).join(", "))
    }

    /// `-w table`.
    pub fn table(self, analysis: &Analysis) -> String {
        let cells = self.cells(analysis);
        match self {
            Etcdutl::V3_5 | Etcdutl::V3_6 => table::render(self.headers(), &[cells]),
            Etcdutl::V3_7 => box_table(self.headers(), &cells),
        }
    }
}

/// tablewriter 1.1's default table as etcdutl 3.7 configures it (rows right-aligned): box-drawing
/// borders, headers upper-cased and centred (an odd gap's extra space on the right), one space
/// of padding, no wrapping. Status cells are short, space-free ASCII.
pub(crate) fn box_table(headers: &[&str], cells: &[String]) -> String {
    let titles: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    let widths: Vec<usize> = titles
        .iter()
        .zip(cells)
        .map(|(h, c)| h.chars().count().max(c.chars().count()))
        .collect();
    let border = |left: &str, mid: &str, right: &str| {
        let lines: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{left}{}{right}\n", lines.join(mid))
    };
    let row = |texts: &[String], center: bool| {
        let mut line = String::from("│");
        for (text, &w) in texts.iter().zip(&widths) {
            let gap = w.saturating_sub(text.chars().count());
            let left = if center { gap / 2 } else { gap };
            line.push_str(&format!(
                " {}{text}{} │",
                " ".repeat(left),
                " ".repeat(gap - left)
            ));
        }
        line.push('\n');
        line
    };
    let mut out = border("┌", "┬", "┐");
    out.push_str(&row(&titles, true));
    out.push_str(&border("├", "┼", "┤"));
    out.push_str(&row(cells, false));
    out.push_str(&border("└", "┴", "┘"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag() {
        assert_eq!(Etcdutl::parse("3.5").ok(), Some(Etcdutl::V3_5));
        assert_eq!(Etcdutl::parse("3.6").ok(), Some(Etcdutl::V3_6));
        assert_eq!(Etcdutl::parse("3.7.3").ok(), Some(Etcdutl::V3_7));
        for bad in ["", "3", "3.8", "4.0", "3.6.", "3.6.x", "v3.6", "3.6.1.2"] {
            assert!(Etcdutl::parse(bad).is_err(), "{bad:?}");
        }
        let e = Etcdutl::parse("3.4").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("use 3.5")));
    }

    /// The bytes etcdutl 3.7.3 printed for a 3.7 snapshot.
    #[test]
    fn box_table_like_etcdutl_3_7() {
        let cells: Vec<String> = ["71df68a3", "16", "4", "29 kB", "3.7.0"]
            .map(String::from)
            .to_vec();
        let want = "\
┌──────────┬──────────┬────────────┬────────────┬─────────┐
│   HASH   │ REVISION │ TOTAL KEYS │ TOTAL SIZE │ VERSION │
├──────────┼──────────┼────────────┼────────────┼─────────┤
│ 71df68a3 │       16 │          4 │      29 kB │   3.7.0 │
└──────────┴──────────┴────────────┴────────────┴─────────┘
";
        assert_eq!(box_table(Etcdutl::V3_7.headers(), &cells), want);
    }
}
