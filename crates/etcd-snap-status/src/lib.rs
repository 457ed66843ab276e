//! `etcd-snap-status`: verify and describe a snapshot, from a file or straight from a pipe.
//!
//! Verification is bbolt's consistency check plus the SHA-256 trailer; the description is what
//! `etcdutl snapshot status` of the snapshot's own etcd version prints (byte for byte in `simple`
//! and `table`; another version's with `--as-etcdutl`, see [`etcdutl`]), with the rest of what an
//! operator wants to know about a backup in JSON and in the `--detail` view.

pub mod cli;
pub mod etcdutl;
pub mod input;
pub mod k8s;
pub mod k8s_report;
pub mod report;

use etcd_common::codec::decode::{self, Layer};
use etcd_common::{Error, ExitCode, Result};
use input::{Input, Trailer};
use std::io::{IsTerminal, Write};

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        let described = describe(options)?;
        report::print(&described, options)?;
        // The report carries its warnings; repeat them on stderr when stdout goes elsewhere (a
        // file, a pipe into jq, a mail), so that whoever runs the command still sees them.
        let stdout_seen = std::io::stdout().is_terminal();
        if let Some(inventory) = described.k8s.as_ref().filter(|_| !stdout_seen) {
            for warning in k8s_report::warnings(inventory) {
                // stderr may be closed too (`2>&1 | head`): a warning is not worth a panic.
                let _ = writeln!(std::io::stderr(), "Warning: {warning}");
            }
        }
        Ok(ExitCode::Success)
    })
}

/// A verified snapshot and what it holds.
#[derive(Debug)]
pub struct Described {
    /// What etcd-db found in it.
    pub analysis: etcd_db::Analysis,
    /// The trailer check (never a mismatch: that is an error).
    pub trailer: Trailer,
    /// Layers peeled off the input, outermost first.
    pub layers: Vec<Layer>,
    /// With `--k8s`: the inventory of the Kubernetes objects.
    pub k8s: Option<k8s_registry::Inventory>,
}

/// Where a snapshot comes from and how to read it: what `open_verified` needs.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The file, or `None` for stdin.
    pub input: Option<&'a std::path::Path>,
    /// age identity files.
    pub identities: &'a [String],
    /// Accept a database without the SHA-256 trailer.
    pub skip_hash_check: bool,
}

/// A verified snapshot, and what the caller read from its database.
#[derive(Debug)]
pub struct Opened<T> {
    /// What etcd-db found in it.
    pub analysis: etcd_db::Analysis,
    /// The trailer check (never a mismatch: that is an error).
    pub trailer: Trailer,
    /// Layers peeled off the input, outermost first.
    pub layers: Vec<Layer>,
    /// What `then` returned.
    pub read: T,
}

/// Opens, verifies and analyses the snapshot named by `options`.
pub fn describe(options: &cli::Options) -> Result<Described> {
    let source = Source {
        input: options.input.as_deref(),
        identities: &options.identities,
        skip_hash_check: options.skip_hash_check,
    };
    let opened = open_verified(source, |db, name| match &options.k8s_prefix {
        Some(prefix) => k8s::inventory(db, prefix, name).map(Some),
        None => Ok(None),
    })?;
    Ok(Described {
        analysis: opened.analysis,
        trailer: opened.trailer,
        layers: opened.layers,
        k8s: opened.read,
    })
}

/// Opens the snapshot (file or stdin; raw, zstd or age), runs the consistency check and the
/// analysis, then `then` on the database (`name` names the input for errors), and checks the
/// SHA-256 trailer; a raw file is hashed while the rest runs. Shared by `etcd-snap-get`, so that
/// every offline tool reads and verifies its input the same way.
pub fn open_verified<T>(
    source: Source<'_>,
    then: impl FnOnce(&bbolt::Db, &str) -> Result<T>,
) -> Result<Opened<T>> {
    let identities = decode::load_identities(source.identities)?;
    let (input, name) = input::open(source.input)?;
    let skip = source.skip_hash_check;
    let (analysis, read, trailer, layers) = match input {
        Input::RawFile { file, len } => std::thread::scope(|scope| {
            // The trailer hash reads the file front to back while the check walks its trees.
            // --skip-hash-check skips the hash too: that is most of the time on a large file.
            let to_hash = &file;
            let hashing = scope.spawn(move || match skip {
                true => Ok(Trailer::Absent),
                false => etcd_common::codec::trailer::file_trailer(to_hash, len),
            });
            let analysed = file
                .try_clone()
                .map_err(|e| input::read_failure(&name, &e))
                .and_then(|f| analyze(bbolt::Db::from_file(f), &name, then));
            let trailer = match hashing.join() {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err(input::read_failure(&name, &e)),
                Err(_) => Err(Error::new(
                    ExitCode::LocalIo,
                    format!("{name}: hashing failed"),
                )),
            };
            let (analysis, read) = analysed?;
            Ok::<_, Error>((analysis, read, trailer?, Vec::new()))
        })?,
        Input::Stream(stream) => {
            let spooled = input::spool(stream, &identities, &name, input::spool_slack(skip))?;
            let (analysis, read) = analyze(bbolt::Db::from_file(spooled.file), &name, then)?;
            (analysis, read, spooled.trailer, spooled.layers)
        }
    };
    match &trailer {
        Trailer::Mismatch { computed, stored } => {
            return Err(input::mismatch_error(&name, computed, stored))
        }
        Trailer::Absent if !skip => {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("{name}: no SHA-256 trailer: not a whole `snapshot save` output (truncated?); a db file copied from a data dir needs --skip-hash-check"),
            ))
        }
        _ => {}
    }
    Ok(Opened {
        analysis,
        trailer,
        layers,
        read,
    })
}

fn analyze<T>(
    db: bbolt::Result<bbolt::Db>,
    name: &str,
    then: impl FnOnce(&bbolt::Db, &str) -> Result<T>,
) -> Result<(etcd_db::Analysis, T)> {
    let db = db.map_err(|e| match e {
        bbolt::Error::Io { .. } => Error::new(ExitCode::LocalIo, format!("{name}: {e}")),
        other => Error::new(
            ExitCode::Integrity,
            format!("{name}: not a valid snapshot: {other}"),
        ),
    })?;
    let analysis = etcd_db::analyze(&db).map_err(|e| db_error(name, e))?;
    let read = then(&db, name)?;
    Ok((analysis, read))
}

/// Maps an error of reading the database: I/O is exit 6, anything else is damage (exit 4).
pub fn db_error(name: &str, e: etcd_db::Error) -> Error {
    match e {
        etcd_db::Error::Bbolt(bbolt::Error::Io { .. }) => {
            Error::new(ExitCode::LocalIo, format!("{name}: {e}"))
        }
        other => Error::new(ExitCode::Integrity, format!("{name}: {other}")),
    }
}
