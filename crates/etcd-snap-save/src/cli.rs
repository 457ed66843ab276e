//! The command line of `etcd-snap-save`: flags, their variables, and `--help`.

use crate::dest::Target;
use etcd_common::args::{Args, Env, Opt};
use etcd_common::conn::{ConnConfig, ConnFlags};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::layers::encode::Encoding;
use etcd_common::layers::recipients;
use etcd_common::output::{Format, FormatFlag};
use etcd_common::{Error, Result};
use std::path::PathBuf;

/// Which member to take the snapshot from first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// In the order given.
    Given,
    /// The leader first.
    Leader,
    /// Followers first (spares the leader's disk and network).
    Follower,
}

/// Everything a run needs.
pub struct Options {
    /// Connection settings.
    pub conn: ConnConfig,
    /// Summary format.
    pub format: Format,
    /// Where the snapshot goes.
    pub target: Target,
    /// Replace an existing file.
    pub force: bool,
    /// Endpoint order.
    pub prefer: Prefer,
    /// Compression and encryption.
    pub encoding: Encoding,
    /// Progress on stderr even when it is not a terminal.
    pub progress: bool,
    /// No progress, no summary on stderr.
    pub quiet: bool,
    /// After saving, compare every member's `HashKV` at the snapshot's revision with its own.
    pub prove: bool,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-save",
    version: env!("CARGO_PKG_VERSION"),
    summary: "take a snapshot of etcd, verified while it streams, to a file or stdout",
    description: "\
Takes a snapshot of etcd's database over the v3 API and writes it to FILE (atomically: FILE.part,
fsync, rename) or to stdout ('-'). The server's SHA-256 trailer is verified while the snapshot
streams; the output is byte-identical to `etcdctl snapshot save`, or zstd/age-encoded on request.",
    usage: &["etcd-snap-save [OPTIONS] <FILE|->"],
    sections: &[
        Section::titled(
            "OPTIONS",
            33,
            &[
                Item::Opt("      --force", "replace FILE if it exists"),
                Item::Opt(
                    "      --prove",
                    "after saving, ask every member for HashKV at the snapshot's\n\
                     revision and compare it with the snapshot's own (see PROOF)",
                ),
                Item::Opt(
                    "      --prefer leader|follower",
                    "try this kind of member first (with several --endpoints);\n\
                     without it the endpoints are tried in the order given;\n\
                     a learner is tried last (its snapshot may lag; a warning)",
                ),
                Item::Opt(
                    "      --compress[=LEVEL]",
                    "compress with zstd (LEVEL 1-19, default 3)",
                ),
                Item::Opt(
                    "      --compress-threads N",
                    "zstd worker threads [default: 0, on the main thread]",
                ),
                Item::Opt(
                    "  -r, --recipient KEY",
                    "encrypt with age to KEY (age1... or an ssh-ed25519/ssh-rsa\n\
                     public key); repeatable",
                ),
                Item::Opt(
                    "  -R, --recipients-file FILE",
                    "encrypt to every recipient in FILE (one a line)",
                ),
                Item::Opt("      --armor", "ASCII-armored age output (with -r/-R)"),
                Item::Opt(
                    "  -w, --write-out FORMAT",
                    "summary format: simple, json or table [default: simple];\n\
                     the summary goes to stdout for a FILE, to stderr for '-'",
                ),
                Item::Opt(
                    "      --progress",
                    "progress on stderr even when it is not a terminal",
                ),
                Item::Opt("      --quiet", "no progress and no summary on stderr"),
                help::HELP,
                help::VERSION,
                help::GENERATE,
            ],
        ),
        help::CONNECTION,
        Section::note(
            true,
            &[Item::Text(
                "\
With several endpoints, each is tried in turn until one starts streaming. --command-timeout
bounds the connection and the first bytes; the transfer itself has no time limit, but a server
that stops answering mid-stream (no data, no answer to keepalive pings for --keepalive-timeout)
ends the save with exit 3: 'the server stopped answering: nothing received for N s'.",
            )],
        ),
        Section::note(
            false,
            &[Item::Text(
                "\
STDOUT ('-'): the snapshot is the output, so a reader that goes away before the end (zstd, age
or ssh died, a closed pipe) fails the save: exit 6 and 'Error: stdout was closed by its reader
after N bytes ...: the snapshot was not saved'. It never ends quietly with 0 as a report cut
short by `| head` does: a backup job must see that nothing was stored.",
            )],
        ),
        Section::note(
            false,
            &[Item::Text(
                "\
PROOF (--prove): the members come from the member list of the endpoint that served the snapshot;
each is asked for HashKV at the snapshot's revision (what `etcdctl endpoint hashkv --cluster --rev
R` shows) and compared with the snapshot's own (what `etcd-snap-status --hashkv` shows). Equal
hash and compact revision on every voting member: verdict proven, exit 0. A member that differs
is a finding: exit 1, 'member NAME (URL) differs at revision R: hash A vs snapshot B'. A member
that cannot be asked, or answers with no comparable hash, leaves the backup unproven: exit 3 (the
snapshot is saved all the same). At a revision equal to the compact revision, etcd 3.5.5+ answers
from a hash cached when it compacted, which no snapshot reproduces: unproven; the next backup
after any write can be proven. Learners are listed but not asked (etcd serves no HashKV on
learners). For '-', --compress or -r/-R the database is copied as it streams to an unnamed 0600
file in TMPDIR (its size must be free there), gone when the tool ends; a plain FILE is read back.
The proof is printed after the summary; JSON: a 'proof' object.",
            )],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                code::SUCCESS,
                Item::Code(
                    "1",
                    "--prove: a member's HashKV differs from the snapshot's (the member is named)",
                ),
                code::USAGE,
                code::TRANSIENT,
                code::INTEGRITY,
                code::REFUSED,
                code::LOCAL_IO,
                code::SIGNALS,
                Item::Text("Saving as a user without the root role is refused by etcd: exit 2."),
            ],
        ),
    ],
    examples: &[
        "etcd-snap-save /var/backups/etcd/snap.db",
        "etcd-snap-save - | zstd | age -r age1... | ssh backup 'cat > etcd-$(date +%F).db.zst.age'",
        "etcd-snap-save --compress -r age1... /var/backups/etcd/snap.db.zst.age",
        "etcd-snap-save --prove -w json --endpoints 10.0.0.1:2379 /var/backups/etcd/snap.db",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Parses the command line; every bad value is a usage error before any network traffic.
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut conn = ConnFlags::default();
    let mut format = FormatFlag::default();
    let mut target = None;
    let mut force = false;
    let mut prefer = Prefer::Given;
    let mut encoding = Encoding::default();
    let mut progress = false;
    let mut quiet = false;
    let mut prove = false;
    while let Some(opt) = args.next_opt()? {
        if conn.take(&opt, &mut args)? || format.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Short('r') => "recipient",
            Opt::Short('R') => "recipients-file",
            Opt::Positional(value) => {
                if target.is_some() {
                    return Err(Error::usage(format!(
                        "unexpected argument {:?}: give one FILE or '-'",
                        value.to_string_lossy()
                    )));
                }
                target = Some(if value == "-" {
                    Target::Stdout
                } else {
                    Target::File(PathBuf::from(value))
                });
                continue;
            }
            Opt::Short(_) => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        };
        match long {
            "force" => force = args.bool_value(&opt)?,
            "prefer" => {
                prefer = match args.value(&opt)?.as_str() {
                    "leader" => Prefer::Leader,
                    "follower" => Prefer::Follower,
                    other => {
                        return Err(Error::usage(format!(
                            "--prefer: expected leader or follower, got {other:?}"
                        )))
                    }
                }
            }
            "compress" => {
                let level = match args.optional_value(&opt)? {
                    None => 3,
                    Some(text) => text
                        .parse::<i32>()
                        .ok()
                        .filter(|l| (1..=19).contains(l))
                        .ok_or_else(|| {
                            Error::usage(format!("--compress: level must be 1 to 19, got {text:?}"))
                        })?,
                };
                encoding.compress_level = Some(level);
            }
            "compress-threads" => {
                let text = args.value(&opt)?;
                encoding.compress_threads =
                    text.parse().ok().filter(|n| *n <= 256).ok_or_else(|| {
                        Error::usage(format!(
                            "--compress-threads: expected 0 to 256, got {text:?}"
                        ))
                    })?;
            }
            "recipient" => {
                let text = args.value(&opt)?;
                encoding
                    .recipients
                    .push(recipients::parse(&text, "-r/--recipient")?);
            }
            "recipients-file" => {
                let path = args.value(&opt)?;
                encoding.recipients.extend(recipients::parse_file(&path)?);
            }
            "armor" => encoding.armor = args.bool_value(&opt)?,
            "progress" => progress = args.bool_value(&opt)?,
            "quiet" => quiet = args.bool_value(&opt)?,
            "prove" => prove = args.bool_value(&opt)?,
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    let target = target.ok_or_else(|| {
        Error::usage("missing destination: give FILE, or '-' for stdout (see --help)")
    })?;
    if encoding.armor && encoding.recipients.is_empty() {
        return Err(Error::usage(
            "--armor needs -r/--recipient or -R/--recipients-file",
        ));
    }
    if encoding.compress_threads > 0 && encoding.compress_level.is_none() {
        return Err(Error::usage("--compress-threads needs --compress"));
    }
    Ok(Parsed::Run(Box::new(Options {
        conn: conn.resolve(env)?,
        format: format.resolve(env)?,
        target,
        force,
        prefer,
        encoding,
        progress,
        quiet,
        prove,
    })))
}
