//! The command line of `etcd-snap-restore`: etcdutl's flags and defaults, ours, and `--help`.

use etcd_common::args::{Args, Env, InputFlags, Opt};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::output::{Format, FormatFlag};
use etcd_common::{Error, Result};
use etcd_db::SchemaVersion;
use std::path::PathBuf;

/// The revision bump etcd's documentation recommends when restoring a Kubernetes cluster: far more
/// revisions than a cluster makes between backup and restore, so watch caches never go back in time.
pub const K8S_BUMP: u64 = 1_000_000_000;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The snapshot file, or `None` for stdin.
    pub input: Option<PathBuf>,
    /// This member's name.
    pub name: String,
    /// The data dir to create.
    pub data_dir: PathBuf,
    /// A WAL dir outside the data dir, if asked for.
    pub wal_dir: Option<PathBuf>,
    /// `name=url,...` of every member.
    pub initial_cluster: String,
    /// The cluster token.
    pub initial_cluster_token: String,
    /// This member's peer URLs.
    pub initial_advertise_peer_urls: String,
    /// Accept a snapshot without its SHA-256 trailer.
    pub skip_hash_check: bool,
    /// Revisions to add to the latest one.
    pub bump_revision: u64,
    /// Mark every revision before the bumped one compacted.
    pub mark_compacted: bool,
    /// The etcd version to restore for (`--target-version`); `None`: the snapshot's own.
    pub target_version: Option<SchemaVersion>,
    /// age identity files.
    pub identities: Vec<String>,
    /// Rename a non-empty target aside instead of refusing.
    pub move_aside: bool,
    /// `USER[:GROUP]` to own the restored tree.
    pub owner: Option<String>,
    /// Summary format.
    pub format: Format,
    /// Progress on stderr even when it is not a terminal.
    pub progress: bool,
    /// No progress.
    pub quiet: bool,
    /// The revision log to apply (`--log`), if any.
    pub log: Option<crate::log::LogSource>,
    /// Which revision of the log to restore to.
    pub target: crate::log::Target,
    /// The log's cluster ID when the snapshot's members no longer tell it (`--log-cluster-id`).
    pub log_cluster_id: Option<u64>,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-restore",
    version: env!("CARGO_PKG_VERSION"),
    summary: "turn an etcd snapshot into a data dir that etcd boots",
    description: "\
Turns a snapshot into a data dir that etcd boots: the database with this cluster's membership,
consistent index and term, a WAL and a v2 snapshot, built beside the target and renamed into
place only when complete and fsynced. Run it once per member with the same --initial-cluster
and --initial-cluster-token; every member computes the same IDs.

Like etcdutl, restore ignores the snapshot's member list: the new cluster is exactly the members
of --initial-cluster, every one a voting member. A learner of the old cluster is not restored as
a learner (nor at all unless listed); add learners again after boot with
`etcdctl member add --learner`.

Versions: the data dir boots the etcd that wrote the snapshot and the later ones etcd upgrades
it to (3.4 -> 3.5 -> 3.6 -> 3.7). A snapshot whose storage version is newer than any this tool
knows (3.7), or than --target-version allows, is refused (exit 5) before anything is written.",
    usage: &["etcd-snap-restore [OPTIONS] [FILE|-]     (no FILE, or '-': read stdin; raw, zstd or age)"],
    sections: &[
        Section::titled(
            "OPTIONS (as etcdutl snapshot restore)",
            42,
            &[
                Item::Opt("      --name NAME", "this member's name [default: default]"),
                Item::Opt("      --data-dir DIR", "data dir to create [default: NAME.etcd]"),
                Item::Opt(
                    "      --wal-dir DIR",
                    "WAL dir outside the data dir [default: DIR/member/wal]",
                ),
                Item::Opt(
                    "      --initial-cluster LIST",
                    "name=peer-url,... [default: default=http://localhost:2380]",
                ),
                Item::Opt("      --initial-cluster-token TOKEN", "[default: etcd-cluster]"),
                Item::Opt(
                    "      --initial-advertise-peer-urls URLS",
                    "this member's peer URLs [default: http://localhost:2380]",
                ),
                Item::Opt(
                    "      --skip-hash-check",
                    "accept a snapshot without its SHA-256 trailer (a db\n\
                     copied from a data dir)",
                ),
                Item::Opt(
                    "      --bump-revision N",
                    "add N to the latest revision (needs --mark-compacted)",
                ),
                Item::Opt(
                    "      --mark-compacted",
                    "mark revisions before the bumped one compacted",
                ),
                Item::Opt(
                    "      --initial-memory-map-size N",
                    "accepted for etcdutl's scripts (bbolt's mmap size there);\n\
                     no effect on what is written",
                ),
            ],
        ),
        Section {
            title: Some("OPTIONS (ours)"),
            joined: true,
            width: 42,
            items: &[
                Item::Opt(
                    "      --k8s",
                    "Kubernetes preset: --bump-revision 1000000000 --mark-compacted",
                ),
                Item::Opt(
                    "      --target-version 3.5|3.6|3.7",
                    "restore for this etcd instead of the snapshot's own\n\
                     version: a newer snapshot (3.7 for 3.6, 3.6 or 3.7\n\
                     for 3.5) gets what etcd's own downgrade writes\n\
                     (meta/storageVersion rewritten, or removed for 3.5,\n\
                     cluster/clusterVersion capped, a pending downgrade\n\
                     cleared); an older one is left for etcd to upgrade",
                ),
                Item::Opt(
                    "  -i, --identity FILE",
                    "age identity or ssh key for age input; repeatable",
                ),
                Item::Opt(
                    "      --move-aside",
                    "rename a non-empty data dir (or WAL dir) to\n\
                     DIR.bak-<UTC time> instead of refusing; never deletes.\n\
                     A data dir (or WAL dir) that is a non-empty mount point\n\
                     cannot be renamed: refused (exit 5) before anything is\n\
                     written; restore into the empty mount point instead",
                ),
                Item::Opt(
                    "      --owner USER[:GROUP]",
                    "hand the restored tree to this account (e.g. etcd)",
                ),
                Item::Opt(
                    "  -w, --write-out FORMAT",
                    "summary: simple, json or table [default: simple]",
                ),
                Item::Opt(
                    "      --progress",
                    "progress on stderr even when it is not a terminal",
                ),
                Item::Opt("      --quiet", "no progress"),
                Item::Opt(
                    "      --read-manifest FILE",
                    "print what a kubeadm static-pod manifest (etcd.yaml,\n\
                     kube-apiserver.yaml) says, as key<TAB>value lines:\n\
                     pod, container (the one named like the pod),\n\
                     flag.NAME (its --NAME, the last one wins), host.NAME\n\
                     (that path on the host, through its hostPath\n\
                     volume); backslash and control characters escaped\n\
                     (\\\\ \\t \\n \\r \\u{HEX}); given alone; exit 4 if FILE\n\
                     is not what kubeadm writes, 6 if it cannot be read",
                ),
                help::HELP,
                help::VERSION,
                help::GENERATE,
            ],
        },
        Section::titled(
            "POINT-IN-TIME RESTORE",
            42,
            &[
                Item::Opt(
                    "      --log DIR|-",
                    "apply a revision log (etcd-snap-log's segments in DIR,\n\
                     or a stream on stdin, raw, zstd or age; the snapshot\n\
                     must then be a FILE) on top of the snapshot: the\n\
                     revisions after it are written as etcd writes them,\n\
                     history kept, compaction unchanged. The whole log is\n\
                     verified first (chain, checksums, cluster, no gap\n\
                     after the snapshot): a bad one is refused (exit 4)\n\
                     before anything is written",
                ),
                Item::Opt(
                    "      --to-rev R",
                    "restore to revision R [default: the log's last]",
                ),
                Item::Opt(
                    "      --to-time T",
                    "restore to the last revision observed at or before T\n\
                     (RFC 3339); before the log's first revision after the\n\
                     snapshot: the snapshot itself; after its last: exit 5",
                ),
                Item::Opt(
                    "      --log-cluster-id HEX",
                    "the cluster the log must be of, when the snapshot's\n\
                     members no longer give the cluster ID (members\n\
                     replaced since the cluster was created)",
                ),
                Item::Text(
                    "\nLeases: the snapshot's are kept, and every lease first seen in the log is\n\
                     added with its granted TTL. The log does not see revokes: a lease revoked\n\
                     after the snapshot comes back without keys (their deletes are in the log)\n\
                     and expires after its TTL; a lease granted after the snapshot and never\n\
                     attached to a key is not restored. --bump-revision/--k8s apply after the log.",
                ),
            ],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                code::SUCCESS,
                code::USAGE,
                code::TRANSIENT,
                code::INTEGRITY,
                code::REFUSED,
                code::LOCAL_IO,
                code::SIGNALS,
            ],
        ),
    ],
    examples: &[
        "etcd-snap-restore snap.db --data-dir /var/lib/etcd-restored",
        "zstd -dc snap.db.zst | etcd-snap-restore - --name m1 --initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380 --initial-advertise-peer-urls https://10.0.0.1:2380 --initial-cluster-token prod-restore --data-dir /var/lib/etcd --move-aside --k8s",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Parses the command line; every bad value is a usage error before anything is written.
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut format = FormatFlag::default();
    let mut input = None;
    let mut name = "default".to_string();
    let mut data_dir = None;
    let mut wal_dir = None;
    let mut initial_cluster = "default=http://localhost:2380".to_string();
    let mut token = "etcd-cluster".to_string();
    let mut advertise = "http://localhost:2380".to_string();
    let mut bump_revision = 0u64;
    let mut mark_compacted = false;
    let mut target_version = None;
    let mut k8s = false;
    let mut input_flags = InputFlags::default();
    let mut move_aside = false;
    let mut owner = None;
    let mut progress = false;
    let mut quiet = false;
    let mut log = None;
    let mut to_rev = None;
    let mut to_time = None;
    let mut log_cluster_id = None;
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
            "name" => name = nonempty(&opt, args.value(&opt)?)?,
            "data-dir" => data_dir = Some(PathBuf::from(nonempty(&opt, args.value(&opt)?)?)),
            "wal-dir" => wal_dir = Some(PathBuf::from(nonempty(&opt, args.value(&opt)?)?)),
            "initial-cluster" => initial_cluster = args.value(&opt)?,
            "initial-cluster-token" => token = args.value(&opt)?,
            "initial-advertise-peer-urls" => advertise = args.value(&opt)?,
            "bump-revision" => {
                let text = args.value(&opt)?;
                bump_revision = text.parse().map_err(|_| {
                    Error::usage(format!(
                        "--bump-revision: expected a non-negative number, got {text:?}"
                    ))
                })?;
            }
            "mark-compacted" => mark_compacted = args.bool_value(&opt)?,
            "k8s" => k8s = args.bool_value(&opt)?,
            "target-version" => target_version = Some(parse_target(&args.value(&opt)?)?),
            "move-aside" => move_aside = args.bool_value(&opt)?,
            "owner" => owner = Some(nonempty(&opt, args.value(&opt)?)?),
            "progress" => progress = args.bool_value(&opt)?,
            "quiet" => quiet = args.bool_value(&opt)?,
            "log" => {
                let value = nonempty(&opt, args.value(&opt)?)?;
                log = Some(if value == "-" {
                    crate::log::LogSource::Stdin
                } else {
                    crate::log::LogSource::Dir(PathBuf::from(value))
                });
            }
            "to-rev" => {
                let text = args.value(&opt)?;
                to_rev = Some(text.parse::<i64>().ok().filter(|r| *r > 0).ok_or_else(|| {
                    Error::usage(format!(
                        "--to-rev: expected a revision (a positive number), got {text:?}"
                    ))
                })?);
            }
            "to-time" => {
                to_time = Some(crate::log::parse_time(&args.value(&opt)?).map_err(Error::usage)?)
            }
            "log-cluster-id" => {
                let text = args.value(&opt)?;
                log_cluster_id = Some(u64::from_str_radix(&text, 16).map_err(|_| {
                    Error::usage(format!(
                        "--log-cluster-id: expected a hex cluster ID, got {text:?}"
                    ))
                })?);
            }
            "initial-memory-map-size" => {
                // etcdutl's bolt mmap size: no effect on the files we write.
                args.value(&opt)?;
            }
            "read-manifest" => {
                return crate::manifest::from_command_line(&opt, &mut args).map(Parsed::Exit)
            }
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    if k8s {
        if bump_revision == 0 {
            bump_revision = K8S_BUMP;
        }
        mark_compacted = true;
    }
    if mark_compacted != (bump_revision > 0) {
        return Err(Error::usage(if mark_compacted {
            "--mark-compacted needs --bump-revision N (or use --k8s)"
        } else {
            "--mark-compacted required if --bump-revision > 0"
        }));
    }
    let target = match (to_rev, to_time) {
        (Some(_), Some(_)) => return Err(Error::usage("--to-rev and --to-time: give one")),
        (Some(r), None) => crate::log::Target::Revision(r),
        (None, Some(t)) => crate::log::Target::Time(t),
        (None, None) => crate::log::Target::Last,
    };
    if log.is_none() && (target != crate::log::Target::Last || log_cluster_id.is_some()) {
        return Err(Error::usage(
            "--to-rev, --to-time and --log-cluster-id need --log DIR|-",
        ));
    }
    let input = input.flatten();
    if log == Some(crate::log::LogSource::Stdin) && input.is_none() {
        return Err(Error::usage(
            "--log - reads the log from stdin: give the snapshot as a FILE",
        ));
    }
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(format!("{name}.etcd")));
    Ok(Parsed::Run(Box::new(Options {
        input,
        name,
        data_dir,
        wal_dir,
        initial_cluster,
        initial_cluster_token: token,
        initial_advertise_peer_urls: advertise,
        skip_hash_check: input_flags.skip_hash_check,
        bump_revision,
        mark_compacted,
        target_version,
        identities: input_flags.identities,
        move_aside,
        owner,
        format: format.resolve(env)?,
        progress,
        quiet,
        log,
        target,
        log_cluster_id,
    })))
}

/// `3.5`, `3.6` or `3.7` (a patch, `3.6.16`, is accepted and ignored).
fn parse_target(text: &str) -> Result<SchemaVersion> {
    let full = if text.matches('.').count() == 1 {
        format!("{text}.0")
    } else {
        text.to_string()
    };
    match SchemaVersion::parse_semver(full.as_bytes()) {
        Some(v) if (SchemaVersion::V3_5..=SchemaVersion::NEWEST_KNOWN).contains(&v) => Ok(v),
        _ => Err(Error::usage(format!(
            "--target-version: expected 3.5, 3.6 or 3.7, got {text:?}"
        ))),
    }
}

fn nonempty(opt: &Opt, value: String) -> Result<String> {
    if value.is_empty() {
        Err(Error::usage(format!(
            "{}: must not be empty",
            opt.display()
        )))
    } else {
        Ok(value)
    }
}
