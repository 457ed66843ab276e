//! The command line of `etcd-snap-get`: kubectl's shape (`RESOURCE [NAME]`, `RESOURCE/NAME`,
//! `-n`, `-A`, `-o`) over the offline tools' input flags (`-i`, `--skip-hash-check`).

use etcd_common::args::{Args, Env, InputFlags, Opt};
use etcd_common::help::{self, code, Item, Page, Section};
use etcd_common::{Error, Result};
use std::path::PathBuf;

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns: NAMESPACE NAME KIND BYTES FORMAT (the default for a list).
    Table,
    /// kubectl's YAML (the default for one object).
    Yaml,
    /// kubectl's JSON (4-space indent).
    Json,
    /// The exact stored bytes of one object.
    Raw,
}

impl Output {
    fn parse(text: &str, flag: &str) -> Result<Output> {
        match text {
            "table" | "simple" | "wide" => Ok(Output::Table),
            "yaml" => Ok(Output::Yaml),
            "json" => Ok(Output::Json),
            "raw" => Ok(Output::Raw),
            other => Err(Error::usage(format!(
                "{flag}: unsupported output format {other:?} (use yaml, json, raw or table)"
            ))),
        }
    }
}

/// Which namespaces a request covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `-n NS` (or `default`).
    One(String),
    /// `-A`.
    All,
}

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `--prefix KEY`: raw keys.
    Prefix(String),
    /// `RESOURCE [NAME]`.
    Resource {
        /// The resource as given (`po`, `deployments.apps`, `crontabs.stable.example.com`).
        resource: String,
        /// One object's name.
        name: Option<String>,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The snapshot file, or `None` for stdin.
    pub input: Option<PathBuf>,
    /// What to look up.
    pub query: Query,
    /// Namespaces.
    pub scope: Scope,
    /// Chosen output, `None` for the default (table for a list, yaml for one object).
    pub output: Option<Output>,
    /// Keep uid, resourceVersion, status, ... (and fill resourceVersion from the key).
    pub keep_server_fields: bool,
    /// The API server's `--etcd-prefix`.
    pub k8s_prefix: String,
    /// age identity files.
    pub identities: Vec<String>,
    /// Accept a database without the SHA-256 trailer.
    pub skip_hash_check: bool,
    /// `--encryption-config FILE`: the API server's EncryptionConfiguration, to decrypt with.
    pub encryption_config: Option<PathBuf>,
    /// `--rev R`: read the objects as of revision R (`None`: the snapshot's revision).
    pub rev: Option<i64>,
    /// `--history`: every stored revision of one object.
    pub history: bool,
}

/// What the command line asks for.
pub type Parsed = etcd_common::args::Parsed<Options>;

/// This tool's manual, the one source of its `--help` text and its man page.
pub const PAGE: Page = Page {
    name: "etcd-snap-get",
    version: env!("CARGO_PKG_VERSION"),
    summary: "get Kubernetes objects out of an etcd snapshot, offline",
    description: "\
Gets Kubernetes objects back out of an etcd snapshot, offline, the way kubectl get shows them:
the live objects at the snapshot's revision (deleted ones and older revisions are not shown).
Built-in objects stored as protobuf are decoded; custom resources (JSON) pass through. Server-set
fields (metadata uid, resourceVersion, generation, creationTimestamp, managedFields, selfLink,
deletion*, and status) are stripped so that `kubectl apply -f` takes the result. The input may
be a file or stdin, raw or zstd- and/or age-encoded (detected by content, in any nesting), and
is verified like etcd-snap-status verifies it.

A snapshot also keeps every revision since its last compaction: --rev R shows the objects as
they were at revision R (what `etcdctl get --rev R` returned), and --history every stored
revision of one object, each with the unified diff of its YAML from the version before.",
    usage: &[
        "etcd-snap-get [OPTIONS] SNAPSHOT|- RESOURCE [NAME]",
        "etcd-snap-get [OPTIONS] SNAPSHOT|- RESOURCE/NAME",
        "etcd-snap-get [OPTIONS] SNAPSHOT|- --prefix KEY",
        "etcd-snap-get [OPTIONS] SNAPSHOT|- --history RESOURCE NAME|--prefix KEY",
    ],
    sections: &[
        Section::note(
            false,
            &[Item::Text(
                "RESOURCE is a plural, singular, kind or short name (pods, pod, po, deploy, svc, cm, secret, ns,\n\
                 ...), optionally with its group (deployments.apps); a custom resource is PLURAL.GROUP (or its\n\
                 plural alone, when one group in the snapshot has it).",
            )],
        ),
        Section::titled(
            "OPTIONS",
            32,
            &[
                Item::Opt(
                    "  -n, --namespace NS",
                    "the namespace [default: default]; ignored for cluster-scoped\n\
                     resources",
                ),
                Item::Opt("  -A, --all-namespaces", "list across all namespaces"),
                Item::Opt(
                    "  -o, --output FORMAT",
                    "yaml, json, raw or table [default: yaml for one object, table for a\n\
                     list]; raw writes the exact stored bytes of one object (refused on a\n\
                     terminal); -w/--write-out is the same flag",
                ),
                Item::Opt(
                    "      --keep-server-fields",
                    "keep the server-set fields, with metadata.resourceVersion filled\n\
                     from the key's mod revision as the API server does",
                ),
                Item::Opt(
                    "      --rev R",
                    "the objects as of revision R, as `etcdctl get --rev R` returned them\n\
                     [default (or 0): the snapshot's revision]; with --history, the\n\
                     revisions up to R",
                ),
                Item::Opt(
                    "      --history",
                    "every stored revision of one object (RESOURCE NAME or --prefix\n\
                     KEY), oldest first: revision, created/updated/deleted, version\n\
                     and bytes, then the unified diff of the YAML from the version\n\
                     before (a value that is not an object: its escaped text). Only\n\
                     revisions since the last compaction are stored. No time column:\n\
                     etcd keeps no time with a revision. -o table: the revisions\n\
                     without the diffs; -o json: each with its object and diff",
                ),
                Item::Opt(
                    "      --prefix KEY",
                    "the live keys starting with KEY (one object when a key is exactly\n\
                     KEY), whatever they hold",
                ),
                Item::Opt(
                    "      --k8s-prefix PREFIX",
                    "the API server's --etcd-prefix [default: /registry]",
                ),
                Item::Opt(
                    "      --encryption-config FILE",
                    "the API server's EncryptionConfiguration (its\n\
                     --encryption-provider-config): values encrypted with its aescbc,\n\
                     aesgcm or secretbox keys are decrypted and shown as the API shows\n\
                     them (KMS-encrypted values cannot be, offline)",
                ),
                help::IDENTITY,
                help::SKIP_HASH_CHECK,
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
                    "1",
                    "not shown: the object is not found, stored encrypted (without --encryption-config,\n\
                     or by KMS, or with a key it does not have) or not decodable (-o raw gives the\n\
                     stored bytes); in a list, the others are still printed",
                ),
                code::USAGE,
                code::INTEGRITY,
                Item::Code("5", "refused: -o raw to a terminal"),
                code::LOCAL_IO,
                Item::Text(
                    "--rev or --history at a revision the snapshot no longer holds (compacted) exits 1, naming\n\
                     the compact revision; a revision after the snapshot's exits 2.",
                ),
            ],
        ),
    ],
    examples: &[
        "etcd-snap-get snap.db deploy -n web",
        "etcd-snap-get snap.db deployment/frontend -n web | kubectl apply -f -",
        "age -d -i key.txt snap.db.zst.age | zstd -dc | etcd-snap-get - cm -A -o json",
        "etcd-snap-get -i key.txt snap.db.zst.age crontabs.stable.example.com -n ns1",
        "etcd-snap-get snap.db --prefix /registry/secrets/prod/db-pass -o raw > value.bin",
        "etcd-snap-get snap.db deploy/frontend -n web --rev 81234      # as it was at revision 81234",
        "etcd-snap-get snap.db deploy/frontend -n web --history        # every change, as YAML diffs",
    ],
};

/// The `--help` text.
pub fn help() -> String {
    PAGE.help()
}

/// Parses the command line.
pub fn parse(mut args: Args, _env: &Env) -> Result<Parsed> {
    let mut input = None;
    let mut words: Vec<String> = Vec::new();
    let mut namespace = None;
    let mut all = false;
    let mut output = None;
    let mut keep_server_fields = false;
    let mut prefix = None;
    let mut k8s_prefix = k8s_registry::DEFAULT_PREFIX.to_string();
    let mut input_flags = InputFlags::default();
    let mut encryption_config = None;
    let mut rev = None;
    let mut history = false;
    while let Some(opt) = args.next_opt()? {
        if input_flags.take(&opt, &mut args)? {
            continue;
        }
        let long = match &opt {
            Opt::Long(name) => name.as_str(),
            Opt::Short('n') => "namespace",
            Opt::Short('A') => "all-namespaces",
            Opt::Short('o') => "output",
            Opt::Short('w') => "write-out",
            Opt::Positional(value) => {
                match input {
                    None => etcd_common::args::set_input(&mut input, value)?,
                    Some(_) => words.push(
                        value
                            .to_str()
                            .map(str::to_string)
                            .ok_or_else(|| Error::usage(format!("{value:?} is not valid UTF-8")))?,
                    ),
                }
                continue;
            }
            Opt::Short(_) => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        };
        match long {
            "namespace" => namespace = Some(args.value(&opt)?),
            "all-namespaces" => all = args.bool_value(&opt)?,
            "output" | "write-out" => {
                output = Some(Output::parse(&args.value(&opt)?, &opt.display())?)
            }
            "keep-server-fields" => keep_server_fields = args.bool_value(&opt)?,
            "prefix" => prefix = Some(args.value(&opt)?),
            "k8s-prefix" => {
                k8s_prefix = args.value(&opt)?;
                if !k8s_prefix.starts_with('/') {
                    return Err(Error::usage(format!(
                        "--k8s-prefix: {k8s_prefix:?} does not start with '/' (the API server's default is /registry)"
                    )));
                }
            }
            "encryption-config" => encryption_config = Some(PathBuf::from(args.value(&opt)?)),
            "rev" => rev = revision(&opt, &args.value(&opt)?)?,
            "history" => history = args.bool_value(&opt)?,
            _ => return PAGE.shared_flag(&opt, &mut args).map(Parsed::Exit),
        }
    }
    let Some(input) = input else {
        return Err(Error::usage(
            "give the snapshot (FILE or '-' for stdin) and what to get (see --help)",
        ));
    };
    let query = query(prefix, words)?;
    if history && output == Some(Output::Raw) {
        return Err(Error::usage(
            "--history prints revisions and diffs: -o raw writes one value (use --rev R -o raw)",
        ));
    }
    let scope = match (all, namespace) {
        (true, Some(_)) => {
            return Err(Error::usage(
                "-n/--namespace and -A/--all-namespaces exclude each other",
            ))
        }
        (true, None) => Scope::All,
        (false, Some(ns)) if ns.is_empty() || ns.contains('/') => {
            return Err(Error::usage(format!("-n: {ns:?} is not a namespace name")))
        }
        (false, ns) => Scope::One(ns.unwrap_or_else(|| "default".to_string())),
    };
    Ok(Parsed::Run(Box::new(Options {
        input,
        query,
        scope,
        output,
        keep_server_fields,
        k8s_prefix,
        identities: input_flags.identities,
        skip_hash_check: input_flags.skip_hash_check,
        encryption_config,
        rev,
        history,
    })))
}

/// `--rev`'s value: a revision; 0 is the snapshot's own, as `etcdctl get --rev 0`.
fn revision(flag: &Opt, text: &str) -> Result<Option<i64>> {
    match text.parse::<i64>() {
        Ok(0) => Ok(None),
        Ok(r) if r > 0 => Ok(Some(r)),
        _ => Err(Error::usage(format!(
            "{}: {text:?} is not a revision (a non-negative integer)",
            flag.display()
        ))),
    }
}

fn query(prefix: Option<String>, words: Vec<String>) -> Result<Query> {
    let mut words = words.into_iter();
    let (first, second, extra) = (words.next(), words.next(), words.next());
    if let Some(extra) = extra {
        return Err(Error::usage(format!(
            "unexpected argument {extra:?}: give RESOURCE [NAME] (see --help)"
        )));
    }
    match (prefix, first, second) {
        (Some(p), None, None) => Ok(Query::Prefix(p)),
        (Some(_), _, _) => Err(Error::usage(
            "--prefix takes no RESOURCE or NAME: give one or the other",
        )),
        (None, None, _) => Err(Error::usage(
            "what to get is missing: give RESOURCE [NAME] or --prefix KEY (see --help)",
        )),
        (None, Some(first), second) => {
            let (resource, name) = match (first.split_once('/'), second) {
                (Some(_), Some(name)) => {
                    return Err(Error::usage(format!(
                        "give RESOURCE/NAME or RESOURCE NAME, not both ({first:?} {name:?})"
                    )))
                }
                (Some((resource, name)), None) => (resource.to_string(), Some(name.to_string())),
                (None, name) => (first, name),
            };
            if resource.is_empty()
                || name
                    .as_deref()
                    .is_some_and(|n| n.is_empty() || n.contains('/'))
            {
                return Err(Error::usage(format!(
                    "{:?}: give RESOURCE [NAME] or RESOURCE/NAME (see --help)",
                    format!("{resource}/{}", name.unwrap_or_default())
                )));
            }
            Ok(Query::Resource { resource, name })
        }
    }
}
