//! Fuzz target: any bytes given to the protobuf decoder must give `Ok` or `Err`, never a panic, and
//! what decodes must survive the rest of the pipeline and round-trip.
//!
//! Why it exists: `etcd-snap-get` decodes values from backups that arrive from anywhere. For every
//! input: `type_meta` and `decode_protobuf` must not panic; on success `to_yaml`,
//! `strip_server_fields` and `encode_protobuf` must not panic, and `encode(decode(x))` must decode
//! again to the same JSON (the invariant is asserted). Run with an allocation bound,
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run decode -- -malloc_limit_mb=64`, from `crates/k8s-codec`; seed `fuzz/corpus/decode/` with `tests/fixtures/*.pb`. Crashes found
//! become unit tests in `tests/malformed.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = k8s_codec::type_meta(data);
    let Ok(value) = k8s_codec::decode_protobuf(data) else {
        return;
    };
    let _ = k8s_codec::to_yaml(&value);
    let mut stripped = value.clone();
    k8s_codec::strip_server_fields(&mut stripped);
    let _ = k8s_codec::to_yaml(&stripped);
    let _ = k8s_codec::encode_protobuf(&stripped);
    let encoded = match k8s_codec::encode_protobuf(&value) {
        Ok(e) => e,
        Err(e) => panic!("decoded value does not encode: {e}\n{value:#}"),
    };
    match k8s_codec::decode_protobuf(&encoded) {
        Ok(again) => {
            if again != value {
                panic!(
                    "encode(decode(x)) decodes to a different value at {}",
                    diff(&value, &again, String::new())
                );
            }
        }
        Err(e) => panic!("re-encoded value does not decode: {e}\n{value:#}"),
    }
});

/// The first path where two JSON values differ, with both sides, for crash reports.
fn diff(a: &serde_json::Value, b: &serde_json::Value, at: String) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) if p == q => {}
                    (Some(p), Some(q)) => return diff(p, q, format!("{at}.{k}")),
                    (p, q) => return format!("{at}.{k}: {p:?} vs {q:?}"),
                }
            }
            format!("{at}: equal")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    return diff(p, q, format!("{at}[{i}]"));
                }
            }
            format!("{at}: equal")
        }
        _ => format!("{at}: {a} vs {b}"),
    }
}
