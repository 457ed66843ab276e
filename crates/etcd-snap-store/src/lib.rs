//! `etcd-snap-store`: etcd backups to and from object storage (S3 and S3-compatible, GCS, Azure
//! Blob) through the `object_store` crate, streamed and verified.
//!
//! `put` reads stdin into parts of `--part-size` bytes on a thread that hashes them (SHA-256) as
//! they pass, and uploads at most `--concurrency` parts at once (memory: concurrency + 2 parts).
//! An input of one part is one PUT; a longer one appears only when the multipart upload (S3,
//! GCS) or block list (Azure) is committed; any error or SIGINT/SIGTERM aborts the upload first.
//! The SHA-256 is then stored in a companion object `URL.sha256` in sha256sum format: S3 cannot
//! set metadata when a multipart upload completes, and a companion works the same on every store
//! (and with `sha256sum -c`).
//! `cat` streams the object to stdout and compares its hash with the companion at the end.
//! Retention (`prune`) is [`retention`], shared with etcd-backup through `--names-from -`.

pub mod backend;
pub mod cli;
pub mod retention;

use std::io::{BufRead, IsTerminal, Read, Write};

use backend::{EnvMap, Location};
use cli::{Command, Options};
use etcd_common::output::{json, table, Format};
use etcd_common::{Error, ExitCode, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The companions of an object, by suffix: its checksum, its backup metadata, its proof, and
/// the checksums `put` wrote for those two when they were stored with it.
pub const COMPANIONS: [&str; 5] = [
    ".sha256",
    ".json",
    ".json.sha256",
    ".proof.json",
    ".proof.json.sha256",
];
/// The largest companion read (a sha256sum line, a metadata object).
const MAX_COMPANION: usize = 1 << 20;

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, run)
}

/// Runs one command.
pub fn run(options: &Options) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", &e))?;
    let env = backend::process_env();
    runtime.block_on(run_async(options, &env))
}

/// The commands, on the runtime.
async fn run_async(options: &Options, env: &EnvMap) -> Result<ExitCode> {
    if let Command::Prune {
        names_from_stdin: true,
        cluster,
        policy,
        now,
        ..
    } = &options.command
    {
        return prune_names(cluster, policy, *now, options.format);
    }
    let url = options.url.as_deref().unwrap_or_default();
    if matches!(options.command, Command::Put { .. }) && url.ends_with('/') {
        return Err(Error::usage(format!(
            "put {url}: the URL ends with '/': name the object (s3://BUCKET/DIR/NAME)"
        )));
    }
    let loc = backend::open(url, env)?;
    match &options.command {
        Command::Put {
            force,
            part_size,
            concurrency,
        } => put(&loc, *force, *part_size, *concurrency, options.format).await,
        Command::Cat { no_verify } => cat(&loc, !no_verify).await,
        Command::Ls => ls(&loc, options.format).await,
        Command::Rm => rm(&loc).await,
        Command::Prune {
            cluster,
            policy,
            dry_run,
            now,
            ..
        } => prune(&loc, cluster, policy, *dry_run, *now, options.format).await,
    }
}

/// `key` + `suffix`.
fn with_suffix(key: &Path, suffix: &str) -> Path {
    Path::from(format!("{key}{suffix}"))
}

/// The last segment of a key.
fn basename(key: &Path) -> String {
    key.filename().unwrap_or_default().to_string()
}

/// `put`'s JSON answer.
#[derive(Serialize)]
struct PutReport {
    /// The object's URL.
    url: String,
    /// Bytes stored.
    size: u64,
    /// Their SHA-256, hex.
    sha256: String,
}

/// What ended an upload early.
enum Stop {
    /// An error.
    Failed(Error),
    /// A signal: exit 130 or 143.
    Signal(ExitCode),
}

/// Uploads stdin to the location; see the crate documentation.
async fn put(
    loc: &Location,
    force: bool,
    part_size: u64,
    concurrency: usize,
    format: Format,
) -> Result<ExitCode> {
    let url = loc.url();
    if loc.key.as_ref().is_empty() || loc.key.as_ref().ends_with('/') {
        return Err(Error::usage(format!(
            "put {url}: the URL names no object key"
        )));
    }
    if !force {
        match loc.store.head(&loc.key).await {
            Ok(_) => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "put {url}: the object already exists: choose another name or give --force"
                    ),
                ))
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(loc.error("put", &url, &e)),
        }
    }
    // Created with the second part: an input that fits in one part is one plain PUT.
    let mut upload: Option<Box<dyn object_store::MultipartUpload>> = None;
    let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sigterm = signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        r = transfer(loc, &url, &mut upload, part_size, concurrency) => r.map_err(Stop::Failed),
        _ = sigint.recv() => Err(Stop::Signal(ExitCode::Interrupted)),
        _ = sigterm.recv() => Err(Stop::Signal(ExitCode::Terminated)),
    };
    let (size, digest) = match outcome {
        Ok(v) => v,
        Err(stop) => {
            // The in-flight parts were dropped with the transfer; nothing was committed.
            if let Some(mut upload) = upload {
                let _ = upload.abort().await;
            }
            return Err(match stop {
                Stop::Failed(e) => e.context("upload aborted, nothing stored"),
                Stop::Signal(code) => Error::new(
                    code,
                    format!("put {url}: stopped by a signal: upload aborted, nothing stored"),
                ),
            });
        }
    };
    let companion = with_suffix(&loc.key, ".sha256");
    let line = format!("{digest}  {}\n", basename(&loc.key));
    if let Err(e) = loc
        .store
        .put(&companion, PutPayload::from(line.into_bytes()))
        .await
    {
        // An object without its checksum would fail every cat: take it back.
        let _ = loc.store.delete(&loc.key).await;
        return Err(loc
            .error("put", &loc.url_of(&companion), &e)
            .context("the checksum companion was not stored, the object was deleted again"));
    }
    if format == Format::Json {
        let report = PutReport {
            url,
            size,
            sha256: digest,
        };
        etcd_common::output::print_stdout(&format!("{}\n", json::to_line(&report)))?;
    }
    Ok(ExitCode::Success)
}

/// A signal stream, or exit 6.
fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).map_err(|e| Error::io("installing a signal handler", &e))
}

/// Reads stdin in parts on a thread (hashing them). One part (or none) is stored with one PUT;
/// more start a multipart upload in `upload` (for the caller to abort on failure), sent with
/// bounded concurrency and committed. Returns the size and the hex SHA-256.
async fn transfer(
    loc: &Location,
    url: &str,
    upload: &mut Option<Box<dyn object_store::MultipartUpload>>,
    part_size: u64,
    concurrency: usize,
) -> Result<(u64, String)> {
    let part = usize::try_from(part_size).unwrap_or(usize::MAX);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>>>(1);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<(u64, String)>();
    std::thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || read_parts(part, &tx, done_tx))
        .map_err(|e| Error::io("starting the stdin reader", &e))?;
    let mut inflight: FuturesUnordered<object_store::UploadPart> = FuturesUnordered::new();
    // A part is held back until the next one shows whether it was the only one. A slot is
    // waited for before the next part is taken, so no more parts are in memory than before.
    let mut held: Option<Vec<u8>> = None;
    loop {
        while inflight.len() >= concurrency {
            if let Some(r) = inflight.next().await {
                r.map_err(|e| loc.error("put", url, &e))?;
            }
        }
        let Some(buf) = rx.recv().await else { break };
        let Some(prev) = held.replace(buf?) else {
            continue;
        };
        let up = match upload {
            Some(up) => up,
            None => upload.insert(
                loc.store
                    .put_multipart(&loc.key)
                    .await
                    .map_err(|e| loc.error("put", url, &e))?,
            ),
        };
        inflight.push(up.put_part(PutPayload::from(prev)));
    }
    let (size, digest) = done_rx
        .await
        .map_err(|_| Error::new(ExitCode::LocalIo, "put: reading stdin failed"))?;
    let last = held.unwrap_or_default();
    match upload {
        None => {
            loc.store
                .put(&loc.key, PutPayload::from(last))
                .await
                .map_err(|e| loc.error("put", url, &e))?;
        }
        Some(up) => {
            inflight.push(up.put_part(PutPayload::from(last)));
            while let Some(r) = inflight.next().await {
                r.map_err(|e| loc.error("put", url, &e))?;
            }
            up.complete().await.map_err(|e| loc.error("put", url, &e))?;
        }
    }
    Ok((size, digest))
}

/// The reader thread: fills parts of `part` bytes from stdin, hashes them, sends them; at EOF
/// sends the size and hash on `done` (a read error goes down `tx` instead).
fn read_parts(
    part: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>>>,
    done: tokio::sync::oneshot::Sender<(u64, String)>,
) {
    let mut stdin = std::io::stdin().lock();
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; part];
        let mut filled = 0;
        while filled < part {
            match stdin.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(Error::io("put: reading stdin", &e)));
                    return;
                }
            }
        }
        buf.truncate(filled);
        hasher.update(&buf);
        total += filled as u64;
        let last = filled < part;
        if filled > 0 && tx.blocking_send(Ok(buf)).is_err() {
            return;
        }
        if last {
            break;
        }
    }
    let _ = done.send((total, hex(&hasher.finalize())));
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a companion object, at most 1 MiB; `Ok(None)` when it does not exist.
async fn read_companion(loc: &Location, key: &Path) -> Result<Option<Vec<u8>>> {
    let url = loc.url_of(key);
    let got = match loc.store.get(key).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(loc.error("reading", &url, &e)),
    };
    if got.meta.size > MAX_COMPANION as u64 {
        return Err(Error::new(
            ExitCode::Integrity,
            format!("{url} is larger than 1 MiB: not a companion this tool wrote"),
        ));
    }
    let bytes = got
        .bytes()
        .await
        .map_err(|e| loc.error("reading", &url, &e))?;
    Ok(Some(bytes.to_vec()))
}

/// Parses a sha256sum line for `name`: the hex digest.
fn parse_sha256_line(text: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text.lines().next()?;
    let (hash, rest) = line.split_once("  ").or_else(|| line.split_once(" *"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || rest != name {
        return None;
    }
    Some(hash.to_ascii_lowercase())
}

/// Streams the object to stdout, then checks its SHA-256 against the companion.
async fn cat(loc: &Location, verify: bool) -> Result<ExitCode> {
    let url = loc.url();
    if std::io::stdout().is_terminal() {
        return Err(Error::new(
            ExitCode::Refused,
            format!("cat {url}: refusing to write a binary object to a terminal: redirect or pipe stdout"),
        ));
    }
    let got = loc
        .store
        .get(&loc.key)
        .await
        .map_err(|e| loc.error("cat", &url, &e))?;
    let expected = if verify {
        let companion = with_suffix(&loc.key, ".sha256");
        let Some(text) = read_companion(loc, &companion).await? else {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("cat {url}: its checksum {url}.sha256 is missing, so it cannot be verified (--no-verify reads it anyway)"),
            ));
        };
        let name = basename(&loc.key);
        Some(parse_sha256_line(&text, &name).ok_or_else(|| {
            Error::new(
                ExitCode::Integrity,
                format!("cat {url}: {url}.sha256 is not a sha256sum line for {name}"),
            )
        })?)
    } else {
        None
    };
    let mut hasher = Sha256::new();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| loc.error("cat", &url, &e))?;
        hasher.update(&chunk);
        write_out(&mut out, &chunk)?;
    }
    out.flush().map_err(stdout_error)?;
    let actual = hex(&hasher.finalize());
    if let Some(expected) = expected {
        if actual != expected {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("cat {url}: SHA-256 mismatch: the object is {actual}, {url}.sha256 says {expected}: the stored object is damaged, do not restore from it"),
            ));
        }
    }
    Ok(ExitCode::Success)
}

/// Writes to stdout; a closed pipe ends the tool quietly, other errors are exit 6.
fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    out.write_all(bytes).map_err(stdout_error)
}

/// The error for a failed stdout write.
fn stdout_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::broken_pipe()
    } else {
        Error::io("writing to stdout", &e)
    }
}

/// One `ls` row.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    /// The key relative to the prefix.
    name: String,
    /// The full URL.
    url: String,
    /// Bytes.
    size: u64,
    /// RFC 3339, UTC.
    last_modified: String,
    /// From NAME.sha256, when it exists (json only).
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// NAME.json parsed, when it exists (json only).
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
}

/// The key to list under: the URL's key as a directory.
fn prefix_of(loc: &Location) -> Option<Path> {
    let p = loc.key.as_ref().trim_end_matches('/');
    (!p.is_empty()).then(|| Path::from(p))
}

/// `key` relative to `prefix`.
fn relative(key: &Path, prefix: Option<&Path>) -> String {
    match prefix {
        Some(p) => key
            .as_ref()
            .strip_prefix(p.as_ref())
            .map(|r| r.trim_start_matches('/').to_string())
            .unwrap_or_else(|| key.to_string()),
        None => key.to_string(),
    }
}

/// Whether `key` is a companion of another key present in `all`.
fn is_companion(key: &str, all: &std::collections::BTreeSet<String>) -> bool {
    COMPANIONS
        .iter()
        .any(|s| key.strip_suffix(s).is_some_and(|base| all.contains(base)))
}

/// Lists the objects under the prefix (companions folded into their object's row).
async fn ls(loc: &Location, format: Format) -> Result<ExitCode> {
    let prefix = prefix_of(loc);
    let url = loc.url();
    let mut metas = Vec::new();
    let mut stream = loc.store.list(prefix.as_ref());
    while let Some(m) = stream.next().await {
        metas.push(m.map_err(|e| loc.error("ls", &url, &e))?);
    }
    let all: std::collections::BTreeSet<String> =
        metas.iter().map(|m| m.location.to_string()).collect();
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut rows = Vec::new();
    for m in metas {
        let key = m.location.to_string();
        if is_companion(&key, &all) {
            continue;
        }
        let mut row = Row {
            name: relative(&m.location, prefix.as_ref()),
            url: loc.url_of(&m.location),
            size: m.size,
            last_modified: m
                .last_modified
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sha256: None,
            metadata: None,
        };
        if format == Format::Json {
            if all.contains(&format!("{key}.sha256")) {
                let c = with_suffix(&m.location, ".sha256");
                if let Some(text) = read_companion(loc, &c).await? {
                    row.sha256 = parse_sha256_line(&text, &basename(&m.location));
                }
            }
            if all.contains(&format!("{key}.json")) {
                let c = with_suffix(&m.location, ".json");
                if let Some(text) = read_companion(loc, &c).await? {
                    row.metadata = serde_json::from_slice(&text).ok();
                }
            }
        }
        rows.push(row);
    }
    let text = match format {
        Format::Json => format!(
            "{}\n",
            json::to_line(&serde_json::json!({ "prefix": url, "objects": rows }))
        ),
        Format::Table => table::render(
            &["name", "size", "last modified"],
            &rows
                .iter()
                .map(|r| vec![r.name.clone(), r.size.to_string(), r.last_modified.clone()])
                .collect::<Vec<_>>(),
        ),
        Format::Simple => rows
            .iter()
            .map(|r| {
                format!(
                    "{}\t{}\t{}\n",
                    etcd_common::output::escape(&r.name),
                    r.size,
                    r.last_modified
                )
            })
            .collect(),
    };
    etcd_common::output::print_stdout(&text)?;
    Ok(ExitCode::Success)
}

/// Deletes the object, then its companions.
async fn rm(loc: &Location) -> Result<ExitCode> {
    let url = loc.url();
    loc.store
        .head(&loc.key)
        .await
        .map_err(|e| loc.error("rm", &url, &e))?;
    delete_with_companions(loc, &loc.key, None).await?;
    Ok(ExitCode::Success)
}

/// Deletes `key` and its companions (those in `listed` when given, else all three blindly);
/// returns the URLs deleted.
async fn delete_with_companions(
    loc: &Location,
    key: &Path,
    listed: Option<&std::collections::BTreeSet<String>>,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let url = loc.url_of(key);
    loc.store
        .delete(key)
        .await
        .map_err(|e| loc.error("deleting", &url, &e))?;
    done.push(url);
    for s in COMPANIONS {
        let c = with_suffix(key, s);
        if listed.is_some_and(|l| !l.contains(c.as_ref())) {
            continue;
        }
        match loc.store.delete(&c).await {
            Ok(()) => {
                if listed.is_some() {
                    done.push(loc.url_of(&c));
                }
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(loc.error("deleting", &loc.url_of(&c), &e)),
        }
    }
    Ok(done)
}

/// `prune`'s JSON answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PruneReport {
    /// Objects deleted (or that would be).
    deleted: Vec<String>,
    /// Backups kept.
    kept: Vec<String>,
    /// Whether nothing was deleted on purpose.
    dry_run: bool,
}

/// Applies retention to the backups directly under the prefix.
async fn prune(
    loc: &Location,
    cluster: &str,
    policy: &retention::Policy,
    dry_run: bool,
    now: Option<chrono::DateTime<chrono::Utc>>,
    format: Format,
) -> Result<ExitCode> {
    let prefix = prefix_of(loc);
    let url = loc.url();
    let listing = loc
        .store
        .list_with_delimiter(prefix.as_ref())
        .await
        .map_err(|e| loc.error("prune", &url, &e))?;
    let keys: std::collections::BTreeSet<String> = listing
        .objects
        .iter()
        .map(|m| m.location.to_string())
        .collect();
    let names: Vec<String> = listing
        .objects
        .iter()
        .map(|m| basename(&m.location))
        .collect();
    let decision = retention::decide(
        names.iter().map(String::as_str),
        cluster,
        policy,
        now.unwrap_or_else(chrono::Utc::now),
    );
    let key_of = |name: &str| match &prefix {
        Some(p) => Path::from(format!("{p}/{name}")),
        None => Path::from(name),
    };
    let mut deleted = Vec::new();
    for name in &decision.delete {
        let key = key_of(name);
        if dry_run {
            deleted.push(loc.url_of(&key));
            for s in COMPANIONS {
                let c = with_suffix(&key, s);
                if keys.contains(c.as_ref()) {
                    deleted.push(loc.url_of(&c));
                }
            }
        } else {
            deleted.extend(delete_with_companions(loc, &key, Some(&keys)).await?);
        }
    }
    let kept: Vec<String> = decision
        .keep
        .iter()
        .map(|n| loc.url_of(&key_of(n)))
        .collect();
    let text = match format {
        Format::Json => format!(
            "{}\n",
            json::to_line(&PruneReport {
                deleted,
                kept,
                dry_run
            })
        ),
        _ => deleted.iter().map(|u| format!("{u}\n")).collect(),
    };
    etcd_common::output::print_stdout(&text)?;
    Ok(ExitCode::Success)
}

/// `prune --names-from -`: names on stdin, the ones to delete on stdout; deletes nothing.
fn prune_names(
    cluster: &str,
    policy: &retention::Policy,
    now: Option<chrono::DateTime<chrono::Utc>>,
    format: Format,
) -> Result<ExitCode> {
    const MAX_NAMES: usize = 10_000_000;
    let mut names = Vec::new();
    let stdin = std::io::stdin().lock();
    for line in stdin.split(b'\n') {
        let line = line.map_err(|e| Error::io("prune: reading names from stdin", &e))?;
        if names.len() >= MAX_NAMES {
            return Err(Error::usage("prune: more than 10 million names on stdin"));
        }
        // Names that are not UTF-8 are nobody's backups.
        if let Ok(s) = String::from_utf8(line) {
            let s = s.strip_suffix('\r').unwrap_or(&s).to_string();
            names.push(s);
        }
    }
    let decision = retention::decide(
        names.iter().map(String::as_str),
        cluster,
        policy,
        now.unwrap_or_else(chrono::Utc::now),
    );
    let text = match format {
        Format::Json => format!(
            "{}\n",
            json::to_line(&PruneReport {
                deleted: decision.delete,
                kept: decision.keep,
                dry_run: true
            })
        ),
        _ => decision.delete.iter().map(|n| format!("{n}\n")).collect(),
    };
    etcd_common::output::print_stdout(&text)?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_lines() {
        let h = "a".repeat(64);
        assert_eq!(
            parse_sha256_line(format!("{h}  x.db\n").as_bytes(), "x.db"),
            Some(h.clone())
        );
        assert_eq!(
            parse_sha256_line(format!("{h}  y.db\n").as_bytes(), "x.db"),
            None
        );
        assert_eq!(parse_sha256_line(b"zz  x.db\n", "x.db"), None);
    }

    #[test]
    fn companions_fold_only_when_the_object_exists() {
        let all: std::collections::BTreeSet<String> = [
            "a.db",
            "a.db.sha256",
            "a.db.json",
            "a.db.proof.json",
            "b.db.sha256",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert!(is_companion("a.db.sha256", &all));
        assert!(is_companion("a.db.proof.json", &all));
        assert!(!is_companion("b.db.sha256", &all));
        assert!(!is_companion("a.db", &all));
    }
}
