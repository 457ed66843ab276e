//! A stored value turned into the manifest `kubectl apply` takes: protobuf decoded by
//! k8s-codec, JSON passed through, then server-set fields stripped (or kept, with
//! `metadata.resourceVersion` filled from the key's mod revision as the API server does).
//! Encrypted and undecodable values are reported, never printed mangled.

use k8s_registry::{Encryption, ValueFormat};
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

/// JSON as kubectl prints it: 4-space indent, newline at the end.
pub fn to_json(value: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut ser).is_err() {
        return "null\n".into();
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_else(|_| "null\n".into())
}

/// YAML as kubectl prints it (k8s-codec's emitter), newline-terminated.
pub fn to_yaml(value: &Value) -> String {
    let mut text = k8s_codec::to_yaml(value);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
