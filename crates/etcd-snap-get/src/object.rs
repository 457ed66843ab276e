//! A stored value turned into the manifest `kubectl apply` takes (`k8s_registry::object`: protobuf
//! decoded, JSON passed through, server-set fields stripped or kept, encrypted values decrypted
//! with the user's `EncryptionConfiguration` when given), and printed as kubectl prints it: YAML,
//! JSON, or a list written one object at a time.

use serde_json::Value;

/// The decoding (and server-set field stripping) is k8s-registry's, shared with
/// `etcd-snap-diff --k8s`: one definition of what is shown.
pub use k8s_registry::object::{decode, decode_with, to_yaml, Decoded};

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
