//! `etcd-snap-diff --k8s` against snapshots saved by real etcd 3.6 around a known set of object
//! changes, written as the API server writes them (built-ins as protobuf, custom resources as
//! JSON, an encrypted secret as its `k8s:enc:` envelope): exactly the objects that changed are
//! listed by resource and namespace/name, a changed one with exactly its YAML diff; an object
//! changed only in server-set fields is counted, not listed (listed with `--keep-server-fields`);
//! an encrypted one without its key is listed with one line saying why there is no diff; keys
//! outside the layout stay keys; exit 0 when only server-set fields changed.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{run_ok, Cluster, Gateway, Run, Tool, Version};
use serde_json::{json, Value};
use std::path::Path;

const DIFF: &str = env!("CARGO_BIN_EXE_etcd-snap-diff");

fn diff(args: &[&str]) -> Run {
    Tool::new(DIFF).args(args).run()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A ConfigMap as the API server stores it, with server-set metadata.
fn configmap(ns: &str, name: &str, data: Value, generation: i64, manager: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": "6f1c2d3e-0000-4000-8000-000000000001",
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "generation": generation,
            "managedFields": [{"manager": manager, "operation": "Update", "apiVersion": "v1"}],
            "labels": {"app": name}
        },
        "data": data
    })
}

fn put_pb(gw: &Gateway, key: &str, object: &Value) -> i64 {
    gw.put(key.as_bytes(), &k8s_codec::encode_protobuf(object).unwrap())
}

fn snapshot(cluster: &Cluster, path: &Path) {
    run_ok(cluster.etcdctl().args(["snapshot", "save", &s(path)]));
}

#[test]
fn k8s_objects_changed_between_two_snapshots() {
    let cluster = Cluster::builder(Version::V3_6).start();
    let gw = cluster.gateway();
    let dir = tempfile::tempdir().unwrap();
    let web = "/registry/configmaps/app/web";
    let quiet = "/registry/configmaps/app/quiet";
    let crontab = "/registry/stable.example.com/crontabs/ns1/nightly";
    let secret = "/registry/secrets/app/db";
    put_pb(
        &gw,
        web,
        &configmap(
            "app",
            "web",
            json!({"mode": "blue", "replicas": "2"}),
            1,
            "kubectl",
        ),
    );
    put_pb(
        &gw,
        quiet,
        &configmap("app", "quiet", json!({"k": "v"}), 1, "kubectl"),
    );
    gw.put(crontab.as_bytes(), br#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"nightly","namespace":"ns1"},"spec":{"cronSpec":"* * * * */5"}}"#);
    gw.put(
        secret.as_bytes(),
        b"k8s:enc:aescbc:v1:key1:\x01\x02\x03 first ciphertext",
    );
    gw.put(b"compact_rev_key", b"1");
    let a = dir.path().join("a.db");
    snapshot(&cluster, &a);

    // The changes: one edit, one change of server-set fields only (managedFields, generation),
    // a re-encrypted secret, a custom resource removed, a namespace and a deployment added, a
    // key outside the layout changed.
    put_pb(
        &gw,
        web,
        &configmap(
            "app",
            "web",
            json!({"mode": "green", "replicas": "2"}),
            1,
            "kubectl",
        ),
    );
    put_pb(
        &gw,
        quiet,
        &configmap("app", "quiet", json!({"k": "v"}), 2, "controller"),
    );
    gw.put(
        secret.as_bytes(),
        b"k8s:enc:aescbc:v1:key1:\x04\x05\x06 second ciphertext",
    );
    gw.delete_range(crontab.as_bytes(), None);
    put_pb(
        &gw,
        "/registry/namespaces/fresh",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}),
    );
    put_pb(
        &gw,
        "/registry/deployments/app/front",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "front", "namespace": "app"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "front"}}}}),
    );
    gw.put(b"compact_rev_key", b"2");
    let b = dir.path().join("b.db");
    snapshot(&cluster, &b);
    let (fa, fb) = (s(&a), s(&b));

    let out = diff(&["--k8s", &fa, &fb]);
    out.fails(1);
    let j: Value = serde_json::from_str(&diff(&["--k8s", &fa, &fb, "-w", "json"]).stdout).unwrap();
    let rev = |key: &str, side: &str| -> i64 {
        j["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .unwrap()[side]["modRevision"]
            .as_i64()
            .unwrap()
    };
    let want = format!(
        "changed\tconfigmaps\tapp/web\n\
         --- a{web} @ {}\n\
         +++ b{web} @ {}\n\
         @@ -1,6 +1,6 @@\n \
         apiVersion: v1\n \
         data:\n\
         -  mode: blue\n\
         +  mode: green\n   \
         replicas: \"2\"\n \
         kind: ConfigMap\n \
         metadata:\n\
         added\tdeployments\tapp/front\n\
         added\tnamespaces\tfresh\n\
         changed\tsecrets\tapp/db\n\
         # not shown: A: stored encrypted with aescbc key key1; --encryption-config FILE (the API server's EncryptionConfiguration) shows the diff\n\
         removed\tcrontabs.stable.example.com\tns1/nightly\n\
         changed\tcompact_rev_key\n\
         summary: 2 added, 1 removed, 3 changed, 1 changed only in server-set fields or their lease (not listed) (A ",
        rev(web, "a"),
        rev(web, "b"),
    );
    assert!(
        out.stdout.starts_with(&want),
        "got:\n{}\nwant:\n{want}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("hashkv: different"),
        "{out:?}"
    );

    // JSON: the same objects, named; the server-fields-only one counted.
    assert_eq!(
        (
            j["added"].as_u64(),
            j["removed"].as_u64(),
            j["changed"].as_u64()
        ),
        (Some(2), Some(1), Some(3))
    );
    assert_eq!(j["serverFieldsOnly"].as_u64(), Some(1));
    assert_eq!(j["same"], false);
    let changes = j["changes"].as_array().unwrap();
    let named: Vec<(String, String, Value, String)> = changes
        .iter()
        .filter(|c| c.get("resource").is_some())
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["resource"].as_str().unwrap().to_string(),
                c["namespace"].clone(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "changed".into(),
                "configmaps".into(),
                json!("app"),
                "web".into()
            ),
            (
                "added".into(),
                "deployments".into(),
                json!("app"),
                "front".into()
            ),
            (
                "added".into(),
                "namespaces".into(),
                Value::Null,
                "fresh".into()
            ),
            (
                "changed".into(),
                "secrets".into(),
                json!("app"),
                "db".into()
            ),
            (
                "removed".into(),
                "crontabs.stable.example.com".into(),
                json!("ns1"),
                "nightly".into()
            ),
        ]
    );
    let web_change = changes.iter().find(|c| c["key"] == web).unwrap();
    assert!(web_change["diff"]
        .as_str()
        .unwrap()
        .contains("-  mode: blue\n+  mode: green\n"));
    let secret_change = changes.iter().find(|c| c["key"] == secret).unwrap();
    assert_eq!(secret_change["diff"], Value::Null);
    assert!(secret_change["notShown"]
        .as_str()
        .unwrap()
        .contains("--encryption-config"));
    let crd = changes.iter().find(|c| c["key"] == crontab).unwrap();
    assert_eq!(crd["group"], "stable.example.com");

    // --keep-server-fields: the quiet one is listed, its diff showing the server-set fields.
    let kept = diff(&["--k8s", "--keep-server-fields", &fa, &fb]);
    kept.fails(1);
    let quiet_part: String = kept
        .stdout
        .split("changed\tconfigmaps\tapp/quiet\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("changed\t") && !l.starts_with("added\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        quiet_part.contains("-  generation: 1\n+  generation: 2\n"),
        "{quiet_part}"
    );
    assert!(
        quiet_part.contains("-    manager: kubectl\n+    manager: controller\n"),
        "{quiet_part}"
    );
    assert!(quiet_part.contains("resourceVersion"), "{quiet_part}");
    assert!(
        kept.stdout
            .contains("summary: 2 added, 1 removed, 4 changed, 0 changed only"),
        "{kept:?}"
    );

    // Only server-set fields changed (narrowed by --prefix): exit 0, and the summary says so.
    let only = diff(&["--k8s", &fa, &fb, "--prefix", quiet]);
    only.succeeds();
    assert_eq!(
        only.stdout.lines().next().unwrap().split(" (A ").next().unwrap(),
        "summary: 0 added, 0 removed, 0 changed, 1 changed only in server-set fields or their lease (not listed)"
    );
    // Without --k8s the same key is a change.
    diff(&[&fa, &fb, "--prefix", quiet]).fails(1);

    // An EncryptionConfiguration that is not one: exit 2, before any snapshot is read.
    let config = dir.path().join("enc.yaml");
    std::fs::write(&config, "kind: Nope\n").unwrap();
    diff(&["--k8s", "--encryption-config", &s(&config), &fa, &fb])
        .fails(2)
        .one_line_error("--encryption-config");
}
