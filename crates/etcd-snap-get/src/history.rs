//! `--rev` and `--history`: the object as it was, and every revision of it the snapshot holds.
//!
//! Why it exists: a snapshot keeps every revision since the last compaction, so it can show what
//! an object looked like before an incident and how it changed. The revisions come from
//! `etcd_db::history` (the same bounds etcd uses: a revision below the compact revision is gone);
//! each version is decoded like any object ([`crate::object`]) and consecutive versions are
//! compared as YAML with a unified diff (`k8s_registry::object`, shared with
//! `etcd-snap-diff --k8s`). There is no time column: etcd stores no time with a revision, and a
//! revision log that would map revisions to times does not exist yet.

use crate::cli::{Options, Output, Query};
use crate::object::{self, Decoded};
use crate::select::Selection;
use etcd_common::output::{escape, escape_bytes, print_stdout};
use etcd_common::{Error, ExitCode, Result};
use etcd_db::history::Bounds;
use k8s_registry::{EncryptionConfig, ValueFormat};
use serde::Serialize;
use serde_json::Value;
use std::io::Write;

/// Maps an etcd-db error of a read at a revision to this tool's exit codes: a compacted revision
/// is exit 1 (not in this snapshot any more: what "not found" is to an object), naming the compact
/// revision; a future revision (exit 2) and the rest as every offline tool maps them.
pub fn db_error(name: &str, e: etcd_db::Error) -> Error {
    match e {
        etcd_db::Error::Compacted { .. } => {
            Error::new(ExitCode::CheckFailed, format!("{name}: {e}"))
        }
        other => etcd_common::snapshot::db_error(name, other),
    }
}

/// One stored revision of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The revision (`main`) of the change.
    pub revision: i64,
    /// A deletion (tombstone).
    pub deleted: bool,
    /// The key's version after the change (1 on creation, 0 for a deletion).
    pub version: i64,
    /// The revision the key was created at (0 for a deletion).
    pub create_revision: i64,
    /// The stored value (empty for a deletion).
    pub value: Vec<u8>,
}

impl Stored {
    /// `created`, `updated` or `deleted`.
    pub fn event(&self) -> &'static str {
        match (self.deleted, self.version) {
            (true, _) => "deleted",
            (false, 1) => "created",
            _ => "updated",
        }
    }
}

/// Every stored revision of one key, oldest first, up to a revision.
#[derive(Debug, Clone)]
pub struct History {
    /// The key.
    pub key: Vec<u8>,
    /// Its stored revisions up to [`History::upto`].
    pub stored: Vec<Stored>,
    /// The store's compact and current revisions.
    pub bounds: Bounds,
    /// The last revision shown (`--rev`, or the snapshot's revision).
    pub upto: i64,
}

/// The keys one object may be stored under, in the order they are tried: `--prefix KEY` is the
/// key itself; `RESOURCE NAME` the key of that name in the namespace (a custom resource: the
/// namespaced key, then the cluster-scoped one). Anything else names no single object.
pub fn keys(options: &Options, selection: &Selection) -> Result<Vec<Vec<u8>>> {
    match &options.query {
        Query::Prefix(key) => Ok(vec![key.as_bytes().to_vec()]),
        Query::Resource { .. } if !selection.exact.is_empty() => Ok(selection
            .exact
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect()),
        Query::Resource { .. } => Err(Error::usage(
            "--history shows one object: give RESOURCE NAME (a custom resource as PLURAL.GROUP) with -n rather than -A, or --prefix KEY",
        )),
    }
}

/// Reads the history of the first of `keys` that has stored revisions up to `at` (`None`: the
/// snapshot's revision; a compacted or future `at` is refused).
pub fn collect(db: &bbolt::Db, keys: &[Vec<u8>], at: Option<i64>) -> etcd_db::Result<History> {
    let bounds = Bounds::read(db)?;
    let upto = bounds.resolve(at)?;
    let mut first = None;
    for key in keys {
        let mut stored = Vec::new();
        etcd_db::history::history(db, key, |rev, kv| {
            if rev.main <= upto {
                stored.push(Stored {
                    revision: rev.main,
                    deleted: rev.tombstone,
                    version: kv.version,
                    create_revision: kv.create_revision,
                    value: kv.value.to_vec(),
                });
            }
        })?;
        let history = History {
            key: key.clone(),
            stored,
            bounds,
            upto,
        };
        if !history.stored.is_empty() {
            return Ok(history);
        }
        first.get_or_insert(history);
    }
    Ok(first.unwrap_or(History {
        key: Vec::new(),
        stored: Vec::new(),
        bounds,
        upto,
    }))
}

/// Opens the snapshot, reads the history and prints it.
pub fn run(
    options: &Options,
    selection: &Selection,
    source: etcd_common::snapshot::Source<'_>,
    config: Option<&EncryptionConfig>,
) -> Result<ExitCode> {
    let keys = keys(options, selection)?;
    let opened = etcd_common::snapshot::open_verified(source, |db, name| {
        collect(db, &keys, options.rev).map_err(|e| db_error(name, e))
    })?;
    let history = opened.read;
    if history.stored.is_empty() {
        let what = match &options.query {
            Query::Resource {
                resource,
                name: Some(name),
            } => format!("{resource} {name:?}"),
            _ => "key".to_string(),
        };
        let shown: Vec<String> = keys.iter().map(|k| escape_bytes(k).into_owned()).collect();
        let why = match history.bounds.compact {
            c if c > 0 => format!("never written, or compacted: the compact revision is {c}"),
            _ => "never written".to_string(),
        };
        return Err(Error::new(
            ExitCode::CheckFailed,
            format!(
                "{what} not found: no stored revision of {} up to revision {} ({why})",
                shown.join(" or "),
                history.upto,
            ),
        ));
    }
    let versions = render_versions(&history, options, config);
    let text = match options.output {
        Some(Output::Json) => json(&history, &versions),
        Some(Output::Table) => table(&history, &versions),
        // Raw is refused when the command line is parsed.
        _ => text(&history, &versions),
    };
    print_stdout(&text)?;
    let mut failed = false;
    for (stored, version) in history.stored.iter().zip(&versions) {
        if let Shown::Hidden(why) = &version.shown {
            failed = true;
            // stderr may be closed (`2>&-`): a warning is not worth a panic.
            let _ = writeln!(
                std::io::stderr(),
                "Warning: {} at revision {}: {why}",
                escape_bytes(&history.key),
                stored.revision
            );
        }
    }
    Ok(if failed {
        ExitCode::CheckFailed
    } else {
        ExitCode::Success
    })
}

/// How one version is shown.
#[derive(Debug)]
enum Shown {
    /// A deletion.
    Deleted,
    /// A Kubernetes object.
    Object(Value),
    /// A value that is not a Kubernetes object (a `--prefix` key): its text, escaped.
    Text,
    /// Encrypted or undecodable: why (escaped).
    Hidden(String),
}

/// A version ready to print: what it is and its text (YAML, escaped text, or a `#` comment).
#[derive(Debug)]
struct Version {
    shown: Shown,
    text: String,
}

fn render_versions(
    history: &History,
    options: &Options,
    config: Option<&EncryptionConfig>,
) -> Vec<Version> {
    history
        .stored
        .iter()
        .map(|s| render_version(&history.key, s, options, config))
        .collect()
}

fn render_version(
    key: &[u8],
    stored: &Stored,
    options: &Options,
    config: Option<&EncryptionConfig>,
) -> Version {
    if stored.deleted {
        return Version {
            shown: Shown::Deleted,
            text: String::new(),
        };
    }
    if matches!(ValueFormat::of(&stored.value), ValueFormat::Other) {
        return Version {
            shown: Shown::Text,
            text: escaped_lines(&stored.value),
        };
    }
    match object::decode_with(
        &stored.value,
        key,
        &options.k8s_prefix,
        stored.revision,
        options.keep_server_fields,
        config,
    ) {
        Decoded::Object(value) => Version {
            text: escaped_lines(object::to_yaml(&value).as_bytes()),
            shown: Shown::Object(value),
        },
        Decoded::Encrypted(e) => {
            let why = format!(
                "stored encrypted with {}; decrypting needs the API server's EncryptionConfiguration (--encryption-config FILE)",
                escape(&e.to_string())
            );
            Version {
                text: format!("# not shown: {why}\n"),
                shown: Shown::Hidden(why),
            }
        }
        Decoded::Undecodable(why) => {
            let why = escape(&why).into_owned();
            Version {
                text: format!("# not shown: {why}\n"),
                shown: Shown::Hidden(why),
            }
        }
    }
}

/// `bytes` as lines of text, each escaped (control characters, invalid UTF-8), each ending in a
/// newline.
fn escaped_lines(bytes: &[u8]) -> String {
    k8s_registry::object::escaped_lines(bytes, escape_bytes)
}

/// The unified diff from the version before `i` (nothing before the first, or after a deletion)
/// to version `i`; `None` when the text did not change.
fn diff(history: &History, versions: &[Version], i: usize) -> Option<String> {
    let key = escape_bytes(&history.key);
    let stored = &history.stored[i];
    let (old, old_name) = match i.checked_sub(1) {
        Some(p) if !history.stored[p].deleted => (
            versions[p].text.as_str(),
            format!("{key} @ {}", history.stored[p].revision),
        ),
        Some(p) => (
            "",
            format!("{key} (deleted at {})", history.stored[p].revision),
        ),
        None if stored.version > 1 => ("", format!("{key} (earlier revisions compacted)")),
        None => ("", format!("{key} (absent)")),
    };
    let new = versions[i].text.as_str();
    let new_name = if stored.deleted {
        format!("{key} (deleted at {})", stored.revision)
    } else {
        format!("{key} @ {}", stored.revision)
    };
    k8s_registry::object::unified_diff(old, new, &old_name, &new_name)
}

/// One header line per revision: `revision R EVENT (version V, N bytes)`.
fn header(stored: &Stored) -> String {
    match stored.deleted {
        true => format!("revision {} deleted\n", stored.revision),
        false => format!(
            "revision {} {} (version {}, {} bytes)\n",
            stored.revision,
            stored.event(),
            stored.version,
            stored.value.len()
        ),
    }
}

/// The default view: a header per revision and the unified diff from the version before it.
fn text(history: &History, versions: &[Version]) -> String {
    let mut out = String::new();
    for (i, stored) in history.stored.iter().enumerate() {
        out.push_str(&header(stored));
        match diff(history, versions, i) {
            Some(d) => out.push_str(&d),
            None if i > 0 => out.push_str(
                "(no change in what is shown; --keep-server-fields shows the server-set fields)\n",
            ),
            None => {}
        }
    }
    out
}

/// `-o table`: REVISION EVENT VERSION BYTES, aligned like the list table.
fn table(history: &History, _versions: &[Version]) -> String {
    let mut rows = vec![[
        "REVISION".to_string(),
        "EVENT".into(),
        "VERSION".into(),
        "BYTES".into(),
    ]];
    for s in &history.stored {
        rows.push([
            s.revision.to_string(),
            s.event().into(),
            s.version.to_string(),
            s.value.len().to_string(),
        ]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.len() + 3));
            }
        }
        out.push('\n');
    }
    out
}

/// One revision in `-o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RevisionJson<'a> {
    revision: i64,
    event: &'static str,
    version: i64,
    create_revision: i64,
    bytes: usize,
    /// The object as shown (`null` for a deletion, a non-object value or one not shown).
    object: Option<&'a Value>,
    /// Why the version is not shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_shown: Option<&'a str>,
    /// The unified diff from the version before (`null`: no change).
    diff: Option<String>,
}

/// `-o json`: the key, the bounds, and every revision with its object and diff.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson<'a> {
    key: String,
    compact_revision: i64,
    revision: i64,
    revisions: Vec<RevisionJson<'a>>,
}

fn json(history: &History, versions: &[Version]) -> String {
    let revisions = history
        .stored
        .iter()
        .zip(versions)
        .enumerate()
        .map(|(i, (s, v))| RevisionJson {
            revision: s.revision,
            event: s.event(),
            version: s.version,
            create_revision: s.create_revision,
            bytes: s.value.len(),
            object: match &v.shown {
                Shown::Object(value) => Some(value),
                _ => None,
            },
            not_shown: match &v.shown {
                Shown::Hidden(why) => Some(why.as_str()),
                _ => None,
            },
            diff: diff(history, versions, i),
        })
        .collect();
    let doc = HistoryJson {
        key: String::from_utf8_lossy(&history.key).into_owned(),
        compact_revision: history.bounds.compact,
        revision: history.upto,
        revisions,
    };
    match serde_json::to_value(&doc) {
        Ok(v) => object::to_json(&v),
        Err(_) => "null\n".into(),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stored(revision: i64, version: i64, value: &str) -> Stored {
        Stored {
            revision,
            deleted: version == 0,
            version,
            create_revision: 0,
            value: value.as_bytes().to_vec(),
        }
    }

    fn history(stored: Vec<Stored>) -> History {
        History {
            key: b"/k\x1b".to_vec(),
            stored,
            bounds: Bounds::new(Some(3), Some(3), 9),
            upto: 9,
        }
    }

    fn plain(text: &str) -> Version {
        Version {
            shown: Shown::Text,
            text: escaped_lines(text.as_bytes()),
        }
    }

    #[test]
    fn text_view_diffs_consecutive_versions() {
        let h = history(vec![
            stored(4, 2, "a\nb\n"),
            stored(5, 3, "a\nc\n"),
            stored(6, 0, ""),
            stored(7, 1, "a\x1b[31m"),
            stored(8, 2, "a\x1b[31m"),
        ]);
        let versions: Vec<Version> = h
            .stored
            .iter()
            .map(|s| match s.deleted {
                true => Version {
                    shown: Shown::Deleted,
                    text: String::new(),
                },
                false => plain(std::str::from_utf8(&s.value).unwrap()),
            })
            .collect();
        let out = text(&h, &versions);
        let want = "\
revision 4 updated (version 2, 4 bytes)
--- /k\\x1b (earlier revisions compacted)
+++ /k\\x1b @ 4
@@ -0,0 +1,2 @@
+a
+b
revision 5 updated (version 3, 4 bytes)
--- /k\\x1b @ 4
+++ /k\\x1b @ 5
@@ -1,2 +1,2 @@
 a
-b
+c
revision 6 deleted
--- /k\\x1b @ 5
+++ /k\\x1b (deleted at 6)
@@ -1,2 +0,0 @@
-a
-c
revision 7 created (version 1, 6 bytes)
--- /k\\x1b (deleted at 6)
+++ /k\\x1b @ 7
@@ -0,0 +1 @@
+a\\x1b[31m
revision 8 updated (version 2, 6 bytes)
(no change in what is shown; --keep-server-fields shows the server-set fields)
";
        assert_eq!(out, want);
        assert!(!out.contains('\x1b'));
        let t = table(&h, &versions);
        assert!(
            t.starts_with(
                "REVISION   EVENT     VERSION   BYTES\n4          updated   2         4\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn compacted_is_not_found_and_future_is_usage() {
        let e = db_error(
            "snap.db",
            etcd_db::Error::Compacted {
                requested: 2,
                compact: 5,
            },
        );
        assert_eq!(e.code, ExitCode::CheckFailed);
        assert!(e.to_string().contains("the compact revision is 5"), "{e}");
        let e = db_error(
            "snap.db",
            etcd_db::Error::FutureRevision {
                requested: 20,
                current: 5,
            },
        );
        assert_eq!(e.code, ExitCode::Usage);
    }
}
