//! The protobuf wire format, once, for every crate of the workspace that reads or writes it: etcd's
//! `mvccpb`/`etcdserverpb` values in the backend database (etcd-db), the WAL records, raft entries
//! and `.snap` files a restore writes (etcd-wal), and Kubernetes objects in their storage encoding
//! (k8s-codec).
//!
//! It exists so that these three agree on every edge case of untrusted input, and agree with Go,
//! whose code wrote the bytes:
//!
//! * a varint is at most 10 bytes and its 10th byte is 0 or 1; anything else overflows 64 bits
//!   (Go's `google.golang.org/protobuf/encoding/protowire.ConsumeVarint`, `encoding/binary.Uvarint`);
//!   non-minimal encodings such as `80 00` are accepted, as Go accepts them;
//! * a tag's field number is not 0 and fits in 32 bits; its wire type is 0, 1, 2 or 5 (the groups,
//!   3 and 4, and the undefined 6 and 7 are refused: nothing etcd or Kubernetes stores uses them);
//! * every length read from the input is compared with the bytes that remain before anything is
//!   sliced: a payload borrows the input and nothing is ever allocated with a size taken from it.
//!
//! Decoding never panics. Each error says what went wrong and at which byte offset, so callers can
//! keep their own wording. Messages (which field means what) stay with the callers; this crate knows
//! only the wire.
//!
//! The small functions are `#[inline]` so that they are compiled into each caller at the caller's
//! optimisation level: k8s-codec is optimised even in test builds, and its tests walk every cut of
//! large fixtures through this reader.

use std::fmt;

/// The longest varint: ten 7-bit groups hold 64 bits.
pub const MAX_VARINT_LEN: usize = 10;

/// How a field's payload is laid out on the wire (the low three bits of its tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireType {
    /// 0: a varint (int32, int64, uint32, uint64, bool, enum).
    Varint,
    /// 1: 8 little-endian bytes (fixed64, sfixed64, double).
    Fixed64,
    /// 2: a varint length then that many bytes (string, bytes, messages, packed repeated fields).
    Len,
    /// 5: 4 little-endian bytes (fixed32, sfixed32, float).
    Fixed32,
}

impl WireType {
    /// The wire type with these tag bits; `None` for 3, 4 (groups), 6 and 7.
    #[inline]
    pub const fn from_bits(bits: u8) -> Option<WireType> {
        match bits {
            0 => Some(WireType::Varint),
            1 => Some(WireType::Fixed64),
            2 => Some(WireType::Len),
            5 => Some(WireType::Fixed32),
            _ => None,
        }
    }

    /// The tag bits of this wire type.
    #[inline]
    pub const fn bits(self) -> u8 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::Fixed32 => 5,
        }
    }
}

/// One field's payload as read from the wire; a length-delimited one borrows the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: the payload, without its length prefix.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// The wire type this value was read with.
    #[inline]
    pub const fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::Fixed64,
            Value::Len(_) => WireType::Len,
            Value::Fixed32(_) => WireType::Fixed32,
        }
    }

    /// The varint, if this is one.
    #[inline]
    pub const fn as_varint(&self) -> Option<u64> {
        match self {
            Value::Varint(v) => Some(*v),
            _ => None,
        }
    }

    /// The length-delimited payload, if this is one.
    #[inline]
    pub const fn as_len(&self) -> Option<&'a [u8]> {
        match self {
            Value::Len(b) => Some(b),
            _ => None,
        }
    }
}

/// What is wrong with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ends inside a varint.
    TruncatedVarint,
    /// The input ends inside a fixed-size value or a length-delimited payload (a length longer than
    /// what remains, up to `u64::MAX`); `field` is the field number when the value belongs to a tag.
    TruncatedPayload {
        /// The field whose payload is cut short, if the value was read as a field.
        field: Option<u32>,
    },
    /// A varint of more than 10 bytes, or whose 10th byte is above 1: its value exceeds 64 bits.
    VarintOverflow,
    /// A tag whose field number is 0 or does not fit in 32 bits.
    FieldNumber {
        /// The whole tag (field number and wire type).
        tag: u64,
    },
    /// A tag with wire type 3, 4, 6 or 7.
    WireType {
        /// The tag's field number.
        field: u32,
        /// The tag's wire type bits.
        wire_type: u8,
    },
}

/// Bytes that are not valid protobuf wire format, and where that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Bytes consumed from the start of the reader's input when the problem was found: the end of
    /// the input for a truncated varint, the byte after the 10th for an overflowing one, the byte
    /// after the tag for a bad tag, the first byte of the payload for a truncated payload.
    pub offset: usize,
}

impl Error {
    /// Whether the input ends too early (as opposed to holding bytes that can never be valid).
    #[inline]
    pub const fn is_truncation(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::TruncatedVarint | ErrorKind::TruncatedPayload { .. }
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::TruncatedVarint => f.write_str("truncated varint"),
            ErrorKind::TruncatedPayload { field: Some(n) } => {
                write!(f, "field {n} runs past the end")
            }
            ErrorKind::TruncatedPayload { field: None } => f.write_str("value runs past the end"),
            ErrorKind::VarintOverflow => f.write_str("varint overflows 64 bits"),
            ErrorKind::FieldNumber { tag } => write!(f, "bad field number in tag {tag}"),
            ErrorKind::WireType { wire_type, .. } => write!(f, "unsupported wire type {wire_type}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for Error {}

/// Decodes the varint at the start of `buf`: its value and its length in bytes.
#[inline]
pub fn decode_varint(buf: &[u8]) -> Result<(u64, usize), Error> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        if i == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(Error {
                kind: ErrorKind::VarintOverflow,
                offset: MAX_VARINT_LEN,
            });
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok((value, i + 1));
        }
    }
    // Ten bytes always end above (with a value or an overflow): fewer remained.
    Err(Error {
        kind: ErrorKind::TruncatedVarint,
        offset: buf.len(),
    })
}

/// Reads a message's fields, or lower-level wire values, one by one from borrowed bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
    /// Bytes read so far.
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` (a whole message, or a packed run).
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf, pos: 0 }
    }

    /// Whether every byte was read.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes read so far.
    #[inline]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// An error of `kind` found `consumed` bytes past the current position.
    #[inline]
    const fn error(&self, kind: ErrorKind, consumed: usize) -> Error {
        Error {
            kind,
            offset: self.pos.saturating_add(consumed),
        }
    }

    /// Moves past `head`, which the caller split off `self.rest`, leaving `tail`.
    #[inline]
    fn advance(&mut self, head: &[u8], tail: &'a [u8]) {
        self.pos += head.len();
        self.rest = tail;
    }

    /// Reads one varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, Error> {
        match decode_varint(self.rest) {
            Ok((value, n)) => {
                let (head, tail) = self.rest.split_at(n);
                self.advance(head, tail);
                Ok(value)
            }
            Err(e) => Err(self.error(e.kind, e.offset)),
        }
    }

    /// Takes `n` bytes, `n` being a length from the input: refused, before anything is sliced,
    /// when fewer remain. `field` names the field in the error.
    #[inline]
    fn take(&mut self, n: u64, field: Option<u32>) -> Result<&'a [u8], Error> {
        let Some(n) = usize::try_from(n).ok().filter(|&n| n <= self.rest.len()) else {
            return Err(self.error(ErrorKind::TruncatedPayload { field }, 0));
        };
        let (head, tail) = self.rest.split_at(n);
        self.advance(head, tail);
        Ok(head)
    }

    /// Takes exactly `N` bytes.
    #[inline]
    fn array<const N: usize>(&mut self, field: Option<u32>) -> Result<[u8; N], Error> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(self.error(ErrorKind::TruncatedPayload { field }, 0));
        };
        self.advance(head, tail);
        Ok(*head)
    }

    /// Reads `n` raw bytes (`n` from the input, bounded by what remains).
    #[inline]
    pub fn bytes(&mut self, n: u64) -> Result<&'a [u8], Error> {
        self.take(n, None)
    }

    /// Reads 4 little-endian bytes (an element of a packed fixed32/float run).
    #[inline]
    pub fn fixed32(&mut self) -> Result<u32, Error> {
        self.array(None).map(u32::from_le_bytes)
    }

    /// Reads 8 little-endian bytes (an element of a packed fixed64/double run).
    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, Error> {
        self.array(None).map(u64::from_le_bytes)
    }

    /// Reads a tag: the field number (1 to `u32::MAX`) and a wire type.
    #[inline]
    pub fn tag(&mut self) -> Result<(u32, WireType), Error> {
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3)
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| self.error(ErrorKind::FieldNumber { tag }, 0))?;
        let bits = (tag & 7) as u8;
        let wire_type = WireType::from_bits(bits).ok_or_else(|| {
            self.error(
                ErrorKind::WireType {
                    field: number,
                    wire_type: bits,
                },
                0,
            )
        })?;
        Ok((number, wire_type))
    }

    /// Reads the payload of field `number` laid out as `wire_type`.
    #[inline]
    pub fn value(&mut self, number: u32, wire_type: WireType) -> Result<Value<'a>, Error> {
        let field = Some(number);
        Ok(match wire_type {
            WireType::Varint => Value::Varint(self.varint()?),
            WireType::Fixed64 => Value::Fixed64(u64::from_le_bytes(self.array(field)?)),
            WireType::Len => {
                let n = self.varint()?;
                Value::Len(self.take(n, field)?)
            }
            WireType::Fixed32 => Value::Fixed32(u32::from_le_bytes(self.array(field)?)),
        })
    }

    /// Reads the next field, or `None` at the end of the input. A caller skips an unknown field by
    /// ignoring what this returns: its payload has been read past.
    #[inline]
    pub fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (number, wire_type) = self.tag()?;
        Ok(Some((number, self.value(number, wire_type)?)))
    }
}

/// Appends `v` as a varint (1 to 10 bytes, as Go's `protowire.AppendVarint`).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the tag of field `number` with `wire_type`.
#[inline]
pub fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: WireType) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type.bits()));
}

/// Appends a varint field (uint32, uint64, bool, or an int64 already cast to `u64`).
#[inline]
pub fn put_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_tag(out, number, WireType::Varint);
    put_varint(out, v);
}

/// Appends an int32 or enum field as Go does: a negative value sign-extended to 64 bits (10 bytes).
#[inline]
pub fn put_int32_field(out: &mut Vec<u8>, number: u32, v: i32) {
    put_varint_field(out, number, i64::from(v) as u64);
}

/// Appends a length-delimited field (string, bytes, an encoded message).
#[inline]
pub fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_tag(out, number, WireType::Len);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Appends a fixed64 field (a double as `f64::to_bits`).
#[inline]
pub fn put_fixed64_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_tag(out, number, WireType::Fixed64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a fixed32 field (a float as `f32::to_bits`).
#[inline]
pub fn put_fixed32_field(out: &mut Vec<u8>, number: u32, v: u32) {
    put_tag(out, number, WireType::Fixed32);
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    //! Every edge case of the reader, byte by byte, with the error and offset it must give.

    use super::*;

    fn varint_err(buf: &[u8]) -> Option<Error> {
        decode_varint(buf).err()
    }

    #[test]
    fn varints_decode_as_go_reads_them() {
        assert_eq!(decode_varint(&[0]), Ok((0, 1)));
        assert_eq!(decode_varint(&[0x7f, 0xaa]), Ok((127, 1)));
        assert_eq!(decode_varint(&[0x80, 0x01]), Ok((128, 2)));
        assert_eq!(decode_varint(&[0xac, 0x02]), Ok((300, 2)));
        // Non-minimal encodings are accepted, as Go's ConsumeVarint does.
        assert_eq!(decode_varint(&[0x80, 0x00]), Ok((0, 2)));
        // Ten bytes with a 10th byte of 1: bit 63.
        let mut max = [0xff; 10];
        max[9] = 0x01;
        assert_eq!(decode_varint(&max), Ok((u64::MAX, 10)));
        let mut top = [0x80; 10];
        top[9] = 0x01;
        assert_eq!(decode_varint(&top), Ok((1 << 63, 10)));
    }

    #[test]
    fn truncated_varints_are_refused_with_their_length() {
        for buf in [&[][..], &[0x80], &[0xff; 9]] {
            assert_eq!(
                varint_err(buf),
                Some(Error {
                    kind: ErrorKind::TruncatedVarint,
                    offset: buf.len()
                }),
                "{buf:?}"
            );
        }
    }

    #[test]
    fn overflowing_varints_are_refused_at_the_tenth_byte() {
        let overflow = Some(Error {
            kind: ErrorKind::VarintOverflow,
            offset: 10,
        });
        // Eleven bytes and more (the 10th has the continuation bit).
        assert_eq!(varint_err(&[0xff; 11]), overflow);
        assert_eq!(varint_err(&[0x80; 20]), overflow);
        // Exactly ten bytes ending in a continuation: overflow, not a request for more bytes.
        assert_eq!(varint_err(&[0xff; 10]), overflow);
        // A 10th byte of 2 to 0x7f would set bits above 63 (the old WAL reader dropped them).
        for tenth in [0x02, 0x7f, 0x81] {
            let mut buf = [0x80; 10];
            buf[9] = tenth;
            assert_eq!(varint_err(&buf), overflow, "10th byte {tenth:#x}");
        }
    }

    #[test]
    fn reader_offsets_count_from_its_own_start() {
        let mut r = Reader::new(&[0x01, 0xff, 0xff]);
        assert_eq!(r.varint(), Ok(1));
        assert_eq!(r.position(), 1);
        assert_eq!(
            r.varint(),
            Err(Error {
                kind: ErrorKind::TruncatedVarint,
                offset: 3
            })
        );
        let mut buf = vec![0x08];
        buf.extend_from_slice(&[0xff; 11]);
        assert_eq!(
            Reader::new(&buf).field(),
            Err(Error {
                kind: ErrorKind::VarintOverflow,
                offset: 11
            })
        );
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_slicing() {
        // Field 1, length 5, 1 byte of payload.
        assert_eq!(
            Reader::new(&[0x0a, 0x05, b'a']).field(),
            Err(Error {
                kind: ErrorKind::TruncatedPayload { field: Some(1) },
                offset: 2
            })
        );
        // Length u64::MAX, and 2^62: no overflow in the bounds arithmetic, nothing allocated.
        for len in [u64::MAX, 1 << 62, u64::from(u32::MAX) + 1] {
            let mut buf = vec![0x12];
            put_varint(&mut buf, len);
            buf.extend_from_slice(b"abc");
            let prefix = buf.len() - 3;
            assert_eq!(
                Reader::new(&buf).field(),
                Err(Error {
                    kind: ErrorKind::TruncatedPayload { field: Some(2) },
                    offset: prefix
                }),
                "{len}"
            );
            assert!(Reader::new(&buf[1..])
                .bytes(len)
                .is_err_and(|e| e.is_truncation()));
        }
        // A length exactly equal to what remains is fine; one more is not.
        assert_eq!(
            Reader::new(&[0x0a, 0x02, 1, 2]).field(),
            Ok(Some((1, Value::Len(&[1, 2]))))
        );
        assert!(Reader::new(&[0x0a, 0x03, 1, 2]).field().is_err());
    }

    #[test]
    fn fixed_values_are_little_endian_and_bounded() {
        let mut r = Reader::new(&[0x09, 1, 0, 0, 0, 0, 0, 0, 0x80, 0x15, 0, 0, 0x80, 0x3f]);
        assert_eq!(
            r.field(),
            Ok(Some((1, Value::Fixed64(0x8000_0000_0000_0001))))
        );
        assert_eq!(r.field(), Ok(Some((2, Value::Fixed32(1f32.to_bits())))));
        assert_eq!(r.field(), Ok(None));
        for buf in [&[0x09, 1, 2, 3, 4, 5, 6, 7][..], &[0x0d, 1, 2, 3]] {
            assert_eq!(
                Reader::new(buf).field().map_err(|e| e.kind),
                Err(ErrorKind::TruncatedPayload {
                    field: Some(buf[0] as u32 >> 3)
                })
            );
        }
        let mut packed = Reader::new(&[1, 0, 0, 0, 2, 0, 0]);
        assert_eq!(packed.fixed32(), Ok(1));
        assert_eq!(
            packed.fixed32(),
            Err(Error {
                kind: ErrorKind::TruncatedPayload { field: None },
                offset: 4
            })
        );
        assert!(Reader::new(&[0; 7]).fixed64().is_err());
        assert_eq!(Reader::new(&[0xff; 8]).fixed64(), Ok(u64::MAX));
    }

    #[test]
    fn field_number_zero_and_beyond_32_bits_are_refused() {
        for (buf, tag) in [
            (vec![0x00, 0x00], 0u64),
            (vec![0x02, 0x00], 2),
            (vec![0x05, 0, 0, 0, 0], 5),
        ] {
            assert_eq!(
                Reader::new(&buf).field(),
                Err(Error {
                    kind: ErrorKind::FieldNumber { tag },
                    offset: 1
                })
            );
        }
        let big = (u64::from(u32::MAX) + 1) << 3;
        let mut buf = Vec::new();
        put_varint(&mut buf, big);
        buf.push(0);
        assert_eq!(
            Reader::new(&buf).field().map_err(|e| e.kind),
            Err(ErrorKind::FieldNumber { tag: big })
        );
        // The largest field number that fits is read.
        let mut buf = Vec::new();
        put_varint_field(&mut buf, u32::MAX, 7);
        assert_eq!(
            Reader::new(&buf).field(),
            Ok(Some((u32::MAX, Value::Varint(7))))
        );
    }

    #[test]
    fn group_and_undefined_wire_types_are_refused() {
        for bits in [3u8, 4, 6, 7] {
            let buf = [(1 << 3) | bits, 0, 0, 0, 0, 0, 0, 0, 0];
            assert_eq!(
                Reader::new(&buf).field(),
                Err(Error {
                    kind: ErrorKind::WireType {
                        field: 1,
                        wire_type: bits
                    },
                    offset: 1
                })
            );
            assert_eq!(WireType::from_bits(bits), None);
        }
        for wt in [
            WireType::Varint,
            WireType::Fixed64,
            WireType::Len,
            WireType::Fixed32,
        ] {
            assert_eq!(WireType::from_bits(wt.bits()), Some(wt));
        }
    }

    #[test]
    fn unknown_fields_are_read_past() {
        // Fields 9 (fixed64), 10 (len), 11 (fixed32), 12 (varint), then field 1.
        let mut buf = Vec::new();
        put_fixed64_field(&mut buf, 9, 1);
        put_len_field(&mut buf, 10, b"skip me");
        put_fixed32_field(&mut buf, 11, 2);
        put_varint_field(&mut buf, 12, u64::MAX);
        put_varint_field(&mut buf, 1, 42);
        let mut r = Reader::new(&buf);
        let mut known = None;
        while let Some((n, v)) = r.field().ok().flatten() {
            if n == 1 {
                known = v.as_varint();
            }
        }
        assert_eq!(known, Some(42));
        assert!(r.is_empty());
        assert_eq!(r.position(), buf.len());
    }

    #[test]
    fn writer_matches_go() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX);
        assert_eq!(
            out,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        // int32 -1 is ten bytes, as Go's uint64(int32) makes it.
        let mut out = Vec::new();
        put_int32_field(&mut out, 1, -1);
        assert_eq!(
            out,
            [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let mut out = Vec::new();
        put_len_field(&mut out, 2, b"hi");
        put_fixed32_field(&mut out, 3, 1);
        put_fixed64_field(&mut out, 4, 2);
        assert_eq!(
            out,
            [0x12, 2, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = Error {
            kind: ErrorKind::TruncatedPayload { field: Some(3) },
            offset: 7,
        };
        assert_eq!(e.to_string(), "field 3 runs past the end at byte 7");
        assert_eq!(
            ErrorKind::WireType {
                field: 1,
                wire_type: 4
            }
            .to_string(),
            "unsupported wire type 4"
        );
        assert!(!Error {
            kind: ErrorKind::VarintOverflow,
            offset: 10
        }
        .is_truncation());
    }
}
