//! The command line of `etcd-snap-save`: flags, their variables, and `--help`.

use crate::dest::Target;
use etcd_common::args::{Args, Env, Opt};
use etcd_common::conn::{ConnConfig, ConnFlags, CONNECTION_HELP};
use etcd_common::exit::{EXIT_CODES_HELP, SIGNAL_EXIT_HELP};
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
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// The `--help` text.
pub fn help() -> String {
    format!(
        "\
etcd-snap-save {version}
Takes a snapshot of etcd's database over the v3 API and writes it to FILE (atomically: FILE.part,
fsync, rename) or to stdout ('-'). The server's SHA-256 trailer is verified while the snapshot
streams; the output is byte-identical to `etcdctl snapshot save`, or zstd/age-encoded on request.

USAGE:
    etcd-snap-save [OPTIONS] <FILE|->

OPTIONS:
      --force                    replace FILE if it exists
      --prefer leader|follower   try this kind of member first (with several --endpoints);
                                 without it the endpoints are tried in the order given;
                                 a learner is tried last (its snapshot may lag; a warning)
      --compress[=LEVEL]         compress with zstd (LEVEL 1-19, default 3)
      --compress-threads N       zstd worker threads [default: 0, on the main thread]
  -r, --recipient KEY            encrypt with age to KEY (age1... or an ssh-ed25519/ssh-rsa
                                 public key); repeatable
  -R, --recipients-file FILE     encrypt to every recipient in FILE (one a line)
      --armor                    ASCII-armored age output (with -r/-R)
  -w, --write-out FORMAT         summary format: simple, json or table [default: simple];
                                 the summary goes to stdout for a FILE, to stderr for '-'
      --progress                 progress on stderr even when it is not a terminal
      --quiet                    no progress and no summary on stderr
  -h, --help                     print this help
  -V, --version                  print the version

{CONNECTION_HELP}
With several endpoints, each is tried in turn until one starts streaming. --command-timeout
bounds the connection and the first bytes; the transfer itself has no time limit.

{EXIT_CODES_HELP}
{SIGNAL_EXIT_HELP}
Saving as a user without the root role is refused by etcd: exit 2.

EXAMPLES:
    etcd-snap-save /var/backups/etcd/snap.db
    etcd-snap-save - | zstd | age -r age1... | ssh backup 'cat > etcd-$(date +%F).db.zst.age'
    etcd-snap-save --compress -r age1... /var/backups/etcd/snap.db.zst.age
",
        version = env!("CARGO_PKG_VERSION")
    )
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
    while let Some(opt) = args.next_opt()? {
        if conn.take(&opt, &mut args)? || format.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Short('r') => "recipient",
            Opt::Short('R') => "recipients-file",
            Opt::Short('h') => "help",
            Opt::Short('V') => "version",
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
            Opt::Short(_) => return Err(opt.unexpected()),
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
            "help" => return Ok(Parsed::Exit(help())),
            "version" => {
                return Ok(Parsed::Exit(format!(
                    "etcd-snap-save {}\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            _ => return Err(opt.unexpected()),
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
    })))
}
