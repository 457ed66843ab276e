//! The command line of `etcd-snap-store`: a command (`put`, `cat`, `ls`, `rm`, `prune`), its
//! URL or prefix, and its flags. Secret-bearing flags are refused: credentials come from the
//! environment and the clouds' own files only.

use etcd_common::args::{Args, Env, Opt};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::output::{Format, FormatFlag};
use etcd_common::{Error, Result};

use crate::retention::{self, Policy};

/// The smallest part S3 accepts (except the last).
pub const MIN_PART: u64 = 5 << 20;
/// The largest part size accepted (S3's maximum is 5 GiB; memory holds a few parts).
pub const MAX_PART: u64 = 1 << 30;
/// The default part size.
pub const DEFAULT_PART: u64 = 16 << 20;
/// Parts uploaded at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Upload stdin to the URL.
    Put {
        /// Replace an existing object.
        force: bool,
        /// Bytes per part.
        part_size: u64,
        /// Parts in flight.
        concurrency: usize,
    },
    /// Download the URL to stdout.
    Cat {
        /// Skip the SHA-256 check.
        no_verify: bool,
    },
    /// List a prefix.
    Ls,
    /// Delete an object and its companions.
    Rm,
    /// Retention.
    Prune {
        /// The cluster id in the names.
        cluster: String,
        /// The rules.
        policy: Policy,
        /// Print only.
        dry_run: bool,
        /// Read names from stdin instead of listing a prefix.
        names_from_stdin: bool,
        /// The time retention is computed at (`--now`), default the clock.
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The command.
    pub command: Command,
    /// The URL or prefix (`None` for `prune --names-from -`).
    pub url: Option<String>,
    /// Output format.
    pub format: Format,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-store",
    version: env!("CARGO_PKG_VERSION"),
    summary: "etcd snapshots to and from object storage, streamed and verified",
    description: "\
Streams backups to and from object storage: S3 and S3-compatible servers, Google Cloud Storage
and Azure Blob. put uploads stdin in parts (never a temporary file, a few parts in memory),
hashing it on the way; the object appears only when complete, and an interrupted upload is
aborted. Its SHA-256 is stored beside it as URL.sha256 (sha256sum format), which cat checks at
the end of the stream. ls, rm and prune treat URL.sha256, URL.json (backup metadata) and
URL.proof.json as parts of URL. Credentials come from the environment as each cloud's own tools
read them, never from the command line.",
    usage: &[
        "etcd-snap-store put [--force] [--part-size SIZE] [--concurrency N] URL < FILE",
        "etcd-snap-store cat [--no-verify] URL > FILE",
        "etcd-snap-store ls [-w simple|json|table] PREFIX",
        "etcd-snap-store rm URL",
        "etcd-snap-store prune --cluster ID RULES [--dry-run] PREFIX",
        "etcd-snap-store prune --cluster ID RULES --names-from - < NAMES",
    ],
    sections: &[
        Section::titled(
            "URLS",
            0,
            &[Item::Text(
                "s3://BUCKET/KEY, gs://BUCKET/KEY, az://CONTAINER/KEY (also https:// URLs of those\n\
                 services and abfs://). A PREFIX lists the keys under it, as a directory.",
            )],
        ),
        Section::titled(
            "OPTIONS",
            29,
            &[
                Item::Opt("      --force", "put: replace an existing object"),
                Item::Opt(
                    "      --part-size SIZE",
                    "put: bytes per part, 5MiB to 1GiB [default: 16MiB]",
                ),
                Item::Opt(
                    "      --concurrency N",
                    "put: parts uploading at once, 1 to 16 [default: 4]",
                ),
                Item::Opt("      --no-verify", "cat: do not check URL.sha256"),
                Item::Opt(
                    "  -w, --write-out FORMAT",
                    "simple, json or table (ls, prune; put: json prints url, size, sha256)",
                ),
                Item::Opt(
                    "      --cluster ID",
                    "prune: the cluster id (hex) in the backup names",
                ),
                Item::Opt(
                    "      --keep N",
                    "prune: delete all but the N newest backups",
                ),
                Item::Opt(
                    "      --keep-days D",
                    "prune: delete backups more than D days old (by their name)",
                ),
                Item::Opt(
                    "      --keep-daily N",
                    "prune: keep the newest backup of each of the last N days",
                ),
                Item::Opt(
                    "      --keep-weekly N",
                    "prune: keep the newest backup of each of the last N ISO weeks",
                ),
                Item::Opt(
                    "      --keep-monthly N",
                    "prune: keep the newest backup of each of the last N months",
                ),
                Item::Opt("      --dry-run", "prune: print what would be deleted"),
                Item::Opt(
                    "      --names-from -",
                    "prune: read names from stdin, print those to delete, delete nothing",
                ),
                Item::Opt(
                    "      --now TIME",
                    "prune: compute ages at TIME (YYYYmmddTHHMMSSZ) [default: now]",
                ),
                help::HELP,
                help::VERSION,
                help::GENERATE,
            ],
        ),
        Section::titled(
            "RETENTION",
            0,
            &[Item::Text(
                "Only names etcd-<ID>-<YYYYmmddTHHMMSSZ>-r<REV>.db.zst[.age] directly under PREFIX are\n\
                 candidates; other objects are never touched. --keep and --keep-days are etcd-backup's\n\
                 (each applies); --keep-daily/-weekly/-monthly keep one backup per UTC day, ISO week or\n\
                 month for the N most recent periods that have one. A backup is kept if any rule keeps\n\
                 it; the newest is always kept. At least one rule is required.",
            )],
        ),
        Section::titled(
            "ENVIRONMENT",
            0,
            &[Item::Text(
                "S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION\n\
                 (AWS_DEFAULT_REGION), AWS_PROFILE with ~/.aws/credentials and ~/.aws/config,\n\
                 AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 for S3-compatible servers (path-style; http\n\
                 only when the endpoint says http://). Azure: AZURE_STORAGE_ACCOUNT_NAME,\n\
                 AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_TOKEN, AZURE_CLIENT_*),\n\
                 AZURE_STORAGE_USE_EMULATOR and AZURITE_BLOB_STORAGE_URL for Azurite. GCS:\n\
                 GOOGLE_SERVICE_ACCOUNT (a key file), GOOGLE_SERVICE_ACCOUNT_KEY or\n\
                 GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_STORAGE_ENDPOINT for GCS-compatible servers.",
            )],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                help::code::SUCCESS,
                Item::Code(
                    "2",
                    "usage: bad flag or URL, no retention rule; access denied or wrong credentials",
                ),
                Item::Code(
                    "3",
                    "transient: endpoint unreachable, timeout, server errors after retries",
                ),
                Item::Code(
                    "4",
                    "integrity: the object does not match URL.sha256, or URL.sha256 is missing",
                ),
                Item::Code(
                    "5",
                    "refused: put over an existing object without --force; no such object",
                ),
                code::LOCAL_IO,
                code::SIGNALS,
            ],
        ),
    ],
    examples: &[
        "etcd-snap-save - | zstd | etcd-snap-store put s3://backups/etcd/snap.db.zst",
        "etcd-snap-store cat s3://backups/etcd/snap.db.zst | zstd -dc | etcd-snap-status -",
        "etcd-snap-store ls -w table s3://backups/etcd/",
        "etcd-snap-store prune --cluster 8e9e05c52164694d --keep-daily 7 --keep-weekly 4 s3://backups/etcd/",
        "ls /var/backups/etcd | etcd-snap-store prune --cluster 8e9e05c52164694d --keep 14 --names-from -",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Flags that would carry a secret on the command line, refused with a pointer to the variable.
const SECRET_FLAGS: &[(&str, &str)] = &[
    ("secret-access-key", "AWS_SECRET_ACCESS_KEY"),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"),
    ("access-key", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ("secret-key", "AWS_SECRET_ACCESS_KEY"),
    ("session-token", "AWS_SESSION_TOKEN"),
    ("account-key", "AZURE_STORAGE_ACCOUNT_KEY"),
    ("sas-token", "AZURE_STORAGE_SAS_TOKEN"),
    ("password", "the environment"),
    ("token", "the environment"),
];

/// Parses the command line.
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut command: Option<String> = None;
    let mut url: Option<String> = None;
    let mut format = FormatFlag::default();
    let mut force = false;
    let mut part_size = DEFAULT_PART;
    let mut concurrency = DEFAULT_CONCURRENCY;
    let mut no_verify = false;
    let mut cluster: Option<String> = None;
    let mut policy = Policy::default();
    let mut dry_run = false;
    let mut names_from = false;
    let mut now = None;
    while let Some(opt) = args.next_opt()? {
        if format.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Positional(value) => {
                let value = value.to_string_lossy().into_owned();
                if command.is_none() {
                    command = Some(value);
                } else if url.is_none() {
                    url = Some(value);
                } else {
                    return Err(Error::usage(format!(
                        "unexpected argument {value:?}: give one URL (see --help)"
                    )));
                }
                continue;
            }
            Opt::Short(_) => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        };
        if let Some((_, var)) = SECRET_FLAGS.iter().find(|(f, _)| *f == long) {
            return Err(Error::usage(format!(
                "--{long}: secrets are never taken on the command line (other users can read it): set {var}"
            )));
        }
        match long {
            "force" => force = args.bool_value(&opt)?,
            "part-size" => part_size = size(&opt, &args.value(&opt)?)?,
            "concurrency" => concurrency = number(&opt, &args.value(&opt)?, 1, 16)? as usize,
            "no-verify" => no_verify = args.bool_value(&opt)?,
            "cluster" => {
                let id = args.value(&opt)?;
                if !retention::valid_cluster_id(&id) {
                    return Err(Error::usage(format!(
                        "--cluster {id:?}: expected the cluster id as in the backup names (lowercase hex, up to 16 digits)"
                    )));
                }
                cluster = Some(id);
            }
            "keep" => policy.keep = Some(number(&opt, &args.value(&opt)?, 1, 1_000_000)?),
            "keep-days" => policy.keep_days = Some(number(&opt, &args.value(&opt)?, 1, 36_500)?),
            "keep-daily" => policy.daily = Some(number(&opt, &args.value(&opt)?, 1, 1_000_000)?),
            "keep-weekly" => policy.weekly = Some(number(&opt, &args.value(&opt)?, 1, 1_000_000)?),
            "keep-monthly" => {
                policy.monthly = Some(number(&opt, &args.value(&opt)?, 1, 1_000_000)?)
            }
            "dry-run" => dry_run = args.bool_value(&opt)?,
            "names-from" => {
                let v = args.value(&opt)?;
                if v != "-" {
                    return Err(Error::usage(
                        "--names-from: only '-' (stdin) is supported: pipe the names in",
                    ));
                }
                names_from = true;
            }
            "now" => {
                let v = args.value(&opt)?;
                now = Some(retention::parse_time(&v).ok_or_else(|| {
                    Error::usage(format!("--now {v:?}: expected YYYYmmddTHHMMSSZ"))
                })?);
            }
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    let format = format.resolve(env)?;
    let Some(name) = command else {
        return Err(Error::usage(
            "give a command: put, cat, ls, rm or prune (see --help)",
        ));
    };
    let command = match name.as_str() {
        "put" => Command::Put {
            force,
            part_size,
            concurrency,
        },
        "cat" => Command::Cat { no_verify },
        "ls" => Command::Ls,
        "rm" => Command::Rm,
        "prune" => {
            let Some(cluster) = cluster else {
                return Err(Error::usage(
                    "prune: give --cluster ID (only that cluster's backups are candidates)",
                ));
            };
            if policy.is_empty() {
                return Err(Error::usage(
                    "prune: give at least one rule: --keep, --keep-days, --keep-daily, --keep-weekly or --keep-monthly",
                ));
            }
            if names_from && url.is_some() {
                return Err(Error::usage(
                    "prune: give either PREFIX or --names-from -, not both",
                ));
            }
            Command::Prune {
                cluster,
                policy,
                dry_run,
                names_from_stdin: names_from,
                now,
            }
        }
        other => {
            return Err(Error::usage(format!(
                "unknown command {other:?}: use put, cat, ls, rm or prune"
            )))
        }
    };
    if url.is_none() && !names_from {
        return Err(Error::usage(format!("{name}: give a URL (see --help)")));
    }
    Ok(Parsed::Run(Box::new(Options {
        command,
        url,
        format,
    })))
}

/// A whole number in `min..=max`.
fn number(flag: &Opt, text: &str, min: u64, max: u64) -> Result<u64> {
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::usage(format!(
            "{} {text:?}: expected a whole number from {min} to {max}",
            flag.display()
        ))),
    }
}

/// A size: bytes, or a number with KiB, MiB, GiB (also K, M, G as binary units).
fn size(flag: &Opt, text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mult: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => 0,
    };
    let n = digits.parse::<u64>().ok().and_then(|d| d.checked_mul(mult));
    match n {
        Some(n) if (MIN_PART..=MAX_PART).contains(&n) => Ok(n),
        _ => Err(Error::usage(format!(
            "{} {text:?}: expected a size from 5MiB to 1GiB (S3 parts are at least 5 MiB)",
            flag.display()
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options> {
        let args = Args::from_vec(std::iter::once("etcd-snap-store").chain(args.iter().copied()));
        match parse(args, &Env::default())? {
            Parsed::Run(o) => Ok(*o),
            Parsed::Exit(_) => panic!("exit"),
        }
    }

    #[test]
    fn shapes() {
        let o = run(&["put", "--part-size", "5MiB", "s3://b/k"]).unwrap();
        assert_eq!(
            o.command,
            Command::Put {
                force: false,
                part_size: 5 << 20,
                concurrency: DEFAULT_CONCURRENCY
            }
        );
        let o = run(&[
            "prune",
            "--cluster",
            "abc",
            "--keep-daily=3",
            "--names-from",
            "-",
        ])
        .unwrap();
        assert!(matches!(
            o.command,
            Command::Prune {
                names_from_stdin: true,
                ..
            }
        ));
        assert_eq!(o.url, None);
        for bad in [
            &["put"][..],
            &[],
            &["frob", "s3://b/k"],
            &["put", "--part-size", "1MiB", "s3://b/k"],
            &["put", "--part-size", "2GiB", "s3://b/k"],
            &["put", "--secret-access-key", "x", "s3://b/k"],
            &["put", "--account-key=x", "az://c/k"],
            &["prune", "s3://b/"],
            &["prune", "--cluster", "abc", "s3://b/"],
            &["prune", "--cluster", "ABC", "--keep", "1", "s3://b/"],
            &["prune", "--cluster", "abc", "--keep", "0", "s3://b/"],
            &[
                "prune",
                "--cluster",
                "abc",
                "--keep",
                "1",
                "--names-from",
                "f",
            ],
            &[
                "prune",
                "--cluster",
                "abc",
                "--keep",
                "1",
                "--now",
                "x",
                "s3://b/",
            ],
            &["ls", "s3://b/", "s3://c/"],
        ] {
            let e = run(bad).unwrap_err();
            assert_eq!(e.code, etcd_common::ExitCode::Usage, "{bad:?}: {e}");
            assert!(!e.message.contains('\n'));
        }
        let e = run(&["put", "--secret-access-key", "hunter2", "s3://b/k"]).unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e}");
    }
}
