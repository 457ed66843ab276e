//! Protobuf built by hand for the tests: varints, length-delimited fields and Kubernetes'
//! `k8s\0` envelope, so a test can write exactly the bytes it means, hostile ones included.

/// Appends `v` as a protobuf varint.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends field `n` as a length-delimited field holding `payload`.
pub fn field(n: u64, payload: &[u8], out: &mut Vec<u8>) {
    varint(n << 3 | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Kubernetes' protobuf envelope (`k8s\0`, TypeMeta, raw object) around arbitrary object bytes.
pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    field(1, api_version.as_bytes(), &mut tm);
    field(2, kind.as_bytes(), &mut tm);
    let mut out = b"k8s\0".to_vec();
    field(1, &tm, &mut out);
    field(2, raw, &mut out);
    out
}
