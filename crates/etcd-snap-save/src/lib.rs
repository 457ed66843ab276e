//! `etcd-snap-save`: take a snapshot over the etcd v3 API and stream it to stdout or atomically to a
//! file, verifying the server's SHA-256 trailer on the way, optionally through zstd and age.
//!
//! The snapshot is never held in memory: each 32 KiB message is hashed, encoded and written as it
//! arrives, so memory stays flat whatever the database size.

pub mod cli;
pub mod dest;
pub mod prove;
pub mod report;
pub mod stream;

use cli::{Options, Prefer};
use dest::Destination;
use etcd_common::client::{self, Client, ClientError, FailureKind};
use etcd_common::conn::Endpoint;
use etcd_common::layers::encode;
use etcd_common::progress::{self, Progress};
use etcd_common::{Error, ExitCode, Result};
use report::Summary;
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Instant;
use stream::StreamCheck;

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        exit_on_signal()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the async runtime", &e))?;
        runtime.block_on(run(options))
    })
}

/// Ends the process on SIGINT or SIGTERM whatever the main thread is blocked in: a write to a
/// pipe whose reader stalled, a frozen server, a slow fsync. A thread of its own waits for the
/// signal, removes the `.part` (see [`dest::abandon`]), prints the error line and exits with 130
/// or 143; the main thread is never asked to notice.
fn exit_on_signal() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::io("installing signal handlers", &e))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Some(signal) = signals.forever().next() else {
                return;
            };
            let (code, what) = if signal == SIGINT {
                (ExitCode::Interrupted, "interrupted")
            } else {
                (ExitCode::Terminated, "terminated")
            };
            let abandoned = dest::abandon();
            let mut lines = String::new();
            if let Some(warning) = abandoned.warning {
                lines.push_str(&warning);
                lines.push('\n');
            }
            match abandoned.saved {
                Some(path) => lines.push_str(&format!("Error: {what} after {path} was saved\n")),
                None => lines.push_str(&format!("Error: {what}: nothing was saved\n")),
            }
            last_words(lines);
            std::process::exit(i32::from(code.code()));
        })
        .map_err(|e| Error::io("starting the signal thread", &e))?;
    Ok(())
}

/// Writes `text` to stderr, waiting at most a second: stderr may be a stalled pipe too, or
/// locked by the main thread blocked in a progress line, and the process must end regardless.
fn last_words(text: String) {
    let (done, wait) = std::sync::mpsc::channel();
    let writer = std::thread::Builder::new().spawn(move || {
        let _ = io::stderr().write_all(text.as_bytes());
        let _ = done.send(());
    });
    if writer.is_ok() {
        let _ = wait.recv_timeout(std::time::Duration::from_secs(1));
    }
}

/// Saves the snapshot and prints the summary.
pub async fn run(options: &Options) -> Result<ExitCode> {
    if options.conn.skip_verify {
        eprintln!("Warning: --insecure-skip-tls-verify: server certificates are not verified");
    }
    let (mut summary, spool) = save_for_proof(options).await?;
    if !options.prove {
        report::print(&summary, options)?;
        return Ok(ExitCode::Success);
    }
    let own = {
        let (db, name) = match (spool, &options.target) {
            (Some(file), _) => (bbolt::Db::from_file(file), "the saved snapshot".to_string()),
            (None, dest::Target::File(path)) => (bbolt::Db::open(path), path.display().to_string()),
            (None, dest::Target::Stdout) => {
                return Err(Error::new(
                    ExitCode::LocalIo,
                    "no copy of the snapshot to prove",
                ))
            }
        };
        let db = db.map_err(|e| {
            Error::new(
                ExitCode::Integrity,
                format!("{name}: opening it to prove it: {e}"),
            )
        })?;
        prove::snapshot_hash(&db, &name)?
    };
    // The member list comes from the endpoint that served the snapshot.
    let endpoint = options
        .conn
        .endpoints
        .iter()
        .find(|ep| ep.text == summary.endpoint)
        .or(options.conn.endpoints.first())
        .ok_or_else(|| Error::usage("no endpoint to ask for the member list"))?;
    let proof = prove::prove(own, endpoint, &options.conn).await?;
    let outcome = proof.outcome();
    summary.proof = Some(proof);
    report::print(&summary, options)?;
    outcome.map(|()| ExitCode::Success)
}

/// A member that has started streaming its snapshot.
struct Started {
    endpoint: Endpoint,
    member_id: u64,
    revision: i64,
    /// Whether the member is a learner (its snapshot may lag behind the cluster).
    is_learner: bool,
    stream: etcd_client::SnapshotStreaming,
    first: etcd_client::SnapshotResponse,
    /// Keeps the connection open while the stream runs.
    _client: Client,
}

/// What [`start`] does with a learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Learners {
    /// Leave it for later: other endpoints are left to try.
    Defer,
    /// Take its snapshot.
    Accept,
}

/// Why [`start`] did not start a stream.
enum NotStarted {
    /// The endpoint failed.
    Failed(ClientError),
    /// The member is a learner and [`Learners::Defer`] was asked.
    Learner,
}

impl From<ClientError> for NotStarted {
    fn from(e: ClientError) -> Self {
        NotStarted::Failed(e)
    }
}

/// Takes the snapshot from the first endpoint that starts streaming and writes it out. Learners
/// come last: a learner serves snapshots (etcd allows it) but its copy may lag behind the
/// voting members, so it is used only when no voting member among the endpoints can stream.
pub async fn save(options: &Options) -> Result<Summary> {
    save_for_proof(options).await.map(|(summary, _)| summary)
}

/// [`save`], and, with `--prove` when the output is not a plain file that can be read back
/// (stdout, `--compress`, `-r`/`-R`), the database as it streamed, in an unnamed 0600 spool file.
async fn save_for_proof(options: &Options) -> Result<(Summary, Option<std::fs::File>)> {
    let destination = Destination::open(&options.target, options.force)?;
    let mut failures: Vec<(Endpoint, ClientError)> = Vec::new();
    let ordered = ordered_endpoints(options).await;
    let policy = if ordered.len() > 1 {
        Learners::Defer
    } else {
        Learners::Accept
    };
    let mut queue: VecDeque<(Endpoint, Learners)> =
        ordered.into_iter().map(|ep| (ep, policy)).collect();
    while let Some((endpoint, policy)) = queue.pop_front() {
        match start(&endpoint, options, policy).await {
            Ok(started) => {
                if started.is_learner {
                    eprintln!(
                        "Warning: {} is a learner: its snapshot may lag behind the voting members",
                        endpoint.text
                    );
                }
                return transfer(started, destination, options).await;
            }
            Err(NotStarted::Learner) => queue.push_back((endpoint, Learners::Accept)),
            Err(NotStarted::Failed(e)) => {
                if options.conn.endpoints.len() > 1 {
                    eprintln!(
                        "Warning: {}: {} (trying the next endpoint)",
                        endpoint.text, e.message
                    );
                }
                failures.push((endpoint, e));
            }
        }
    }
    Err(no_endpoint_streamed(failures))
}

/// The error when no endpoint could start a snapshot: a rejected credential or permission beats
/// an unreachable member, since retrying will not help it.
fn no_endpoint_streamed(failures: Vec<(Endpoint, ClientError)>) -> Error {
    let worst = failures
        .iter()
        .find(|(_, e)| e.exit_code() == ExitCode::Usage)
        .or(failures.first());
    match worst {
        Some((endpoint, e)) if failures.len() == 1 || e.exit_code() == ExitCode::Usage => {
            permission_hint(e.clone()).into_error(endpoint)
        }
        _ => Error::transient(format!(
            "no endpoint could start a snapshot: {}",
            failures
                .iter()
                .map(|(ep, e)| format!("{}: {}", ep.text, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

fn permission_hint(mut e: ClientError) -> ClientError {
    if e.kind == FailureKind::PermissionDenied {
        e.message = format!(
            "{}: snapshots need a user with the root role (--user root)",
            e.message
        );
    }
    e
}

/// The endpoints in the order to try them (`--prefer` asks each member whether it leads).
async fn ordered_endpoints(options: &Options) -> Vec<Endpoint> {
    let endpoints = options.conn.endpoints.clone();
    if options.prefer == Prefer::Given || endpoints.len() < 2 {
        return endpoints;
    }
    let mut ranked = Vec::new();
    for (i, ep) in endpoints.into_iter().enumerate() {
        let is_leader = async {
            let mut c = client::connect(&ep, &options.conn).await.ok()?;
            let status = client::with_timeout(options.conn.command_timeout, c.status())
                .await
                .ok()?;
            Some(
                status
                    .header()
                    .is_some_and(|h| h.member_id() == status.leader()),
            )
        }
        .await;
        // Unreachable members go last; among the rest the preferred kind comes first.
        let rank = match (is_leader, options.prefer) {
            (None, _) => 2,
            (Some(leader), Prefer::Leader) => usize::from(!leader),
            (Some(leader), _) => usize::from(leader),
        };
        ranked.push((rank, i, ep));
    }
    ranked.sort_by_key(|(rank, i, _)| (*rank, *i));
    ranked.into_iter().map(|(_, _, ep)| ep).collect()
}

/// Connects, reads the member's status, opens the snapshot stream and waits for its first message.
async fn start(
    endpoint: &Endpoint,
    options: &Options,
    learners: Learners,
) -> Result<Started, NotStarted> {
    let timeout = options.conn.command_timeout;
    let mut client = client::connect(endpoint, &options.conn).await?;
    let status = client::with_timeout(timeout, client.status()).await?;
    let is_learner = status.is_learner();
    if is_learner && learners == Learners::Defer {
        return Err(NotStarted::Learner);
    }
    let header = status.header();
    let member_id = header.map(|h| h.member_id()).unwrap_or(0);
    let revision = header.map(|h| h.revision()).unwrap_or(0);
    let mut stream = client::with_timeout(timeout, client.snapshot()).await?;
    let first = client::with_timeout(timeout, stream.message()).await?;
    let first = first.ok_or_else(|| ClientError {
        kind: FailureKind::Server,
        message: "the snapshot stream ended before any data".into(),
    })?;
    Ok(Started {
        endpoint: endpoint.clone(),
        member_id,
        revision,
        is_learner,
        stream,
        first,
        _client: client,
    })
}

/// Counts the bytes that reach the destination.
struct Counting<W> {
    inner: W,
    count: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the snapshot through the checks and encoders into the destination.
async fn transfer(
    started: Started,
    destination: Destination,
    options: &Options,
) -> Result<(Summary, Option<std::fs::File>)> {
    let Started {
        endpoint,
        member_id,
        revision,
        is_learner,
        mut stream,
        first,
        _client,
    } = started;
    let begin = Instant::now();
    let plain_file =
        matches!(options.target, dest::Target::File(_)) && options.encoding.is_identity();
    let mut spool = if options.prove && !plain_file {
        let file = etcd_common::layers::spool::unnamed_file().map_err(|e| {
            Error::io(
                "creating a temporary file to spool the snapshot for --prove (set TMPDIR?)",
                &e,
            )
        })?;
        Some(io::BufWriter::with_capacity(256 * 1024, file))
    } else {
        None
    };
    let spool_error = |e: io::Error| Error::io("writing the --prove spool file", &e);
    // etcd 3.6+ names the storage version of the database in every message (etcdctl 3.6 takes
    // it from the first one); older servers leave the field empty.
    let storage_version = Some(first.version().to_string()).filter(|v| !v.is_empty());
    let written = Rc::new(Cell::new(0u64));
    let mut check = StreamCheck::new();
    let mut progress = Progress::new(
        progress::wanted(options.progress, options.quiet),
        "snapshot",
    );
    // A closed stdout is a failed backup, not a quiet end: the reader that went away (zstd, age,
    // ssh) did not store the snapshot. Exit 6 with a line, unlike a report cut short by `| head`.
    let write_error = |e: io::Error| match (&destination, e.kind()) {
        (Destination::Stdout(_), io::ErrorKind::BrokenPipe) => dest::stdout_closed(written.get()),
        _ => Error::io("writing the snapshot", &e),
    };
    {
        // Unencoded, each message goes straight to the destination (one copy fewer than through a
        // buffer, and written while still in the CPU's cache); an encoder's output is buffered.
        let inner: Box<dyn Write + '_> = if options.encoding.is_identity() {
            destination.writer()
        } else {
            Box::new(io::BufWriter::with_capacity(
                256 * 1024,
                destination.writer(),
            ))
        };
        let base = Counting {
            inner,
            count: written.clone(),
        };
        let mut writer = encode::wrap(base, &options.encoding)?;
        let mut message = Some(first);
        while let Some(msg) = message.take() {
            check
                .feed(msg.remaining_bytes(), msg.blob())
                .map_err(|e| stream_error(&endpoint, e))?;
            if let Some(total) = check.total() {
                progress.set_total(total);
            }
            writer.write_all(msg.blob()).map_err(write_error)?;
            if let Some(spool) = spool.as_mut() {
                spool.write_all(msg.blob()).map_err(spool_error)?;
            }
            progress.update(check.received());
            let waiting = Instant::now();
            message = stream
                .message()
                .await
                .map_err(|e| broken_stream(&endpoint, &e, check.received(), waiting, options))?;
        }
        check.finish().map_err(|e| stream_error(&endpoint, e))?;
        writer.finish().map_err(write_error)?;
    }
    progress.finish(check.received());
    destination.commit()?;
    let elapsed = begin.elapsed();
    let sha256 = check.finish().map_err(|e| stream_error(&endpoint, e))?;
    let spool = match spool {
        Some(writer) => Some(
            writer
                .into_inner()
                .map_err(|e| spool_error(e.into_error()))?,
        ),
        None => None,
    };
    let summary = Summary {
        path: match &options.target {
            dest::Target::Stdout => None,
            dest::Target::File(p) => Some(p.display().to_string()),
        },
        endpoint: endpoint.text.clone(),
        member_id: format!("{member_id:x}"),
        is_learner,
        revision,
        storage_version,
        db_size: check.total().unwrap_or(0),
        bytes_written: written.get(),
        sha256: stream::hex(&sha256),
        compressed: options.encoding.compress_level.is_some(),
        encrypted: !options.encoding.recipients.is_empty(),
        elapsed_seconds: elapsed.as_secs_f64(),
        proof: None,
    };
    Ok((summary, spool))
}

/// The stream ended with an error. A server that stops answering (frozen, its host down, the
/// network cut) is found by the HTTP/2 keepalive: no ping answered within --keepalive-timeout
/// after --keepalive-time of silence. hyper then reports "h2 protocol error: error reading a body
/// from connection"; when nothing arrived for at least that long, say what happened instead.
fn broken_stream(
    endpoint: &Endpoint,
    err: &etcd_client::Error,
    received: u64,
    waiting: Instant,
    options: &Options,
) -> Error {
    let silent = waiting.elapsed();
    let bound = options.conn.keepalive_timeout;
    if silent >= bound {
        return Error::transient(format!(
            "{}: the server stopped answering: nothing received for {:.1} s after {received} bytes, \
             and no answer to keepalive pings (--keepalive-time {:?}, --keepalive-timeout {:?})",
            endpoint.text,
            silent.as_secs_f64(),
            options.conn.keepalive_time,
            bound,
        ));
    }
    Error::transient(format!(
        "{}: the snapshot stream broke after {received} bytes: {}",
        endpoint.text,
        client::classify(err).message
    ))
}

fn stream_error(endpoint: &Endpoint, e: stream::StreamError) -> Error {
    let code = match e {
        stream::StreamError::EndedEarly { .. } => ExitCode::Transient,
        _ => ExitCode::Integrity,
    };
    Error::new(code, format!("{}: {e}", endpoint.text))
}
