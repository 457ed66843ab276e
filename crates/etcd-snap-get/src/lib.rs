//! `etcd-snap-get`: Kubernetes objects back out of an etcd snapshot, offline, kubectl-style.
//!
//! The snapshot is opened and verified exactly as `etcd-snap-status` does it (file or stdin; raw,
//! zstd or age; consistency check and SHA-256 trailer), then the live keys the request names are
//! read ([`select`]), decoded ([`object`]) and printed ([`render`]); `--rev` and `--history` read
//! older revisions ([`history`]). No etcd client, no network.

pub mod cli;
pub mod history;
pub mod object;
pub mod render;
pub mod select;

use cli::{Options, Output, Query, Scope};
use etcd_common::{Error, ExitCode, Result};
use select::{Item, Selection};
use std::io::IsTerminal;

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, run)
}

/// Reads the snapshot and prints what `options` asks for.
pub fn run(options: &Options) -> Result<ExitCode> {
    if options.output == Some(Output::Raw) && std::io::stdout().is_terminal() {
        return Err(Error::new(
            ExitCode::Refused,
            "refusing to write raw stored bytes to a terminal: redirect stdout (> FILE) or pipe it",
        ));
    }
    // Read before the snapshot: a bad file is a usage error, found before any long read.
    let config = match &options.encryption_config {
        None => None,
        Some(path) => Some(k8s_registry::EncryptionConfig::from_file(path).map_err(
            |e| match e {
                k8s_registry::decrypt::ConfigError::Io(m) => {
                    Error::new(ExitCode::LocalIo, format!("--encryption-config: {m}"))
                }
                k8s_registry::decrypt::ConfigError::Invalid(m) => {
                    Error::usage(format!("--encryption-config: {m}"))
                }
            },
        )?),
    };
    let selection = Selection::new(&options.query, &options.scope, &options.k8s_prefix);
    let source = etcd_common::snapshot::Source {
        input: options.input.as_deref(),
        identities: &options.identities,
        skip_hash_check: options.skip_hash_check,
    };
    if options.history {
        return history::run(options, &selection, source, config.as_ref());
    }
    let opened = etcd_common::snapshot::open_verified(source, |db, name| {
        select::collect(db, &selection, options.rev).map_err(|e| history::db_error(name, e))
    })?;
    let (items, revision) = opened.read;
    let items = settle_resource(&selection, items)?;
    match single(options, &selection, items, revision)? {
        Ok(item) => render::one(&item, options, config.as_ref()),
        Err(items) => render::list(&items, options, config.as_ref()),
    }
}

/// A resource given by its plural alone must be in exactly one group.
fn settle_resource(selection: &Selection, items: Vec<Item>) -> Result<Vec<Item>> {
    let Some(k8s_registry::resources::Resolved::Unknown(plural)) = &selection.resolved else {
        return Ok(items);
    };
    let mut groups: Vec<&str> = items.iter().filter_map(|i| i.group.as_deref()).collect();
    groups.sort_unstable();
    groups.dedup();
    // Groups come from the snapshot's keys: shown escaped.
    let groups: Vec<String> = groups
        .iter()
        .map(|g| etcd_common::output::escape(g).into_owned())
        .collect();
    match groups.as_slice() {
        [_] => Ok(selection.narrow(items)),
        [] => Err(Error::usage(format!(
            "unknown resource type {plural:?}: not built in, and no live {plural} of any group under {} (a custom resource is PLURAL.GROUP)",
            selection.key_prefix
        ))),
        many => Err(Error::usage(format!(
            "{plural:?} is ambiguous: the snapshot has it in groups {}; give {plural}.GROUP",
            many.join(", ")
        ))),
    }
}

/// One object (`Ok`) or a list (`Err`): a name (or a `--prefix` key that exists exactly) asks
/// for one object, and not finding it is exit 1.
fn single(
    options: &Options,
    selection: &Selection,
    mut items: Vec<Item>,
    revision: i64,
) -> Result<std::result::Result<Item, Vec<Item>>> {
    if let Query::Prefix(p) = &options.query {
        if let Some(at) = items.iter().position(|i| i.key == *p) {
            return Ok(Ok(items.swap_remove(at)));
        }
        if options.output == Some(Output::Raw) && items.is_empty() {
            return Err(Error::new(
                ExitCode::CheckFailed,
                format!("no live key starts with {p:?} at revision {revision}"),
            ));
        }
        if options.output == Some(Output::Raw) && items.len() != 1 {
            return Err(Error::usage(format!(
                "-o raw writes one value: {} live keys start with {p:?} and none is exactly it",
                items.len()
            )));
        }
        return Ok(match items.len() {
            1 if options.output == Some(Output::Raw) => Ok(items.remove(0)),
            _ => Err(items),
        });
    }
    let Some(name) = &selection.name else {
        if options.output == Some(Output::Raw) {
            return Err(Error::usage(
                "-o raw writes one object's stored bytes: give a NAME",
            ));
        }
        return Ok(Err(items));
    };
    if items.is_empty() {
        let Query::Resource { resource, .. } = &options.query else {
            return Ok(Err(items));
        };
        let place = match (&options.scope, &selection.resolved) {
            (_, Some(k8s_registry::resources::Resolved::Builtin(b))) if !b.namespaced => {
                String::new()
            }
            (Scope::One(ns), _) => format!(" in namespace {ns:?}"),
            (Scope::All, _) => " in any namespace".to_string(),
        };
        let keys = if selection.exact.is_empty() {
            format!("no live key under {} matches", selection.key_prefix)
        } else {
            format!("no live key {}", selection.exact.join(" or "))
        };
        return Err(Error::new(
            ExitCode::CheckFailed,
            format!("{resource} {name:?} not found{place} at revision {revision} ({keys})"),
        ));
    }
    // A custom resource may exist both namespaced and not: the namespaced one wins, as -n asks.
    if let Some(at) = items.iter().position(|i| i.namespace.is_some()) {
        if items.len() == 1 || !matches!(options.scope, Scope::All) {
            return Ok(Ok(items.swap_remove(at)));
        }
    }
    if items.len() == 1 {
        return Ok(Ok(items.remove(0)));
    }
    if options.output == Some(Output::Raw) {
        return Err(Error::usage(format!(
            "-o raw writes one object: {} objects are named {name:?}; give -n NAMESPACE",
            items.len()
        )));
    }
    Ok(Err(items))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn options(query: Query, output: Option<Output>) -> Options {
        Options {
            input: Some(PathBuf::from("snap.db")),
            query,
            scope: Scope::One("default".into()),
            output,
            keep_server_fields: false,
            k8s_prefix: "/registry".into(),
            identities: Vec::new(),
            skip_hash_check: false,
            encryption_config: None,
            rev: None,
            history: false,
        }
    }

    fn item(key: &str) -> Item {
        Item {
            key: key.into(),
            raw_key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            mod_revision: 2,
            namespace: None,
            name: key.into(),
            group: None,
        }
    }

    #[test]
    fn raw_prefix_without_a_live_key_is_not_found() {
        // A script's `--prefix KEY -o raw > file` for a key that is gone: exit 1 (not found),
        // not 2 (usage error, "fix the call").
        let o = options(
            Query::Prefix("/registry/secrets/prod/gone".into()),
            Some(Output::Raw),
        );
        let s = Selection::new(&o.query, &o.scope, &o.k8s_prefix);
        let e = single(&o, &s, Vec::new(), 7).unwrap_err();
        assert_eq!(e.code, ExitCode::CheckFailed, "{e}");
        // Several keys and none exactly it: that is the call to fix.
        let items = vec![item("/registry/a/x"), item("/registry/a/y")];
        let o = options(Query::Prefix("/registry/a/".into()), Some(Output::Raw));
        let e = single(&o, &s, items, 7).unwrap_err();
        assert_eq!(e.code, ExitCode::Usage, "{e}");
    }
}
