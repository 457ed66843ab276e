//! `etcd-health`: is each endpoint, or the whole cluster, healthy?
//!
//! The check is `etcdctl endpoint health` 3.5's (a linearizable read of key `health`, where
//! "permission denied" still proves a working quorum, then the alarm list), with what scripts need on
//! top: per-endpoint facts in JSON, `--wait` for a restarted cluster, `--min-healthy` for a degraded but
//! quorate one, and an exit code for each case.

pub mod check;
pub mod cli;
pub mod cluster;
pub mod report;

use etcd_common::{ExitCode, Result};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| etcd_common::Error::io("starting the async runtime", &e))?;
        runtime.block_on(run(options))
    })
}

/// Checks until healthy enough or `--wait` runs out, prints the report, returns the exit code.
pub async fn run(options: &cli::Options) -> Result<ExitCode> {
    if options.conn.skip_verify {
        eprintln!("Warning: --insecure-skip-tls-verify: server certificates are not verified");
    }
    let deadline = options.wait.map(|w| Instant::now() + w);
    let show_progress = !options.quiet && (options.progress || std::io::stderr().is_terminal());
    loop {
        let outcome = check_once(options).await;
        let verdict = report::verdict(&outcome, options.min_healthy);
        let out_of_time = deadline.is_none_or(|d| Instant::now() >= d);
        if verdict.code == ExitCode::Success || out_of_time {
            return report::print(&outcome, &verdict, options);
        }
        if show_progress {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let _ = writeln!(
                std::io::stderr(),
                "waiting: {} of {} endpoints healthy, {}s left",
                verdict.healthy,
                verdict.total,
                left.map(|l| l.as_secs()).unwrap_or(0)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One round: find the endpoints (`--cluster`), check each concurrently.
async fn check_once(options: &cli::Options) -> report::Outcome {
    let (conn, members) = if options.cluster {
        match cluster::discover(&options.conn).await {
            Ok(found) => (
                options.conn.with_endpoints(found.endpoints),
                Some(found.members),
            ),
            Err(err) => return report::Outcome::Discovery(err),
        }
    } else {
        (options.conn.clone(), None)
    };
    let checks = conn.endpoints.iter().map(|ep| {
        let conn = conn.clone();
        let ep = ep.clone();
        tokio::spawn(async move { check::endpoint(&ep, &conn).await })
    });
    let mut results = Vec::new();
    for (handle, ep) in checks.collect::<Vec<_>>().into_iter().zip(&conn.endpoints) {
        results.push(match handle.await {
            Ok(result) => result,
            Err(e) => check::EndpointHealth::failed(ep, format!("check aborted: {e}"), None),
        });
    }
    report::Outcome::Checked { results, members }
}
