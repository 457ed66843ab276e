//! The few protobuf messages etcd stores in its buckets, decoded by hand (proto3 wire format): no code
//! generation and no protoc for the offline tools. Unknown fields are skipped, as protobuf requires.

use std::fmt;

/// A protobuf value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Reads a varint at `*pos`.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or_else(|| DecodeError("truncated varint".into()))?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return Err(DecodeError("varint overflows 64 bits".into()));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError("varint longer than 10 bytes".into()))
}

/// The fields of a message in wire order: `(number, value)`.
pub fn fields(buf: &[u8]) -> impl Iterator<Item = Result<(u32, Field<'_>), DecodeError>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let result = (|| {
            let tag = read_varint(buf, &mut pos)?;
            let number = u32::try_from(tag >> 3)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| DecodeError(format!("bad field number in tag {tag}")))?;
            let take = |pos: &mut usize, n: usize| -> Result<&[u8], DecodeError> {
                let end = pos
                    .checked_add(n)
                    .filter(|end| *end <= buf.len())
                    .ok_or_else(|| DecodeError(format!("field {number} runs past the end")))?;
                let bytes = &buf[*pos..end];
                *pos = end;
                Ok(bytes)
            };
            let field = match tag & 7 {
                0 => Field::Varint(read_varint(buf, &mut pos)?),
                1 => Field::Fixed64(u64::from_le_bytes(
                    take(&mut pos, 8)?
                        .try_into()
                        .map_err(|_| DecodeError("fixed64".into()))?,
                )),
                2 => {
                    let len = read_varint(buf, &mut pos)?;
                    let len =
                        usize::try_from(len).map_err(|_| DecodeError("length overflows".into()))?;
                    Field::Bytes(take(&mut pos, len)?)
                }
                5 => Field::Fixed32(u32::from_le_bytes(
                    take(&mut pos, 4)?
                        .try_into()
                        .map_err(|_| DecodeError("fixed32".into()))?,
                )),
                other => return Err(DecodeError(format!("unsupported wire type {other}"))),
            };
            Ok((number, field))
        })();
        if result.is_err() {
            failed = true;
        }
        Some(result)
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
                (1, Field::Bytes(b)) => kv.key = b,
                (2, Field::Varint(v)) => kv.create_revision = v as i64,
                (3, Field::Varint(v)) => kv.mod_revision = v as i64,
                (4, Field::Varint(v)) => kv.version = v as i64,
                (5, Field::Bytes(b)) => kv.value = b,
                (6, Field::Varint(v)) => kv.lease = v as i64,
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
                (1, Field::Varint(v)) => a.member_id = v,
                (2, Field::Varint(v)) => a.alarm = v,
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
}
