//! A stored value turned into the manifest `kubectl apply` takes, and two such manifests compared
//! as YAML: the one definition `etcd-snap-get` (objects, `--history`) and `etcd-snap-diff --k8s`
//! share, so that both strip the same server-set fields and print the same diffs.
//!
//! Protobuf is decoded by k8s-codec, JSON passed through, a version no longer served converted
//! ([`crate::served`]), then the server-set fields are stripped (`k8s_codec::strip_server_fields`:
//! metadata uid, resourceVersion, generation, creationTimestamp, deletion*, managedFields,
//! selfLink, and `status`) or kept, with `metadata.resourceVersion` filled from the key's mod
//! revision as the API server does. Encrypted values are decrypted with the user's
//! `EncryptionConfiguration` when given; those that cannot be, and undecodable values, are
//! reported, never shown mangled.

use crate::{layout, Encryption, EncryptionConfig, ValueFormat};
use serde_json::Value;
use std::borrow::Cow;

/// What a stored value can be turned into.
#[derive(Debug)]
pub enum Decoded {
    /// The object.
    Object(Value),
    /// Encrypted at rest: needs the API server's keys.
    Encrypted(Encryption),
    /// Not something that can be shown as an object; why.
    Undecodable(String),
}

/// Like [`decode`], but an encrypted value is first decrypted with the user's
/// `EncryptionConfiguration` when one is given: `key` is the value's etcd key (aesgcm
/// authenticates it), `prefix` the API server's `--etcd-prefix`. A value that cannot be decrypted
/// (KMS, unknown or wrong key) is [`Decoded::Undecodable`], with the reason in one line.
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
        layout::parse(prefix, key).map_or(("", None), |l| (l.resource, l.group));
    match config.decrypt(key, resource, group, value) {
        Ok(plain) => decode(&plain, mod_revision, keep_server_fields),
        Err(e) => Decoded::Undecodable(e.to_string()),
    }
}

/// Decodes `value` and prepares it for output: server-set fields stripped, or kept with
/// `metadata.resourceVersion` set to `mod_revision`.
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
    // Stored in a version no longer served (CRDs: v1beta1): shown as the API serves it.
    crate::served::to_served(&mut object);
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

/// YAML as kubectl prints it (k8s-codec's emitter), newline-terminated.
pub fn to_yaml(value: &Value) -> String {
    let mut text = k8s_codec::to_yaml(value);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `bytes` as lines of text, each passed through `escape` (the caller's terminal-safe escaping
/// of control characters and invalid UTF-8), each ending in a newline; empty for no bytes.
pub fn escaped_lines(bytes: &[u8], escape: impl Fn(&[u8]) -> Cow<'_, str>) -> String {
    let mut out = String::new();
    if bytes.is_empty() {
        return out;
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for line in body.split(|b| *b == b'\n') {
        out.push_str(&escape(line));
        out.push('\n');
    }
    out
}

/// The unified diff (3 lines of context, `---`/`+++` headers named `old_name` and `new_name`)
/// from `old` to `new`, texts of whole lines; `None` when they are equal.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> Option<String> {
    if old == new {
        return None;
    }
    Some(
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(old_name, new_name)
            .to_string(),
    )
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml_of(v: &Value, keep: bool) -> String {
        let bytes = serde_json::to_vec(v).unwrap();
        match decode(&bytes, 42, keep) {
            Decoded::Object(o) => to_yaml(&o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_set_fields_are_stripped_or_kept_with_the_revision() {
        let v = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "u", "generation": 3, "managedFields": [],
                         "resourceVersion": "7", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "data": {"k": "v"}, "status": {"x": 1}});
        let stripped = yaml_of(&v, false);
        assert_eq!(
            stripped,
            "apiVersion: v1\ndata:\n  k: v\nkind: ConfigMap\nmetadata:\n  name: a\n"
        );
        let kept = yaml_of(&v, true);
        assert!(kept.contains("resourceVersion: \"42\""), "{kept}");
        assert!(
            kept.contains("uid: u") && kept.contains("status:"),
            "{kept}"
        );
    }

    #[test]
    fn diffs_are_unified_and_none_when_equal() {
        assert_eq!(unified_diff("a\n", "a\n", "x", "y"), None);
        assert_eq!(
            unified_diff("a\nb\n", "a\nc\n", "x", "y").unwrap(),
            "--- x\n+++ y\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
        );
        fn esc(b: &[u8]) -> Cow<'_, str> {
            Cow::Owned(String::from_utf8_lossy(b).replace('\x1b', "\\x1b"))
        }
        assert_eq!(escaped_lines(b"a\x1b\nb", esc), "a\\x1b\nb\n");
        assert_eq!(escaped_lines(b"", esc), "");
    }

    #[test]
    fn undecodable_and_encrypted_values_are_not_objects() {
        assert!(matches!(
            decode(b"\x00\x01", 1, false),
            Decoded::Undecodable(_)
        ));
        assert!(matches!(decode(b"[1]", 1, false), Decoded::Undecodable(_)));
        assert!(matches!(
            decode(b"k8s:enc:aescbc:v1:key1:xxxx", 1, false),
            Decoded::Encrypted(_)
        ));
    }
}
