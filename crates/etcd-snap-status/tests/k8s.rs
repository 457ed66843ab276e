#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `etcd-snap-status --k8s` against a Kubernetes-shaped snapshot of a real etcd: every count the
//! inventory reports is recomputed here from the data the fixture wrote.

#[path = "../../etcd-snap-get/tests/fixture/mod.rs"]
mod fixture;

use etcd_test_support::{etcd_matrix, Version};
use fixture::{run, Fixture};
use serde_json::Value;
use std::collections::BTreeMap;

const STATUS: &str = env!("CARGO_BIN_EXE_etcd-snap-status");

/// What the inventory should say, from the fixture's live keys.
struct Expected {
    per_resource: BTreeMap<String, (u64, u64)>,
    per_namespace: BTreeMap<String, (u64, u64)>,
    largest: Vec<(String, u64)>,
    events: (u64, u64),
    total_bytes: u64,
    under: (u64, u64),
    outside: (u64, u64),
    other: (u64, u64),
}

fn expected(fx: &Fixture, prefix: &str) -> Expected {
    let mut e = Expected {
        per_resource: BTreeMap::new(),
        per_namespace: BTreeMap::new(),
        largest: Vec::new(),
        events: (0, 0),
        total_bytes: 0,
        under: (0, 0),
        outside: (0, 0),
        other: (0, 0),
    };
    let add = |slot: &mut (u64, u64), n: usize| {
        slot.0 += 1;
        slot.1 += n as u64;
    };
    for (key, value) in &fx.live {
        e.total_bytes += value.len() as u64;
        let Some(rest) = key.strip_prefix(&format!("{prefix}/")) else {
            add(&mut e.outside, value.len());
            continue;
        };
        add(&mut e.under, value.len());
        e.largest.push((key.clone(), value.len() as u64));
        let segs: Vec<&str> = rest.split('/').collect();
        // The fixture's layout: services/specs/NS/NAME, GROUP/PLURAL/NS/NAME, RES/NS/NAME, RES/NAME.
        let (resource, ns) = match segs.as_slice() {
            ["services", "specs", ns, _] => ("services".to_string(), Some(*ns)),
            [g, plural, ns, _] if g.contains('.') => (format!("{plural}.{g}"), Some(*ns)),
            [res, ns, _] => (res.to_string(), Some(*ns)),
            [res, _] => (res.to_string(), None),
            _ => {
                add(&mut e.other, value.len());
                continue;
            }
        };
        let resource = if resource == "deployments" {
            "deployments.apps".to_string()
        } else {
            resource
        };
        add(
            e.per_resource.entry(resource.clone()).or_default(),
            value.len(),
        );
        if resource == "events" {
            add(&mut e.events, value.len());
        }
        add(
            e.per_namespace
                .entry(ns.unwrap_or("(cluster-scoped)").to_string())
                .or_default(),
            value.len(),
        );
    }
    e.largest
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    e.largest.truncate(10);
    e
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Checks the `k8s` object of `-w json` against the fixture.
fn check_json(fx: &Fixture, report: &Value, prefix: &str) {
    let k = &report["k8s"];
    let e = expected(fx, prefix);
    assert_eq!(k["prefix"], prefix);
    assert!(k["counted"].as_str().unwrap().contains("live keys"), "{k}");
    assert_eq!((num(&k["objects"]), num(&k["bytes"])), e.under);
    let got: BTreeMap<String, (u64, u64)> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                (num(&r["objects"]), num(&r["bytes"])),
            )
        })
        .collect();
    assert_eq!(got, e.per_resource, "per resource");
    let mut got: BTreeMap<String, (u64, u64)> = k["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap().to_string(),
                (num(&n["objects"]), num(&n["bytes"])),
            )
        })
        .collect();
    got.insert(
        "(cluster-scoped)".into(),
        (
            num(&k["clusterScoped"]["objects"]),
            num(&k["clusterScoped"]["bytes"]),
        ),
    );
    got.retain(|_, v| v.0 > 0);
    assert_eq!(got, e.per_namespace, "per namespace");
    let largest: Vec<(String, u64)> = k["largest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["key"].as_str().unwrap().to_string(), num(&l["bytes"])))
        .collect();
    assert_eq!(largest, e.largest, "largest");
    assert_eq!(
        (num(&k["events"]["objects"]), num(&k["events"]["bytes"])),
        e.events
    );
    let share = k["events"]["share"].as_f64().unwrap();
    assert!(
        (share - e.events.1 as f64 / e.total_bytes as f64).abs() < 1e-9,
        "share {share}"
    );
    assert_eq!(
        (
            num(&k["outsidePrefix"]["objects"]),
            num(&k["outsidePrefix"]["bytes"])
        ),
        e.outside
    );
    assert_eq!(
        (num(&k["other"]["objects"]), num(&k["other"]["bytes"])),
        e.other
    );
}

/// The inventory of a snapshot from etcd 3.5, 3.6 (what kubeadm installs today) and 3.7.
fn inventory(v: Version) {
    let fx = fixture::build(v, "/registry");
    let snap = fx.snap.to_str().unwrap();
    let (code, out, err) = run(STATUS, &["--k8s", "-w", "json", snap], None).into_parts();
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_slice(&out).unwrap();
    check_json(&fx, &report, "/registry");
    let k = &report["k8s"];

    // Encryption at rest, by provider, from the fixture.
    let secrets_total = fx
        .live
        .keys()
        .filter(|k| k.starts_with("/registry/secrets/"))
        .count() as u64;
    let mut by_provider: BTreeMap<String, u64> = BTreeMap::new();
    for (key, (provider, _)) in &fx.encrypted {
        if key.starts_with("/registry/secrets/") {
            *by_provider.entry(provider.to_string()).or_default() += 1;
        }
    }
    let encrypted: u64 = by_provider.values().sum();
    assert_eq!(num(&k["secrets"]["total"]), secrets_total);
    assert_eq!(num(&k["secrets"]["plaintext"]), secrets_total - encrypted);
    let got: BTreeMap<String, u64> =
        serde_json::from_value(k["secrets"]["encrypted"].clone()).unwrap();
    assert_eq!(got, by_provider);
    assert!(
        encrypted > 0 && secrets_total > encrypted,
        "the fixture has both kinds"
    );
    let warnings = k["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let plaintext = secrets_total - encrypted;
    assert!(warnings[0].as_str().unwrap().starts_with(&format!(
        "{plaintext} of {secrets_total} secrets are stored in plaintext"
    )));
    assert!(
        err.contains("Warning: ") && err.contains("plaintext"),
        "stderr: {err}"
    );

    // Formats and groups per resource.
    let resources = k["resources"].as_array().unwrap();
    let row = |name: &str| {
        resources
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {resources:?}"))
    };
    let cm = row("configmaps");
    assert_eq!(cm["group"], "");
    assert_eq!(num(&cm["formats"]["encrypted"]), 1);
    assert_eq!(num(&cm["encrypted"]["kms-v2"]), 1);
    assert_eq!(num(&cm["formats"]["protobuf"]), num(&cm["objects"]) - 1);
    let crd = row("crontabs.stable.example.com");
    assert_eq!(
        (num(&crd["formats"]["json"]), crd["group"].as_str()),
        (1, Some("stable.example.com"))
    );
    assert_eq!(row("deployments.apps")["group"], "apps");
    assert_eq!(row("ranges")["formats"]["other"], 1);
    let secrets = row("secrets");
    assert_eq!(num(&secrets["formats"]["encrypted"]), encrypted);
    assert_eq!(num(&secrets["formats"]["protobuf"]), plaintext);

    // Deleted objects are not counted anywhere; older revisions only by their latest value.
    let text = String::from_utf8(out).unwrap();
    for key in &fx.deleted {
        assert!(!text.contains(key.as_str()), "deleted {key} in the report");
    }
    // The plain status line is still first and unchanged.
    let (_, plain, _) = run(STATUS, &[snap], None).into_parts();
    let (code, simple, err) = run(STATUS, &["--k8s", snap], None).into_parts();
    assert_eq!(code, 0, "{err}");
    let simple = String::from_utf8(simple).unwrap();
    assert!(
        simple.starts_with(std::str::from_utf8(&plain).unwrap()),
        "{simple}"
    );
    for needle in [
        "Kubernetes objects under /registry:",
        "live keys at the snapshot's revision",
        "RESOURCES:",
        "NAMESPACES:",
        "LARGEST 10 OBJECTS:",
        "deployments.apps",
        "crontabs.stable.example.com",
        "aescbc:2,secretbox:1",
        "WARNING: ",
    ] {
        assert!(
            simple.contains(needle),
            "simple output lacks {needle:?}:\n{simple}"
        );
    }
    let events = fx
        .live
        .keys()
        .filter(|k| k.starts_with("/registry/events/"))
        .count();
    assert!(
        simple.contains(&format!("events: {events} objects")),
        "{simple}"
    );
    let (code, table, _) = run(STATUS, &["--k8s", "-w", "table", snap], None).into_parts();
    assert_eq!(code, 0);
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains(" RESOURCE ")
            && table.contains(" NAMESPACE ")
            && table.contains("+---")
            && table.contains("WARNING: "),
        "{table}"
    );

    // The warning goes to stderr; a closed stderr is no reason to panic.
    assert_eq!(fixture::run_stderr_broken(STATUS, &["--k8s", snap]), 0);

    // The same through pipes: zstd, and age(zstd) with -i, from stdin.
    let (identity, recipient) = fixture::age_key(fx.dir.path());
    let zst = fx.dir.path().join("k8s.db.zst");
    let age = fx.dir.path().join("k8s.db.zst.age");
    fixture::sh_ok(&format!("zstd -q -c {snap} > {}", zst.display()));
    fixture::sh_ok(&format!(
        "zstd -q -c {snap} | age -r {recipient} > {}",
        age.display()
    ));
    let id = identity.to_str().unwrap();
    for (args, stdin) in [
        (vec!["--k8s", "-w", "json", "-"], &zst),
        (vec!["--k8s", "-w", "json", "-i", id, "-"], &age),
    ] {
        let (code, piped, err) = run(STATUS, &args, Some(stdin)).into_parts();
        assert_eq!(code, 0, "{args:?}: {err}");
        let piped: Value = serde_json::from_slice(&piped).unwrap();
        assert_eq!(piped["k8s"], report["k8s"], "{args:?}");
    }
}
etcd_matrix!(inventory: V3_5, V3_6, V3_7);

#[test]
fn inventory_3_4_with_another_prefix() {
    let fx = fixture::build(Version::V3_4, "/kubernetes.io");
    let snap = fx.snap.to_str().unwrap();
    let (code, out, err) = run(
        STATUS,
        &["--k8s-prefix", "/kubernetes.io", "-w", "json", snap],
        None,
    )
    .into_parts();
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_slice(&out).unwrap();
    check_json(&fx, &report, "/kubernetes.io");
    // The default prefix finds none of them: all keys are outside /registry.
    let (code, out, _) = run(STATUS, &["--k8s", "-w", "json", snap], None).into_parts();
    assert_eq!(code, 0);
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(num(&report["k8s"]["objects"]), 0);
    assert_eq!(
        num(&report["k8s"]["outsidePrefix"]["objects"]),
        fx.live.len() as u64
    );
    // Without --k8s, no k8s object.
    let (_, out, _) = run(STATUS, &["-w", "json", snap], None).into_parts();
    assert!(serde_json::from_slice::<Value>(&out)
        .unwrap()
        .get("k8s")
        .is_none());
    // A bad prefix is a usage error.
    let (code, out, err) = run(STATUS, &["--k8s-prefix", "registry", snap], None).into_parts();
    assert_eq!(
        (code, out.is_empty(), err.lines().count()),
        (2, true, 1),
        "{err}"
    );
}
