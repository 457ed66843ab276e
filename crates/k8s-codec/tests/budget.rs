#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The decoder's memory budget: a small hostile value (a repeated message field of empty items,
//! each zero-filled into a whole tree) fails fast with a one-line error instead of costing GiBs,
//! while big legitimate objects still decode.

mod common;

use common::wire::{envelope, field};

use serde_json::{json, Map, Value};

/// A v1 Pod whose spec (field 2) holds `n` empty containers (PodSpec field 2): 2 bytes each.
fn hostile_pod(n: usize) -> Vec<u8> {
    let mut spec = Vec::with_capacity(2 * n);
    for _ in 0..n {
        field(2, &[], &mut spec);
    }
    let mut pod = Vec::new();
    field(2, &spec, &mut pod);
    envelope("v1", "Pod", &pod)
}

/// The number in the error after `word` (e.g. the byte bound after "more than ").
fn number_after(text: &str, word: &str) -> usize {
    text.split(word)
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no number after {word:?} in {text}"))
}

/// The hostile Pod fails with the budget error, in one line that names the item where decoding
/// stopped: well before the end, so most of the expansion was never made.
#[test]
fn empty_items_fail_within_budget() {
    let items = 512 * 1024;
    let stored = hostile_pod(items); // 1 MiB of empty containers
    let err = k8s_codec::decode_protobuf(&stored).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("decoded object too large"), "{text}");
    // The bound is in proportion to the input: 1 MiB plus 128 bytes of JSON per input byte.
    let limit = number_after(&text, "more than ");
    assert!(limit <= (1 << 20) + 128 * stored.len(), "{text}");
    let input = number_after(&text, "JSON from "); // the object, without the envelope
    assert!(input < stored.len() && input + 32 > stored.len(), "{text}");
    // It stopped at an item well before the last: without the budget all of them are made.
    let stopped_at = number_after(&text, "spec.containers[");
    assert!(stopped_at > 1000 && stopped_at < items / 2, "{text}");
}

/// A few empty items (hand-made data, or data from an older API server) still decode.
#[test]
fn few_empty_items_decode() {
    let pod = k8s_codec::decode_protobuf(&hostile_pod(100)).unwrap();
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 100);
    assert_eq!(pod["spec"]["containers"][99]["resources"], json!({}));
}

/// The number of JSON values in a tree (objects, arrays and scalars, each counted once).
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// A ConfigMap near 1 MiB made of many tiny keys (the most values per byte that gogo writes).
#[test]
fn big_config_map_decodes() {
    let (object, stored) = big_config_map();
    assert!(stored.len() > 900_000, "{}", stored.len());
    let decoded = k8s_codec::decode_protobuf(&stored).unwrap();
    assert_eq!(decoded["data"].as_object().unwrap().len(), 100_000);
    assert_eq!(decoded["data"], object["data"]);
}

/// A ConfigMap of 100,000 keys and empty values, as JSON and as stored (~1 MiB).
fn big_config_map() -> (Value, Vec<u8>) {
    let mut data = Map::new();
    for i in 0..100_000 {
        data.insert(format!("{i:x}"), Value::String(String::new()));
    }
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "default"},
        "data": data,
    });
    let stored = k8s_codec::encode_protobuf(&object).unwrap();
    (object, stored)
}

/// A Pod with many small containers (each written in full by the encoder, as gogo does) decodes.
#[test]
fn pod_with_many_containers_decodes() {
    let containers: Vec<Value> = (0..5000)
        .map(|i| json!({"name": format!("c{i}"), "image": "i"}))
        .collect();
    let object = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "many", "namespace": "default"},
        "spec": {"containers": containers},
    });
    let stored = k8s_codec::encode_protobuf(&object).unwrap();
    let decoded = k8s_codec::decode_protobuf(&stored).unwrap();
    assert_eq!(
        decoded["spec"]["containers"].as_array().unwrap().len(),
        5000
    );
    assert_eq!(decoded["spec"]["containers"][4999]["name"], "c4999");
}

/// Measurement, not a check: decodes a hostile Pod of `K8S_CODEC_HOSTILE_ITEMS` empty containers
/// (default 512 Ki: 1 MiB), or with `K8S_CODEC_HOSTILE_KIND=NodeList` a NodeList of empty items
/// (`ConfigMap`: the big legitimate one, for comparison), and prints the outcome; run the test
/// binary under `/usr/bin/time -f %M` with `--ignored --exact measure_hostile_pod --nocapture`
/// for the peak RSS.
#[test]
#[ignore]
fn measure_hostile_pod() {
    let n = std::env::var("K8S_CODEC_HOSTILE_ITEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512 * 1024);
    let stored = match std::env::var("K8S_CODEC_HOSTILE_KIND").ok().as_deref() {
        Some("NodeList") => {
            // NodeList.items (field 2): the largest zero-filled tree of any repeated item.
            let mut raw = Vec::with_capacity(2 * n);
            for _ in 0..n {
                field(2, &[], &mut raw);
            }
            envelope("v1", "NodeList", &raw)
        }
        // Not hostile: the big legitimate ConfigMap of `big_config_map_decodes`, for comparison.
        Some("ConfigMap") => big_config_map().1,
        _ => hostile_pod(n),
    };
    match k8s_codec::decode_protobuf(&stored) {
        Ok(v) => eprintln!("{} bytes -> {} values", stored.len(), count(&v)),
        Err(e) => eprintln!("{} bytes -> error: {e}", stored.len()),
    }
}
