//! Protobuf wire format: a bounds-checked reader for untrusted bytes and the matching writer.
//!
//! Every length read from the input is checked against the bytes that remain before anything is
//! sliced or allocated, so truncated or garbage input fails with an error, never a panic.

use crate::Error;

/// Wire type of varint fields (int32, int64, bool, ...).
pub const VARINT: u8 = 0;
/// Wire type of 64-bit fixed fields (double, fixed64).
pub const FIXED64: u8 = 1;
/// Wire type of length-delimited fields (string, bytes, messages, packed repeated).
pub const LEN: u8 = 2;
/// Wire type of 32-bit fixed fields (float, fixed32).
pub const FIXED32: u8 = 5;

/// One field as read from the wire: its number and its undecoded payload.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A varint payload.
    Varint(u64),
    /// A 64-bit little-endian payload.
    Fixed64(u64),
    /// A 32-bit little-endian payload.
    Fixed32(u32),
    /// A length-delimited payload.
    Len(&'a [u8]),
}

/// Reads fields one by one from a message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading a message.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reads one varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, Error> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err(Error::Truncated { at: String::new() });
            };
            self.buf = rest;
            if i == 9 && byte > 1 {
                return Err(Error::malformed("varint longer than 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::malformed("varint longer than 10 bytes"))
    }

    /// Takes `n` bytes, failing when fewer remain.
    fn take(&mut self, n: u64) -> Result<&'a [u8], Error> {
        let n = usize::try_from(n).map_err(|_| Error::Truncated { at: String::new() })?;
        if n > self.buf.len() {
            return Err(Error::Truncated { at: String::new() });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Reads the next field, or `None` at the end of the message.
    pub fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).map_err(|_| Error::malformed("field number too large"))?;
        if number == 0 {
            return Err(Error::malformed("field number 0"));
        }
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            LEN => {
                let n = self.varint()?;
                Value::Len(self.take(n)?)
            }
            FIXED32 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Value::Fixed32(u32::from_le_bytes(a))
            }
            other => {
                return Err(Error::malformed(format!(
                    "unsupported wire type {other} in field {number}"
                )))
            }
        };
        Ok(Some((number, value)))
    }
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key.
pub fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field.
pub fn put_len(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Appends a varint field.
pub fn put_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_key(out, number, VARINT);
    put_varint(out, v);
}

impl Reader<'_> {
    /// Reads one raw byte (for fixed-size values inside packed runs).
    pub fn byte(&mut self) -> Result<u8, Error> {
        let Some((&b, rest)) = self.buf.split_first() else {
            return Err(Error::Truncated { at: String::new() });
        };
        self.buf = rest;
        Ok(b)
    }
}
