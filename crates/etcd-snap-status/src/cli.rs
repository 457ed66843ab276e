//! The command line of `etcd-snap-status`: flags and `--help`.

use crate::etcdutl::Etcdutl;
use etcd_common::args::{Args, Env, Opt};
use etcd_common::exit::EXIT_CODES_HELP;
use etcd_common::output::{Format, FormatFlag};
use etcd_common::Result;
use std::path::PathBuf;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The snapshot file, or `None` for stdin.
    pub input: Option<PathBuf>,
    /// Output format.
    pub format: Format,
    /// With `-w table`: the detail view.
    pub detail: bool,
    /// age identity files.
    pub identities: Vec<String>,
    /// Accept a database without the SHA-256 trailer (copied from a data dir).
    pub skip_hash_check: bool,
    /// With `--k8s`: the Kubernetes key prefix to take an inventory of.
    pub k8s_prefix: Option<String>,
    /// `--as-etcdutl`: the etcdutl whose output to reproduce; `None`: the snapshot's own.
    pub as_etcdutl: Option<Etcdutl>,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// The `--help` text.
pub fn help() -> String {
    format!(
        "\
etcd-snap-status {version}
Verifies an etcd snapshot and describes it: bbolt's consistency check, the SHA-256 trailer that
`snapshot save` appends, and the numbers of `etcdutl snapshot status` (hash, revision, total keys,
total size, and from 3.6 on the storage version). The input may be a file or stdin, raw or zstd-
and/or age-encoded (detected by content, in any nesting).

USAGE:
    etcd-snap-status [OPTIONS] [FILE|-]      (no FILE, or '-': read stdin)

OPTIONS:
  -w, --write-out FORMAT     simple, json or table [default: simple] (ETCDCTL_WRITE_OUT);
                             simple and table print what etcdutl prints, json adds the details
      --as-etcdutl VERSION   print what the etcdutl of VERSION (3.5, 3.6 or 3.7) prints
                             [default: the snapshot's own version: 3.6 or 3.7 by its
                             meta/storageVersion, or by a cluster version of 3.6+ while etcd
                             has not written that yet; else 3.5 (3.4 and 3.5 snapshots;
                             etcdctl 3.4 prints what etcdutl 3.5 prints)]. 3.5 counts every
                             bucket entry as total keys; 3.6 counts distinct live keys and adds
                             a version column (empty without a storage version) and a json
                             \"version\"; 3.7 prints 3.6's numbers, its table in box drawing
      --detail               with -w table (or simple): also print the details
  -i, --identity FILE        age identity (AGE-SECRET-KEY-...) or ssh private key to decrypt
                             age input; repeatable
      --skip-hash-check      accept a database without the SHA-256 trailer (a db file copied
                             from a data dir)
      --k8s                  also take an inventory of the Kubernetes objects: objects and bytes
                             per resource and namespace, the largest objects, events' share,
                             value formats, and encryption at rest (warns when secrets are
                             stored in plaintext); counts live keys at the snapshot's revision
      --k8s-prefix PREFIX    the API server's --etcd-prefix [default: /registry]; implies --k8s
  -h, --help                 print this help
  -V, --version              print the version

{EXIT_CODES_HELP}
A corrupt, truncated, wrongly encrypted or mismatching snapshot exits 4 with one line saying
which check failed.

EXAMPLES:
    etcd-snap-status snap.db -w table
    etcd-snap-status snap.db --as-etcdutl 3.5     # a 3.6 snapshot as etcdutl 3.5 shows it
    age -d -i key.txt snap.db.zst.age | zstd -dc | etcd-snap-status
    ssh backup 'cat snap.db.zst.age' | etcd-snap-status -i key.txt -w json
    etcd-snap-status --k8s snap.db -w table
",
        version = env!("CARGO_PKG_VERSION")
    )
}

/// Parses the command line.
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut format = FormatFlag::default();
    let mut input = None;
    let mut detail = false;
    let mut identities = Vec::new();
    let mut skip_hash_check = false;
    let mut k8s = false;
    let mut k8s_prefix = None;
    let mut as_etcdutl = None;
    while let Some(opt) = args.next_opt()? {
        if format.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Short('i') => "identity",
            Opt::Short('h') => "help",
            Opt::Short('V') => "version",
            Opt::Positional(value) => {
                etcd_common::args::set_input(&mut input, value)?;
                continue;
            }
            Opt::Short(_) => return Err(opt.unexpected()),
        };
        match long {
            "detail" => detail = args.bool_value(&opt)?,
            "identity" => identities.push(args.value(&opt)?),
            "skip-hash-check" => skip_hash_check = args.bool_value(&opt)?,
            "as-etcdutl" => as_etcdutl = Some(Etcdutl::parse(&args.value(&opt)?)?),
            "k8s" => k8s = args.bool_value(&opt)?,
            "k8s-prefix" => {
                let prefix = args.value(&opt)?;
                if !prefix.starts_with('/') {
                    return Err(etcd_common::Error::usage(format!(
                        "--k8s-prefix: {prefix:?} does not start with '/' (the API server's default is /registry)"
                    )));
                }
                k8s_prefix = Some(prefix);
            }
            "help" => return Ok(Parsed::Exit(help())),
            "version" => {
                return Ok(Parsed::Exit(format!(
                    "etcd-snap-status {}\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            _ => return Err(opt.unexpected()),
        }
    }
    Ok(Parsed::Run(Box::new(Options {
        input: input.flatten(),
        format: format.resolve(env)?,
        detail,
        identities,
        skip_hash_check,
        k8s_prefix: match (k8s, k8s_prefix) {
            (_, Some(prefix)) => Some(prefix),
            (true, None) => Some(k8s_registry::DEFAULT_PREFIX.to_string()),
            (false, None) => None,
        },
        as_etcdutl,
    })))
}
