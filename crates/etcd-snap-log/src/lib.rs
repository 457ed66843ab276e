//! `etcd-snap-log`: follow an etcd cluster with one watch on the whole keyspace and write every
//! revision to a revision log (crate `etcd-revlog`), for `etcd-snap-restore --log` to replay
//! offline on top of a snapshot.
//!
//! One task does everything in order: read a watch response, complete the revisions in it, ask
//! for the TTL of leases seen for the first time, write and flush, then read the next response.
//! Nothing queues: a slow output slows the watch (HTTP/2 flow control holds etcd back), and the
//! memory is one response and one revision. The next revision to write is the only state a
//! reconnect needs: a new watch starts there, so no revision is lost or written twice. Every
//! request requires a leader (`ConnConfig::require_leader`): a member cut off from the quorum
//! ends the watch with "no leader" rather than keeping it open and silent, and the follower
//! moves to another endpoint.

pub mod cli;

use cli::{Options, Output, Start};
use etcd_client::{Client, WatchOptions};
use etcd_common::client::{self, ClientError, FailureKind};
use etcd_common::{Error, ExitCode, Result};
use etcd_revlog::{Event, EventKind, Lease, Revision, Writer, WriterOptions};
use std::collections::HashSet;
use std::io::{BufWriter, IsTerminal};
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{signal, SignalKind};

/// The largest watch message accepted: etcd fragments responses above its request limit
/// (`--max-request-bytes`), so one message is at most about one event of that size.
const MAX_WATCH_MESSAGE: usize = 2 * etcd_revlog::MAX_RECORD_BYTES;

/// Lease IDs remembered as already recorded; past this the memory is cleared (a lease seen
/// again is recorded again, which readers accept), so the set stays bounded.
const MAX_LEASES_REMEMBERED: usize = 1 << 20;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the async runtime", &e))?;
        runtime.block_on(run(options))
    })
}

/// Why the follower stopped of its own accord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal(&'static str),
    UntilRev,
}

/// What ends one watch.
enum Broken {
    /// The connection or stream failed: reconnect.
    Retry(String),
    /// Stop, closing the log cleanly.
    Stop(Stop),
    /// Fail with this error.
    Fatal(Error),
}

impl From<Error> for Broken {
    fn from(e: Error) -> Self {
        Broken::Fatal(e)
    }
}

impl From<etcd_revlog::Error> for Broken {
    fn from(e: etcd_revlog::Error) -> Self {
        Broken::Fatal(e.into())
    }
}

/// The follower's state across reconnects.
struct Follower<'a> {
    options: &'a Options,
    writer: Writer,
    cluster_id: u64,
    /// The next revision to write.
    next: i64,
    /// The revision being assembled from fragments.
    pending: Option<Revision>,
    leases_seen: HashSet<i64>,
    written: u64,
    events: u64,
    first_written: Option<i64>,
    /// Whether the current watch delivered a response (a watch that breaks at once keeps the
    /// reconnection back-off growing).
    answered: bool,
}

/// Nanoseconds since the Unix epoch, now.
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The revision of a snapshot file, read and verified as etcd-snap-status does: raw, zstd
/// and/or age (with the identity files of `-i`), detected by content.
fn snapshot_revision(path: &std::path::Path, options: &Options) -> Result<i64> {
    let opened = etcd_common::snapshot::open_verified(
        etcd_common::snapshot::Source {
            input: Some(path),
            identities: &options.identities,
            skip_hash_check: options.skip_hash_check,
        },
        |_, _| Ok(()),
    )?;
    Ok(opened.analysis.status.revision)
}

/// Whether a failure is etcd's "no leader" (a member without a leader refusing or canceling a
/// request that requires one): a reason to move to another endpoint, never to stop.
fn is_no_leader(message: &str) -> bool {
    message.to_ascii_lowercase().contains("no leader")
}

/// Connects to the first endpoint that answers, starting at `from`, and returns the client, the
/// endpoint's index and the cluster ID its answer names; or the last endpoint's failure.
async fn connect_any(
    options: &Options,
    from: usize,
) -> std::result::Result<(Client, usize, u64), Error> {
    let eps = &options.conn.endpoints;
    let mut last = Error::usage("no endpoint given (--endpoints)");
    for k in 0..eps.len() {
        let i = (from + k) % eps.len();
        let ep = &eps[i];
        let attempt = async {
            let mut c = client::connect(ep, &options.conn).await?;
            let status = client::with_timeout(options.conn.command_timeout, c.status()).await?;
            let cluster = status.header().map(|h| h.cluster_id()).unwrap_or(0);
            Ok::<_, ClientError>((c, cluster))
        };
        match attempt.await {
            Ok((c, cluster)) => return Ok((c, i, cluster)),
            Err(e) => last = e.into_error(ep),
        }
    }
    Err(last)
}

/// Follows the cluster until a signal, `--until-rev`, or a fatal error.
pub async fn run(options: &Options) -> Result<ExitCode> {
    if options.conn.skip_verify && !options.quiet {
        eprintln!("Warning: --insecure-skip-tls-verify: server certificates are not verified");
    }
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("installing signal handlers", &e))?;
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| Error::io("installing signal handlers", &e))?;
    if options.output == Output::Stdout && std::io::stdout().is_terminal() {
        return Err(Error::new(
            ExitCode::Refused,
            "refusing to write a binary log to a terminal: redirect stdout (> FILE, | zstd ...) or give -o DIR",
        ));
    }
    let requested = match &options.start {
        Start::Revision(r) => Some(*r),
        Start::Snapshot(path) => Some(snapshot_revision(path, options)? + 1),
        Start::Continue => None,
    };
    let (mut client, mut at, cluster_id) = connect_any(options, 0).await?;
    let wopts = WriterOptions {
        segment_bytes: options.segment_bytes,
        segment_age: options.segment_age,
    };
    let writer = match &options.output {
        Output::Dir(dir) => Writer::create_dir(dir, cluster_id, wopts)?,
        Output::Stdout => Writer::to_stream(
            Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout())),
            cluster_id,
            wopts,
        ),
    };
    let next = match (writer.last_revision(), requested) {
        (Some(last), Some(r)) if r > last + 1 => {
            return Err(Error::new(
                ExitCode::Refused,
                format!(
                    "the log in the directory ends at revision {last}: starting at {r} would \
                     leave a gap; give another directory, or omit --from-rev to continue"
                ),
            ))
        }
        (Some(last), _) => last + 1,
        // No event ever has revision 1 (an empty store's initial revision): a log from an empty
        // snapshot (revision 0) or from --from-rev 1 starts at the first revision a write makes.
        (None, Some(r)) => r.max(2),
        (None, None) => {
            return Err(Error::usage(
                "the directory holds no log yet: give --from-rev N or --from-snapshot FILE",
            ))
        }
    };
    let mut f = Follower {
        options,
        writer,
        cluster_id,
        next,
        pending: None,
        leases_seen: HashSet::new(),
        written: 0,
        events: 0,
        first_written: None,
        answered: false,
    };
    if options.until_rev.is_some_and(|u| u < next) {
        return f.finish(Stop::UntilRev);
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        f.answered = false;
        let broken = f.follow(&mut client, &mut sigint, &mut sigterm).await;
        if f.answered {
            backoff = Duration::from_millis(100);
        }
        match broken {
            Broken::Stop(stop) => return f.finish(stop),
            Broken::Fatal(e) => {
                // What was written stays a valid log: close it before failing.
                let _ = f.writer.close_segment();
                let _ = f.writer.flush();
                return Err(e);
            }
            Broken::Retry(why) => {
                let ep = &options.conn.endpoints[at].text;
                if is_no_leader(&why) {
                    f.warn(&format!(
                        "Warning: {ep} has no leader (cut off from the quorum?): {why}; \
                         reconnecting to another endpoint at revision {}",
                        f.next
                    ));
                } else {
                    f.warn(&format!(
                        "Warning: watch on {ep} broke: {why}; reconnecting at revision {}",
                        f.next
                    ));
                }
            }
        }
        // Reconnect to any endpoint, the next one first, until one answers or a signal.
        loop {
            let sleep = tokio::time::sleep(backoff);
            tokio::select! {
                _ = sleep => {}
                _ = sigint.recv() => return f.finish(Stop::Signal("SIGINT")),
                _ = sigterm.recv() => return f.finish(Stop::Signal("SIGTERM")),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match connect_any(options, at + 1).await {
                Ok((c, i, cluster)) => {
                    if cluster != f.cluster_id {
                        let _ = f.writer.close_segment();
                        return Err(Error::usage(format!(
                            "{} belongs to cluster {cluster:016x}, the log to {:016x}: give the \
                             endpoints of one cluster",
                            options.conn.endpoints[i].text, f.cluster_id
                        )));
                    }
                    client = c;
                    at = i;
                    break;
                }
                Err(e) => {
                    if e.code == ExitCode::Usage {
                        let _ = f.writer.close_segment();
                        return Err(e);
                    }
                    f.warn(&format!("Warning: no endpoint answers ({e}); retrying"));
                }
            }
        }
    }
}

impl Follower<'_> {
    fn warn(&self, line: &str) {
        if !self.options.quiet {
            eprintln!("{line}");
        }
    }

    /// Closes the log and prints the summary.
    fn finish(mut self, stop: Stop) -> Result<ExitCode> {
        self.writer.close_segment()?;
        self.writer.flush()?;
        let last = self.writer.last_revision();
        let segments = self.writer.segments_closed();
        self.writer.finish()?;
        if !self.options.quiet {
            let why = match stop {
                Stop::Signal(s) => format!("stopped by {s}"),
                Stop::UntilRev => "reached --until-rev".into(),
            };
            match (self.first_written, last) {
                (Some(first), Some(last)) => eprintln!(
                    "etcd-snap-log: {why}: logged revisions {first}..{last} ({} revisions, {} \
                     events, {segments} segments closed)",
                    self.written, self.events
                ),
                _ => eprintln!("etcd-snap-log: {why}: no revision logged"),
            }
        }
        Ok(ExitCode::Success)
    }

    /// One watch, from `self.next`, until it breaks or the follower stops.
    async fn follow(
        &mut self,
        client: &mut Client,
        sigint: &mut tokio::signal::unix::Signal,
        sigterm: &mut tokio::signal::unix::Signal,
    ) -> Broken {
        self.pending = None;
        let opts = WatchOptions::new()
            .with_all_keys()
            .with_start_revision(self.next)
            .with_progress_notify()
            .with_fragment();
        let mut wc = client
            .watch_client()
            .max_decoding_message_size(MAX_WATCH_MESSAGE);
        let watch = client::with_timeout(
            self.options.conn.command_timeout,
            wc.watch(Vec::<u8>::new(), Some(opts)),
        )
        .await;
        let mut stream = match watch {
            Ok(s) => s,
            Err(e) => return self.client_failure(e),
        };
        loop {
            let deadline = self.writer.deadline();
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = stream.message() => {
                    let resp = match msg {
                        Ok(Some(resp)) => resp,
                        Ok(None) => return Broken::Retry("the server ended the watch".into()),
                        Err(e) => return self.client_failure(client::classify(&e)),
                    };
                    self.answered = true;
                    if let Err(b) = self.handle(client, resp).await {
                        return b;
                    }
                }
                _ = timer => {
                    if let Err(e) = self.writer.close_segment().and_then(|()| self.writer.flush()) {
                        return e.into();
                    }
                }
                _ = sigint.recv() => return Broken::Stop(Stop::Signal("SIGINT")),
                _ = sigterm.recv() => return Broken::Stop(Stop::Signal("SIGTERM")),
            }
        }
    }

    fn client_failure(&self, e: ClientError) -> Broken {
        match e.kind {
            FailureKind::Auth | FailureKind::PermissionDenied | FailureKind::Tls => {
                Broken::Fatal(Error::usage(e.message))
            }
            _ => Broken::Retry(e.message),
        }
    }

    /// Takes one watch response: completes and writes the revisions in it.
    async fn handle(
        &mut self,
        client: &mut Client,
        mut resp: etcd_client::WatchResponse,
    ) -> std::result::Result<(), Broken> {
        if let Some(h) = resp.header() {
            if h.cluster_id() != 0 && h.cluster_id() != self.cluster_id {
                return Err(Broken::Fatal(Error::usage(format!(
                    "the endpoint now answers for cluster {:016x}, the log is of {:016x}",
                    h.cluster_id(),
                    self.cluster_id
                ))));
            }
        }
        if resp.canceled() {
            if resp.compact_revision() > 0 {
                return Err(Broken::Fatal(Error::transient(format!(
                    "gap: compacted at {}; take a new snapshot (etcd-snap-save) and start the \
                     log from it (the log is complete up to revision {})",
                    resp.compact_revision(),
                    self.next - 1
                ))));
            }
            let reason = resp.cancel_reason().to_string();
            if reason.to_ascii_lowercase().contains("permission") {
                return Err(Broken::Fatal(Error::usage(format!(
                    "the watch was refused: {reason}"
                ))));
            }
            return Err(Broken::Retry(format!("the watch was canceled: {reason}")));
        }
        let fragment = resp.0.fragment;
        let events = std::mem::take(&mut resp.0.events);
        for ev in events {
            let Some(kv) = ev.kv else { continue };
            let rev = kv.mod_revision;
            if let Some(p) = &self.pending {
                if rev > p.revision {
                    self.complete(client).await?;
                } else if rev < p.revision {
                    return Err(Broken::Retry(format!(
                        "event of revision {rev} after revision {}",
                        p.revision
                    )));
                }
            }
            if self.pending.is_none() {
                if rev < self.next {
                    // Already written (cannot happen with a watch from `next`): never twice.
                    continue;
                }
                if rev > self.next {
                    return Err(Broken::Fatal(Error::transient(format!(
                        "gap: etcd sent revision {rev} when {} was expected; take a new snapshot \
                         (etcd-snap-save) and start the log from it",
                        self.next
                    ))));
                }
                self.pending = Some(Revision {
                    revision: rev,
                    observed_unix_nanos: 0,
                    events: Vec::new(),
                    leases: Vec::new(),
                });
            }
            let kind = if ev.r#type == 1 {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            if let Some(p) = self.pending.as_mut() {
                p.events.push(Event {
                    kind,
                    key: kv.key,
                    value: kv.value,
                    create_revision: kv.create_revision,
                    mod_revision: kv.mod_revision,
                    version: kv.version,
                    lease: kv.lease,
                });
            }
        }
        // etcd never splits a revision across responses except as fragments, the last of
        // which is not marked: so an unmarked response completes what it holds.
        if !fragment && self.pending.is_some() {
            self.complete(client).await?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Writes the pending revision: stamps it, records new leases, appends it.
    async fn complete(&mut self, client: &mut Client) -> std::result::Result<(), Broken> {
        let Some(mut rev) = self.pending.take() else {
            return Ok(());
        };
        rev.observed_unix_nanos = now_nanos();
        for i in 0..rev.events.len() {
            let (kind, lease) = (rev.events[i].kind, rev.events[i].lease);
            if kind != EventKind::Put || lease == 0 || self.leases_seen.contains(&lease) {
                continue;
            }
            let ttl = client::with_timeout(
                self.options.conn.command_timeout,
                client.lease_time_to_live(lease, None),
            )
            .await;
            let granted_ttl = match ttl {
                Ok(r) if r.ttl() < 0 => -1,
                Ok(r) => r.granted_ttl(),
                Err(e) => {
                    return Err(self.client_failure(e));
                }
            };
            if self.leases_seen.len() >= MAX_LEASES_REMEMBERED {
                self.leases_seen.clear();
            }
            self.leases_seen.insert(lease);
            rev.leases.push(Lease {
                id: lease,
                granted_ttl,
            });
        }
        self.writer.write(&rev)?;
        self.next = rev.revision + 1;
        self.written += 1;
        self.events += rev.events.len() as u64;
        self.first_written.get_or_insert(rev.revision);
        if self.options.until_rev.is_some_and(|u| rev.revision >= u) {
            return Err(Broken::Stop(Stop::UntilRev));
        }
        Ok(())
    }
}
