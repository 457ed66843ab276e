//! `etcd-snap-get --rev` and `--history` against real etcd 3.5, 3.6 and 3.7: a raw key and a
//! ConfigMap (protobuf, as the API server stores it) are churned with updates, deletions and a
//! re-creation around a compaction, and the snapshot saved by the version's own `etcdctl`. At
//! every revision the snapshot still holds, `--rev R` must return what `etcdctl get --rev R`
//! returns (the stored bytes with `-o raw`, the manifest written at that revision with `-o json`,
//! the mod revision as resourceVersion), or not found where etcd has no live key; `--history`
//! must list exactly the stored revisions with the right diffs, also through `zstd | age`; and a
//! compacted revision is refused with exit 1 naming the compact revision.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

mod fixture;

use etcd_test_support::{base64, etcd_matrix, run, run_ok, Cluster, Run, Tool, Version};
use serde_json::{json, Value};
use std::path::Path;

const GET: &str = env!("CARGO_BIN_EXE_etcd-snap-get");
const RAW: &str = "/raw/churn";
const CM: &str = "/registry/configmaps/web/settings";

/// Runs etcd-snap-get with `args` (see `fixture::run`).
fn get(args: &[&str], stdin: Option<&Path>) -> Run {
    fixture::run(GET, args, stdin)
}

/// `etcdctl get KEY --rev R -w json`: (base64 value, mod revision) or `None` when not live.
fn live_get(cluster: &Cluster, key: &str, rev: i64) -> Option<(String, i64)> {
    let out = run_ok(
        cluster
            .etcdctl()
            .args(["get", key, &format!("--rev={rev}"), "-w", "json"]),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let kv = v["kvs"].as_array().and_then(|a| a.first())?;
    Some((
        kv["value"].as_str().unwrap_or("").to_string(),
        kv["mod_revision"].as_i64().unwrap(),
    ))
}

fn configmap(payload: &str, uid: u32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "settings", "namespace": "web",
            "uid": format!("6f1c2d3e-0000-4000-8000-{uid:012}"),
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "labels": {"app": "web"}
        },
        "data": {"payload": payload, "mode": "production"}
    })
}

fn stripped(manifest: &Value) -> Value {
    let mut v = manifest.clone();
    k8s_codec::strip_server_fields(&mut v);
    v
}

fn rev_and_history(v: Version) {
    let cluster = Cluster::builder(v).start();
    let gw = cluster.gateway();
    let dir = tempfile::tempdir().unwrap();
    // What was written: revision → (key, manifest or raw value; None for a deletion).
    let mut written: Vec<(i64, &str, Option<Value>)> = Vec::new();
    let put_raw = |gw: &etcd_test_support::Gateway, value: &str| {
        let r = gw.put(RAW.as_bytes(), value.as_bytes());
        (r, RAW, Some(Value::String(value.into())))
    };
    let put_cm = |gw: &etcd_test_support::Gateway, m: Value| {
        let r = gw.put(CM.as_bytes(), &k8s_codec::encode_protobuf(&m).unwrap());
        (r, CM, Some(m))
    };
    let del = |gw: &etcd_test_support::Gateway, key: &'static str| {
        gw.delete_range(key.as_bytes(), None);
        (gw.revision(), key, None)
    };
    gw.put(b"/other", b"x");
    written.push(put_raw(&gw, "v1"));
    written.push(put_cm(&gw, configmap("one", 1)));
    written.push(put_raw(&gw, "v2"));
    written.push(put_cm(&gw, configmap("two", 1)));
    written.push(put_raw(&gw, "v3\nsecond line"));
    // The compaction: at a write of another key, so both keys keep their latest version.
    let compact = gw.put(b"/other", b"y");
    gw.compact(compact);
    written.push(put_raw(&gw, "v4 \x1b[31mred"));
    written.push(del(&gw, CM));
    written.push(del(&gw, RAW));
    written.push(put_cm(&gw, configmap("three", 2)));
    written.push(put_raw(&gw, "v5"));
    written.push(put_cm(&gw, configmap("four", 2)));
    let current = gw.put(b"/other", b"z");
    let snap = dir.path().join("snap.db");
    run_ok(
        cluster
            .etcdctl()
            .args(["snapshot", "save", snap.to_str().unwrap()]),
    );
    let f = snap.to_str().unwrap();

    // --rev R at every revision the snapshot holds, against `etcdctl get --rev R`.
    for rev in compact..=current {
        let r = rev.to_string();
        let live = live_get(&cluster, RAW, rev);
        let out = get(&[f, "--prefix", RAW, "--rev", &r, "-o", "raw"], None);
        match &live {
            Some((value, _)) => {
                out.succeeds();
                assert_eq!(&base64(&out.stdout_bytes), value, "{v}: {RAW} at {rev}");
            }
            None => {
                out.fails(1).one_line_error(&format!("at revision {rev}"));
            }
        }
        let live = live_get(&cluster, CM, rev);
        let raw = get(
            &[f, "cm", "settings", "-n", "web", "--rev", &r, "-o", "raw"],
            None,
        );
        let out = get(
            &[
                f,
                "cm/settings",
                "-n",
                "web",
                "--rev",
                &r,
                "-o",
                "json",
                "--keep-server-fields",
            ],
            None,
        );
        match &live {
            Some((value, mod_revision)) => {
                raw.succeeds();
                assert_eq!(&base64(&raw.stdout_bytes), value, "{v}: {CM} at {rev}");
                out.succeeds();
                let got: Value = serde_json::from_str(&out.stdout).unwrap();
                // The manifest written last at or before R, resourceVersion = its revision.
                let (at, _, m) = written
                    .iter()
                    .rfind(|(w, k, _)| *k == CM && *w <= rev)
                    .unwrap();
                assert_eq!(at, mod_revision, "{v}: {CM} at {rev}");
                let mut want = m.clone().unwrap();
                want["metadata"]["resourceVersion"] = json!(at.to_string());
                assert_eq!(got, want, "{v}: {CM} at {rev}");
            }
            None => {
                raw.fails(1);
                out.fails(1)
                    .one_line_error(&format!("not found in namespace \"web\" at revision {rev}"));
            }
        }
    }
    // A list as of an older revision: what was live then.
    let list = get(
        &[f, "--prefix", "/raw/", "--rev", &compact.to_string()],
        None,
    );
    list.succeeds();
    assert!(list.stdout.contains(RAW), "{list:?}");

    // Compacted: exit 1 naming the compact revision; in the future: exit 2.
    let below = (compact - 1).to_string();
    for args in [
        vec![f, "--prefix", RAW, "--rev", &below],
        vec![f, "cm", "settings", "-n", "web", "--rev", &below],
        vec![f, "--prefix", RAW, "--history", "--rev", &below],
    ] {
        get(&args, None)
            .fails(1)
            .one_line_error(&format!("the compact revision is {compact}"));
    }
    let live = run(cluster.etcdctl().args(["get", RAW, "--rev", &below]));
    assert!(
        !live.success() && live.stderr.contains("compacted"),
        "{live:?}"
    );
    get(
        &[f, "--prefix", RAW, "--rev", &(current + 1).to_string()],
        None,
    )
    .fails(2)
    .one_line_error(&format!("the current revision is {current}"));

    // --history: the stored revisions of each key are the writes after the compaction and the
    // latest one before it (compaction keeps it).
    for key in [RAW, CM] {
        let ours: Vec<&(i64, &str, Option<Value>)> =
            written.iter().filter(|(_, k, _)| *k == key).collect();
        let kept_before = ours.iter().rposition(|(w, _, _)| *w <= compact).unwrap();
        let stored = &ours[kept_before..];
        let args: Vec<&str> = match key {
            RAW => vec![f, "--prefix", RAW, "--history", "-o", "json"],
            _ => vec![f, "cm", "settings", "-n", "web", "--history", "-o", "json"],
        };
        let out = get(&args, None);
        out.succeeds();
        let j: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(j["key"], key);
        assert_eq!(j["compactRevision"].as_i64(), Some(compact));
        assert_eq!(j["revision"].as_i64(), Some(current));
        let revisions = j["revisions"].as_array().unwrap();
        assert_eq!(
            revisions
                .iter()
                .map(|r| r["revision"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            stored.iter().map(|(w, _, _)| *w).collect::<Vec<_>>(),
            "{v}: {key}"
        );
        for (got, (w, _, value)) in revisions.iter().zip(stored) {
            let want_event = match value {
                None => "deleted",
                Some(_) => {
                    // etcd's version (1 on creation), read where the member still can: a write
                    // before the compaction is still the key's version at the compact revision.
                    let at = (*w).max(compact);
                    let out = run_ok(cluster.etcdctl().args([
                        "get",
                        key,
                        &format!("--rev={at}"),
                        "-w",
                        "json",
                    ]));
                    let kv = &serde_json::from_str::<Value>(&out).unwrap()["kvs"][0];
                    assert_eq!(kv["mod_revision"].as_i64(), Some(*w), "{v}: {key} at {at}");
                    match kv["version"].as_i64() {
                        Some(1) => "created",
                        _ => "updated",
                    }
                }
            };
            assert_eq!(got["event"], want_event, "{v}: {key} at {w}: {got}");
            match (key, value) {
                (CM, Some(m)) => assert_eq!(got["object"], stripped(m), "{v}: {key} at {w}"),
                (_, Some(Value::String(s))) => {
                    let diff = got["diff"].as_str().unwrap();
                    let first = s.lines().next().unwrap().replace('\x1b', "\\x1b");
                    assert!(
                        diff.contains(&format!("\n+{first}\n")),
                        "{v}: {key} at {w}: {diff}"
                    );
                }
                _ => assert!(got["object"].is_null()),
            }
        }
    }

    // The text view of the ConfigMap: each update's diff shows the changed field and nothing
    // else; the deletion removes every line; escape sequences never reach the terminal raw.
    let text = get(
        &[f, "configmap", "settings", "-n", "web", "--history"],
        None,
    );
    text.succeeds();
    let out = &text.stdout;
    assert!(
        out.contains("-  payload: three\n+  payload: four\n"),
        "{out}"
    );
    assert!(!out.contains("-  mode: production\n+"), "{out}");
    assert!(out.contains(&format!("+++ {CM} @ ")), "{out}");
    let raw_text = get(&[f, "--prefix", RAW, "--history"], None);
    raw_text.succeeds();
    assert!(!raw_text.stdout.contains('\x1b'), "{raw_text:?}");
    assert!(
        raw_text.stdout.contains("+v4 \\x1b[31mred\n"),
        "{raw_text:?}"
    );

    // Up to a revision with --rev; through zstd | age on stdin: the same as from the file.
    let table = get(&[f, "--prefix", RAW, "--history", "-o", "table"], None);
    table.succeeds();
    let upto = get(
        &[
            f,
            "--prefix",
            RAW,
            "--history",
            "-o",
            "table",
            "--rev",
            &compact.to_string(),
        ],
        None,
    );
    upto.succeeds();
    assert_eq!(upto.stdout.lines().count(), 2, "{upto:?}");
    assert!(table.stdout.starts_with(&upto.stdout), "{table:?} {upto:?}");
    let key = dir.path().join("age.key");
    let enc = dir.path().join("snap.db.zst.age");
    let script = format!(
        "age-keygen -o {k} 2>/dev/null && zstd -qc {f} | age -r $(age-keygen -y {k}) > {e}",
        k = key.display(),
        e = enc.display()
    );
    let mut bash = std::process::Command::new("bash");
    bash.args(["-o", "pipefail", "-c", &script]);
    Tool::from_command(bash).run().succeeds();
    let piped = get(
        &[
            "-i",
            key.to_str().unwrap(),
            "-",
            "cm",
            "settings",
            "-n",
            "web",
            "--history",
        ],
        Some(&enc),
    );
    piped.succeeds();
    assert_eq!(piped.stdout, text.stdout);

    // Not one object: a usage error; an object never written: not found.
    get(&[f, "cm", "--history"], None).fails(2);
    get(&[f, "cm", "nothing", "-n", "web", "--history"], None)
        .fails(1)
        .one_line_error("not found");
}

etcd_matrix!(rev_and_history: V3_5, V3_6, V3_7);
