//! The few protobuf messages etcd stores in its buckets, decoded by hand (proto3 wire format): no code
//! generation and no protoc for the offline tools. Unknown fields are skipped, as protobuf requires;
//! the wire format itself (varints, tags, bounds) is the `protowire` crate's.

use std::fmt;

use protowire::{Reader, Value};

/// A protobuf value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<protowire::Error> for DecodeError {
    fn from(e: protowire::Error) -> Self {
        DecodeError(e.kind.to_string())
    }
}

/// The fields of a message in wire order: `(number, value)`, stopping after the first error.
fn fields(buf: &[u8]) -> impl Iterator<Item = Result<(u32, Value<'_>), DecodeError>> + '_ {
    let mut r = Reader::new(buf);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let field = r.field().map_err(DecodeError::from).transpose();
        failed = matches!(field, Some(Err(_)));
        field
    })
}

/// `mvccpb.KeyValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// Revision of the key's creation.
    pub create_revision: i64,
    /// Revision of this change.
    pub mod_revision: i64,
    /// Version of the key (1 on creation).
    pub version: i64,
    /// The value.
    pub value: &'a [u8],
    /// Attached lease ID, 0 for none.
    pub lease: i64,
}

impl<'a> KeyValue<'a> {
    /// Decodes a `key` bucket value.
    pub fn decode(buf: &'a [u8]) -> Result<KeyValue<'a>, DecodeError> {
        let mut kv = KeyValue::default();
        for field in fields(buf) {
            match field? {
                (1, Value::Len(b)) => kv.key = b,
                (2, Value::Varint(v)) => kv.create_revision = v as i64,
                (3, Value::Varint(v)) => kv.mod_revision = v as i64,
                (4, Value::Varint(v)) => kv.version = v as i64,
                (5, Value::Len(b)) => kv.value = b,
                (6, Value::Varint(v)) => kv.lease = v as i64,
                (n @ 1..=6, _) => {
                    return Err(DecodeError(format!(
                        "KeyValue field {n} has the wrong type"
                    )))
                }
                _ => {}
            }
        }
        Ok(kv)
    }
}

/// `etcdserverpb.AlarmMember`: which member raised which alarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmMember {
    /// The member.
    pub member_id: u64,
    /// 1 = NOSPACE, 2 = CORRUPT.
    pub alarm: u64,
}

impl AlarmMember {
    /// Decodes an `alarm` bucket key.
    pub fn decode(buf: &[u8]) -> Result<AlarmMember, DecodeError> {
        let mut a = AlarmMember::default();
        for field in fields(buf) {
            match field? {
                (1, Value::Varint(v)) => a.member_id = v,
                (2, Value::Varint(v)) => a.alarm = v,
                // gogo's Unmarshal refuses a known field with another wire type; so do we.
                (n @ 1..=2, _) => {
                    return Err(DecodeError(format!(
                        "AlarmMember field {n} has the wrong type"
                    )))
                }
                _ => {}
            }
        }
        Ok(a)
    }

    /// etcdctl's name of the alarm.
    pub fn name(&self) -> &'static str {
        match self.alarm {
            1 => "NOSPACE",
            2 => "CORRUPT",
            _ => "UNKNOWN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_key_values_and_rejects_garbage() {
        // key "a", create 2, mod 3, version 1, value "b", lease 7
        let buf = [
            0x0a, 1, b'a', 0x10, 2, 0x18, 3, 0x20, 1, 0x2a, 1, b'b', 0x30, 7,
        ];
        let kv = KeyValue::decode(&buf);
        assert_eq!(
            kv,
            Ok(KeyValue {
                key: b"a",
                create_revision: 2,
                mod_revision: 3,
                version: 1,
                value: b"b",
                lease: 7
            })
        );
        assert!(KeyValue::decode(&[0x0a, 5, b'a']).is_err());
        assert!(KeyValue::decode(&[0xff; 11]).is_err());
        assert!(KeyValue::decode(&[0x0b]).is_err());
        assert_eq!(
            AlarmMember::decode(&[0x08, 9, 0x10, 1]).map(|a| a.name()),
            Ok("NOSPACE")
        );
    }

    #[test]
    fn errors_keep_their_wording() {
        let err = |buf: &[u8]| KeyValue::decode(buf).err().map(|e| e.to_string());
        assert_eq!(err(&[0x08]), Some("truncated varint".into()));
        assert_eq!(
            err(&[0x0a, 5, b'a']),
            Some("field 1 runs past the end".into())
        );
        assert_eq!(err(&[0x00, 0x00]), Some("bad field number in tag 0".into()));
        assert_eq!(err(&[0x0b]), Some("unsupported wire type 3".into()));
        assert_eq!(
            err(&[0x12, 1, 0]),
            Some("KeyValue field 2 has the wrong type".into())
        );
        let mut overflow = vec![0x10];
        overflow.extend_from_slice(&[0xff; 9]);
        overflow.push(0x02);
        assert_eq!(err(&overflow), Some("varint overflows 64 bits".into()));
        // A length of u64::MAX is refused against the input, not allocated.
        let mut huge = vec![0x2a];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x01);
        assert_eq!(err(&huge), Some("field 5 runs past the end".into()));
        // An alarm key whose member ID is not a varint is corrupt, as gogo's Unmarshal says.
        assert_eq!(
            AlarmMember::decode(&[0x0a, 1, 9]),
            Err(DecodeError("AlarmMember field 1 has the wrong type".into()))
        );
        // Unknown fields of any wire type are skipped.
        assert_eq!(
            AlarmMember::decode(&[0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 4]).map(|a| a.member_id),
            Ok(4)
        );
    }
}
