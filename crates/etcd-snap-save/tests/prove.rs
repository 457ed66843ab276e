//! `etcd-snap-save --prove` against real 3-member clusters of etcd 3.5, 3.6 and 3.7: a healthy
//! cluster is proven with every member's hash equal to the snapshot's and to what
//! `etcdctl endpoint hashkv --cluster` says; a revision equal to the compact revision is unproven
//! (exit 3); a member stopped is named with exit 3; a member restored from an older snapshot into
//! the cluster (so its history differs at the same revisions) is named with exit 1.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{etcd_bin, etcd_matrix, Cluster, Run, Tool, Version};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

const SAVE: &str = env!("CARGO_BIN_EXE_etcd-snap-save");

fn save(args: &[&str]) -> Run {
    Tool::new(SAVE).args(args).run()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Puts `n` keys with a churn of overwrites and deletions.
fn churn(cluster: &Cluster, tag: &str, n: usize) {
    for i in 0..n {
        cluster.put(&format!("/k/{tag}/{}", i % 7), &format!("{tag}-{i}"));
    }
    let out = cluster
        .etcdctl()
        .args(["del", &format!("/k/{tag}/3")])
        .output()
        .expect("etcdctl del");
    assert!(out.status.success(), "etcdctl del: {out:?}");
}

/// The cluster's current revision, from `etcdctl endpoint status` of member 0.
fn revision(cluster: &Cluster) -> i64 {
    let out = cluster
        .etcdctl_on(&[0], None)
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .expect("etcdctl endpoint status");
    let v: Value = serde_json::from_slice(&out.stdout).expect("status json");
    v[0]["Status"]["header"]["revision"]
        .as_i64()
        .expect("revision")
}

fn compact(cluster: &Cluster, rev: i64) {
    let out = cluster
        .etcdctl()
        .args(["compact", &rev.to_string()])
        .output()
        .expect("etcdctl compact");
    assert!(out.status.success(), "etcdctl compact: {out:?}");
}

/// `etcdctl endpoint hashkv --cluster --rev R`: endpoint -> hash.
fn etcdctl_hashkv(cluster: &Cluster, rev: i64) -> BTreeMap<String, u64> {
    let out = cluster
        .etcdctl_on(&[0], None)
        .args([
            "endpoint",
            "hashkv",
            "--cluster",
            "--rev",
            &rev.to_string(),
            "-w",
            "json",
        ])
        .output()
        .expect("etcdctl endpoint hashkv");
    assert!(out.status.success(), "etcdctl endpoint hashkv: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("hashkv json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let ep = e["Endpoint"].as_str().expect("Endpoint").to_string();
            (ep, e["HashKV"]["hash"].as_u64().expect("hash"))
        })
        .collect()
}

/// `--prove -w json` of a FILE: the summary.
fn prove_json(cluster: &Cluster, extra: &[&str], file: &Path) -> (Run, Value) {
    let eps = cluster.host_ports()[0].clone();
    let mut args = vec!["--endpoints", &eps, "--prove", "-w", "json", "--force"];
    args.extend_from_slice(extra);
    let target = s(file);
    args.push(&target);
    let out = save(&args);
    out.no_panic();
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("summary json ({e}): {out:?}"));
    (out, v)
}

/// The proof's members by name.
fn members(summary: &Value) -> BTreeMap<String, Value> {
    summary["proof"]["members"]
        .as_array()
        .expect("proof.members")
        .iter()
        .map(|m| (m["name"].as_str().expect("name").to_string(), m.clone()))
        .collect()
}

/// The run ended with one `Error:` line on stderr containing `text` (stdout holds the summary).
#[track_caller]
fn error_line(out: &Run, text: &str) {
    assert_eq!(out.stderr.lines().count(), 1, "one line on stderr: {out:?}");
    assert!(out.stderr.starts_with("Error: "), "{out:?}");
    assert!(
        out.stderr.contains(text),
        "stderr should contain {text:?}: {out:?}"
    );
}

fn names(cluster: &Cluster) -> Vec<String> {
    (0..cluster.len()).map(|i| cluster.member_name(i)).collect()
}

fn proves_a_healthy_cluster(version: Version) {
    let mut cluster = Cluster::builder(version).members(3).start();
    churn(&cluster, "a", 30);
    compact(&cluster, revision(&cluster) - 5);
    churn(&cluster, "b", 20);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");

    // A plain file (read back) and a compressed one (spooled while streaming): proven.
    for extra in [&[][..], &["--compress"][..]] {
        let (out, summary) = prove_json(&cluster, extra, &file);
        out.succeeds();
        let proof = &summary["proof"];
        assert_eq!(proof["verdict"], "proven", "{extra:?}: {summary}");
        let rev = proof["revision"].as_i64().expect("revision");
        assert!(rev >= summary["revision"].as_i64().expect("revision"));
        let hash = proof["hash"].as_u64().expect("hash");
        let by_name = members(&summary);
        assert_eq!(by_name.keys().cloned().collect::<Vec<_>>(), names(&cluster));
        let theirs = etcdctl_hashkv(&cluster, rev);
        assert_eq!(theirs.len(), 3);
        for (i, name) in names(&cluster).iter().enumerate() {
            let m = &by_name[name];
            assert_eq!(m["result"], "equal", "{m}");
            assert_eq!(m["hash"].as_u64(), Some(hash), "{m}");
            assert_eq!(m["compactRevision"], proof["compactRevision"], "{m}");
            let ep = m["endpoint"].as_str().expect("endpoint");
            assert_eq!(ep, cluster.endpoints()[i], "{m}");
            assert_eq!(
                theirs.get(ep).copied(),
                Some(hash),
                "etcdctl says {theirs:?}"
            );
        }
    }

    // The same proof to stdout: the summary (with the proof) goes to stderr.
    let eps = cluster.host_ports()[0].clone();
    let out = save(&["--endpoints", &eps, "--prove", "-w", "json", "-"]);
    out.succeeds();
    let line = out.stderr.lines().last().expect("a summary on stderr");
    let summary: Value = serde_json::from_str(line).expect("json summary");
    assert_eq!(summary["proof"]["verdict"], "proven", "{summary}");
    assert!(out.stdout.len() as u64 > summary["dbSize"].as_u64().expect("dbSize"));

    // Compacted at the snapshot's own revision: members answer from the hash cached at
    // compaction time (3.5.5+) or refuse (3.5.1): not comparable, unproven, exit 3.
    compact(&cluster, revision(&cluster));
    let (out, summary) = prove_json(&cluster, &[], &file);
    out.fails(3);
    error_line(&out, "not proven at revision");
    assert_eq!(summary["proof"]["verdict"], "unproven", "{summary}");
    assert!(out.stderr.contains("compact"), "{out:?}");
    assert!(members(&summary)
        .values()
        .all(|m| m["result"] == "notComparable"));
    // One write later the revision is past the compaction: proven again.
    cluster.put("/k/after", "x");
    let (out, summary) = prove_json(&cluster, &[], &file);
    out.succeeds();
    assert_eq!(summary["proof"]["verdict"], "proven", "{summary}");

    // A member that cannot be reached is named: unproven, exit 3, the file still saved.
    cluster.kill_member(2);
    let (out, summary) = prove_json(&cluster, &["--dial-timeout", "1s"], &file);
    out.fails(3);
    error_line(
        &out,
        &format!(
            "member {} ({})",
            cluster.member_name(2),
            cluster.endpoints()[2]
        ),
    );
    assert!(out.stderr.contains("could not be asked"), "{out:?}");
    let by_name = members(&summary);
    assert_eq!(by_name[&cluster.member_name(2)]["result"], "unreachable");
    assert_eq!(by_name[&cluster.member_name(0)]["result"], "equal");
    assert!(file.exists());
}
etcd_matrix!(proves_a_healthy_cluster: V3_5, V3_6, V3_7);

fn names_a_divergent_member(version: Version) {
    let mut cluster = Cluster::builder(version).members(3).start();
    churn(&cluster, "a", 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.db");
    let out = cluster
        .etcdctl_on(&[0], None)
        .args(["snapshot", "save", &s(&old)])
        .output()
        .expect("etcdctl snapshot save");
    assert!(out.status.success(), "{out:?}");
    churn(&cluster, "b", 10);

    // Member 2 restored from the older snapshot with its own identity, back into the cluster:
    // it replays the log on top of the old data, so its history differs at the same revisions.
    cluster.stop_member(2);
    let data = cluster.data_dir(2);
    fs::remove_dir_all(&data).expect("remove member 2's data dir");
    let initial: Vec<String> = names(&cluster)
        .iter()
        .zip(cluster.peer_urls())
        .map(|(n, u)| format!("{n}={u}"))
        .collect();
    let restore = std::process::Command::new(etcd_bin(version, "etcdutl"))
        .args([
            "snapshot",
            "restore",
            &s(&old),
            "--name",
            &cluster.member_name(2),
            "--initial-cluster",
            &initial.join(","),
            "--initial-cluster-token",
            cluster.token(),
            "--initial-advertise-peer-urls",
            &cluster.peer_urls()[2],
            "--data-dir",
            &s(&data),
        ])
        .output()
        .expect("etcdutl snapshot restore");
    assert!(restore.status.success(), "{restore:?}");
    // The leader remembers member 2 at the old log index and would commit past its restored log
    // (raft panics there): restart the other two in turn so the leader is one elected since,
    // whose record of member 2 starts from nothing.
    for i in [0, 1] {
        cluster.stop_member(i);
        cluster.restart_member(i);
    }
    cluster.restart_member(2);
    cluster.put("/k/after", "x");
    let rev = revision(&cluster);
    // Wait until member 2 has reached the revision, then confirm with etcdctl that it differs.
    assert!(etcd_test_support::wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            let out = cluster
                .etcdctl_on(&[2], None)
                .args(["get", "/k/after", "--consistency", "s"])
                .output()
                .expect("etcdctl get");
            String::from_utf8_lossy(&out.stdout).contains("/k/after")
        }
    ));
    let theirs = etcdctl_hashkv(&cluster, rev);
    let eps = cluster.endpoints();
    assert_eq!(theirs[&eps[0]], theirs[&eps[1]], "{theirs:?}");
    assert_ne!(
        theirs[&eps[0]], theirs[&eps[2]],
        "member 2 should differ: {theirs:?}"
    );

    let file = dir.path().join("snap.db");
    let (out, summary) = prove_json(&cluster, &[], &file);
    let proof = &summary["proof"];
    let r = proof["revision"].as_i64().expect("revision");
    let m2 = &members(&summary)[&cluster.member_name(2)];
    out.fails(1);
    error_line(
        &out,
        &format!(
            "member {} ({}) differs at revision {r}: hash {} vs snapshot {}",
            cluster.member_name(2),
            eps[2],
            m2["hash"],
            proof["hash"]
        ),
    );
    assert_eq!(proof["verdict"], "divergent", "{summary}");
    assert_eq!(m2["result"], "differs");
    for i in [0, 1] {
        let m = &members(&summary)[&cluster.member_name(i)];
        assert_eq!(m["result"], "equal", "{m}");
    }
    assert!(file.exists(), "the snapshot is saved all the same");
}
etcd_matrix!(names_a_divergent_member: V3_5, V3_6, V3_7);
