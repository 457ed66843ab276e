//! The command line of `etcd-snap-log`: flags, their variables, and `--help`.

use etcd_common::args::{Args, Env, InputFlags, Opt};
use etcd_common::conn::{ConnConfig, ConnFlags};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Where the log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Segments as files in this directory (continued if it already holds a log).
    Dir(PathBuf),
    /// Segments back to back on stdout.
    Stdout,
}

/// Where the log starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At this revision.
    Revision(i64),
    /// After the revision of this snapshot.
    Snapshot(PathBuf),
    /// Where the log in the output directory ends.
    Continue,
}

/// Everything a run needs.
pub struct Options {
    /// Connection settings.
    pub conn: ConnConfig,
    /// Where the log goes.
    pub output: Output,
    /// Where it starts.
    pub start: Start,
    /// Close a segment at this size.
    pub segment_bytes: u64,
    /// Close a segment after this long.
    pub segment_age: Duration,
    /// Stop after this revision.
    pub until_rev: Option<i64>,
    /// No summary or reconnect warnings on stderr.
    pub quiet: bool,
    /// age identity files for an age-encrypted `--from-snapshot` (paths, never keys).
    pub identities: Vec<String>,
    /// Accept a `--from-snapshot` database without the SHA-256 trailer.
    pub skip_hash_check: bool,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-log",
    version: env!("CARGO_PKG_VERSION"),
    summary: "follow etcd and log every revision, for restore to any revision or time",
    description: "\
Watches the whole keyspace from a revision onward and writes every revision (each event's key,
value, create and mod revision, version and lease, the granted TTL of each new lease, and the time
the revision was observed) to a revision log: segments with a header, checksummed records and a
trailer, hash-chained so that a missing, reordered or damaged segment is detected (format:
docs/revision-log.md). `etcd-snap-restore --log` replays it on top of a snapshot, offline;
`etcd-snap-status --log` verifies it.",
    usage: &[
        "etcd-snap-log [OPTIONS] (--from-rev N | --from-snapshot FILE) -o DIR|-",
        "etcd-snap-log [OPTIONS] -o DIR        (continue the log in DIR)",
    ],
    sections: &[
        Section::titled(
            "OPTIONS",
            33,
            &[
                Item::Opt(
                    "  -o, --output DIR|-",
                    "write segments into DIR (which must exist), or to stdout ('-')",
                ),
                Item::Opt(
                    "      --from-rev N",
                    "the first revision to log (the one after the snapshot's)",
                ),
                Item::Opt(
                    "      --from-snapshot FILE",
                    "start after the revision of this snapshot (raw, zstd and/or\n\
                     age, detected by content, as etcd-snap-status reads it)",
                ),
                Item::Opt(
                    "  -i, --identity FILE",
                    "age identity (AGE-SECRET-KEY-...) or ssh private key to decrypt\n\
                     an age --from-snapshot; repeatable",
                ),
                Item::Opt(
                    "      --skip-hash-check",
                    "accept a --from-snapshot database without the SHA-256 trailer\n\
                     (a db file copied from a data dir)",
                ),
                Item::Opt("      --until-rev R", "stop after logging revision R"),
                Item::Opt(
                    "      --segment-size SIZE",
                    "close a segment at SIZE bytes (K, M, G, KiB, MiB, GiB)\n\
                     [default: 64MiB]",
                ),
                Item::Opt(
                    "      --segment-time DUR",
                    "close a segment open for DUR (e.g. 30s, 10m) [default: 10m]",
                ),
                Item::Opt("      --quiet", "no warnings or summary on stderr"),
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
DIRECTORY: a segment is written as NAME.part, fsynced and renamed to
<cluster id>-<first revision>.revlog when it closes, so every .revlog file is complete. Given a
directory that already holds a log, the follower verifies it and continues at its last revision
+ 1 (--from-rev/--from-snapshot may be omitted, and must not leave a gap). One follower per
directory (a lock); a .part left by a killed follower is replaced when its revision comes again.",
            )],
        ),
        Section::note(
            false,
            &[Item::Text(
                "\
FOLLOWING: one watch with progress notifications and fragmentation; a revision is written when
complete (etcd sends a revision whole, or in fragments ending with a last one), stamped with the
time it was observed. When the watch breaks (a member restarted, a leader change, a network
error) the follower reconnects to any endpoint, retrying forever with back-off, and resumes at
the next revision: none is lost or written twice. Every request requires a leader (etcd's
'hasleader'): a member cut off from the quorum refuses the watch, or cancels it within a few
election timeouts, with 'no leader', and the follower warns and moves to another endpoint. If
etcd compacted past the next revision the follower stops: exit 3, 'gap: compacted at N'. A
revision is read, written and flushed before the next response is read: memory stays flat and
a slow output slows the watch, never a queue.",
            )],
        ),
        Section::note(
            false,
            &[Item::Text(
                "\
STOPPING: SIGINT or SIGTERM (systemctl stop) closes the open segment (its trailer written, in a
directory fsynced and renamed) and exits 0: the log is complete up to the last revision written.
--until-rev R does the same after R.",
            )],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                code::SUCCESS,
                code::USAGE,
                Item::Code(
                    "3",
                    "transient: no endpoint reachable (with a leader) at start, or 'gap: compacted at N'",
                ),
                Item::Code(
                    "4",
                    "integrity: the log in DIR is damaged, or the snapshot is, or no -i key\n\
                     decrypts the snapshot",
                ),
                Item::Code(
                    "5",
                    "refused: DIR holds another cluster's log, or another follower runs on it,\n\
                     --from-rev would leave a gap, binary output to a terminal",
                ),
                code::LOCAL_IO,
            ],
        ),
    ],
    examples: &[
        "etcd-snap-log --from-snapshot /var/backups/etcd/snap.db -o /var/backups/etcd/log",
        "etcd-snap-log --from-snapshot snap.db.zst.age -i key.txt -o /var/backups/etcd/log",
        "etcd-snap-log -o /var/backups/etcd/log      # after a restart: continue",
        "etcd-snap-log --from-rev 1001 -o - | zstd | age -r age1... > log.zst.age",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Parses "64MiB", "10M", "1048576".
fn parse_size(text: &str) -> Option<u64> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KiB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn positive_rev(flag: &str, text: &str) -> Result<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|r| *r >= 1)
        .ok_or_else(|| Error::usage(format!("{flag}: expected a revision >= 1, got {text:?}")))
}

/// Parses the command line; every bad value is a usage error before any network traffic.
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut conn = ConnFlags::default();
    let mut output = None;
    let mut start = None;
    let mut segment_bytes = 64u64 << 20;
    let mut segment_age = Duration::from_secs(600);
    let mut until_rev = None;
    let mut quiet = false;
    let mut input_flags = InputFlags::default();
    while let Some(opt) = args.next_opt()? {
        if conn.take(&opt, &mut args)? || input_flags.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Short('o') => "output",
            Opt::Positional(_) => return Err(opt.unexpected()),
            Opt::Short(_) => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        };
        match long {
            "output" => {
                if output.is_some() {
                    return Err(Error::usage("-o/--output given twice: give one DIR or '-'"));
                }
                let value = args.value(&opt)?;
                output = Some(if value == "-" {
                    Output::Stdout
                } else {
                    Output::Dir(PathBuf::from(value))
                });
            }
            "from-rev" | "from-snapshot" => {
                if start.is_some() {
                    return Err(Error::usage(
                        "give one of --from-rev and --from-snapshot, once",
                    ));
                }
                let value = args.value(&opt)?;
                start = Some(if long == "from-rev" {
                    Start::Revision(positive_rev("--from-rev", &value)?)
                } else {
                    Start::Snapshot(PathBuf::from(value))
                });
            }
            "until-rev" => until_rev = Some(positive_rev("--until-rev", &args.value(&opt)?)?),
            "segment-size" => {
                let text = args.value(&opt)?;
                segment_bytes = parse_size(&text).filter(|n| *n >= 4096).ok_or_else(|| {
                    Error::usage(format!(
                        "--segment-size: expected a size of at least 4KiB like 64MiB, got {text:?}"
                    ))
                })?;
            }
            "segment-time" => {
                let text = args.value(&opt)?;
                segment_age = etcd_common::duration::parse(&text)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "--segment-time: expected a duration of at least 1s like 10m, got {text:?}"
                        ))
                    })?;
            }
            "quiet" => quiet = args.bool_value(&opt)?,
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    let output =
        output.ok_or_else(|| Error::usage("missing -o DIR or -o - (stdout); see --help"))?;
    let start = match (start, &output) {
        (Some(s), _) => s,
        (None, Output::Dir(_)) => Start::Continue,
        (None, Output::Stdout) => {
            return Err(Error::usage(
                "a new log needs --from-rev N or --from-snapshot FILE",
            ))
        }
    };
    if !matches!(start, Start::Snapshot(_))
        && (!input_flags.identities.is_empty() || input_flags.skip_hash_check)
    {
        return Err(Error::usage(
            "-i/--identity and --skip-hash-check are for --from-snapshot FILE: give it, or leave them out",
        ));
    }
    let mut conn = conn.resolve(env)?;
    // A member cut off from the quorum would keep the watch open and silent: with a leader
    // required, etcd cancels it and the follower moves to a member that has one.
    conn.require_leader = true;
    Ok(Parsed::Run(Box::new(Options {
        conn,
        output,
        start,
        segment_bytes,
        segment_age,
        until_rev,
        quiet,
        identities: input_flags.identities,
        skip_hash_check: input_flags.skip_hash_check,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("10M"), Some(10_000_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1TiB"), None);
        assert_eq!(parse_size("MiB"), None);
    }
}
