//! Fuzz target: any JSON value printed by `to_yaml` must read back equal with an independent YAML
//! 1.2 parser (yaml-rust2), and printing must not panic.
//!
//! Why it exists: `etcd-snap-get -o yaml` output is fed to `kubectl apply`; a string printed without
//! the quotes it needs silently changes type or value. The input bytes are parsed as JSON (inputs
//! that are not JSON are skipped; libFuzzer's mutations of JSON seeds find plenty that are). Run with
//! `cargo +nightly fuzz run yaml` from `crates/k8s-codec`; seed `fuzz/corpus/yaml/` with
//! `tests/fixtures/*.json`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// JSON from YAML as the API server would read it (numbers that are integers stay integers).
fn to_json(y: &Yaml) -> Option<Value> {
    Some(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => Value::from(r.parse::<f64>().ok()?),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Option<_>>()?),
        Yaml::Hash(h) => {
            let mut m = serde_json::Map::new();
            for (k, v) in h {
                let Yaml::String(k) = k else { return None };
                m.insert(k.clone(), to_json(v)?);
            }
            Value::Object(m)
        }
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let text = k8s_codec::to_yaml(&value);
    let docs = match YamlLoader::load_from_str(&text) {
        Ok(d) => d,
        Err(e) => panic!("to_yaml output does not parse: {e}\n{text}"),
    };
    let back = match docs.as_slice() {
        [] => Value::Null,
        [one] => match to_json(one) {
            Some(v) => v,
            None => panic!("to_yaml output reads back as non-JSON YAML: {one:?}\n{text}"),
        },
        _ => panic!("to_yaml output is several documents\n{text}"),
    };
    assert!(
        same(&value, &back),
        "YAML reads back different\n{value}\n{back}\n{text}"
    );
});

/// Equal as JSON, with numbers compared by value (1.0 and 1 print alike in YAML).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::Number(_)) if yaml_rust2_quirk(s) => true,
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// yaml-rust2 reads `0x-22` and `0o+7` as integers, though YAML 1.2's core schema (`0x[0-9a-fA-F]+`),
/// YAML 1.1 and Go's reader (what kubectl prints for) take them as strings: printed plain, as Go does.
fn yaml_rust2_quirk(s: &str) -> bool {
    ["0x-", "0x+", "0o-", "0o+"]
        .iter()
        .any(|p| s.starts_with(p))
}
