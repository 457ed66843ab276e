//! The committed schema table (`schema/k8s.schema`, made by `gen/gen_schema.py`), parsed once.
//!
//! The table is text embedded in the binary rather than generated Rust, so the crate builds in
//! seconds on a 2-core CI machine; parsing it takes a few milliseconds on first use. Its format is
//! documented in the generator. A broken table is a bug in this crate: the unit test below parses it.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The embedded table text.
const TABLE: &str = include_str!("../schema/k8s.schema");

/// Scalar protobuf types that Kubernetes' protos use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// UTF-8 text (Go string).
    String,
    /// Raw bytes, base64 in JSON.
    Bytes,
    /// Boolean varint.
    Bool,
    /// Signed 32-bit varint (two's complement, sign-extended to 64 bits on the wire).
    Int32,
    /// Signed 64-bit varint.
    Int64,
    /// Unsigned 32-bit varint.
    Uint32,
    /// Unsigned 64-bit varint.
    Uint64,
    /// 64-bit IEEE float.
    Double,
    /// 32-bit IEEE float.
    Float,
}

/// A field's protobuf type: a scalar or a message (index into [`Schema::messages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A scalar.
    Scalar(Scalar),
    /// A message.
    Message(usize),
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// At most one (proto2 optional).
    Optional,
    /// A list.
    Repeated,
    /// A map (entries {1: key, 2: value}).
    Map,
}

/// Messages whose Go type has its own JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// An ordinary struct: a JSON object of its fields.
    None,
    /// meta.v1.Time: RFC 3339 seconds, UTC.
    Time,
    /// meta.v1.MicroTime: RFC 3339 with microseconds, UTC.
    MicroTime,
    /// meta.v1.Duration: Go duration string.
    Duration,
    /// intstr.IntOrString: number or string.
    IntOrString,
    /// resource.Quantity: its string.
    Quantity,
    /// Embedded raw JSON in field 1 (RawExtension, apiextensions JSON, FieldsV1).
    RawJson,
    /// JSONSchemaPropsOrArray: schema object or array of schemas.
    PropsOrArray,
    /// JSONSchemaPropsOrBool: schema object or bool.
    PropsOrBool,
    /// JSONSchemaPropsOrStringArray: schema object or array of strings.
    PropsOrStringArray,
    /// A Go named slice wrapped as {repeated items = 1}: a JSON array.
    List,
}

/// One field of a message.
#[derive(Debug, Clone)]
pub struct Field {
    /// Protobuf field number.
    pub number: u32,
    /// JSON name (Go's json tag).
    pub json: String,
    /// Optional, repeated or map.
    pub card: Card,
    /// The field's type (the key type for maps).
    pub ty: Type,
    /// The value type of a map.
    pub value: Option<Type>,
    /// Go pointer or nil-able: written only when set, and kept when zero.
    pub pointer: bool,
    /// Go `omitempty`: a zero value is dropped from the JSON.
    pub omitempty: bool,
    /// Go `json:",inline"`: the message's fields appear in the parent object.
    pub inline: bool,
}

/// One message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Full protobuf name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: String,
    /// Its JSON form.
    pub special: Special,
    /// The Go struct embeds TypeMeta: its JSON may carry apiVersion and kind (as in a
    /// StatefulSet's volumeClaimTemplates), which protobuf does not store.
    pub type_meta: bool,
    /// Fields sorted by number.
    pub fields: Vec<Field>,
}

impl Message {
    /// The field with this number.
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .and_then(|i| self.fields.get(i))
    }
}

/// The whole table.
#[derive(Debug)]
pub struct Schema {
    /// Every message.
    pub messages: Vec<Message>,
    /// Top-level kinds: (apiVersion, kind) to message index.
    pub kinds: HashMap<(String, String), usize>,
}

impl Schema {
    /// The message at an index taken from this schema.
    pub fn message(&self, index: usize) -> &Message {
        // Indexes come from this table only (checked at parse time).
        &self.messages[index]
    }

    /// The message with this full name (tests).
    #[cfg(test)]
    fn by_name_for_test(&self, name: &str) -> usize {
        self.messages
            .iter()
            .position(|m| m.name == name)
            .unwrap_or(usize::MAX)
    }

    /// The message of a top-level kind.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }
}

/// The parsed table, built on first use.
pub fn get() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| match parse(TABLE) {
        Ok(s) => s,
        // The table is committed and parsed by a unit test: failing here is a build defect.
        Err(e) => panic!("k8s-codec: embedded schema is corrupt: {e}"),
    })
}

/// Parses a table in the generator's format.
fn parse(text: &str) -> Result<Schema, String> {
    let mut packages: HashMap<&str, &str> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    // First pass: packages and message names, so fields can refer forward.
    for line in text.lines() {
        let mut w = line.split(' ');
        match w.next() {
            Some("P") => {
                let (Some(i), Some(p)) = (w.next(), w.next()) else {
                    return Err(format!("bad line {line}"));
                };
                packages.insert(i, p);
            }
            Some("M") => {
                let name = w.next().ok_or_else(|| format!("bad line {line}"))?;
                let n = names.len();
                names.insert(full_name(&packages, name)?, n);
            }
            _ => {}
        }
    }
    let resolve = |t: &str| -> Result<Type, String> {
        Ok(Type::Scalar(match t {
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            "bool" => Scalar::Bool,
            "int32" | "sint32" | "sfixed32" => Scalar::Int32,
            "int64" | "sint64" | "sfixed64" => Scalar::Int64,
            "uint32" | "fixed32" => Scalar::Uint32,
            "uint64" | "fixed64" => Scalar::Uint64,
            "double" => Scalar::Double,
            "float" => Scalar::Float,
            _ => {
                let full = full_name(&packages, t)?;
                return names
                    .get(&full)
                    .map(|&i| Type::Message(i))
                    .ok_or_else(|| format!("unknown type {t}"));
            }
        }))
    };
    let mut messages: Vec<Message> = Vec::with_capacity(names.len());
    let mut kinds = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with("P ") {
            continue;
        }
        let w: Vec<&str> = line.split(' ').collect();
        match w.as_slice() {
            ["K", api_version, kind, ty] => {
                let Type::Message(i) = resolve(ty)? else {
                    return Err(format!("bad kind {line}"));
                };
                kinds.insert((api_version.to_string(), kind.to_string()), i);
            }
            ["M", name, special, rest @ ..] => {
                let type_meta = match rest {
                    [] => false,
                    ["t"] => true,
                    _ => return Err(format!("bad message flags {line}")),
                };
                let special = match *special {
                    "-" => Special::None,
                    "T" => Special::Time,
                    "U" => Special::MicroTime,
                    "D" => Special::Duration,
                    "I" => Special::IntOrString,
                    "Q" => Special::Quantity,
                    "R" => Special::RawJson,
                    "A" => Special::PropsOrArray,
                    "B" => Special::PropsOrBool,
                    "S" => Special::PropsOrStringArray,
                    "L" => Special::List,
                    _ => return Err(format!("bad special {line}")),
                };
                messages.push(Message {
                    name: full_name(&packages, name)?,
                    special,
                    type_meta,
                    fields: Vec::new(),
                });
            }
            [number, json, flags, types @ ..] if !types.is_empty() => {
                let msg = messages
                    .last_mut()
                    .ok_or_else(|| format!("field before message: {line}"))?;
                let number: u32 = number.parse().map_err(|_| format!("bad number {line}"))?;
                let card = match flags.chars().next() {
                    Some('o') => Card::Optional,
                    Some('r') => Card::Repeated,
                    Some('m') => Card::Map,
                    _ => return Err(format!("bad cardinality {line}")),
                };
                let value = if card == Card::Map {
                    Some(resolve(
                        types
                            .get(1)
                            .ok_or_else(|| format!("map without value {line}"))?,
                    )?)
                } else {
                    None
                };
                msg.fields.push(Field {
                    number,
                    json: json.to_string(),
                    card,
                    ty: resolve(types[0])?,
                    value,
                    pointer: flags.contains('p'),
                    omitempty: flags.contains('e'),
                    inline: flags.contains('i'),
                });
            }
            _ => return Err(format!("bad line {line}")),
        }
    }
    for m in &mut messages {
        m.fields.sort_by_key(|f| f.number);
    }
    Ok(Schema { messages, kinds })
}

/// Expands `<alias>.<Message>` to the full protobuf name.
fn full_name(packages: &HashMap<&str, &str>, short: &str) -> Result<String, String> {
    let (alias, name) = short
        .split_once('.')
        .ok_or_else(|| format!("bad type {short}"))?;
    let package = packages
        .get(alias)
        .ok_or_else(|| format!("unknown package alias {alias}"))?;
    Ok(format!("{package}.{name}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn table_parses_and_has_core_kinds() {
        let s = parse(TABLE).unwrap();
        assert!(s.messages.len() > 500);
        let pod = s.kind("v1", "Pod").unwrap();
        assert_eq!(s.message(pod).name, "k8s.io.api.core.v1.Pod");
        assert!(s.kind("apps/v1", "Deployment").is_some());
        assert!(s
            .kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .is_some());
        assert!(s.kind("apiregistration.k8s.io/v1", "APIService").is_some());
    }

    #[test]
    fn covers_the_stored_groups() {
        let s = parse(TABLE).unwrap();
        for (api_version, kind) in [
            ("v1", "Secret"),
            ("apps/v1", "StatefulSet"),
            ("batch/v1", "CronJob"),
            ("networking.k8s.io/v1", "Ingress"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("policy/v1", "PodDisruptionBudget"),
            ("storage.k8s.io/v1", "StorageClass"),
            ("coordination.k8s.io/v1", "Lease"),
            ("discovery.k8s.io/v1", "EndpointSlice"),
            ("autoscaling/v1", "HorizontalPodAutoscaler"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("scheduling.k8s.io/v1", "PriorityClass"),
            ("events.k8s.io/v1", "Event"),
            ("certificates.k8s.io/v1", "CertificateSigningRequest"),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
            ),
            ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
            ("node.k8s.io/v1", "RuntimeClass"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("apiregistration.k8s.io/v1", "APIService"),
        ] {
            assert!(s.kind(api_version, kind).is_some(), "{api_version} {kind}");
        }
        // Field facts from types.go: a pointer, an omitempty, an inline.
        let spec = s.message(s.by_name_for_test("k8s.io.api.apps.v1.DeploymentSpec"));
        let replicas = spec.fields.iter().find(|f| f.json == "replicas").unwrap();
        assert!(replicas.pointer && replicas.omitempty);
        let vol = s.message(s.by_name_for_test("k8s.io.api.core.v1.Volume"));
        assert!(vol.fields.iter().any(|f| f.inline));
    }
}
