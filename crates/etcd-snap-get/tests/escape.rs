#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Issue 12 item 7: keys and names from a snapshot never reach the terminal raw. Tables and
//! messages show them escaped (Go's `%q` form without quotes: `\x1b`, `\a`, `\u009b`, `\xff`);
//! `-o json` decodes to the exact name; `-o raw` is the exact stored bytes.

mod fixture;
mod hostile;

use fixture::run;
use hostile::{assert_printable, NAMES, NS, OUTSIDE};
use serde_json::Value;

const GET: &str = env!("CARGO_BIN_EXE_etcd-snap-get");

#[test]
fn hostile_keys_are_escaped_in_tables_and_messages_and_exact_in_json_and_raw() {
    let fx = hostile::build();
    let snap = fx.snap.to_str().unwrap();

    // The table: one line per object, every name escaped, a printable one unchanged.
    let (code, out, err) = run(GET, &[snap, "cm", "-n", NS], None).into_parts();
    assert_eq!(code, 0, "{err}");
    assert_printable("table", &out);
    let table = String::from_utf8(out).unwrap();
    assert_eq!(table.lines().count(), NAMES.len() + 1, "{table}");
    for shown in [
        "title\\x1b]0;pwned\\a",
        "clear\\x1b[2J\\x1b[H",
        "cr\\roverwrite",
        "new\\nline",
        "del\\x7f",
        "csi\\u009b2J",
        "bidi\\u202egpj.exe",
        " plain-name ",
    ] {
        assert!(table.contains(shown), "{shown:?} in\n{table}");
    }
    let (code, out, err) = run(GET, &[snap, "cm", "-A"], None).into_parts();
    assert_eq!(code, 0, "{err}");
    assert_printable("-A table", &out);
    assert!(String::from_utf8(out).unwrap().starts_with("NAMESPACE"));

    // One object: JSON decodes to the exact name, YAML is printable, raw is exact.
    for name in NAMES {
        let (code, out, err) =
            run(GET, &[snap, "cm", name, "-n", NS, "-o", "json"], None).into_parts();
        assert_eq!(code, 0, "{name:?}: {err}");
        assert_printable("json", &out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["metadata"]["name"], name, "{name:?}");
        let (code, out, err) = run(GET, &[snap, "cm", name, "-n", NS], None).into_parts();
        assert_eq!(code, 0, "{name:?}: {err}");
        // YAML is k8s-codec's emitter: controls are quoted (`"\e]0;..."`); YAML counts bidi
        // marks as printable and keeps them, so only controls are checked here.
        let yaml = String::from_utf8(out).unwrap();
        assert!(
            !yaml.contains(|c: char| c.is_control() && c != '\n'),
            "{name:?}: {yaml:?}"
        );
        let (code, out, err) =
            run(GET, &[snap, "cm", name, "-n", NS, "-o", "raw"], None).into_parts();
        assert_eq!(code, 0, "{name:?}: {err}");
        assert_eq!(out, hostile::configmap(NS, name), "{name:?} -o raw");
    }
    // A JSON list too.
    let (code, out, err) = run(GET, &[snap, "cm", "-n", NS, "-o", "json"], None).into_parts();
    assert_eq!(code, 0, "{err}");
    assert_printable("json list", &out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let mut names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut want = NAMES.to_vec();
    want.sort_unstable();
    assert_eq!(names, want);

    // Keys outside the layout, invalid UTF-8 included: the table shows their bytes escaped.
    let (code, out, err) = run(GET, &[snap, "--prefix", "/evil/"], None).into_parts();
    assert_eq!(code, 0, "{err}");
    assert_printable("--prefix table", &out);
    let table = String::from_utf8(out).unwrap();
    for shown in [
        "/evil/c1byte\\x9b[2J",
        "/evil/esc\\x1b[2J",
        "/evil/raw\\xff\\xfe",
    ] {
        assert!(table.contains(shown), "{shown:?} in\n{table}");
    }
    // Not objects: one escaped Warning line each on stderr, exit 1.
    let (code, out, err) = run(GET, &[snap, "--prefix", "/evil/", "-o", "json"], None).into_parts();
    assert_eq!(code, 1, "{err}");
    assert_printable("stdout", &out);
    assert_printable("warnings", err.as_bytes());
    assert_eq!(err.lines().count(), OUTSIDE.len(), "{err}");
    assert!(err.lines().all(|l| l.starts_with("Warning: ")), "{err}");
    assert!(err.contains("/evil/raw\\xff\\xfe: "), "{err}");
    // One such key: one escaped Error line; -o raw gives its exact bytes.
    let esc = std::str::from_utf8(OUTSIDE[1]).unwrap();
    let (code, out, err) = run(GET, &[snap, "--prefix", esc], None).into_parts();
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert_printable("error", err.as_bytes());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("Error: /evil/esc\\x1b[2J: "), "{err}");
    let (code, out, err) = run(GET, &[snap, "--prefix", esc, "-o", "raw"], None).into_parts();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, hostile::outside_value(OUTSIDE[1]));
}
