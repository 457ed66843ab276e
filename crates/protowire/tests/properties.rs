//! Property tests, fuzz-style, with a fixed-seed generator (no dependency, same cases every run):
//! the reader never panics and never reads past its input on random or mutated bytes, varints decode
//! as an independent 128-bit reference says Go decodes them, written fields read back identical, and
//! every cut of a valid message either ends on a field boundary or fails as a truncation.

use protowire::{
    decode_varint, put_fixed32_field, put_fixed64_field, put_int32_field, put_len_field,
    put_varint, put_varint_field, ErrorKind, Reader, Value,
};

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A byte biased towards the values that matter to the wire format.
    fn byte(&mut self) -> u8 {
        const INTERESTING: [u8; 10] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xff, 0x08, 0x0a, 0x12];
        if self.below(2) == 0 {
            INTERESTING[self.below(INTERESTING.len() as u64) as usize]
        } else {
            self.next() as u8
        }
    }

    /// A u64 biased towards boundaries of varint lengths.
    fn value(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(300),
            1 => u64::MAX - self.below(3),
            2 => (1u64 << self.below(64)).wrapping_sub(self.below(2)),
            _ => self.next(),
        }
    }
}

/// Go's varint rules restated with 128-bit arithmetic: `None` when more bytes are needed, `Err`
/// when the value cannot fit in 64 bits or would take more than 10 bytes.
fn reference_varint(buf: &[u8]) -> Option<Result<(u64, usize), ()>> {
    let mut acc: u128 = 0;
    for (i, &b) in buf.iter().enumerate() {
        acc |= u128::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(u64::try_from(acc).map(|v| (v, i + 1)).map_err(|_| ()));
        }
        if i == 9 {
            return Some(Err(()));
        }
    }
    None
}

/// Reads every field of `buf`, checking the reader's invariants; the fields, or the error kind.
fn read_all(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, ErrorKind> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    loop {
        let before = r.position();
        match r.field() {
            Ok(Some(f)) => {
                assert!(r.position() > before, "no progress on {buf:?}");
                assert!(r.position() <= buf.len());
                if let Value::Len(p) = f.1 {
                    assert!(p.len() <= buf.len() - before);
                }
                out.push(f);
            }
            Ok(None) => {
                assert_eq!(r.position(), buf.len());
                return Ok(out);
            }
            Err(e) => {
                assert!(e.offset <= buf.len(), "{e:?} past the end of {buf:?}");
                assert!(e.offset >= before);
                return Err(e.kind);
            }
        }
    }
}

/// One field, written with the writer, and the value it must read back as.
fn random_field<'a>(rng: &mut Rng, payloads: &'a [Vec<u8>]) -> (u32, Value<'a>, Vec<u8>) {
    let number = match rng.below(3) {
        0 => 1 + rng.below(15) as u32,
        1 => u32::MAX - rng.below(2) as u32,
        _ => (rng.next() as u32).max(1),
    };
    let mut out = Vec::new();
    let value = match rng.below(5) {
        0 => {
            let v = rng.value();
            put_varint_field(&mut out, number, v);
            Value::Varint(v)
        }
        1 => {
            let v = rng.next() as i32;
            put_int32_field(&mut out, number, v);
            Value::Varint(i64::from(v) as u64)
        }
        2 => {
            let v = rng.value();
            put_fixed64_field(&mut out, number, v);
            Value::Fixed64(v)
        }
        3 => {
            let v = rng.next() as u32;
            put_fixed32_field(&mut out, number, v);
            Value::Fixed32(v)
        }
        _ => {
            let p = &payloads[rng.below(payloads.len() as u64) as usize];
            put_len_field(&mut out, number, p);
            Value::Len(p)
        }
    };
    (number, value, out)
}

#[test]
fn random_bytes_never_panic_and_varints_match_the_reference() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200_000 {
        let len = rng.below(24) as usize;
        let buf: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        let _ = read_all(&buf);
        match (decode_varint(&buf), reference_varint(&buf)) {
            (Ok(got), Some(Ok(want))) => assert_eq!(got, want, "{buf:?}"),
            (Err(e), Some(Err(()))) => assert_eq!(e.kind, ErrorKind::VarintOverflow, "{buf:?}"),
            (Err(e), None) => assert_eq!(e.kind, ErrorKind::TruncatedVarint, "{buf:?}"),
            (got, want) => panic!("{buf:?}: decoded {got:?}, reference {want:?}"),
        }
        let mut r = Reader::new(&buf);
        let _ = r.fixed32();
        let _ = r.fixed64();
        let n = rng.value();
        let _ = r.bytes(n);
        assert!(r.position() <= buf.len());
    }
}

#[test]
fn written_fields_read_back_and_every_cut_is_a_boundary_or_a_truncation() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let payloads: Vec<Vec<u8>> = [0usize, 1, 2, 127, 128, 300]
        .iter()
        .map(|&n| (0..n).map(|i| i as u8).collect())
        .collect();
    for _ in 0..3_000 {
        let count = rng.below(6) as usize;
        let mut message = Vec::new();
        let mut want = Vec::new();
        let mut boundaries = vec![0];
        for _ in 0..count {
            let (number, value, bytes) = random_field(&mut rng, &payloads);
            message.extend_from_slice(&bytes);
            boundaries.push(message.len());
            want.push((number, value));
        }
        assert_eq!(read_all(&message), Ok(want.clone()));
        for cut in 0..message.len() {
            match (
                read_all(&message[..cut]),
                boundaries.iter().position(|&b| b == cut),
            ) {
                (Ok(fields), Some(k)) => assert_eq!(fields, want[..k]),
                (Err(kind), None) => assert!(
                    matches!(
                        kind,
                        ErrorKind::TruncatedVarint | ErrorKind::TruncatedPayload { .. }
                    ),
                    "cut {cut} of {message:?}: {kind:?}"
                ),
                (got, boundary) => {
                    panic!("cut {cut} (boundary {boundary:?}) of {message:?}: {got:?}")
                }
            }
        }
        // Mutations of the valid message: never a panic, never a read past the end.
        for _ in 0..8 {
            let mut bad = message.clone();
            if bad.is_empty() {
                bad.push(rng.byte());
            }
            let i = rng.below(bad.len() as u64) as usize;
            match rng.below(3) {
                0 => bad[i] = rng.byte(),
                1 => bad.insert(i, rng.byte()),
                _ => {
                    bad.remove(i);
                }
            }
            let _ = read_all(&bad);
        }
    }
}

#[test]
fn varints_round_trip_at_every_length_boundary() {
    for bits in 0..64 {
        for v in [(1u64 << bits) - 1, 1u64 << bits, (1u64 << bits) + 1] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let len = (64 - v.leading_zeros()).div_ceil(7).max(1) as usize;
            assert_eq!(out.len(), len, "{v}");
            assert_eq!(decode_varint(&out), Ok((v, len)));
        }
    }
}
