//! A stored value turned into the manifest `kubectl apply` takes: protobuf decoded by
//! k8s-codec, JSON passed through, then server-set fields stripped (or kept, with
//! `metadata.resourceVersion` filled from the key's mod revision as the API server does).
//! Encrypted values are decrypted with the user's `EncryptionConfiguration` when given; those
//! that cannot be, and undecodable values, are reported, never printed mangled.

use k8s_registry::{Encryption, EncryptionConfig, ValueFormat};
use serde_json::Value;

/// What a stored value can be turned into.
#[derive(Debug)]
pub enum Decoded {
    /// The object.
    Object(Value),
    /// Encrypted at rest: needs the API server's keys.
    Encrypted(Encryption),
    /// Not something this tool can show as an object; why.
    Undecodable(String),
}

/// Like [`decode`], but an encrypted value is first decrypted with the user's
/// `EncryptionConfiguration` when one is given (`--encryption-config`): `key` is the value's
/// etcd key (aesgcm authenticates it), `prefix` the API server's `--etcd-prefix`. A value that
/// cannot be decrypted (KMS, unknown or wrong key) is not shown, with the reason in one line.
pub fn decode_with(
    value: &[u8],
    key: &[u8],
    prefix: &str,
    mod_revision: i64,
    keep_server_fields: bool,
    config: Option<&EncryptionConfig>,
) -> Decoded {
    let Some(config) =
        config.filter(|_| matches!(ValueFormat::of(value), ValueFormat::Encrypted(_)))
    else {
        return decode(value, mod_revision, keep_server_fields);
    };
    let (resource, group) =
        k8s_registry::layout::parse(prefix, key).map_or(("", None), |l| (l.resource, l.group));
    match config.decrypt(key, resource, group, value) {
        Ok(plain) => decode(&plain, mod_revision, keep_server_fields),
        Err(e) => Decoded::Undecodable(e.to_string()),
    }
}

/// Decodes `value` and prepares it for output.
pub fn decode(value: &[u8], mod_revision: i64, keep_server_fields: bool) -> Decoded {
    let mut object = match ValueFormat::of(value) {
        ValueFormat::Protobuf => match k8s_codec::decode_protobuf(value) {
            Ok(v) => v,
            Err(e) => {
                return Decoded::Undecodable(format!("its protobuf value does not decode: {e}"))
            }
        },
        ValueFormat::Json => match serde_json::from_slice::<Value>(value) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Decoded::Undecodable("its JSON value is not an object".into()),
            Err(e) => return Decoded::Undecodable(format!("its JSON value does not parse: {e}")),
        },
        ValueFormat::Encrypted(e) => return Decoded::Encrypted(e),
        ValueFormat::Other => {
            return Decoded::Undecodable(format!(
                "its {} bytes are not a Kubernetes object (neither protobuf nor JSON)",
                value.len()
            ))
        }
    };
    // Stored in a version no longer served (CRDs: v1beta1): printed as the API serves it.
    k8s_registry::served::to_served(&mut object);
    if keep_server_fields {
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            meta.insert(
                "resourceVersion".into(),
                Value::String(mod_revision.to_string()),
            );
        }
    } else {
        k8s_codec::strip_server_fields(&mut object);
    }
    Decoded::Object(object)
}

/// kubectl's list wrapper.
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": { "resourceVersion": "" },
    })
}

/// JSON as kubectl prints it: 4-space indent, newline at the end; DEL and C1 controls in
/// strings escaped (`\u009b`), so that it decodes the same and never drives a terminal.
pub fn to_json(value: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut ser).is_err() {
        return "null\n".into();
    }
    out.push(b'\n');
    String::from_utf8(out)
        .map(etcd_common::output::json::escape_controls)
        .unwrap_or_else(|_| "null\n".into())
}

/// YAML as kubectl prints it (k8s-codec's emitter), newline-terminated.
pub fn to_yaml(value: &Value) -> String {
    let mut text = k8s_codec::to_yaml(value);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Writes what `to_yaml`/`to_json` of [`list`] print, one object at a time: a list of every
/// event of a big cluster as one JSON tree plus its text would need several times its stored size.
pub struct ListWriter<W: std::io::Write> {
    out: W,
    json: bool,
    items: usize,
}

impl<W: std::io::Write> ListWriter<W> {
    /// Starts a list in JSON (`json`) or YAML.
    pub fn new(mut out: W, json: bool) -> std::io::Result<Self> {
        out.write_all(if json {
            b"{\n    \"apiVersion\": \"v1\",\n    \"items\": ["
        } else {
            b"apiVersion: v1\n"
        })?;
        Ok(ListWriter {
            out,
            json,
            items: 0,
        })
    }

    /// Writes one item.
    pub fn item(&mut self, value: &Value) -> std::io::Result<()> {
        if self.json {
            self.out
                .write_all(if self.items == 0 { b"\n" } else { b",\n" })?;
            // Pretty JSON has no raw line breaks inside strings: indenting each line is exact.
            let text = to_json(value);
            for (i, line) in text.trim_end_matches('\n').split('\n').enumerate() {
                if i > 0 {
                    self.out.write_all(b"\n")?;
                }
                self.out.write_all(b"        ")?;
                self.out.write_all(line.as_bytes())?;
            }
        } else {
            if self.items == 0 {
                self.out.write_all(b"items:\n")?;
            }
            // A one-item sequence at indent 0 is exactly that item's part of the whole list.
            let text = k8s_codec::to_yaml(&Value::Array(vec![value.clone()]));
            self.out.write_all(text.as_bytes())?;
        }
        self.items += 1;
        Ok(())
    }

    /// Ends the list and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        let tail: &[u8] = match (self.json, self.items) {
            (true, 0) => b"],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n",
            (true, _) => b"\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n",
            (false, 0) => b"items: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
            (false, _) => b"kind: List\nmetadata:\n  resourceVersion: \"\"\n",
        };
        self.out.write_all(tail)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streamed_lists_print_what_the_whole_list_prints() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
                   "data": {"script": "#!/bin/sh\necho hi\n", "empty": "", "k": "v"}}),
            json!({}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "c",
                   "args": ["-a", "b: c"], "resources": {}}], "tolerations": []}}),
        ];
        for n in 0..=objects.len() {
            let some = &objects[..n];
            let whole = list(some.to_vec());
            for json in [true, false] {
                let mut w = ListWriter::new(Vec::new(), json).unwrap();
                for v in some {
                    w.item(v).unwrap();
                }
                let got = String::from_utf8(w.finish().unwrap()).unwrap();
                let want = if json {
                    to_json(&whole)
                } else {
                    to_yaml(&whole)
                };
                assert_eq!(got, want, "{n} items, json {json}");
            }
        }
    }
}
