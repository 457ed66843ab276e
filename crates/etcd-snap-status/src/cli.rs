//! The command line of `etcd-snap-status`: flags and `--help`.

use crate::etcdutl::Etcdutl;
use etcd_common::args::{Args, Env, InputFlags, Opt};
use etcd_common::help::{self, code, Item, Page, Section};
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
    /// `--hashkv [--rev R]`: print etcd's `HashKV` at R (`Some(None)`: at the snapshot's
    /// revision) instead of the status report.
    pub hashkv: Option<Option<i64>>,
    /// `--log DIR|FILE|-`: verify a revision log instead of a snapshot (see [`crate::log`]).
    pub log: Option<PathBuf>,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-status",
    version: env!("CARGO_PKG_VERSION"),
    summary: "verify an etcd snapshot and describe it",
    description: "\
Verifies an etcd snapshot and describes it: bbolt's consistency check, the SHA-256 trailer that
`snapshot save` appends, and the numbers of `etcdutl snapshot status` (hash, revision, total keys,
total size, and from 3.6 on the storage version). The input may be a file or stdin, raw or zstd-
and/or age-encoded (detected by content, in any nesting).

With --hashkv it prints, instead of that report, what `etcdutl hashkv` prints: etcd's HashKV
(the hash `etcdctl endpoint hashkv` asks a member for) of the snapshot at a revision, to prove a
backup equal to the cluster it came from. It replaces the report rather than adding to it, as
etcdutl has two commands for the two: its line, table and JSON stay byte-identical, so a script
that parses `etcdutl hashkv` parses this, and `jq .hash` never meets the status report's `hash`
(a different hash, of the whole database). The snapshot is verified first all the same.",
    usage: &["etcd-snap-status [OPTIONS] [FILE|-]      (no FILE, or '-': read stdin)"],
    sections: &[
        Section::titled(
            "OPTIONS",
            29,
            &[
                Item::Opt(
                    "  -w, --write-out FORMAT",
                    "simple, json or table [default: simple] (ETCDCTL_WRITE_OUT);\n\
                     simple and table print what etcdutl prints, json adds the details",
                ),
                Item::Opt(
                    "      --as-etcdutl VERSION",
                    "print what the etcdutl of VERSION (3.5, 3.6 or 3.7) prints\n\
                     [default: the snapshot's own version: 3.6 or 3.7 by its\n\
                     meta/storageVersion, or by a cluster version of 3.6+ while etcd\n\
                     has not written that yet; else 3.5 (3.4 and 3.5 snapshots;\n\
                     etcdctl 3.4 prints what etcdutl 3.5 prints)]. 3.5 counts every\n\
                     bucket entry as total keys; 3.6 counts distinct live keys and adds\n\
                     a version column (empty without a storage version) and a json\n\
                     \"version\"; 3.7 prints 3.6's numbers, its table in box drawing",
                ),
                Item::Opt(
                    "      --detail",
                    "with -w table (or simple): also print the details",
                ),
                Item::Opt(
                    "  -i, --identity FILE",
                    "age identity (AGE-SECRET-KEY-...) or ssh private key to decrypt\n\
                     age input; repeatable",
                ),
                help::SKIP_HASH_CHECK,
                Item::Opt(
                    "      --hashkv",
                    "print etcd's HashKV of the snapshot instead of the report: simple\n\
                     'HASH, HASH REVISION, COMPACT REVISION', json {hash,\n\
                     hashRevision, compactRevision}, or the table, as `etcdutl hashkv`\n\
                     prints them (its 3.7 table with --as-etcdutl 3.7 or a 3.7\n\
                     snapshot); equal to `etcdctl endpoint hashkv --rev R` of the member\n\
                     the snapshot came from, except at R equal to the compact revision:\n\
                     there a 3.5.5+ member answers from a hash it cached while\n\
                     compacting, over history the snapshot no longer holds (compare\n\
                     with etcdutl hashkv there, which gives ours)",
                ),
                Item::Opt(
                    "      --rev R",
                    "with --hashkv: hash the store as of revision R [default (or 0): the\n\
                     snapshot's revision]; R below the compact revision or above the\n\
                     snapshot's revision is refused (exit 2, naming the bound)",
                ),
                Item::Opt(
                    "      --log DIR|FILE|-",
                    "verify a revision log of etcd-snap-log instead of a snapshot (a\n\
                     directory of segments, or a stream of them in FILE or on stdin;\n\
                     decode zstd/age first): its chain, checksums and revisions; print\n\
                     cluster ID, revision and time range, segments, revisions, events",
                ),
                Item::Opt(
                    "      --k8s",
                    "also take an inventory of the Kubernetes objects: objects and bytes\n\
                     per resource and namespace, the largest objects, events' share,\n\
                     value formats, and encryption at rest (warns when secrets are\n\
                     stored in plaintext); counts live keys at the snapshot's revision",
                ),
                Item::Opt(
                    "      --k8s-prefix PREFIX",
                    "the API server's --etcd-prefix [default: /registry]; implies --k8s",
                ),
                help::HELP,
                help::VERSION,
                help::GENERATE,
            ],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                code::SUCCESS,
                Item::Code(
                    "2",
                    "usage: unknown flag, bad value, missing argument, --rev compacted or in the future",
                ),
                code::INTEGRITY,
                code::LOCAL_IO,
                Item::Text(
                    "A corrupt, truncated, wrongly encrypted or mismatching snapshot exits 4 with one line saying\n\
                     which check failed.",
                ),
            ],
        ),
    ],
    examples: &[
        "etcd-snap-status snap.db -w table",
        "etcd-snap-status snap.db --as-etcdutl 3.5     # a 3.6 snapshot as etcdutl 3.5 shows it",
        "age -d -i key.txt snap.db.zst.age | zstd -dc | etcd-snap-status",
        "ssh backup 'cat snap.db.zst.age' | etcd-snap-status -i key.txt -w json",
        "etcd-snap-status --k8s snap.db -w table",
        "etcd-snap-status --hashkv --rev 1200 snap.db    # = etcdutl hashkv --rev 1200 snap.db",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Parses the command line.
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut format = FormatFlag::default();
    let mut input = None;
    let mut detail = false;
    let mut input_flags = InputFlags::default();
    let mut k8s = false;
    let mut k8s_prefix = None;
    let mut as_etcdutl = None;
    let mut hashkv = false;
    let mut rev = None;
    let mut log = None;
    while let Some(opt) = args.next_opt()? {
        if format.take(&opt, &mut args)? || input_flags.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Positional(value) => {
                etcd_common::args::set_input(&mut input, value)?;
                continue;
            }
            Opt::Short(_) => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        };
        match long {
            "detail" => detail = args.bool_value(&opt)?,
            "as-etcdutl" => as_etcdutl = Some(Etcdutl::parse(&args.value(&opt)?)?),
            "k8s" => k8s = args.bool_value(&opt)?,
            "hashkv" => hashkv = args.bool_value(&opt)?,
            "log" => log = Some(PathBuf::from(args.value(&opt)?)),
            "rev" => rev = Some(revision(&opt, &args.value(&opt)?)?),
            "k8s-prefix" => {
                let prefix = args.value(&opt)?;
                if !prefix.starts_with('/') {
                    return Err(etcd_common::Error::usage(format!(
                        "--k8s-prefix: {prefix:?} does not start with '/' (the API server's default is /registry)"
                    )));
                }
                k8s_prefix = Some(prefix);
            }
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    if rev.is_some() && !hashkv {
        return Err(etcd_common::Error::usage(
            "--rev needs --hashkv (the status report is always of the snapshot's revision)",
        ));
    }
    if hashkv && (detail || k8s || k8s_prefix.is_some()) {
        return Err(etcd_common::Error::usage(
            "--hashkv prints etcdutl hashkv's report alone: leave out --detail and --k8s",
        ));
    }
    if log.is_some() && (input.is_some() || hashkv || detail || k8s || k8s_prefix.is_some()) {
        return Err(etcd_common::Error::usage(
            "--log verifies a revision log alone: leave out FILE, --hashkv, --detail and --k8s",
        ));
    }
    Ok(Parsed::Run(Box::new(Options {
        log,
        input: input.flatten(),
        format: format.resolve(env)?,
        detail,
        identities: input_flags.identities,
        skip_hash_check: input_flags.skip_hash_check,
        k8s_prefix: match (k8s, k8s_prefix) {
            (_, Some(prefix)) => Some(prefix),
            (true, None) => Some(k8s_registry::DEFAULT_PREFIX.to_string()),
            (false, None) => None,
        },
        as_etcdutl,
        hashkv: hashkv.then_some(rev.filter(|r| *r != 0)),
    })))
}

/// `--rev`'s value: a revision, 0 for the snapshot's own (as etcdutl's `--rev 0`).
fn revision(flag: &Opt, text: &str) -> Result<i64> {
    match text.parse::<i64>() {
        Ok(r) if r >= 0 => Ok(r),
        _ => Err(etcd_common::Error::usage(format!(
            "{}: {text:?} is not a revision (a non-negative integer)",
            flag.display()
        ))),
    }
}
