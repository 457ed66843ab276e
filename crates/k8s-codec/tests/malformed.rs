#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Bad input never panics: truncated envelopes and objects at every offset, flipped bytes, wrong
//! magic, unknown kinds, garbage varints, huge length fields and deep nesting all give an error
//! whose message is one line.

mod common;

use common::wire::{envelope, field, varint};

use std::path::Path;

use k8s_codec::Error;

/// A vendored Go fixture's protobuf.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// The fixtures the byte-level tests mutate (small and large, with every special type).
const FIXTURES: &[&str] = &[
    "core.v1.Secret.pb",
    "core.v1.ConfigMap.pb",
    "core.v1.Pod.pb",
    "apiextensions.k8s.io.v1.CustomResourceDefinition.pb",
    "coordination.k8s.io.v1.Lease.pb",
];

/// Asserts an error's message is one non-empty line.
fn one_line(e: &Error) {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
}

/// Splits a fixture into (apiVersion, kind, object bytes).
fn split(pb: &[u8]) -> (String, String, Vec<u8>) {
    let tm = k8s_codec::type_meta(pb).unwrap();
    // Find the raw object: re-encoding the decoded object gives Go's bytes (checked elsewhere),
    // so take them from the envelope by stripping the known prefix and suffix.
    let prefix = envelope(&tm.api_version, &tm.kind, &[]);
    let head = prefix.len() - 1; // without the zero length byte
    let mut rest = &pb[head..];
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let b = rest[0];
        rest = &rest[1..];
        len |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    (tm.api_version, tm.kind, rest[..len as usize].to_vec())
}

#[test]
fn truncated_envelopes_fail_cleanly() {
    for name in FIXTURES {
        let pb = fixture(name);
        let (_, _, raw) = split(&pb);
        // Cutting inside the object's length-delimited field must fail; cutting only the trailing
        // empty contentEncoding/contentType fields may still decode.
        let raw_end = pb.len() - 4;
        assert_eq!(&pb[raw_end..], b"\x1a\x00\x22\x00", "{name}");
        for cut in 0..pb.len() {
            let r = k8s_codec::decode_protobuf(&pb[..cut]);
            match &r {
                Err(e) => one_line(e),
                Ok(_) => assert!(cut >= raw_end, "{name}: decoded at cut {cut}"),
            }
            if let Err(e) = k8s_codec::type_meta(&pb[..cut]) {
                one_line(&e);
            }
        }
        assert!(!raw.is_empty());
    }
}

#[test]
fn truncated_objects_fail_cleanly() {
    for name in FIXTURES {
        let (api_version, kind, raw) = split(&fixture(name));
        let mut errors = 0;
        for cut in 0..raw.len() {
            match k8s_codec::decode_protobuf(&envelope(&api_version, &kind, &raw[..cut])) {
                Err(e) => {
                    one_line(&e);
                    errors += 1;
                }
                Ok(v) => assert!(v.is_object()),
            }
        }
        // Most cuts land inside a field.
        assert!(
            errors > raw.len() / 2,
            "{name}: only {errors} of {} cuts failed",
            raw.len()
        );
    }
}

#[test]
fn flipped_bytes_never_panic() {
    for name in FIXTURES {
        let pb = fixture(name);
        // Every byte of the small fixtures, a stride through the large ones (keeps debug runs short).
        let stride = (pb.len() / 2000).max(1);
        for i in (0..pb.len()).step_by(stride) {
            for mask in [0xff, 0x80, 0x01] {
                let mut bad = pb.clone();
                bad[i] ^= mask;
                if let Err(e) = k8s_codec::decode_protobuf(&bad) {
                    one_line(&e);
                }
            }
        }
    }
}

#[test]
fn wrong_magic_and_encrypted_values() {
    let pb = fixture("core.v1.Secret.pb");
    let mut bad = pb.clone();
    bad[3] = 1;
    assert_eq!(k8s_codec::decode_protobuf(&bad), Err(Error::NotProtobuf));
    assert_eq!(k8s_codec::type_meta(&bad), Err(Error::NotProtobuf));
    assert_eq!(
        k8s_codec::decode_protobuf(b"{\"kind\":\"Widget\"}"),
        Err(Error::NotProtobuf)
    );
    assert_eq!(k8s_codec::decode_protobuf(b""), Err(Error::NotProtobuf));
    assert_eq!(
        k8s_codec::decode_protobuf(b"k8s:enc:aescbc:v1:key1:\x00\x01"),
        Err(Error::Encrypted)
    );
    for e in [Error::NotProtobuf, Error::Encrypted] {
        one_line(&e);
    }
}

#[test]
fn unknown_kinds() {
    let v = envelope("example.com/v1", "Widget", b"");
    assert_eq!(
        k8s_codec::decode_protobuf(&v),
        Err(Error::UnknownKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        })
    );
    let tm = k8s_codec::type_meta(&v).unwrap();
    assert_eq!(
        (tm.api_version.as_str(), tm.kind.as_str()),
        ("example.com/v1", "Widget")
    );
    assert!(!k8s_codec::knows("example.com/v1", "Widget"));
    assert!(k8s_codec::knows("v1", "Pod"));
    assert!(!k8s_codec::knows("v1", "Deployment"));
    one_line(&k8s_codec::decode_protobuf(&v).unwrap_err());
    // An envelope without a kind.
    let mut v = b"k8s\0".to_vec();
    field(2, b"", &mut v);
    one_line(&k8s_codec::decode_protobuf(&v).unwrap_err());
}

#[test]
fn garbage_varints_and_huge_lengths() {
    // Eleven continuation bytes: a varint longer than 64 bits, in the envelope and in the object.
    let mut v = b"k8s\0".to_vec();
    v.extend_from_slice(&[0xff; 11]);
    one_line(&k8s_codec::decode_protobuf(&v).unwrap_err());
    one_line(&k8s_codec::type_meta(&v).unwrap_err());
    one_line(&k8s_codec::decode_protobuf(&envelope("v1", "Pod", &[0xff; 11])).unwrap_err());
    // A length field of 2^62 bytes: rejected against the remaining input, nothing allocated.
    let mut v = b"k8s\0".to_vec();
    v.push(0x12);
    varint(1 << 62, &mut v);
    assert!(matches!(
        k8s_codec::decode_protobuf(&v),
        Err(Error::Truncated { .. })
    ));
    let mut raw = vec![0x0a]; // Pod.metadata
    varint(u64::MAX, &mut raw);
    one_line(&k8s_codec::decode_protobuf(&envelope("v1", "Pod", &raw)).unwrap_err());
    // Wrong wire types, group wire types and field number 0.
    for raw in [
        &[0x08, 0x01][..],
        &[0x0b, 0x0c],
        &[0x00, 0x00],
        &[0x0d, 1, 2, 3, 4],
    ] {
        one_line(&k8s_codec::decode_protobuf(&envelope("v1", "Pod", raw)).unwrap_err());
    }
    // A time outside Go's formattable years.
    let mut time = Vec::new();
    varint(1 << 3, &mut time);
    varint(i64::MAX as u64, &mut time);
    let mut meta = Vec::new();
    field(8, &time, &mut meta); // ObjectMeta.creationTimestamp
    let mut raw = Vec::new();
    field(1, &meta, &mut raw);
    one_line(&k8s_codec::decode_protobuf(&envelope("v1", "ConfigMap", &raw)).unwrap_err());
}

#[test]
fn deep_nesting_is_refused() {
    // JSONSchemaProps.not (field 28) nested 10000 times inside a CRD's validation schema.
    let mut props: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        let mut outer = Vec::new();
        field(28, &props, &mut outer);
        props = outer;
    }
    let mut validation = Vec::new();
    field(1, &props, &mut validation); // CustomResourceValidation.openAPIV3Schema
    let mut version = Vec::new();
    field(1, b"v1", &mut version);
    field(4, &validation, &mut version); // CustomResourceDefinitionVersion.schema
    let mut spec = Vec::new();
    field(7, &version, &mut spec); // CustomResourceDefinitionSpec.versions
    let mut raw = Vec::new();
    field(2, &spec, &mut raw);
    let e = k8s_codec::decode_protobuf(&envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &raw,
    ))
    .unwrap_err();
    one_line(&e);
    assert!(e.to_string().contains("nested too deeply"), "{e}");
}
