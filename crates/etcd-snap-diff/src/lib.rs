//! `etcd-snap-diff`: what changed between two etcd snapshots, or two revisions of one, offline.
//!
//! Each snapshot is opened and verified exactly as the other offline tools do it
//! (`etcd_common::snapshot::open_verified`: file or stdin; raw, zstd or age; consistency check and
//! SHA-256 trailer). The two live keyspaces are merged in key order by `etcd_db::diff` (memory
//! bounded by its sort runs), and etcd's `HashKV` of each side is computed by `etcd_db::hashkv`.
//! The report is written to an unnamed temporary file and copied to stdout only once both inputs
//! have passed every check, so a damaged input never leaves half a report behind. With `--k8s`
//! each change is seen as a Kubernetes object ([`k8s`]).

pub mod cli;
pub mod k8s;

use cli::Options;
use etcd_common::output::{escape, escape_bytes, Format};
use etcd_common::snapshot::{db_error, open_verified, Source};
use etcd_common::{Error, ExitCode, Result};
use etcd_db::diff::{Change, DiffStats, Failed, Kind, Side};
use etcd_db::proto::KeyValue;
use etcd_db::HashKv;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, run)
}

/// What was compared and found: the report's facts besides the changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The merge's counts and revisions.
    pub stats: DiffStats,
    /// hashkv of A at its revision.
    pub hash_a: HashKv,
    /// hashkv of B at its revision.
    pub hash_b: HashKv,
    /// `--k8s`: changed objects not listed because only server-set fields (or the lease) differ;
    /// they are in `stats.changed` but do not make the snapshots different.
    pub server_fields_only: Option<u64>,
}

impl Verdict {
    /// Whether nothing was listed: no key added or removed, no change besides server-set fields.
    pub fn same(&self) -> bool {
        self.stats.added == 0 && self.stats.removed == 0 && self.changed() == 0
    }

    /// The changes listed.
    pub fn changed(&self) -> u64 {
        self.stats.changed - self.server_fields_only.unwrap_or(0)
    }
}

/// Reads `--encryption-config` (before any snapshot: a bad file is found before a long read).
fn encryption_config(options: &Options) -> Result<Option<k8s_registry::EncryptionConfig>> {
    let Some(path) = options
        .k8s
        .as_ref()
        .and_then(|k| k.encryption_config.as_ref())
    else {
        return Ok(None);
    };
    k8s_registry::EncryptionConfig::from_file(path)
        .map(Some)
        .map_err(|e| match e {
            k8s_registry::decrypt::ConfigError::Io(m) => {
                Error::new(ExitCode::LocalIo, format!("--encryption-config: {m}"))
            }
            k8s_registry::decrypt::ConfigError::Invalid(m) => {
                Error::usage(format!("--encryption-config: {m}"))
            }
        })
}

/// Compares the snapshots `options` names and prints the report; exit 0 same, 1 different.
pub fn run(options: &Options) -> Result<ExitCode> {
    let config = encryption_config(options)?;
    let view = options.k8s.as_ref().map(|k| k8s::View {
        prefix: &k.prefix,
        keep_server_fields: k.keep_server_fields,
        config: config.as_ref(),
    });
    let view = view.as_ref();
    let report =
        tempfile::tempfile().map_err(|e| Error::io("temporary file for the report", &e))?;
    fn source<'a>(input: Option<&'a std::path::Path>, options: &'a Options) -> Source<'a> {
        Source {
            input,
            identities: &options.identities,
            skip_hash_check: options.skip_hash_check,
        }
    }
    let mut out = BufWriter::new(&report);
    let verdict = match &options.b {
        None => {
            open_verified(source(options.a.as_deref(), options), |db, name| {
                compare((db, name), (db, name), options, view, &mut out)
            })?
            .read
        }
        Some(b) => {
            open_verified(source(options.a.as_deref(), options), |da, na| {
                let inner = open_verified(source(b.as_deref(), options), |db, nb| {
                    compare((da, na), (db, nb), options, view, &mut out)
                })?;
                Ok(inner.read)
            })?
            .read
        }
    };
    out.flush()
        .map_err(|e| Error::io("writing the report to a temporary file", &e))?;
    drop(out);
    copy_to_stdout(report)?;
    Ok(if verdict.same() {
        ExitCode::Success
    } else {
        ExitCode::CheckFailed
    })
}

/// One opened side: the database and its name for messages.
type Opened<'a> = (&'a bbolt::Db, &'a str);

/// Hashes both sides, merges them, writes the report.
fn compare(
    (da, na): Opened<'_>,
    (db, nb): Opened<'_>,
    options: &Options,
    view: Option<&k8s::View<'_>>,
    out: &mut impl Write,
) -> Result<Verdict> {
    let hash_a = etcd_db::hash_kv(da, options.rev_a).map_err(|e| side_error(na, "--rev-a", e))?;
    let hash_b = etcd_db::hash_kv(db, options.rev_b).map_err(|e| side_error(nb, "--rev-b", e))?;
    let a = Side {
        db: da,
        at: Some(hash_a.hash_revision),
    };
    let b = Side {
        db,
        at: Some(hash_b.hash_revision),
    };
    let prefix = options.prefix.as_deref().unwrap_or("").as_bytes();
    let json = options.format == Format::Json;
    let mut first = true;
    let mut server_fields_only = 0u64;
    write_out(out, if json { "{\"changes\":[" } else { "" })?;
    let stats = etcd_db::diff::diff(
        a,
        b,
        etcd_db::sorted::DEFAULT_RUN_BYTES,
        |key| key.starts_with(prefix),
        |change: &Change<'_>| -> Result<()> {
            let seen = view.map_or(k8s::Seen::Key, |v| v.see(change));
            if seen == k8s::Seen::ServerFieldsOnly {
                server_fields_only += 1;
                return Ok(());
            }
            let line = match json {
                true => change_json(change, &seen, std::mem::take(&mut first)),
                false => change_simple(change, &seen),
            };
            write_out(out, &line)
        },
    )
    .map_err(|e| match e {
        Failed::Db(e) => db_error(&format!("comparing {na} with {nb}"), e),
        Failed::Visit(e) => e,
    })?;
    let verdict = Verdict {
        stats,
        hash_a,
        hash_b,
        server_fields_only: view.map(|_| server_fields_only),
    };
    let tail = match json {
        true => json_tail(&verdict, na, nb),
        false => simple_tail(&verdict, na, nb),
    };
    write_out(out, &tail)?;
    Ok(verdict)
}

/// A hashkv or revision error of one side: a compacted or future revision is the caller's (2).
fn side_error(name: &str, flag: &str, e: etcd_db::Error) -> Error {
    match e {
        etcd_db::Error::Compacted { .. } | etcd_db::Error::FutureRevision { .. } => {
            Error::usage(format!("{flag}: {}: {e}", escape(name)))
        }
        other => db_error(name, other),
    }
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Added => "added",
        Kind::Removed => "removed",
        Kind::Changed => "changed",
    }
}

fn side_json(kv: &Option<KeyValue<'_>>) -> serde_json::Value {
    match kv {
        None => serde_json::Value::Null,
        Some(kv) => serde_json::json!({
            "createRevision": kv.create_revision,
            "modRevision": kv.mod_revision,
            "version": kv.version,
            "lease": kv.lease,
        }),
    }
}

/// One change in simple output: `KIND<TAB>KEY`, or with `--k8s` `KIND<TAB>RESOURCE<TAB>PLACE`
/// and the diff (or why there is none).
fn change_simple(change: &Change<'_>, seen: &k8s::Seen) -> String {
    let k8s::Seen::Object {
        named,
        diff,
        not_shown,
    } = seen
    else {
        return format!("{}\t{}\n", kind(change.kind), escape_bytes(change.key));
    };
    let mut line = format!(
        "{}\t{}\t{}\n",
        kind(change.kind),
        named.resource,
        named.place()
    );
    if let Some(diff) = diff {
        line.push_str(diff);
    }
    if let Some(why) = not_shown {
        line.push_str(&format!("# not shown: {why}\n"));
    }
    line
}

fn change_json(change: &Change<'_>, seen: &k8s::Seen, first: bool) -> String {
    let mut item = serde_json::json!({
        "key": escape_bytes(change.key),
        "change": kind(change.kind),
        "a": side_json(&change.a),
        "b": side_json(&change.b),
    });
    if let (
        k8s::Seen::Object {
            named,
            diff,
            not_shown,
        },
        serde_json::Value::Object(map),
    ) = (seen, &mut item)
    {
        map.insert("resource".into(), named.resource.clone().into());
        map.insert("group".into(), named.group.clone().into());
        map.insert("namespace".into(), named.namespace.clone().into());
        map.insert("name".into(), named.name.clone().into());
        map.insert("diff".into(), diff.clone().into());
        if let Some(why) = not_shown {
            map.insert("notShown".into(), why.clone().into());
        }
    }
    format!("{}{item}", if first { "" } else { "," })
}

fn hash_equal(v: &Verdict) -> bool {
    v.hash_a.hash == v.hash_b.hash
}

fn simple_tail(v: &Verdict, na: &str, nb: &str) -> String {
    let s = &v.stats;
    let (ha, hb) = (&v.hash_a, &v.hash_b);
    format!(
        "summary: {} added, {} removed, {} changed{} (A {} at revision {}: {} keys; B {} at revision {}: {} keys)\n\
         hashkv: {} (A: hash {}, compact revision {}, hash revision {}; B: hash {}, compact revision {}, hash revision {})\n",
        s.added,
        s.removed,
        v.changed(),
        match v.server_fields_only {
            Some(n) => format!(", {n} changed only in server-set fields or their lease (not listed)"),
            None => String::new(),
        },
        escape(na),
        s.revision_a,
        s.keys_a,
        escape(nb),
        s.revision_b,
        s.keys_b,
        if hash_equal(v) { "equal" } else { "different" },
        ha.hash,
        ha.compact_revision,
        ha.hash_revision,
        hb.hash,
        hb.compact_revision,
        hb.hash_revision,
    )
}

fn json_tail(v: &Verdict, na: &str, nb: &str) -> String {
    let s = &v.stats;
    let side = |name: &str, revision: i64, keys: u64, h: &HashKv| serde_json::json!({"name": escape(name), "revision": revision, "keys": keys, "hashkv": h});
    let rest = serde_json::json!({
        "added": s.added,
        "removed": s.removed,
        "changed": v.changed(),
        "same": v.same(),
        "hashkvEqual": hash_equal(v),
        "a": side(na, s.revision_a, s.keys_a, &v.hash_a),
        "b": side(nb, s.revision_b, s.keys_b, &v.hash_b),
    });
    let mut rest = rest;
    if let (Some(n), serde_json::Value::Object(map)) = (v.server_fields_only, &mut rest) {
        map.insert("serverFieldsOnly".into(), n.into());
    }
    // `rest` is an object: splice its members after the changes array.
    let text = rest.to_string();
    format!("],{}\n", text.strip_prefix('{').unwrap_or(&text))
}

fn write_out(out: &mut impl Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes())
        .map_err(|e| Error::io("writing the report to a temporary file", &e))
}

/// Copies the finished report to stdout; a closed pipe ends quietly.
fn copy_to_stdout(mut report: File) -> Result<()> {
    report
        .rewind()
        .map_err(|e| Error::io("reading back the report", &e))?;
    let mut stdout = std::io::stdout().lock();
    match std::io::copy(&mut report, &mut stdout).and_then(|_| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::broken_pipe()),
        Err(e) => Err(Error::io("writing to stdout", &e)),
    }
}
