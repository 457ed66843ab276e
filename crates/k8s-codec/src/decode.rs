//! Protobuf to JSON, driven by the schema: Go's JSON field names, Go's zero-value rules and the
//! special JSON forms of meta.v1 time, duration, int-or-string, quantity and raw JSON types.

use serde_json::{Map, Number, Value};

use crate::schema::{Card, Message, Scalar, Schema, Special, Type};
use crate::special;
use crate::Error;
use protowire::{self as wire, Reader};

/// Deepest message nesting accepted (CRD schemas nest deeply; garbage must not overflow the stack).
pub const MAX_DEPTH: usize = 100;

/// Estimated heap bytes of one JSON value in its parent (the size of a `serde_json::Value`).
const VALUE_COST: usize = std::mem::size_of::<Value>();
/// Estimated extra bytes of one object member: its key `String`, the key's heap block and its
/// share of a B-tree node.
const MEMBER_COST: usize = 64;
/// Estimated bytes of the first B-tree node of a non-empty object (11 slots of key and value).
const NODE_COST: usize = 640;
/// Estimated JSON bytes allowed per input byte. Objects as the API server writes them (gogo writes
/// every field it has, 2 bytes at least) cost at most 35 per byte among the vendored Go fixtures
/// of 1 KiB and more (`real_objects_stay_well_within_the_budget`); a repeated field of empty
/// items, each zero-filled to a tree, costs ~370 (a Pod of empty containers: 1 MiB took 373 MB)
/// to ~1,900 (a NodeList of empty items: 1 MiB took 1.9 GB) and now fails.
pub const BUDGET_PER_BYTE: usize = 128;
/// Estimated JSON bytes allowed on top of that, for small objects whose zero-filled fields cost
/// more than their few input bytes.
pub const BUDGET_BASE: usize = 1 << 20;

/// The limits of one object's decode, threaded through the recursion: nesting depth and an
/// estimate of the memory the JSON made so far takes, bounded in proportion to the input
/// (zero-filled fields make values that no input byte pays for). Not counted: string contents
/// and embedded raw JSON, at most a few bytes (or, parsed, a small multiple) per input byte.
#[derive(Debug)]
pub struct Cx {
    /// Current message nesting depth.
    depth: usize,
    /// Estimated bytes of JSON made so far.
    spent: usize,
    /// Bound on `spent`.
    limit: usize,
    /// Length of the input, for the error message.
    input: usize,
}

impl Cx {
    /// A context for decoding an object of `input` bytes.
    pub fn new(input: usize) -> Self {
        Cx {
            depth: 0,
            spent: 0,
            limit: BUDGET_BASE.saturating_add(BUDGET_PER_BYTE.saturating_mul(input)),
            input,
        }
    }

    /// Accounts for `bytes` more of JSON, failing once the total passes the bound.
    fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > self.limit {
            return Err(Error::malformed(format!(
                "decoded object too large: more than {} bytes of JSON from {} input bytes \
                 (hostile or corrupt data)",
                self.limit, self.input
            )));
        }
        Ok(())
    }

    /// Runs `f` one message level deeper.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::malformed("messages nested too deeply"));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// Estimated JSON bytes made so far (for tests).
    #[cfg(test)]
    pub fn spent(&self) -> usize {
        self.spent
    }
}

/// Decodes one message, one level below the current one, to its JSON value; `None` where Go's
/// JSON would be `null` (a zero time, an empty raw extension), which callers omit.
pub fn message(
    schema: &Schema,
    index: usize,
    bytes: &[u8],
    cx: &mut Cx,
) -> Result<Option<Value>, Error> {
    cx.nested(|cx| {
        cx.charge(VALUE_COST)?;
        let msg = schema.message(index);
        match msg.special {
            Special::None => Ok(Some(Value::Object(object(schema, msg, bytes, cx)?))),
            other => special_value(schema, msg, other, bytes, cx),
        }
    })
}

/// Decodes an ordinary message to its JSON object (sorted keys), with inline fields merged.
pub fn object(
    schema: &Schema,
    msg: &Message,
    bytes: &[u8],
    cx: &mut Cx,
) -> Result<Map<String, Value>, Error> {
    // One slot per schema field, filled as fields arrive (the last optional value wins).
    let mut slots: Vec<Option<Value>> = vec![None; msg.fields.len()];
    let mut r = Reader::new(bytes);
    while let Some((number, raw)) = r.field()? {
        let Ok(pos) = msg.fields.binary_search_by_key(&number, |f| f.number) else {
            continue; // unknown fields are skipped, as the API server's decoder does
        };
        let f = &msg.fields[pos];
        let slot = &mut slots[pos];
        // Inline fields' own names never appear in the JSON, nor in error paths.
        let at = if f.inline { "" } else { f.json.as_str() };
        match f.card {
            Card::Optional => {
                let v = match f.ty {
                    Type::Scalar(s) => {
                        cx.charge(VALUE_COST)?;
                        let v = scalar(s, raw).map_err(|e| e.within(at))?;
                        if !f.pointer && f.omitempty && is_zero(&v) {
                            None
                        } else {
                            Some(v)
                        }
                    }
                    Type::Message(m) => message(schema, m, len(raw).map_err(|e| e.within(at))?, cx)
                        .map_err(|e| e.within(at))?,
                };
                *slot = v;
            }
            Card::Repeated => {
                let list = match slot {
                    Some(Value::Array(list)) => list,
                    _ => {
                        *slot = Some(Value::Array(Vec::new()));
                        match slot {
                            Some(Value::Array(list)) => list,
                            _ => continue,
                        }
                    }
                };
                let item_at = |i: usize| format!("{at}[{i}]");
                match (f.ty, raw) {
                    (Type::Message(m), _) => {
                        let b = len(raw).map_err(|e| e.within(&item_at(list.len())))?;
                        let v = message(schema, m, b, cx)
                            .map_err(|e| e.within(&item_at(list.len())))?;
                        list.push(v.unwrap_or(Value::Null));
                    }
                    (Type::Scalar(s), wire::Value::Len(b)) if packable(s) => {
                        let mut pr = Reader::new(b);
                        while !pr.is_empty() {
                            let item = match s {
                                Scalar::Double => pr.fixed64().map(wire::Value::Fixed64),
                                Scalar::Float => pr.fixed32().map(wire::Value::Fixed32),
                                _ => pr.varint().map(wire::Value::Varint),
                            }
                            .map_err(|e| Error::from(e).within(at))?;
                            cx.charge(VALUE_COST).map_err(|e| e.within(at))?;
                            list.push(scalar(s, item).map_err(|e| e.within(at))?);
                        }
                    }
                    (Type::Scalar(s), raw) => {
                        cx.charge(VALUE_COST)
                            .map_err(|e| e.within(&item_at(list.len())))?;
                        list.push(scalar(s, raw).map_err(|e| e.within(&item_at(list.len())))?)
                    }
                }
            }
            Card::Map => {
                if !matches!(slot, Some(Value::Object(_))) {
                    cx.charge(NODE_COST).map_err(|e| e.within(at))?;
                    *slot = Some(Value::Object(Map::new()));
                }
                let (k, v) = map_entry(
                    schema,
                    f.ty,
                    f.value,
                    len(raw).map_err(|e| e.within(at))?,
                    cx,
                )
                .map_err(|e| e.within(at))?;
                if let Some(Value::Object(map)) = slot {
                    map.insert(k, v);
                }
            }
        }
    }
    // gogo always writes non-pointer fields; one missing from the wire (hand-made or foreign data)
    // is Go's zero value, decoded as if written so that the JSON is what Go prints and encoding it
    // back (which writes the zero value) decodes to the same JSON.
    for (f, slot) in msg.fields.iter().zip(slots.iter_mut()) {
        if slot.is_some() || f.pointer || f.card != Card::Optional {
            continue;
        }
        *slot = match f.ty {
            Type::Message(m) => {
                let at = if f.inline { "" } else { f.json.as_str() };
                message(schema, m, &[], cx).map_err(|e| e.within(at))?
            }
            // A nil []byte is not written and Go prints it as null (omitted here).
            Type::Scalar(Scalar::Bytes) => None,
            Type::Scalar(_) if f.omitempty => None,
            Type::Scalar(s) => {
                cx.charge(VALUE_COST)?;
                Some(zero_scalar(s))
            }
        };
    }
    let mut out = Map::new();
    for (f, slot) in msg.fields.iter().zip(slots) {
        let Some(v) = slot else { continue };
        if f.inline {
            if let Value::Object(inner) = v {
                out.extend(inner);
            }
            continue;
        }
        out.insert(f.json.clone(), v);
    }
    // Members of maps were charged as they came; the schema's own (a bounded number) here.
    if !out.is_empty() {
        cx.charge(NODE_COST.saturating_add(MEMBER_COST.saturating_mul(out.len())))?;
    }
    // Sorted keys, as kubectl shows them, even if serde_json's preserve_order is enabled.
    out.sort_keys();
    Ok(out)
}

/// Scalars that proto2 may pack in repeated fields.
fn packable(s: Scalar) -> bool {
    !matches!(s, Scalar::String | Scalar::Bytes)
}

/// The payload of a length-delimited field.
fn len<'a>(raw: wire::Value<'a>) -> Result<&'a [u8], Error> {
    match raw {
        wire::Value::Len(b) => Ok(b),
        _ => Err(Error::malformed("expected a length-delimited field")),
    }
}

/// Decodes one map entry {1: key, 2: value}; a missing part is its zero value.
fn map_entry(
    schema: &Schema,
    key_ty: Type,
    value_ty: Option<Type>,
    bytes: &[u8],
    cx: &mut Cx,
) -> Result<(String, Value), Error> {
    let mut key: Option<Value> = None;
    let mut value: Option<wire::Value<'_>> = None;
    let mut r = Reader::new(bytes);
    while let Some((n, raw)) = r.field()? {
        match n {
            1 => {
                let Type::Scalar(s) = key_ty else {
                    return Err(Error::malformed("map key is a message"));
                };
                key = Some(scalar(s, raw)?);
            }
            2 => value = Some(raw),
            _ => {}
        }
    }
    let key = match key {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // The entry's key, its value's slot and (for the first entry) a B-tree node, charged whether
    // or not it replaces an earlier entry of the same key.
    cx.charge(MEMBER_COST.saturating_add(VALUE_COST))?;
    let v = match (value_ty, value) {
        (Some(Type::Scalar(s)), Some(raw)) => scalar(s, raw).map_err(|e| e.within(&key))?,
        (Some(Type::Scalar(s)), None) => zero_scalar(s),
        (Some(Type::Message(m)), raw) => {
            let b = match raw {
                Some(raw) => len(raw).map_err(|e| e.within(&key))?,
                None => &[],
            };
            message(schema, m, b, cx)
                .map_err(|e| e.within(&key))?
                .unwrap_or(Value::Null)
        }
        (None, _) => return Err(Error::malformed("map without a value type")),
    };
    Ok((key, v))
}

/// The JSON zero value of a scalar.
fn zero_scalar(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        _ => Value::Number(0.into()),
    }
}

/// Whether a JSON value is Go's zero value (for omitempty).
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A float as Go's encoding/json prints it, read back: integral values become JSON integers.
fn float(f: f64) -> Result<Value, Error> {
    if !f.is_finite() {
        return Err(Error::malformed("non-finite floating-point value"));
    }
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Ok(Value::Number((f as i64).into()));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| Error::malformed("bad floating-point value"))
}

/// Decodes one scalar value.
pub fn scalar(s: Scalar, raw: wire::Value<'_>) -> Result<Value, Error> {
    use wire::Value as W;
    Ok(match (s, raw) {
        (Scalar::String, W::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Scalar::Bytes, W::Len(b)) => Value::String(special::base64_encode(b)),
        (Scalar::Bool, W::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Int32, W::Varint(v)) => Value::Number(i64::from(v as i64 as i32).into()),
        (Scalar::Int64, W::Varint(v)) => Value::Number((v as i64).into()),
        (Scalar::Uint32, W::Varint(v)) => Value::Number(u64::from(v as u32).into()),
        (Scalar::Uint64, W::Varint(v)) => Value::Number(v.into()),
        (Scalar::Double, W::Fixed64(v)) => float(f64::from_bits(v))?,
        (Scalar::Float, W::Fixed32(v)) => float(f64::from(f32::from_bits(v)))?,
        (s, _) => {
            return Err(Error::malformed(format!(
                "wrong wire type for a {s:?} field"
            )))
        }
    })
}

/// The fields of a small special message by number (last value wins, repeated ones collected).
fn fields<'a>(bytes: &'a [u8]) -> Result<Vec<(u32, wire::Value<'a>)>, Error> {
    let mut out = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some(f) = r.field()? {
        out.push(f);
    }
    Ok(out)
}

/// The last varint of field `n`, or 0.
fn varint_of(fs: &[(u32, wire::Value<'_>)], n: u32) -> Result<u64, Error> {
    match fs.iter().rev().find(|(k, _)| *k == n) {
        Some((_, wire::Value::Varint(v))) => Ok(*v),
        Some(_) => Err(Error::malformed(format!("wrong wire type for field {n}"))),
        None => Ok(0),
    }
}

/// The last length-delimited payload of field `n`.
fn bytes_of<'a>(fs: &[(u32, wire::Value<'a>)], n: u32) -> Result<Option<&'a [u8]>, Error> {
    match fs.iter().rev().find(|(k, _)| *k == n) {
        Some((_, wire::Value::Len(b))) => Ok(Some(b)),
        Some(_) => Err(Error::malformed(format!("wrong wire type for field {n}"))),
        None => Ok(None),
    }
}

/// Go's zero time (0001-01-01T00:00:00Z) in Unix seconds: JSON `null`.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Decodes the messages that have their own JSON form.
fn special_value(
    schema: &Schema,
    msg: &Message,
    kind: Special,
    bytes: &[u8],
    cx: &mut Cx,
) -> Result<Option<Value>, Error> {
    let fs = fields(bytes)?;
    let sub = |n: u32| -> Result<usize, Error> {
        match msg.field(n).map(|f| f.ty) {
            Some(Type::Message(m)) => Ok(m),
            _ => Err(Error::malformed(format!(
                "schema of {} has no message field {n}",
                msg.name
            ))),
        }
    };
    Ok(match kind {
        Special::None => None,
        Special::Time | Special::MicroTime => {
            if bytes.is_empty() {
                return Ok(None);
            }
            let seconds = varint_of(&fs, 1)? as i64;
            let nanos = varint_of(&fs, 2)? as i64 as i32;
            if seconds == GO_ZERO_TIME && nanos == 0 {
                return Ok(None);
            }
            let text = special::format_time(seconds, nanos, kind == Special::MicroTime)
                .ok_or_else(|| Error::malformed("time outside years 0-9999"))?;
            Some(Value::String(text))
        }
        Special::Duration => Some(Value::String(special::format_duration(
            varint_of(&fs, 1)? as i64
        ))),
        Special::IntOrString => match varint_of(&fs, 1)? {
            0 => Some(Value::Number(
                i64::from(varint_of(&fs, 2)? as i64 as i32).into(),
            )),
            1 => Some(Value::String(
                String::from_utf8_lossy(bytes_of(&fs, 3)?.unwrap_or_default()).into_owned(),
            )),
            t => return Err(Error::malformed(format!("IntOrString type {t}"))),
        },
        Special::Quantity => {
            let s = bytes_of(&fs, 1)?.map(|b| String::from_utf8_lossy(b).into_owned());
            Some(Value::String(
                s.filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "0".to_string()),
            ))
        }
        Special::RawJson => {
            match bytes_of(&fs, 1)? {
                None | Some([]) => None,
                Some(raw) => Some(serde_json::from_slice(raw).map_err(|e| {
                    Error::malformed(format!("embedded raw value is not JSON: {e}"))
                })?),
            }
        }
        Special::PropsOrArray => {
            let m = sub(1)?;
            let list: Vec<Value> = fs
                .iter()
                .filter(|(n, _)| *n == 2)
                .map(|(_, raw)| Ok(message(schema, m, len(*raw)?, cx)?.unwrap_or(Value::Null)))
                .collect::<Result<_, Error>>()?;
            if !list.is_empty() {
                Some(Value::Array(list))
            } else {
                match bytes_of(&fs, 1)? {
                    Some(b) => message(schema, m, b, cx)?,
                    None => None,
                }
            }
        }
        Special::PropsOrBool => match bytes_of(&fs, 2)? {
            Some(b) => message(schema, sub(2)?, b, cx)?,
            None => Some(Value::Bool(varint_of(&fs, 1)? != 0)),
        },
        Special::PropsOrStringArray => {
            let list: Vec<Value> = fs
                .iter()
                .filter(|(n, _)| *n == 2)
                .map(|(_, raw)| {
                    cx.charge(VALUE_COST)?;
                    scalar(Scalar::String, *raw)
                })
                .collect::<Result<_, Error>>()?;
            if !list.is_empty() {
                Some(Value::Array(list))
            } else {
                match bytes_of(&fs, 1)? {
                    Some(b) => message(schema, sub(1)?, b, cx)?,
                    None => None,
                }
            }
        }
        Special::List => {
            let f = msg.field(1).ok_or_else(|| {
                Error::malformed(format!("schema of {} has no field 1", msg.name))
            })?;
            let list: Vec<Value> = fs
                .iter()
                .filter(|(n, _)| *n == 1)
                .map(|(_, raw)| match f.ty {
                    Type::Scalar(s) => {
                        cx.charge(VALUE_COST)?;
                        scalar(s, *raw)
                    }
                    Type::Message(m) => {
                        Ok(message(schema, m, len(*raw)?, cx)?.unwrap_or(Value::Null))
                    }
                })
                .collect::<Result<_, Error>>()?;
            if list.is_empty() {
                None
            } else {
                Some(Value::Array(list))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    /// Every vendored Go fixture (objects as the API server writes them) costs, by the decoder's
    /// own estimate, well under the budget per input byte, so real objects pass with room.
    #[test]
    fn real_objects_stay_well_within_the_budget() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let schema = crate::schema::get();
        let mut worst = (0.0f64, String::new());
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("pb") {
                continue;
            }
            let stored = std::fs::read(&path).unwrap();
            let env = crate::envelope::parse(&stored).unwrap();
            let tm = &env.type_meta;
            let index = schema.kind(&tm.api_version, &tm.kind).unwrap();
            let mut cx = Cx::new(env.raw.len());
            object(schema, schema.message(index), env.raw, &mut cx).unwrap();
            assert!(cx.spent() * 2 < cx.limit, "{}: {cx:?}", path.display());
            let ratio = cx.spent() as f64 / env.raw.len().max(1) as f64;
            eprintln!("{ratio:.1} {} {}", env.raw.len(), path.display());
            if env.raw.len() >= 1024 && ratio > worst.0 {
                worst = (ratio, path.display().to_string());
            }
            seen += 1;
        }
        eprintln!(
            "{seen} fixtures, worst {:.1} estimated JSON bytes per input byte (1 KiB and more): {}",
            worst.0, worst.1
        );
        assert!(seen > 50, "{seen}");
        assert!(worst.0 * 3.0 < BUDGET_PER_BYTE as f64, "{worst:?}");
    }
}
