#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Ground truth from Go: Kubernetes' own round-trip fixtures (`tests/fixtures/*.{pb,json,yaml}`,
//! made by the API machinery from one fuzzed object each) must decode to the JSON Go serves, name
//! the right type in the envelope, and encode back to the same value (byte-equal to Go's protobuf).

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Every fixture base name (`core.v1.Pod`), sorted.
fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .map(|p| p.with_extension(""))
        .collect();
    out.sort();
    assert!(out.len() >= 60, "fixtures missing: {}", out.len());
    out
}

/// Reads `<base>.<ext>`.
fn read(base: &Path, ext: &str) -> Vec<u8> {
    let mut p = base.as_os_str().to_owned();
    p.push(".");
    p.push(ext);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.to_string_lossy()))
}

/// Go's JSON with its non-omitempty zero noise removed, as documented in the crate: members whose
/// value is `null` (a zero time, a nil slice or map without omitempty) are dropped. Applied to
/// both sides because a map entry whose value is a zero time stays `null` in ours, as in Go's.
fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(normalise);
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        _ => {}
    }
}

#[test]
fn pb_fixtures_start_with_the_envelope() {
    for base in fixtures() {
        let pb = read(&base, "pb");
        assert_eq!(&pb[..4], b"k8s\x00", "{}", base.display());
        assert_eq!(&pb[..4], k8s_codec::PROTOBUF_MAGIC);
    }
}

#[test]
fn type_meta_matches_the_json() {
    for base in fixtures() {
        let json: Value = serde_json::from_slice(&read(&base, "json")).unwrap();
        let tm = k8s_codec::type_meta(&read(&base, "pb")).unwrap();
        assert_eq!(
            json["apiVersion"],
            tm.api_version.as_str(),
            "{}",
            base.display()
        );
        assert_eq!(json["kind"], tm.kind.as_str(), "{}", base.display());
        assert!(
            k8s_codec::knows(&tm.api_version, &tm.kind),
            "{}",
            base.display()
        );
    }
}

#[test]
fn decode_equals_go_json() {
    let mut failures = Vec::new();
    for base in fixtures() {
        let mut want: Value = serde_json::from_slice(&read(&base, "json")).unwrap();
        normalise(&mut want);
        match k8s_codec::decode_protobuf(&read(&base, "pb")) {
            Ok(mut got) => {
                normalise(&mut got);
                if let Some(d) = common::diff(&got, &want, "") {
                    failures.push(format!("{}: {d}", base.display()));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", base.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn encode_is_byte_equal_to_go() {
    let mut failures = Vec::new();
    for base in fixtures() {
        let json: Value = serde_json::from_slice(&read(&base, "json")).unwrap();
        let pb = read(&base, "pb");
        match k8s_codec::encode_protobuf(&json) {
            Ok(ours) => {
                let mut back = k8s_codec::decode_protobuf(&ours).unwrap();
                normalise(&mut back);
                let mut want = json.clone();
                normalise(&mut want);
                if let Some(d) = common::diff(&back, &want, "") {
                    failures.push(format!("{}: round trip: {d}", base.display()));
                } else if ours != pb {
                    let at = ours
                        .iter()
                        .zip(&pb)
                        .position(|(a, b)| a != b)
                        .unwrap_or(ours.len().min(pb.len()));
                    failures.push(format!(
                        "{}: bytes differ at {at} ({} vs {} bytes)",
                        base.display(),
                        ours.len(),
                        pb.len()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", base.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn yaml_of_every_fixture_reads_back() {
    let values: Vec<Value> = fixtures()
        .iter()
        .map(|b| k8s_codec::decode_protobuf(&read(b, "pb")).unwrap())
        .collect();
    common::assert_yaml_reads_back(&values);
}

#[test]
fn yaml_is_byte_equal_to_go() {
    // Go's .yaml fixtures are sigs.k8s.io/yaml output (what kubectl prints) of the same object as
    // the .json: our YAML of that JSON must be the same text.
    for base in fixtures() {
        let json: Value = serde_json::from_slice(&read(&base, "json")).unwrap();
        let want = String::from_utf8(read(&base, "yaml")).unwrap();
        let got = k8s_codec::to_yaml(&json);
        if got != want {
            let line = got.lines().zip(want.lines()).position(|(a, b)| a != b);
            panic!("{}: YAML differs at line {line:?}", base.display());
        }
    }
}
