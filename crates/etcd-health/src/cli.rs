//! The command line of `etcd-health`: flags, their variables, and `--help`.

use etcd_common::args::{Args, Env, Opt};
use etcd_common::conn::{ConnConfig, ConnFlags};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::output::{Format, FormatFlag};
use etcd_common::{duration, Error, Result};
use std::time::Duration;

/// How many healthy endpoints are enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinHealthy {
    /// Every endpoint (the default, as etcdctl).
    All,
    /// A majority of the members (with `--cluster`) or of the endpoints given.
    Quorum,
    /// At least this many.
    Count(usize),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connection settings.
    pub conn: ConnConfig,
    /// Output format.
    pub format: Format,
    /// Check every member found in the member list.
    pub cluster: bool,
    /// Keep checking until healthy, up to this long.
    pub wait: Option<Duration>,
    /// How many healthy endpoints are enough.
    pub min_healthy: MinHealthy,
    /// Progress on stderr even when it is not a terminal.
    pub progress: bool,
    /// No progress at all.
    pub quiet: bool,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-health",
    version: env!("CARGO_PKG_VERSION"),
    summary: "check that etcd endpoints are healthy",
    description: "\
Checks that etcd endpoints are healthy: each answers a linearizable read (a user without
read access still proves the quorum works) and no alarm (NOSPACE, CORRUPT) is active.
A learner (which refuses linearizable reads) is healthy when it serves a serializable read
and follows a leader; learners do not count towards --min-healthy quorum.",
    usage: &["etcd-health [OPTIONS]"],
    sections: &[
        Section::titled(
            "OPTIONS",
            33,
            &[
                Item::Opt(
                    "      --cluster",
                    "check every member's client URLs from the member list",
                ),
                Item::Opt(
                    "      --wait DURATION",
                    "keep checking until healthy or DURATION has passed (e.g. 60s)",
                ),
                Item::Opt(
                    "      --min-healthy all|quorum|N",
                    "healthy endpoints that are enough; fewer than all but at\n\
                     least this many exits 7 (degraded) [default: all]",
                ),
                Item::Opt(
                    "  -w, --write-out FORMAT",
                    "simple, json or table [default: simple] (ETCDCTL_WRITE_OUT)",
                ),
                Item::Opt(
                    "      --progress",
                    "report --wait progress on stderr even when not a terminal",
                ),
                Item::Opt("      --quiet", "no progress"),
                help::HELP,
                help::VERSION,
                help::GENERATE,
            ],
        ),
        help::CONNECTION,
        Section::titled(
            "EXIT CODES",
            0,
            &[
                code::SUCCESS,
                code::UNHEALTHY,
                code::USAGE,
                code::LOCAL_IO,
                Item::Code(
                    "7",
                    "degraded: not all, but at least --min-healthy endpoints are healthy",
                ),
                Item::Text(
                    "A rejected user name or password exits 2; an unreachable endpoint counts as unhealthy (1).",
                ),
            ],
        ),
    ],
    examples: &[
        "etcd-health --endpoints 10.0.0.1:2379 --cacert ca.crt --cert client.crt --key client.key",
        "etcd-health --cluster -w json",
        "etcd-health --cluster --wait 2m --min-healthy quorum || echo \"etcd is down\"",
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
    let mut cluster = false;
    let mut wait = None;
    let mut min_healthy = MinHealthy::All;
    let mut progress = false;
    let mut quiet = false;
    while let Some(opt) = args.next_opt()? {
        if conn.take(&opt, &mut args)? || format.take(&opt, &mut args)? {
            continue;
        }
        match &opt {
            Opt::Long(name) => match name.as_str() {
                "cluster" => cluster = args.bool_value(&opt)?,
                "wait" => {
                    let text = args.value(&opt)?;
                    let d =
                        duration::parse(&text).map_err(|e| Error::usage(format!("--wait: {e}")))?;
                    wait = Some(d);
                }
                "min-healthy" => min_healthy = parse_min_healthy(&args.value(&opt)?)?,
                "progress" => progress = args.bool_value(&opt)?,
                "quiet" => quiet = args.bool_value(&opt)?,
                _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
            },
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    Ok(Parsed::Run(Box::new(Options {
        conn: conn.resolve(env)?,
        format: format.resolve(env)?,
        cluster,
        wait,
        min_healthy,
        progress,
        quiet,
    })))
}

fn parse_min_healthy(text: &str) -> Result<MinHealthy> {
    match text {
        "all" => Ok(MinHealthy::All),
        "quorum" => Ok(MinHealthy::Quorum),
        n => match n.parse::<usize>() {
            Ok(count) if count > 0 => Ok(MinHealthy::Count(count)),
            _ => Err(Error::usage(format!(
                "--min-healthy: expected all, quorum or a positive number, got {text:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Parsed> {
        let mut argv = vec!["etcd-health"];
        argv.extend_from_slice(words);
        parse(Args::from_vec(argv), &Env::default())
    }

    #[test]
    fn parses_our_flags() {
        let Ok(Parsed::Run(o)) = parse_words(&[
            "--cluster",
            "--wait",
            "3s",
            "--min-healthy",
            "quorum",
            "-w",
            "json",
        ]) else {
            panic!("expected options");
        };
        assert!(o.cluster);
        assert_eq!(o.wait, Some(Duration::from_secs(3)));
        assert_eq!(o.min_healthy, MinHealthy::Quorum);
        assert_eq!(o.format, Format::Json);
    }

    #[test]
    fn rejects_bad_values() {
        for words in [
            vec!["--min-healthy", "0"],
            vec!["--min-healthy", "most"],
            vec!["--wait", "soon"],
            vec!["-w", "yaml"],
            vec!["--bogus"],
            vec!["extra"],
        ] {
            let err = parse_words(&words).err();
            assert_eq!(
                err.map(|e| e.code),
                Some(etcd_common::ExitCode::Usage),
                "{words:?}"
            );
        }
    }

    #[test]
    fn help_documents_every_flag_and_code() {
        let text = help();
        for needle in [
            "--cluster",
            "--wait",
            "--min-healthy",
            "--endpoints",
            "ETCDCTL_",
            "--password-file",
            "  7  degraded",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}
