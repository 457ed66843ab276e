//! Kubernetes objects as kube-apiserver stores them in etcd, offline.
//!
//! Built-in types are stored as `k8s\0` followed by a `runtime.Unknown` envelope that carries the
//! object's protobuf message. This crate decodes such values into the JSON object the API server
//! would serve (ready for `kubectl apply` after [`strip_server_fields`]), encodes JSON back the way
//! the API server's gogo-protobuf code does (for realistic test data), and prints YAML in kubectl's
//! style. The protobuf schema is a compact table committed in `schema/k8s.schema`, generated from
//! pinned Kubernetes sources by `gen/gen_schema.py`: no protoc and no network at build time.
//!
//! # Why not a crate
//!
//! Checked in November 2026: `k8s-openapi` has the JSON types but no protobuf; `k8s-pb` (kube-rs)
//! has prost structs for the protobuf types but no JSON mapping (and calls itself "not yet
//! usable"); `k8s-rs-pb` converts between rust-protobuf and k8s-openapi types but is experimental
//! and ~240k generated lines, minutes of build on CI's two cores. Going from the stored bytes to
//! the JSON kubectl applies also needs what none of them carries: which Go fields are pointers and
//! which are `omitempty` (below). A ~190 KB table generated from the same upstream sources, read
//! by ~2,500 lines here (tests included), does the whole job with `serde_json` as its only dependency.
//!
//! # Zero values
//!
//! gogo-protobuf writes every non-pointer field (even `""`, `0`, `false`) and pointer fields only
//! when set, so a field on the wire is either a non-pointer one or a set pointer. Decoding keeps
//! every present pointer field, zero or not (`replicas: 0`, `runAsUser: 0`,
//! `allowPrivilegeEscalation: false`, `storageClassName: ""`), drops zero non-pointer `omitempty`
//! scalars as Go's JSON does, and keeps empty non-pointer structs as `{}` (`resources: {}`,
//! `status: {}`), also as Go does. Encoding follows gogo: fields in number order, absent
//! non-pointer fields written as zero values, pointers only when present, repeated scalars
//! unpacked, map entries sorted by key. Unknown protobuf fields (from a newer API server) are
//! skipped on decode; unknown JSON fields are an error on encode, except `apiVersion`/`kind` in
//! nested objects whose Go struct embeds TypeMeta, which the API server drops too.
//!
//! # Memory budget
//!
//! The input may be hostile (a snapshot from untrusted storage). Zero-filling absent non-pointer
//! fields makes values no input byte pays for: a repeated field of empty items (2 bytes each)
//! becomes one zero-valued tree per item, so 1 MiB of empty `Pod` containers took 373 MB and of
//! empty `NodeList` items 1.9 GB. The decoder estimates the memory of the JSON it makes and fails
//! once it passes 1 MiB plus 128 bytes per input byte; objects as the API server writes them
//! measure at most ~35 per byte, and a hostile 1 MiB value now fails in about 0.15 s at about
//! 115 MB peak. The encoder's input is the caller's own JSON, already in memory: its zero-filled
//! output is a small multiple of that and has no budget.
//!
//! # Differences from Go's JSON, by design
//!
//! Members that Go prints as `null` (a zero `creationTimestamp`, nil slices and maps without
//! omitempty) are omitted; a map value that is a zero time stays `null`. Resource quantities are
//! passed through as stored (the API server stores them canonical), not re-canonicalised on
//! encode. Everything else, including the YAML text, matches Go's output for Kubernetes' own
//! round-trip fixtures (see `tests/fixtures.rs`).
//!
//! # Fuzzing
//!
//! `fuzz/` (cargo-fuzz, outside the workspace) has two targets, run with `cargo +nightly fuzz run
//! TARGET -- -fork=1` from this directory: `decode` (any bytes: `type_meta`, `decode_protobuf`
//! and, on success, `to_yaml`, `strip_server_fields`, `encode_protobuf` never panic, and
//! `encode(decode(x))` decodes to the same JSON) and `yaml` (any JSON: `to_yaml` reads back
//! equal with yaml-rust2; it skips one yaml-rust2 quirk: `0x-22` read as an integer where YAML 1.1,
//! 1.2 and Go read a string). Corpora seeded from `tests/fixtures/*.pb` and `*.json`. Each finding
//! is a test in `tests/fuzz_regressions.rs`; the runs and what they found are in
//! `docs/fuzzing.md`.
//!
//! # Regenerating the schema
//!
//! `python3 crates/k8s-codec/gen/gen_schema.py --api DIR --apimachinery DIR --apiextensions DIR
//! --aggregator DIR > crates/k8s-codec/schema/k8s.schema`, with git directories of k8s.io/api,
//! k8s.io/apimachinery, k8s.io/apiextensions-apiserver and k8s.io/kube-aggregator; the commits
//! read are pinned in the script. CI never runs it; the output is committed.

mod decode;
mod encode;
mod envelope;
mod error;
mod schema;
mod special;
mod yaml;

pub use error::Error;
use serde_json::Value;

/// The magic prefix of protobuf-encoded values in etcd.
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

/// The apiVersion and kind of a stored object, as its envelope names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeMeta {
    /// e.g. `v1`, `apps/v1`.
    pub api_version: String,
    /// e.g. `Pod`.
    pub kind: String,
}

/// apiVersion/kind from the envelope only, without decoding the object (cheap: used for
/// inventories of millions of keys).
pub fn type_meta(stored: &[u8]) -> Result<TypeMeta, Error> {
    Ok(envelope::parse(stored)?.type_meta)
}

/// Whether this crate has a schema for (apiVersion, kind).
pub fn knows(api_version: &str, kind: &str) -> bool {
    schema::get().kind(api_version, kind).is_some()
}

/// Every (apiVersion, kind) this crate has a schema for, sorted (for docs, inventories and tests).
pub fn known_kinds() -> Vec<TypeMeta> {
    let mut out: Vec<TypeMeta> = schema::get()
        .kinds
        .keys()
        .map(|(a, k)| TypeMeta {
            api_version: a.clone(),
            kind: k.clone(),
        })
        .collect();
    out.sort_by(|a, b| (&a.api_version, &a.kind).cmp(&(&b.api_version, &b.kind)));
    out
}

/// Decode a protobuf-stored value (with the k8s\0 envelope) into the JSON object the API server
/// would serve (apiVersion and kind included).
///
/// The JSON made is bounded in proportion to the input (see "Memory budget" in the crate docs): a
/// value that would take more fails with [`Error::Malformed`] ("decoded object too large").
pub fn decode_protobuf(stored: &[u8]) -> Result<Value, Error> {
    let env = envelope::parse(stored)?;
    if !env.content_encoding.is_empty() {
        return Err(Error::Unsupported(format!(
            "content encoding {:?}",
            env.content_encoding
        )));
    }
    let schema = schema::get();
    let TypeMeta { api_version, kind } = env.type_meta;
    let Some(index) = schema.kind(&api_version, &kind) else {
        return Err(Error::UnknownKind { api_version, kind });
    };
    let mut object = decode::object(
        schema,
        schema.message(index),
        env.raw,
        &mut decode::Cx::new(env.raw.len()),
    )?;
    object.insert("apiVersion".to_string(), Value::String(api_version));
    object.insert("kind".to_string(), Value::String(kind));
    object.sort_keys();
    Ok(Value::Object(object))
}

/// The inverse, as the API server stores it: envelope + object protobuf. Used by tests to build
/// realistic etcd contents.
pub fn encode_protobuf(object: &Value) -> Result<Vec<u8>, Error> {
    let Value::Object(obj) = object else {
        return Err(Error::invalid("expected a JSON object"));
    };
    let text = |key: &str| match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(Error::invalid(format!("no {key} string")).within(key)),
    };
    let type_meta = TypeMeta {
        api_version: text("apiVersion")?,
        kind: text("kind")?,
    };
    let schema = schema::get();
    let Some(index) = schema.kind(&type_meta.api_version, &type_meta.kind) else {
        return Err(Error::UnknownKind {
            api_version: type_meta.api_version,
            kind: type_meta.kind,
        });
    };
    let raw = encode::top(schema, index, obj)?;
    Ok(envelope::write(&type_meta, &raw))
}

/// The metadata fields that the API server sets and `kubectl apply` must not be given back.
pub const SERVER_METADATA_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Remove server-set fields so `kubectl apply` can take the object back:
/// metadata.{uid, resourceVersion, generation, creationTimestamp, deletionTimestamp,
/// deletionGracePeriodSeconds, managedFields, selfLink}, and top-level `status`.
pub fn strip_server_fields(object: &mut Value) {
    let Value::Object(obj) = object else { return };
    obj.remove("status");
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        for key in SERVER_METADATA_FIELDS {
            meta.remove(*key);
        }
    }
}

/// YAML text of a JSON value in kubectl's style (block style, 2-space indent, lists not indented
/// under their key like kubectl, strings quoted only when needed so that YAML 1.1/1.2 parsers read
/// back the same JSON; multi-line strings as `|` block scalars when that is exact).
pub fn to_yaml(value: &Value) -> String {
    yaml::to_yaml(value)
}
