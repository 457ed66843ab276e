//! `etcd-snap-diff` against snapshots saved by real etcd 3.5, 3.6 and 3.7 around a known set of
//! changes: exactly those changes are reported (a re-put with the same value is not a change),
//! from files and through `zstd | age` pipes, one snapshot at two revisions gives the same answer,
//! the hashkv verdict matches `etcdctl endpoint hashkv`, and compacted revisions and damaged input
//! get their exit codes with one line.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{etcd_matrix, run_ok, Cluster, Run, Tool, Version};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const DIFF: &str = env!("CARGO_BIN_EXE_etcd-snap-diff");

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn diff(args: &[&str]) -> Run {
    Tool::new(DIFF).args(args).run()
}

fn ctl_json(cluster: &Cluster, args: &[&str]) -> Value {
    let out = run_ok(cluster.etcdctl().args(args).args(["-w", "json"]));
    serde_json::from_str(&out).unwrap()
}

fn sh_ok(script: &str) {
    let mut bash = Command::new("bash");
    bash.args(["-o", "pipefail", "-c", script]);
    let out = Tool::from_command(bash).run();
    assert_eq!(out.code, 0, "{script}: {out:?}");
}

/// The change lines of a simple report (everything before `summary:`).
fn changes(out: &str) -> Vec<String> {
    out.lines()
        .take_while(|l| !l.starts_with("summary: "))
        .map(str::to_string)
        .collect()
}

fn known_changes(v: Version) {
    let cluster = Cluster::builder(v).start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        cluster.put(&format!("/k{i:02}"), &format!("value {i}"));
    }
    let a = dir.path().join("a.db");
    run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&a)]));
    let rev_a = ctl_json(&cluster, &["get", "/k00"])["header"]["revision"]
        .as_i64()
        .unwrap();
    // The known changes: two keys added, one removed, one changed, one re-put unchanged, one
    // added then deleted (no change), and a lease attached to one key.
    cluster.put("/new/1", "n1");
    cluster.put("/new/2", "n2");
    run_ok(cluster.etcdctl().args(["del", "/k03"]));
    cluster.put("/k05", "changed");
    cluster.put("/k07", "value 7");
    cluster.put("/tmp", "x");
    run_ok(cluster.etcdctl().args(["del", "/tmp"]));
    let lease = ctl_json(&cluster, &["lease", "grant", "600"])["ID"]
        .as_i64()
        .unwrap();
    run_ok(
        cluster
            .etcdctl()
            .args(["put", "/k09", "value 9", &format!("--lease={lease:x}")]),
    );
    let b = dir.path().join("b.db");
    run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&b)]));
    let want = [
        "changed\t/k05",
        "changed\t/k09",
        "removed\t/k03",
        "added\t/new/1",
        "added\t/new/2",
    ];
    let mut sorted_want = want.to_vec();
    sorted_want.sort_by_key(|l| l.split('\t').nth(1).unwrap().to_string());

    let out = diff(&[&s(&a), &s(&b)]);
    out.fails(1);
    assert_eq!(changes(&out.stdout), sorted_want, "{out:?}");
    assert!(
        out.stdout
            .contains("summary: 2 added, 1 removed, 2 changed"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("hashkv: different"),
        "{out:?}"
    );

    // JSON, and the hashkv of each side equal to the member's at that revision.
    let out = diff(&[&s(&a), &s(&b), "-w", "json"]);
    out.fails(1);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (
            j["added"].as_u64(),
            j["removed"].as_u64(),
            j["changed"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(j["same"], false);
    assert_eq!(j["a"]["revision"].as_i64(), Some(rev_a));
    assert_eq!(j["changes"].as_array().unwrap().len(), 5);
    let k09 = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "/k09")
        .unwrap();
    assert_eq!(
        (k09["a"]["lease"].as_i64(), k09["b"]["lease"].as_i64()),
        (Some(0), Some(lease))
    );
    for (side, rev) in [("a", Some(rev_a)), ("b", None)] {
        let mut args = vec!["endpoint".to_string(), "hashkv".into()];
        if let Some(r) = rev {
            args.push(format!("--rev={r}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let live = ctl_json(&cluster, &args);
        assert_eq!(
            j[side]["hashkv"]["hash"], live[0]["HashKV"]["hash"],
            "{v} side {side}"
        );
    }

    // A snapshot against itself, and one snapshot at the two revisions: B at rev_a is A.
    let same = diff(&[&s(&b), &s(&b)]);
    same.succeeds();
    assert!(changes(&same.stdout).is_empty());
    assert!(
        same.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("hashkv: equal"),
        "{same:?}"
    );
    let two_revs = diff(&["--rev-a", &rev_a.to_string(), &s(&b)]);
    two_revs.fails(1);
    assert_eq!(changes(&two_revs.stdout), sorted_want);
    let prefix = diff(&[&s(&a), &s(&b), "--prefix", "/new/"]);
    prefix.fails(1);
    assert_eq!(changes(&prefix.stdout), ["added\t/new/1", "added\t/new/2"]);

    // Through zstd | age: A from a pipe on stdin, B from an encrypted file.
    let key = dir.path().join("key.txt");
    sh_ok(&format!("age-keygen -o {} 2>/dev/null", s(&key)));
    let b_enc = dir.path().join("b.db.zst.age");
    sh_ok(&format!(
        "zstd -qc {} | age -r $(age-keygen -y {}) > {}",
        s(&b),
        s(&key),
        s(&b_enc)
    ));
    let a_enc = dir.path().join("a.db.zst.age");
    sh_ok(&format!(
        "zstd -qc {} | age -r $(age-keygen -y {}) > {}",
        s(&a),
        s(&key),
        s(&a_enc)
    ));
    let piped = Tool::new(DIFF)
        .args(["-i", &s(&key), "-", &s(&b_enc)])
        .stdin_file(&a_enc)
        .run();
    piped.fails(1);
    assert_eq!(changes(&piped.stdout), sorted_want, "{piped:?}");

    // Compacted and future revisions: exit 2 naming the bound; damaged input: exit 4.
    let now = ctl_json(&cluster, &["get", "/k00"])["header"]["revision"]
        .as_i64()
        .unwrap();
    run_ok(cluster.etcdctl().args(["compaction", &now.to_string()]));
    let c = dir.path().join("c.db");
    run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&c)]));
    diff(&["--rev-a", &rev_a.to_string(), &s(&c)])
        .fails(2)
        .one_line_error(&format!("the compact revision is {now}"));
    diff(&["--rev-b", &(now + 100).to_string(), &s(&a), &s(&c)])
        .fails(2)
        .one_line_error("future revision");
    let bytes = std::fs::read(&a).unwrap();
    let cut = dir.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = diff(&[&s(&cut), &s(&b)]);
    out.fails(4);
    assert!(out.stdout.is_empty(), "no half report: {out:?}");
}

etcd_matrix!(known_changes: V3_5, V3_6, V3_7);
