//! Printing: one object as YAML, JSON or its raw bytes; a list as a table or a `kind: List`.
//! Objects that cannot be shown (encrypted, undecodable) are one `Error:` line for a single
//! object, and a `Warning:` line each in a list (the others are printed, and the exit code is 1).
//! Keys, names and kinds come from the snapshot: the table and the messages show them escaped
//! (`etcd_common::output::escape`), JSON escapes as JSON does, and `-o raw` is the exact bytes.

use crate::cli::{Options, Output, Query, Scope};
use crate::object::{self, Decoded};
use crate::select::Item;
use etcd_common::output::{escape, print_stdout};
use etcd_common::{Error, ExitCode, Result};
use k8s_registry::{EncryptionConfig, ValueFormat};
use std::io::Write;

/// What went wrong with one object, as one line.
fn not_shown(item: &Item, decoded: &Decoded) -> Option<String> {
    match decoded {
        Decoded::Object(_) => None,
        Decoded::Encrypted(e) => Some(format!(
            "{} is stored encrypted with {}; decrypting needs the API server's EncryptionConfiguration (--encryption-config FILE; -o raw gives the stored bytes)",
            item.shown_key(),
            escape(&e.to_string())
        )),
        Decoded::Undecodable(why) => Some(format!(
            "{}: {} (-o raw gives the stored bytes)",
            item.shown_key(),
            escape(why)
        )),
    }
}

/// Decodes an item, decrypting it with `config` when it is encrypted.
fn decode(item: &Item, options: &Options, config: Option<&EncryptionConfig>) -> Decoded {
    object::decode_with(
        &item.value,
        &item.raw_key,
        &options.k8s_prefix,
        item.mod_revision,
        options.keep_server_fields,
        config,
    )
}

/// Prints one object.
pub fn one(item: &Item, options: &Options, config: Option<&EncryptionConfig>) -> Result<ExitCode> {
    let output = options.output.unwrap_or(Output::Yaml);
    if output == Output::Raw {
        return write_raw(&item.value);
    }
    if output == Output::Table {
        return list(std::slice::from_ref(item), options, config);
    }
    let decoded = decode(item, options, config);
    if let Some(why) = not_shown(item, &decoded) {
        return Err(Error::new(ExitCode::CheckFailed, why));
    }
    let Decoded::Object(value) = decoded else {
        return Err(Error::new(
            ExitCode::CheckFailed,
            format!("{}: not shown", item.shown_key()),
        ));
    };
    print_stdout(&match output {
        Output::Json => object::to_json(&value),
        _ => object::to_yaml(&value),
    })?;
    Ok(ExitCode::Success)
}

/// Prints a list.
pub fn list(
    items: &[Item],
    options: &Options,
    config: Option<&EncryptionConfig>,
) -> Result<ExitCode> {
    let output = options.output.unwrap_or(Output::Table);
    if output == Output::Table {
        if items.is_empty() {
            warn(&nothing_found(options));
            return Ok(ExitCode::Success);
        }
        print_stdout(&table(items))?;
        return Ok(ExitCode::Success);
    }
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut writer = object::ListWriter::new(out, output == Output::Json).map_err(stdout_error)?;
    let mut failed = false;
    for item in items {
        let decoded = decode(item, options, config);
        match (not_shown(item, &decoded), decoded) {
            (None, Decoded::Object(v)) => writer.item(&v).map_err(stdout_error)?,
            (why, _) => {
                failed = true;
                warn(&format!(
                    "Warning: {}",
                    why.unwrap_or_else(|| item.shown_key().into_owned())
                ));
            }
        }
    }
    writer.finish().map_err(stdout_error)?;
    Ok(if failed {
        ExitCode::CheckFailed
    } else {
        ExitCode::Success
    })
}

/// A failed write to stdout: quiet when its reader went away, as `print_stdout` does.
fn stdout_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Error::broken_pipe()
    } else {
        Error::io("writing to stdout", &e)
    }
}

fn nothing_found(options: &Options) -> String {
    use k8s_registry::resources::{resolve, Resolved};
    match (&options.query, &options.scope) {
        (Query::Resource { resource, .. }, Scope::One(ns)) if !matches!(resolve(resource), Resolved::Builtin(b) if !b.namespaced) =>
        {
            format!("No resources found in {ns} namespace.")
        }
        _ => "No resources found.".to_string(),
    }
}

fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn write_raw(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::broken_pipe()),
        Err(e) => Err(Error::io("writing to stdout", &e)),
    }
}

/// NAMESPACE NAME KIND BYTES FORMAT, kubectl-style aligned columns.
fn table(items: &[Item]) -> String {
    let mut rows = vec![[
        "NAMESPACE".to_string(),
        "NAME".into(),
        "KIND".into(),
        "BYTES".into(),
        "FORMAT".into(),
    ]];
    for item in items {
        let kind = k8s_registry::value::type_meta(&item.value)
            .map(|t| t.kind)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "-".into());
        rows.push([
            item.namespace
                .as_deref()
                .map_or_else(|| "-".into(), |ns| escape(ns).into_owned()),
            item.shown_name().into_owned(),
            escape(&kind).into_owned(),
            item.value.len().to_string(),
            ValueFormat::of(&item.value).to_string(),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(query: Query, scope: Scope) -> Options {
        Options {
            input: None,
            query,
            scope,
            output: None,
            keep_server_fields: false,
            k8s_prefix: "/registry".into(),
            identities: Vec::new(),
            skip_hash_check: false,
            encryption_config: None,
            rev: None,
            history: false,
        }
    }

    fn resource(r: &str) -> Query {
        Query::Resource {
            resource: r.into(),
            name: None,
        }
    }

    #[test]
    fn nothing_found_names_a_namespace_only_where_there_is_one() {
        let web = || Scope::One("web".into());
        assert_eq!(
            nothing_found(&options(resource("pods"), web())),
            "No resources found in web namespace."
        );
        assert_eq!(
            nothing_found(&options(resource("crontabs.stable.example.com"), web())),
            "No resources found in web namespace."
        );
        assert_eq!(
            nothing_found(&options(resource("pods"), Scope::All)),
            "No resources found."
        );
        assert_eq!(
            nothing_found(&options(resource("pv"), web())),
            "No resources found."
        );
        assert_eq!(
            nothing_found(&options(resource("ns"), web())),
            "No resources found."
        );
        assert_eq!(
            nothing_found(&options(Query::Prefix("/x".into()), web())),
            "No resources found."
        );
    }
}
