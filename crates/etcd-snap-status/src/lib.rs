//! `etcd-snap-status`: verify and describe a snapshot, from a file or straight from a pipe.
//!
//! Verification is bbolt's consistency check plus the SHA-256 trailer; the description is what
//! `etcdutl snapshot status` of the snapshot's own etcd version prints (byte for byte in `simple`
//! and `table`; another version's with `--as-etcdutl`, see [`etcdutl`]), with the rest of what an
//! operator wants to know about a backup in JSON and in the `--detail` view. With `--hashkv`, the
//! report is etcd's `HashKV` of the snapshot instead, as `etcdutl hashkv` prints it ([`hashkv`]).

pub mod cli;
pub mod etcdutl;
pub mod hashkv;
pub mod k8s;
pub mod k8s_report;
pub mod log;
pub mod report;

use etcd_common::layers::decode::Layer;
use etcd_common::layers::trailer::Trailer;
use etcd_common::snapshot::{open_verified, Source};
use etcd_common::{ExitCode, Result};
use std::io::{IsTerminal, Write};

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        if let Some(path) = &options.log {
            return log::run(path, options);
        }
        let described = describe(options)?;
        if let Some(hash) = &described.hashkv {
            hashkv::print(hash, &described, options)?;
            return Ok(ExitCode::Success);
        }
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
    /// With `--hashkv`: etcd's `HashKV` at the revision asked for.
    pub hashkv: Option<etcd_db::HashKv>,
}

/// Opens, verifies and analyses the snapshot named by `options`.
pub fn describe(options: &cli::Options) -> Result<Described> {
    let source = Source {
        input: options.input.as_deref(),
        identities: &options.identities,
        skip_hash_check: options.skip_hash_check,
    };
    let opened = open_verified(source, |db, name| {
        let inventory = match &options.k8s_prefix {
            Some(prefix) => Some(k8s::inventory(db, prefix, name)?),
            None => None,
        };
        let hash = match options.hashkv {
            Some(at) => Some(
                etcd_db::hash_kv(db, at).map_err(|e| etcd_common::snapshot::db_error(name, e))?,
            ),
            None => None,
        };
        Ok((inventory, hash))
    })?;
    let (k8s, hashkv) = opened.read;
    Ok(Described {
        analysis: opened.analysis,
        trailer: opened.trailer,
        layers: opened.layers,
        k8s,
        hashkv,
    })
}
