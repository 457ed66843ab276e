//! The command line of `etcd-snap-diff`: `A B` (files or one `-`), or one file and two revisions,
//! over the offline tools' input flags (`-i`, `--skip-hash-check`) and `-w simple|json`, and
//! `--k8s` with its flags (`--keep-server-fields`, `--k8s-prefix`, `--encryption-config`).

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
    /// `--k8s`: changes by resource, namespace and name, with a YAML diff per changed object.
    pub k8s: Option<K8sOptions>,
}

/// What `--k8s` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sOptions {
    /// The API server's `--etcd-prefix`.
    pub prefix: String,
    /// Compare the server-set fields too (metadata.resourceVersion filled from the mod revision).
    pub keep_server_fields: bool,
    /// `--encryption-config FILE`: the API server's EncryptionConfiguration, to decrypt with.
    pub encryption_config: Option<PathBuf>,
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
files under TMPDIR.

With --k8s, keys the Kubernetes API server laid out are shown as objects (RESOURCE and
NAMESPACE/NAME), and each changed object is decoded on both sides (protobuf or JSON, decrypted
with --encryption-config) and compared as the YAML `etcd-snap-get` prints: server-set fields
(metadata uid, resourceVersion, generation, creationTimestamp, managedFields, selfLink,
deletion*, and status) are ignored unless --keep-server-fields, so an object whose only changes
are there (or in its etcd lease) counts as unchanged, and the summary says how many there were.
A running API server rewrites some objects on its own (its lease in kube-system every ~10 s,
/registry/masterleases/, events): two snapshots minutes apart differ in them; --prefix narrows
the comparison (e.g. to /registry/deployments/).",
    usage: &[
        "etcd-snap-diff [OPTIONS] A|- B|-",
        "etcd-snap-diff [OPTIONS] --rev-a R [--rev-b R] SNAPSHOT|-",
    ],
    sections: &[
        Section::titled(
            "OPTIONS",
            32,
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
                    "      --k8s",
                    "Kubernetes objects: by resource, namespace and name, with a unified\n\
                     YAML diff per changed object, server-set fields ignored",
                ),
                Item::Opt(
                    "      --keep-server-fields",
                    "with --k8s: compare the server-set fields too",
                ),
                Item::Opt(
                    "      --k8s-prefix PREFIX",
                    "with --k8s: the API server's --etcd-prefix [default: /registry]",
                ),
                Item::Opt(
                    "      --encryption-config FILE",
                    "with --k8s: the API server's EncryptionConfiguration, to\n\
                     decrypt aescbc, aesgcm and secretbox values (without it, or for KMS,\n\
                     a changed encrypted object is listed with why its diff is not shown)",
                ),
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
                 revision, keys and hashkv {hash, compactRevision, hashRevision}.\n\
                 \n\
                 --k8s simple: an object is `added|removed|changed<TAB>RESOURCE<TAB>[NAMESPACE/]NAME`\n\
                 (RESOURCE as in the key: deployments, crontabs.stable.example.com), a changed one\n\
                 followed by its unified diff (`--- a/KEY @ MODREV`, `+++ b/KEY @ MODREV`, hunks)\n\
                 or a `# not shown: WHY` line; keys outside the layout as without --k8s. The summary\n\
                 adds `N changed only in server-set fields or their lease (not listed)`. --k8s json: each change also has\n\
                 resource, group, namespace (null when cluster-scoped) and name (for objects),\n\
                 diff (text or null) and notShown (why, when the diff cannot be shown); the\n\
                 object also has serverFieldsOnly (objects changed only in server-set fields or\n\
                 their lease, not listed).",
            )],
        ),
        Section::titled(
            "EXIT CODES",
            0,
            &[
                Item::Code(
                    "0",
                    "same: no key added, removed or changed (--k8s: besides server-set fields)",
                ),
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
        "etcd-snap-diff --k8s last-night.db tonight.db --encryption-config enc.yaml",
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
    let mut k8s = false;
    let mut keep_server_fields = false;
    let mut k8s_prefix: Option<String> = None;
    let mut encryption_config = None;
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
            "k8s" => k8s = args.bool_value(&opt)?,
            "keep-server-fields" => keep_server_fields = args.bool_value(&opt)?,
            "k8s-prefix" => {
                let p = args.value(&opt)?;
                if !p.starts_with('/') {
                    return Err(Error::usage(format!(
                        "--k8s-prefix: {p:?} does not start with '/' (the API server's default is /registry)"
                    )));
                }
                k8s_prefix = Some(p);
            }
            "encryption-config" => encryption_config = Some(PathBuf::from(args.value(&opt)?)),
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
    let k8s = match k8s {
        true => Some(K8sOptions {
            prefix: k8s_prefix.unwrap_or_else(|| k8s_registry::DEFAULT_PREFIX.to_string()),
            keep_server_fields,
            encryption_config,
        }),
        false if keep_server_fields || k8s_prefix.is_some() || encryption_config.is_some() => {
            return Err(Error::usage(
                "--keep-server-fields, --k8s-prefix and --encryption-config compare Kubernetes objects: add --k8s",
            ))
        }
        false => None,
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
        k8s,
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
        assert_eq!(o.k8s, None);
        let o = run(&["a", "b", "--k8s", "--keep-server-fields", "--k8s-prefix=/k"]).unwrap();
        let k = o.k8s.unwrap();
        assert_eq!((k.prefix.as_str(), k.keep_server_fields), ("/k", true));
        let o = run(&["a", "b", "--k8s"]).unwrap();
        assert_eq!(o.k8s.unwrap().prefix, "/registry");
        for bad in [
            &["-", "-"][..],
            &["a.db"],
            &[],
            &["a", "b", "c"],
            &["a", "b", "--rev-a", "0"],
            &["a", "b", "--rev-b", "x"],
            &["a", "b", "-w", "table"],
            &["a", "b", "--nope"],
            &["a", "b", "--keep-server-fields"],
            &["a", "b", "--encryption-config", "e.yaml"],
            &["a", "b", "--k8s", "--k8s-prefix", "registry"],
        ] {
            let e = run(bad).unwrap_err();
            assert_eq!(e.code, etcd_common::ExitCode::Usage, "{bad:?}: {e}");
        }
    }
}
