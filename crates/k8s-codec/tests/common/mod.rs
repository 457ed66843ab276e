#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]
//! Helpers shared by the integration tests: YAML read-back through two independent parsers
//! (yaml-rust2 for YAML 1.2, PyYAML for YAML 1.1 when python3 has it) and value comparison.

pub mod wire;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Converts a yaml-rust2 document to JSON (mapping keys must be strings, as in ours).
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(r) => {
            let f: f64 = r.parse().unwrap();
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Value::Number((f as i64).into())
            } else {
                Value::Number(Number::from_f64(f).unwrap())
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let Yaml::String(k) = k else {
                    panic!("non-string key {k:?}")
                };
                m.insert(k.clone(), to_json(v));
            }
            Value::Object(m)
        }
        other => panic!("unexpected YAML node {other:?}"),
    }
}

/// Parses YAML text with yaml-rust2 (YAML 1.2 core schema).
pub fn yaml12(text: &str) -> Value {
    let docs =
        YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("YAML 1.2 parse: {e}\n{text}"));
    assert_eq!(docs.len(), 1, "{text}");
    to_json(&docs[0])
}

/// The first python3 with PyYAML: PATH's, else Debian's (`python3-yaml`, installed by scripts/setup).
pub fn pyyaml_python() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import yaml"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Parses many YAML documents with PyYAML (YAML 1.1 resolution) in one python3 process, returning
/// each as JSON; None when PyYAML is missing outside CI (with `CI` set that is a failure).
pub fn yaml11(texts: &[String]) -> Option<Vec<Value>> {
    let Some(python) = pyyaml_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with PyYAML not found (Debian: python3-yaml): run scripts/setup"
        );
        eprintln!(
            "note: python3 with PyYAML not found: YAML 1.1 read-back skipped (run scripts/setup)"
        );
        return None;
    };
    let script = "import sys, json, yaml\n\
        docs = json.load(sys.stdin)\n\
        out = []\n\
        for d in docs:\n\
        \x20   v = yaml.safe_load(d)\n\
        \x20   out.append(v)\n\
        json.dump(out, sys.stdout, default=lambda o: {'__not_json__': repr(o)})\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(texts).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML failed");
    let Value::Array(values) = serde_json::from_slice(&out.stdout).unwrap() else {
        panic!()
    };
    Some(values.into_iter().map(integral).collect())
}

/// Python's floats that are integral print as `1.0`; ours are integers: compare numerically.
fn integral(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Value::Number((f as i64).into())
            } else {
                Value::Number(n)
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(integral).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

/// The first differing path of two values, for readable failures.
pub fn diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = diff(p, q, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    (p, q) => return Some(format!("{path}.{k}: {p:?} vs {q:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| diff(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} vs {b}")),
    }
}

/// Whether a value is Go's zero value all the way down (what gogo adds for absent non-pointer
/// fields and Go's JSON then shows: `{}`, `0`, `""`, `false`).
pub fn go_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(go_zero),
    }
}

/// `want` is contained in `got`, which may only add or drop Go zero values; returns the first
/// problem.
pub fn contained(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => {
                        if let Some(d) = contained(wv, gv, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    // Go drops zero non-pointer omitempty fields (`value: ""`); pointer
                    // zeros must survive, which the tests check by name.
                    None if go_zero(wv) => {}
                    None => return Some(format!("{path}.{k}: missing")),
                }
            }
            g.iter()
                .find(|(k, v)| !w.contains_key(*k) && !go_zero(v))
                .map(|(k, v)| format!("{path}.{k}: added non-zero {v}"))
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (a, b))| contained(a, b, &format!("{path}[{i}]"))),
        _ if want == got => None,
        _ => Some(format!("{path}: {want} vs {got}")),
    }
}

/// Every value's YAML must read back to the value with yaml-rust2 (YAML 1.2) and PyYAML (1.1).
pub fn assert_yaml_reads_back(values: &[Value]) {
    let texts: Vec<String> = values.iter().map(k8s_codec::to_yaml).collect();
    for (v, t) in values.iter().zip(&texts) {
        if let Some(d) = diff(&yaml12(t), v, "") {
            panic!("YAML 1.2: {d}\n{t}");
        }
    }
    if let Some(parsed) = yaml11(&texts) {
        for ((v, t), p) in values.iter().zip(&texts).zip(&parsed) {
            if let Some(d) = diff(p, v, "") {
                panic!("YAML 1.1: {d}\n{t}");
            }
        }
    }
}
