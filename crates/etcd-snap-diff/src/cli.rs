//! The command line of `etcd-snap-diff`: `A B` (files or one `-`), or one file and two revisions,
//! over the offline tools' input flags (`-i`, `--skip-hash-check`) and `-w simple|json`.

use etcd_common::args::{Args, Env, InputFlags, Opt};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::output::{Format, FormatFlag};
use etcd_common::{Error, Result};
use std::path::PathBuf;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Snapshot A, `None` for stdin.
    pub a: Option<PathBuf>,
    /// Snapshot B: `None` when A is compared with itself at two revisions; `Some(None)` for stdin.
    pub b: Option<Option<PathBuf>>,
    /// The revision read from A (`None`: its current revision).
    pub rev_a: Option<i64>,
    /// The revision read from B (`None`: its current revision).
    pub rev_b: Option<i64>,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// simple or json.
    pub format: Format,
    /// age identity files.
    pub identities: Vec<String>,
    /// Accept databases without the SHA-256 trailer.
    pub skip_hash_check: bool,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-diff",
    version: env!("CARGO_PKG_VERSION"),
    summary: "what changed between two etcd snapshots, offline",
    description: "\
Compares the live keys of two etcd snapshots, or of one snapshot at two revisions it still holds,
and prints the keys added, removed and changed (value or lease), in key order, without their
values. Then a summary line and etcd's hashkv of each side (the hash `etcdctl endpoint hashkv`
and `etcdutl hashkv` give for the same database and revision) as a one-line verdict. Inputs are
files or stdin (one of them), raw or zstd- and/or age-encoded, verified as etcd-snap-status
verifies them. Memory stays flat: keys are sorted in bounded runs spilled to unnamed temporary
files under TMPDIR.",
    usage: &[
        "etcd-snap-diff [OPTIONS] A|- B|-",
        "etcd-snap-diff [OPTIONS] --rev-a R [--rev-b R] SNAPSHOT|-",
    ],
    sections: &[
        Section::titled(
            "OPTIONS",
            29,
            &[
                Item::Opt(
                    "      --rev-a R",
                    "read A as of revision R [default: its current revision]",
                ),
                Item::Opt(
                    "      --rev-b R",
                    "read B (or, with one snapshot, the same one) as of revision R\n\
                     [default: its current revision]",
                ),
                Item::Opt("      --prefix KEY", "only keys starting with KEY"),
                Item::Opt(
                    "  -w, --write-out FORMAT",
                    "simple or json [default: simple]",
                ),
                help::IDENTITY,
                Item::Opt(
                    "      --skip-hash-check",
                    "accept databases without the SHA-256 trailer (db files copied from\n\
                     a data dir)",
                ),
                help::HELP,
                help::VERSION,
                help::GENERATE,
            ],
        ),
        Section::titled(
            "OUTPUT",
            0,
            &[Item::Text(
                "simple: one line per difference, `added|removed|changed<TAB>KEY` (keys escaped as Go's %q\n\
                 does, without quotes), then `summary: ...` and `hashkv: equal|different ...`. json: one\n\
                 object with `changes` (key, change, and each side's createRevision, modRevision,\n\
                 version, lease), `added`, `removed`, `changed`, `same`, and `a`/`b` with name,\n\
                 revision, keys and hashkv {hash, compactRevision, hashRevision}.",
            )],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                Item::Code("0", "same: no key added, removed or changed"),
                Item::Code("1", "different"),
                Item::Code(
                    "2",
                    "usage: unknown flag, bad value, missing argument, a revision compacted or in\n\
                     the future",
                ),
                code::INTEGRITY,
                code::LOCAL_IO,
            ],
        ),
    ],
    examples: &[
        "etcd-snap-diff last-night.db tonight.db",
        "etcd-snap-diff --rev-a 1200 snap.db",
        "age -d -i key.txt old.db.zst.age | zstd -dc | etcd-snap-diff - new.db -w json",
        "etcd-snap-diff -i key.txt old.db.zst.age new.db.zst.age --prefix /registry/deployments/",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Parses the command line (`ETCDCTL_WRITE_OUT` is read as the other tools read it).
pub fn parse(mut args: Args, env: &Env) -> Result<Parsed> {
    let mut inputs: Vec<Option<PathBuf>> = Vec::new();
    let mut rev_a = None;
    let mut rev_b = None;
    let mut prefix = None;
    let mut format = FormatFlag::default();
    let mut input_flags = InputFlags::default();
    while let Some(opt) = args.next_opt()? {
        if format.take(&opt, &mut args)? || input_flags.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Positional(value) => {
                if inputs.len() == 2 {
                    return Err(Error::usage(format!(
                        "unexpected argument {:?}: give two snapshots, or one and --rev-a",
                        value.to_string_lossy()
                    )));
                }
                inputs.push((value != "-").then(|| PathBuf::from(value)));
                continue;
            }
            Opt::Short(_) => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        };
        match long {
            "rev-a" => rev_a = Some(revision(&opt, &args.value(&opt)?)?),
            "rev-b" => rev_b = Some(revision(&opt, &args.value(&opt)?)?),
            "prefix" => prefix = Some(args.value(&opt)?),
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    let format = match format.resolve(env)? {
        Format::Table => {
            return Err(Error::usage(
                "--write-out: unsupported output format \"table\" (use simple or json)",
            ))
        }
        f => f,
    };
    let mut inputs = inputs.into_iter();
    let (a, b) = match (inputs.next(), inputs.next()) {
        (None, _) => {
            return Err(Error::usage(
                "give two snapshots (FILE or '-' for stdin), or one and --rev-a (see --help)",
            ))
        }
        (Some(None), Some(None)) => {
            return Err(Error::usage("only one of A and B can be '-' (stdin)"))
        }
        (Some(a), None) => {
            if rev_a.is_none() && rev_b.is_none() {
                return Err(Error::usage(
                    "one snapshot is compared with itself at two revisions: give --rev-a (and --rev-b), or a second snapshot",
                ));
            }
            (a, None)
        }
        (Some(a), Some(b)) => (a, Some(b)),
    };
    Ok(Parsed::Run(Box::new(Options {
        a,
        b,
        rev_a,
        rev_b,
        prefix,
        format,
        identities: input_flags.identities,
        skip_hash_check: input_flags.skip_hash_check,
    })))
}

/// A revision flag's value: a positive integer.
fn revision(flag: &Opt, text: &str) -> Result<i64> {
    match text.parse::<i64>() {
        Ok(r) if r > 0 => Ok(r),
        _ => Err(Error::usage(format!(
            "{}: {text:?} is not a revision (a positive integer)",
            flag.display()
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options> {
        let args = Args::from_vec(std::iter::once("etcd-snap-diff").chain(args.iter().copied()));
        match parse(args, &Env::default())? {
            Parsed::Run(o) => Ok(*o),
            Parsed::Exit(_) => panic!("exit"),
        }
    }

    #[test]
    fn shapes() {
        let o = run(&["a.db", "-", "-w", "json", "--rev-a=7"]).unwrap();
        assert_eq!(o.a, Some(PathBuf::from("a.db")));
        assert_eq!(o.b, Some(None));
        assert_eq!((o.rev_a, o.rev_b), (Some(7), None));
        assert_eq!(o.format, Format::Json);
        let o = run(&["--rev-a", "3", "-"]).unwrap();
        assert_eq!((o.a, o.b), (None, None));
        for bad in [
            &["-", "-"][..],
            &["a.db"],
            &[],
            &["a", "b", "c"],
            &["a", "b", "--rev-a", "0"],
            &["a", "b", "--rev-b", "x"],
            &["a", "b", "-w", "table"],
            &["a", "b", "--nope"],
        ] {
            let e = run(bad).unwrap_err();
            assert_eq!(e.code, etcd_common::ExitCode::Usage, "{bad:?}: {e}");
        }
    }
}
