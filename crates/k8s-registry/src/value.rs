//! What a stored value is: the API server writes built-in objects as protobuf behind the
//! `k8s\0` magic (a `runtime.Unknown` envelope), custom resources as JSON, and either one behind
//! an encryption prefix when encryption at rest covers the resource.
//!
//! Why it exists: the inventory counts formats and reads each object's apiVersion (the group of
//! a built-in resource is not in its key), and `etcd-snap-get` must know how to decode a value
//! before it tries.

use crate::encryption::{self, Encryption};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The magic in front of a protobuf-encoded object.
pub const PROTOBUF_MAGIC: &[u8] = k8s_codec::PROTOBUF_MAGIC;

/// How a value is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueFormat {
    /// `k8s\0` + `runtime.Unknown`.
    Protobuf,
    /// A JSON object (custom resources, or an API server told to store JSON).
    Json,
    /// Behind a `k8s:enc:` prefix.
    Encrypted(Encryption),
    /// Anything else (not an object the API server wrote).
    Other,
}

impl ValueFormat {
    /// Recognises a value by its first bytes (JSON: a `{` after optional whitespace).
    pub fn of(value: &[u8]) -> ValueFormat {
        if value.starts_with(PROTOBUF_MAGIC) {
            ValueFormat::Protobuf
        } else if let Some(e) = encryption::parse(value) {
            ValueFormat::Encrypted(e)
        } else if value.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            ValueFormat::Json
        } else {
            ValueFormat::Other
        }
    }

    /// The short name used in reports: `protobuf`, `json`, `encrypted`, `other`.
    pub fn name(&self) -> &'static str {
        match self {
            ValueFormat::Protobuf => "protobuf",
            ValueFormat::Json => "json",
            ValueFormat::Encrypted(_) => "encrypted",
            ValueFormat::Other => "other",
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueFormat::Encrypted(e) => write!(f, "encrypted ({}:{})", e.provider, e.key),
            other => f.write_str(other.name()),
        }
    }
}

/// An object's `apiVersion` and `kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeMeta {
    /// `v1`, `apps/v1`, `stable.example.com/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Pod`, `Deployment`, ...
    #[serde(default)]
    pub kind: String,
}

impl TypeMeta {
    /// The API group of `api_version` (`""` for the core group's `v1`).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }
}

/// Reads apiVersion and kind without decoding the object: from the protobuf envelope's
/// `typeMeta` (k8s-codec reads only the envelope), or from a JSON object's top-level fields.
/// `None` for encrypted or unreadable values.
pub fn type_meta(value: &[u8]) -> Option<TypeMeta> {
    if value.starts_with(PROTOBUF_MAGIC) {
        return k8s_codec::type_meta(value).ok().map(|t| TypeMeta {
            api_version: t.api_version,
            kind: t.kind,
        });
    }
    if ValueFormat::of(value) == ValueFormat::Json {
        return serde_json::from_slice::<TypeMeta>(value)
            .ok()
            .filter(|t| !t.kind.is_empty() || !t.api_version.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `k8s\0` + Unknown{typeMeta{apiVersion, kind}, raw}.
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut meta = vec![0x0a, api_version.len() as u8];
        meta.extend_from_slice(api_version.as_bytes());
        meta.extend_from_slice(&[0x12, kind.len() as u8]);
        meta.extend_from_slice(kind.as_bytes());
        let mut out = PROTOBUF_MAGIC.to_vec();
        out.extend_from_slice(&[0x0a, meta.len() as u8]);
        out.extend_from_slice(&meta);
        out.extend_from_slice(&[0x12, raw.len() as u8]);
        out.extend_from_slice(raw);
        out
    }

    #[test]
    fn recognises_formats_and_type_meta() {
        let pb = envelope("apps/v1", "Deployment", b"\x0a\x00");
        assert_eq!(ValueFormat::of(&pb), ValueFormat::Protobuf);
        let t = type_meta(&pb).unwrap_or_default();
        assert_eq!(
            (t.api_version.as_str(), t.kind.as_str(), t.group()),
            ("apps/v1", "Deployment", "apps")
        );
        let json = br#" {"apiVersion":"stable.example.com/v1","kind":"CronTab","spec":{}}"#;
        assert_eq!(ValueFormat::of(json), ValueFormat::Json);
        assert_eq!(
            type_meta(json).map(|t| t.group().to_string()),
            Some("stable.example.com".into())
        );
        let core = envelope("v1", "Pod", b"");
        assert_eq!(
            type_meta(&core).map(|t| t.group().to_string()),
            Some(String::new())
        );
        assert_eq!(
            ValueFormat::of(b"k8s:enc:aescbc:v1:k:x").name(),
            "encrypted"
        );
        assert_eq!(type_meta(b"k8s:enc:aescbc:v1:k:x"), None);
        assert_eq!(ValueFormat::of(b"10.96.0.0/12"), ValueFormat::Other);
        assert_eq!(type_meta(b"k8s\0\xff\xff"), None);
        assert_eq!(type_meta(b"{not json"), None);
    }
}
