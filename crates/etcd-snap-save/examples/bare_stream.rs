//! The physical reference for `etcd-snap-save`: the least a client can do to take a snapshot.
//!
//! ```text
//! cargo run --release -p etcd-snap-save --example bare_stream -- [--endpoints EP] [--fsync] [FILE]
//! ```
//!
//! Connects with etcd-client (plain text, no auth), calls the Snapshot RPC and writes every blob
//! to `FILE` (default `/dev/null`) as it arrives: no hashing, no verification, no rename, and no
//! fsync unless `--fsync` asks for one at the end (what any durable save must pay). Prints the
//! bytes received and the time taken to stderr. `scripts/bench` compares the wall time of
//! `etcd-snap-save` with this.

use std::fs::File;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use etcd_client::Client;

/// The error type of this example: a message for the user.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// The usage line.
const USAGE: &str = "usage: bare_stream [--endpoints EP] [--fsync] [FILE]";

/// The parsed command line.
struct Args {
    /// The one endpoint.
    endpoint: String,
    /// Where the blobs go.
    path: String,
    /// fsync the file at the end.
    fsync: bool,
}

/// Parses `[--endpoints EP] [--fsync] [FILE]`.
fn parse_args() -> Result<Args, Error> {
    let mut endpoint = "127.0.0.1:2379".to_string();
    let mut path = None;
    let mut fsync = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if let Some(v) = arg.strip_prefix("--endpoints=") {
            endpoint = v.to_string();
        } else if arg == "--endpoints" {
            endpoint = it.next().ok_or("--endpoints needs a value")?;
        } else if arg == "--fsync" {
            fsync = true;
        } else if arg.starts_with("--") {
            return Err(format!("unknown flag {arg:?}; {USAGE}").into());
        } else if path.replace(arg).is_some() {
            return Err(format!("more than one FILE; {USAGE}").into());
        }
    }
    Ok(Args {
        endpoint,
        path: path.unwrap_or_else(|| "/dev/null".to_string()),
        fsync,
    })
}

/// Streams the snapshot into `path`; returns the bytes received.
async fn run(endpoint: &str, path: &str, fsync: bool) -> Result<u64, Error> {
    let mut out = File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?;
    let mut client = Client::connect([endpoint], None)
        .await
        .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
    let mut stream = client
        .snapshot()
        .await
        .map_err(|e| format!("snapshot from {endpoint}: {e}"))?;
    let mut total = 0u64;
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|e| format!("snapshot stream from {endpoint}: {e}"))?
    {
        let blob = msg.blob();
        out.write_all(blob)
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        total += blob.len() as u64;
    }
    if fsync {
        out.sync_all()
            .map_err(|e| format!("cannot fsync {path}: {e}"))?;
    }
    Ok(total)
}

/// Parses, streams, reports; errors are one line on stderr and exit code 1.
fn main() -> ExitCode {
    let Args {
        endpoint,
        path,
        fsync,
    } = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let started = Instant::now();
    match rt.block_on(run(&endpoint, &path, fsync)) {
        Ok(total) => {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "bare_stream: received {total} bytes in {secs:.2}s ({:.1} MiB/s) into {path}",
                total as f64 / (1u64 << 20) as f64 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}
