//! JSON to protobuf the way the API server's gogo-protobuf code writes it: fields in number order,
//! non-pointer fields always (zero when absent), pointer and nil-able fields only when present,
//! repeated scalars unpacked, map entries sorted by key with both key and value written.

use serde_json::{Map, Value};

use crate::decode::MAX_DEPTH;
use crate::schema::{Card, Field, Message, Scalar, Schema, Special, Type};
use crate::special;
use crate::Error;
use protowire::{
    put_fixed32_field, put_fixed64_field, put_int32_field, put_len_field, put_varint_field,
};

/// An empty JSON object, the input for messages absent from the JSON.
fn empty() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

/// Encodes one message value (ordinary or special) to its protobuf bytes.
pub fn message(
    schema: &Schema,
    index: usize,
    value: &Value,
    depth: usize,
) -> Result<Vec<u8>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid("objects nested too deeply"));
    }
    let msg = schema.message(index);
    let mut out = Vec::new();
    match msg.special {
        Special::None => {
            let obj = match value {
                Value::Object(o) => o,
                Value::Null => empty(),
                _ => {
                    return Err(Error::invalid(format!(
                        "expected an object, found {}",
                        kind_of(value)
                    )))
                }
            };
            // Nested objects with TypeMeta may name their apiVersion/kind in JSON; Go drops them.
            let type_meta: &[&str] = if msg.type_meta {
                &["apiVersion", "kind"]
            } else {
                &[]
            };
            check_keys(schema, msg, obj, type_meta)?;
            fields(schema, msg, obj, &mut out, depth)?;
        }
        special => special_value(schema, msg, special, value, &mut out, depth)?,
    }
    Ok(out)
}

/// Encodes a top-level object, allowing its `apiVersion` and `kind` (which travel in the envelope).
pub fn top(schema: &Schema, index: usize, obj: &Map<String, Value>) -> Result<Vec<u8>, Error> {
    let msg = schema.message(index);
    check_keys(schema, msg, obj, &["apiVersion", "kind"])?;
    let mut out = Vec::new();
    fields(schema, msg, obj, &mut out, 0)?;
    Ok(out)
}

/// Names JSON value kinds in errors.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `key` is a field of `msg`, directly or through an inline field.
fn knows_key(schema: &Schema, msg: &Message, key: &str) -> bool {
    msg.fields.iter().any(|f| {
        if f.inline {
            matches!(f.ty, Type::Message(m) if knows_key(schema, schema.message(m), key))
        } else {
            f.json == key
        }
    })
}

/// Rejects JSON keys the schema does not know (a typo would otherwise be lost silently).
fn check_keys(
    schema: &Schema,
    msg: &Message,
    obj: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), Error> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) && !knows_key(schema, msg, key) {
            return Err(Error::invalid(format!("unknown field {key:?}")).within(key));
        }
    }
    Ok(())
}

/// Whether any key of an inline message (recursively) is present in the object.
fn inline_present(schema: &Schema, msg: &Message, obj: &Map<String, Value>) -> bool {
    msg.fields.iter().any(|f| {
        if f.inline {
            matches!(f.ty, Type::Message(m) if inline_present(schema, schema.message(m), obj))
        } else {
            obj.get(&f.json).is_some_and(|v| !v.is_null())
        }
    })
}

/// Writes every field of an ordinary message in field-number order.
fn fields(
    schema: &Schema,
    msg: &Message,
    obj: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Error> {
    for f in &msg.fields {
        let at = f.json.as_str();
        if f.inline {
            let Type::Message(m) = f.ty else { continue };
            let inner = schema.message(m);
            if f.pointer && !inline_present(schema, inner, obj) {
                continue;
            }
            let mut buf = Vec::new();
            fields(schema, inner, obj, &mut buf, depth + 1)?;
            put_len_field(out, f.number, &buf);
            continue;
        }
        let value = obj.get(&f.json).filter(|v| !v.is_null());
        match f.card {
            Card::Optional => match value {
                Some(v) => {
                    single(schema, f.number, f.ty, v, out, depth).map_err(|e| e.within(at))?
                }
                None if f.pointer => {}
                None => zero(schema, f, out, depth).map_err(|e| e.within(at))?,
            },
            Card::Repeated => match value {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        single(schema, f.number, f.ty, item, out, depth)
                            .map_err(|e| e.within(&format!("{at}[{i}]")))?;
                    }
                }
                Some(v) => {
                    return Err(
                        Error::invalid(format!("expected an array, found {}", kind_of(v)))
                            .within(at),
                    )
                }
            },
            Card::Map => match value {
                None => {}
                Some(Value::Object(map)) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    for key in keys {
                        let mut entry = Vec::new();
                        let kv = Value::String(key.clone());
                        let key_value = match f.ty {
                            Type::Scalar(Scalar::String) => kv,
                            Type::Scalar(_) => serde_json::from_str(key)
                                .map_err(|_| Error::invalid("bad map key").within(key))?,
                            Type::Message(_) => {
                                return Err(Error::invalid("map key is a message").within(at))
                            }
                        };
                        single(schema, 1, f.ty, &key_value, &mut entry, depth)
                            .map_err(|e| e.within(at))?;
                        let v = &map[key];
                        if let Some(vt) = f.value {
                            // A null []byte is nil and not written; other nulls are zero values.
                            if !(v.is_null() && vt == Type::Scalar(Scalar::Bytes)) {
                                single(schema, 2, vt, v, &mut entry, depth)
                                    .map_err(|e| e.within(key).within(at))?;
                            }
                        }
                        put_len_field(out, f.number, &entry);
                    }
                }
                Some(v) => {
                    return Err(
                        Error::invalid(format!("expected an object, found {}", kind_of(v)))
                            .within(at),
                    )
                }
            },
        }
    }
    Ok(())
}

/// Writes the zero value of an absent non-pointer field, as gogo does.
fn zero(schema: &Schema, f: &Field, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    match f.ty {
        Type::Scalar(Scalar::String) => put_len_field(out, f.number, b""),
        Type::Scalar(Scalar::Bytes) => {} // a nil []byte is not written
        Type::Scalar(Scalar::Double) => put_fixed64_field(out, f.number, 0f64.to_bits()),
        Type::Scalar(Scalar::Float) => put_fixed32_field(out, f.number, 0f32.to_bits()),
        Type::Scalar(_) => put_varint_field(out, f.number, 0),
        Type::Message(m) => {
            let bytes = message(schema, m, &Value::Null, depth + 1)?;
            put_len_field(out, f.number, &bytes);
        }
    }
    Ok(())
}

/// Writes one value of a field (one element of a repeated field).
fn single(
    schema: &Schema,
    number: u32,
    ty: Type,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Error> {
    match ty {
        Type::Message(m) => {
            let bytes = message(schema, m, v, depth + 1)?;
            put_len_field(out, number, &bytes);
        }
        Type::Scalar(s) => scalar(s, number, v, out)?,
    }
    Ok(())
}

/// An integer from a JSON number (integral floats accepted), range-checked.
fn int(v: &Value, min: i128, max: i128) -> Result<i128, Error> {
    let n = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i128::from(i)
            } else if let Some(u) = n.as_u64() {
                i128::from(u)
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 1.0e19 => f as i128,
                    _ => return Err(Error::invalid(format!("expected an integer, found {n}"))),
                }
            }
        }
        Value::Null => 0,
        other => {
            return Err(Error::invalid(format!(
                "expected an integer, found {}",
                kind_of(other)
            )))
        }
    };
    if n < min || n > max {
        return Err(Error::invalid(format!("integer {n} out of range")));
    }
    Ok(n)
}

/// Writes one scalar.
fn scalar(s: Scalar, number: u32, v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match s {
        Scalar::String => match v {
            Value::String(t) => put_len_field(out, number, t.as_bytes()),
            Value::Null => put_len_field(out, number, b""),
            other => {
                return Err(Error::invalid(format!(
                    "expected a string, found {}",
                    kind_of(other)
                )))
            }
        },
        Scalar::Bytes => match v {
            Value::String(t) => {
                let b =
                    special::base64_decode(t).ok_or_else(|| Error::invalid("invalid base64"))?;
                put_len_field(out, number, &b);
            }
            other => {
                return Err(Error::invalid(format!(
                    "expected a base64 string, found {}",
                    kind_of(other)
                )))
            }
        },
        Scalar::Bool => match v {
            Value::Bool(b) => put_varint_field(out, number, u64::from(*b)),
            Value::Null => put_varint_field(out, number, 0),
            other => {
                return Err(Error::invalid(format!(
                    "expected a boolean, found {}",
                    kind_of(other)
                )))
            }
        },
        // Negative int32 values are sign-extended to 64 bits, as Go's uint64(int32) does.
        Scalar::Int32 => put_int32_field(
            out,
            number,
            int(v, i32::MIN.into(), i32::MAX.into())? as i32,
        ),
        Scalar::Int64 => put_varint_field(
            out,
            number,
            int(v, i64::MIN.into(), i64::MAX.into())? as i64 as u64,
        ),
        Scalar::Uint32 => put_varint_field(out, number, int(v, 0, u32::MAX.into())? as u64),
        Scalar::Uint64 => put_varint_field(out, number, int(v, 0, u64::MAX.into())? as u64),
        Scalar::Double | Scalar::Float => {
            let f = match v {
                Value::Number(n) => n.as_f64().ok_or_else(|| Error::invalid("bad number"))?,
                Value::Null => 0.0,
                other => {
                    return Err(Error::invalid(format!(
                        "expected a number, found {}",
                        kind_of(other)
                    )))
                }
            };
            if s == Scalar::Double {
                put_fixed64_field(out, number, f.to_bits());
            } else {
                put_fixed32_field(out, number, (f as f32).to_bits());
            }
        }
    }
    Ok(())
}

/// The message type of field `n` of a special message.
fn sub(msg: &Message, n: u32) -> Result<usize, Error> {
    match msg.field(n).map(|f| f.ty) {
        Some(Type::Message(m)) => Ok(m),
        _ => Err(Error::invalid(format!(
            "schema of {} has no message field {n}",
            msg.name
        ))),
    }
}

/// Encodes the messages that have their own JSON form; `Null` means the Go zero value.
fn special_value(
    schema: &Schema,
    msg: &Message,
    kind: Special,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Error> {
    let wrong = |what: &str| Error::invalid(format!("expected {what}, found {}", kind_of(v)));
    match kind {
        Special::None => {}
        Special::Time | Special::MicroTime => match v {
            Value::Null => {} // Go's zero time marshals to no bytes
            Value::String(t) => {
                let (seconds, nanos) = special::parse_time(t)
                    .ok_or_else(|| Error::invalid(format!("bad RFC 3339 time {t:?}")))?;
                put_varint_field(out, 1, seconds as u64);
                put_varint_field(out, 2, i64::from(nanos) as u64);
            }
            _ => return Err(wrong("an RFC 3339 time string")),
        },
        Special::Duration => {
            let nanos = match v {
                Value::Null => 0,
                Value::String(t) => special::parse_duration(t)
                    .ok_or_else(|| Error::invalid(format!("bad duration {t:?}")))?,
                _ => return Err(wrong("a duration string")),
            };
            put_varint_field(out, 1, nanos as u64);
        }
        Special::IntOrString => {
            let (ty, int_val, str_val) = match v {
                Value::String(t) => (1, 0, t.as_str()),
                Value::Null => (0, 0, ""),
                Value::Number(_) => (0, int(v, i32::MIN.into(), i32::MAX.into())? as i64, ""),
                _ => return Err(wrong("an integer or a string")),
            };
            put_varint_field(out, 1, ty);
            put_varint_field(out, 2, int_val as u64);
            put_len_field(out, 3, str_val.as_bytes());
        }
        Special::Quantity => {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => "0".to_string(),
                _ => return Err(wrong("a quantity string")),
            };
            put_len_field(out, 1, text.as_bytes());
        }
        Special::RawJson => {
            if !v.is_null() {
                let raw = serde_json::to_vec(v).map_err(|e| Error::invalid(e.to_string()))?;
                put_len_field(out, 1, &raw);
            }
        }
        Special::PropsOrArray => match v {
            Value::Null => {}
            Value::Object(_) => {
                put_len_field(out, 1, &message(schema, sub(msg, 1)?, v, depth + 1)?)
            }
            Value::Array(items) => {
                let m = sub(msg, 2)?;
                for item in items {
                    put_len_field(out, 2, &message(schema, m, item, depth + 1)?);
                }
            }
            _ => return Err(wrong("a schema object or an array of them")),
        },
        Special::PropsOrBool => match v {
            Value::Null => put_varint_field(out, 1, 0),
            Value::Bool(b) => put_varint_field(out, 1, u64::from(*b)),
            Value::Object(_) => {
                put_varint_field(out, 1, 1);
                put_len_field(out, 2, &message(schema, sub(msg, 2)?, v, depth + 1)?);
            }
            _ => return Err(wrong("a schema object or a boolean")),
        },
        Special::PropsOrStringArray => match v {
            Value::Null => {}
            Value::Object(_) => {
                put_len_field(out, 1, &message(schema, sub(msg, 1)?, v, depth + 1)?)
            }
            Value::Array(items) => {
                for item in items {
                    scalar(Scalar::String, 2, item, out)?;
                }
            }
            _ => return Err(wrong("a schema object or an array of strings")),
        },
        Special::List => match v {
            Value::Null => {}
            Value::Array(items) => {
                let f = msg.field(1).ok_or_else(|| {
                    Error::invalid(format!("schema of {} has no field 1", msg.name))
                })?;
                for item in items {
                    single(schema, 1, f.ty, item, out, depth)?;
                }
            }
            _ => return Err(wrong("an array")),
        },
    }
    Ok(())
}
