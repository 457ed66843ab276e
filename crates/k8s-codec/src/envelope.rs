//! The storage envelope: `k8s\0` followed by a `runtime.Unknown` message that names the type and
//! carries the object's own protobuf bytes.

use crate::{Error, TypeMeta, PROTOBUF_MAGIC};
use protowire::{put_len_field, Reader, Value};

/// The prefix of values encrypted at rest by the API server.
const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// A parsed envelope, borrowing the object bytes.
pub struct Envelope<'a> {
    /// apiVersion and kind from `Unknown.typeMeta`.
    pub type_meta: TypeMeta,
    /// The object's protobuf message (`Unknown.raw`).
    pub raw: &'a [u8],
    /// `Unknown.contentEncoding` (empty for what the API server writes).
    pub content_encoding: String,
}

/// Checks the magic and returns the `runtime.Unknown` bytes.
fn unknown_bytes(stored: &[u8]) -> Result<&[u8], Error> {
    if let Some(rest) = stored.strip_prefix(PROTOBUF_MAGIC) {
        Ok(rest)
    } else if stored.starts_with(ENCRYPTED_PREFIX) {
        Err(Error::Encrypted)
    } else {
        Err(Error::NotProtobuf)
    }
}

/// Reads a string field's payload, as Go does (invalid UTF-8 becomes U+FFFD).
fn text(value: Value<'_>, at: &str) -> Result<String, Error> {
    match value {
        Value::Len(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(Error::malformed("expected a length-delimited string").within(at)),
    }
}

/// Parses `runtime.TypeMeta` {1: apiVersion, 2: kind}.
fn type_meta(bytes: &[u8]) -> Result<TypeMeta, Error> {
    let mut tm = TypeMeta {
        api_version: String::new(),
        kind: String::new(),
    };
    let mut r = Reader::new(bytes);
    while let Some((n, v)) = r.field()? {
        match n {
            1 => tm.api_version = text(v, "apiVersion")?,
            2 => tm.kind = text(v, "kind")?,
            _ => {}
        }
    }
    Ok(tm)
}

/// Parses the whole envelope. The object bytes are only borrowed, not decoded, so this is cheap
/// enough for inventories of millions of keys.
pub fn parse(stored: &[u8]) -> Result<Envelope<'_>, Error> {
    let mut r = Reader::new(unknown_bytes(stored)?);
    let mut env = Envelope {
        type_meta: TypeMeta {
            api_version: String::new(),
            kind: String::new(),
        },
        raw: &[],
        content_encoding: String::new(),
    };
    let mut seen_type = false;
    let mut seen_raw = false;
    loop {
        let field = r.field().map_err(|e| Error::from(e).within("envelope"))?;
        let Some((n, v)) = field else { break };
        match (n, v) {
            (1, Value::Len(b)) => {
                env.type_meta = type_meta(b).map_err(|e| e.within("envelope.typeMeta"))?;
                seen_type = true;
            }
            (2, Value::Len(b)) => {
                env.raw = b;
                seen_raw = true;
            }
            (3, v) => env.content_encoding = text(v, "envelope.contentEncoding")?,
            (1 | 2, _) => {
                return Err(Error::malformed("expected a length-delimited field").within("envelope"))
            }
            _ => {}
        }
    }
    if !seen_type || env.type_meta.kind.is_empty() {
        return Err(Error::malformed("no kind in the envelope").within("envelope"));
    }
    if !seen_raw {
        // The API server always writes the object; without it the value was cut short.
        return Err(Error::Truncated {
            at: "envelope.raw".to_string(),
        });
    }
    Ok(env)
}

/// Writes the envelope as the API server does: magic, then Unknown {typeMeta, raw, "", ""}.
pub fn write(type_meta: &TypeMeta, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::with_capacity(type_meta.api_version.len() + type_meta.kind.len() + 4);
    put_len_field(&mut tm, 1, type_meta.api_version.as_bytes());
    put_len_field(&mut tm, 2, type_meta.kind.as_bytes());
    let mut out = Vec::with_capacity(PROTOBUF_MAGIC.len() + tm.len() + raw.len() + 16);
    out.extend_from_slice(PROTOBUF_MAGIC);
    put_len_field(&mut out, 1, &tm);
    put_len_field(&mut out, 2, raw);
    put_len_field(&mut out, 3, b"");
    put_len_field(&mut out, 4, b"");
    out
}
