#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Issue 12 item 7: `--k8s` reports of a snapshot whose keys carry terminal controls show
//! namespaces and keys escaped in `simple` and `table`, and exactly in JSON.

#[path = "../../etcd-snap-get/tests/fixture/mod.rs"]
mod fixture;
#[path = "../../etcd-snap-get/tests/hostile/mod.rs"]
mod hostile;

use fixture::run;
use hostile::{assert_printable, RED_NS};
use serde_json::Value;

const STATUS: &str = env!("CARGO_BIN_EXE_etcd-snap-status");

#[test]
fn k8s_reports_escape_names_from_the_snapshot() {
    let fx = hostile::build();
    let snap = fx.snap.to_str().unwrap();
    for format in ["simple", "table"] {
        let (code, out, err) =
            run(STATUS, &[snap, "--k8s", "--detail", "-w", format], None).into_parts();
        assert_eq!(code, 0, "{format}: {err}");
        assert_printable(format, &out);
        assert_printable("stderr", err.as_bytes());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("ns\\x1b[31m"), "{format}:\n{text}");
        assert!(text.contains("evil"), "{format}:\n{text}");
    }
    let (code, out, err) = run(STATUS, &[snap, "--k8s", "-w", "json"], None).into_parts();
    assert_eq!(code, 0, "{err}");
    assert_printable("json", &out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let namespaces: Vec<&str> = v["k8s"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace"].as_str().unwrap())
        .collect();
    assert!(namespaces.contains(&RED_NS), "{namespaces:?}");
    let largest: Vec<&str> = v["k8s"]["largest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    let csi = format!("/registry/configmaps/{}/csi\u{9b}2J", hostile::NS);
    assert!(largest.contains(&csi.as_str()), "{largest:?}");
}
