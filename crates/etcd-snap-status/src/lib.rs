//! `etcd-snap-status`: verify and describe a snapshot, from a file or straight from a pipe.
//!
//! Verification is bbolt's consistency check plus the SHA-256 trailer; the description is what
//! `etcdutl snapshot status` 3.5 prints (byte for byte in `simple` and `table`), with the rest of what
//! an operator wants to know about a backup in JSON and in the `--detail` view.

pub mod cli;
pub mod input;
pub mod report;

use etcd_common::codec::decode::{self, Layer};
use etcd_common::{Error, ExitCode, Result};
use input::{Input, Trailer};

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        let described = describe(options)?;
        report::print(&described, options)?;
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
}

/// Opens, verifies and analyses the snapshot named by `options`.
pub fn describe(options: &cli::Options) -> Result<Described> {
    let identities = decode::load_identities(&options.identities)?;
    let (input, name) = input::open(options.input.as_deref())?;
    let (analysis, trailer, layers) = match input {
        Input::RawFile { file, len } => std::thread::scope(|scope| {
            // The trailer hash reads the file front to back while the check walks its trees.
            // --skip-hash-check skips the hash too: that is most of the time on a large file.
            let (skip, to_hash) = (options.skip_hash_check, &file);
            let hashing = scope.spawn(move || match skip {
                true => Ok(Trailer::Absent),
                false => etcd_common::codec::trailer::file_trailer(to_hash, len),
            });
            let analysis = file
                .try_clone()
                .map_err(|e| input::read_failure(&name, &e))
                .and_then(|f| analyze(bbolt::Db::from_file(f), &name));
            let trailer = match hashing.join() {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err(input::read_failure(&name, &e)),
                Err(_) => Err(Error::new(
                    ExitCode::LocalIo,
                    format!("{name}: hashing failed"),
                )),
            };
            Ok::<_, Error>((analysis?, trailer?, Vec::new()))
        })?,
        Input::Stream(stream) => {
            let spooled = input::spool(stream, &identities, &name)?;
            let analysis = analyze(bbolt::Db::from_file(spooled.file), &name)?;
            (analysis, spooled.trailer, spooled.layers)
        }
    };
    match &trailer {
        Trailer::Mismatch { computed, stored } => {
            return Err(input::mismatch_error(&name, computed, stored))
        }
        Trailer::Absent if !options.skip_hash_check => {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("{name}: no SHA-256 trailer: not a whole `snapshot save` output (truncated?); a db file copied from a data dir needs --skip-hash-check"),
            ))
        }
        _ => {}
    }
    Ok(Described {
        analysis,
        trailer,
        layers,
    })
}

fn analyze(db: bbolt::Result<bbolt::Db>, name: &str) -> Result<etcd_db::Analysis> {
    let integrity = |what: String| Error::new(ExitCode::Integrity, format!("{name}: {what}"));
    let db = db.map_err(|e| match e {
        bbolt::Error::Io { .. } => Error::new(ExitCode::LocalIo, format!("{name}: {e}")),
        other => integrity(format!("not a valid snapshot: {other}")),
    })?;
    etcd_db::analyze(&db).map_err(|e| match e {
        etcd_db::Error::Bbolt(bbolt::Error::Io { .. }) => {
            Error::new(ExitCode::LocalIo, format!("{name}: {e}"))
        }
        other => integrity(other.to_string()),
    })
}
