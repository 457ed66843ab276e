//! `etcd-snap-status --hashkv` against real etcd 3.5, 3.6 and 3.7: a store churned with puts,
//! deletions, a re-created key and a compaction exactly at a deletion is snapshotted with the
//! version's own `etcdctl`; at every revision the snapshot holds our line, JSON and table must be
//! byte-identical to `etcdutl hashkv --rev R` (3.6 and 3.7; etcdutl 3.5 has no hashkv) and the
//! hash and compact revision equal to `etcdctl endpoint hashkv --rev R` of the live member, also
//! when the snapshot arrives through `zstd | age` on stdin; compacted and future revisions are
//! refused with one line naming the bound.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::{s, save, sh_ok, status, status_stdin};
use etcd_test_support::{
    churn, etcd_bin, etcd_matrix, etcdctl_json, Churned, Cluster, Tool, Version,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `etcdctl endpoint hashkv --rev R` of the member: (hash, compact revision).
fn live_hashkv(cluster: &Cluster, rev: i64) -> (u64, i64) {
    let v = etcdctl_json(cluster, &["endpoint", "hashkv", &format!("--rev={rev}")]);
    let h = &v[0]["HashKV"];
    // Go's encoder omits zero fields.
    (
        h["hash"].as_u64().unwrap_or(0),
        h["compact_revision"].as_i64().unwrap_or(0),
    )
}

/// `etcdutl hashkv FILE --rev R -w FORMAT` of etcd `v` (3.6+), on a copy: etcdutl opens the file
/// for writing.
fn etcdutl_hashkv(v: Version, copy: &Path, rev: i64, format: &str) -> String {
    let mut cmd = Command::new(etcd_bin(v, "etcdutl"));
    cmd.env_remove("ETCDCTL_API");
    cmd.args(["hashkv", &s(copy), &format!("--rev={rev}"), "-w", format]);
    let out = Tool::from_command(cmd).run();
    assert_eq!(out.code, 0, "{v} etcdutl hashkv --rev {rev}: {out:?}");
    out.stdout
}

/// Our report, which must succeed with nothing on stderr.
fn ours(args: &[&str]) -> String {
    let out = status(args);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (0, ""),
        "{args:?}: {out:?}"
    );
    out.stdout
}

fn hashkv_matches_etcd(v: Version) {
    let cluster = Cluster::builder(v).start();
    let dir = tempfile::tempdir().unwrap();
    let Churned {
        compact, current, ..
    } = churn(&cluster);
    let file = save(&cluster, dir.path(), "snap.db");
    let copy = dir.path().join("etcdutl.db");
    std::fs::copy(&file, &copy).unwrap();
    let f = s(&file);

    // No --rev: the snapshot's revision, as the member's current hash.
    let line = ours(&["--hashkv", &f]);
    let (hash, at, c) = parse_line(&line);
    assert_eq!((at, c), (current, compact), "{v}: {line}");
    let live = etcdctl_json(&cluster, &["endpoint", "hashkv"]);
    assert_eq!(Some(hash), live[0]["HashKV"]["hash"].as_u64(), "{v}");

    let mut hashes = std::collections::BTreeSet::new();
    for rev in compact..=current {
        let r = rev.to_string();
        let simple = ours(&["--hashkv", "--rev", &r, &f]);
        let (hash, at, c) = parse_line(&simple);
        assert_eq!((at, c), (rev, compact), "{v} at {rev}: {simple}");
        hashes.insert(hash);
        // At exactly the compact revision a 3.5.5+ member answers from the hash it cached while
        // compacting (3.5.1 refuses it): compared with etcdutl only.
        if rev > compact {
            assert_eq!(
                live_hashkv(&cluster, rev),
                (hash, compact),
                "{v}: endpoint hashkv at {rev}"
            );
        }
        let j: Value =
            serde_json::from_str(&ours(&["--hashkv", "--rev", &r, "-w", "json", &f])).unwrap();
        assert_eq!(j["hash"].as_u64(), Some(hash), "{v} at {rev}");
        if matches!(v, Version::V3_6 | Version::V3_7) {
            for format in ["simple", "json", "table"] {
                assert_eq!(
                    ours(&["--hashkv", "--rev", &r, "-w", format, &f]),
                    etcdutl_hashkv(v, &copy, rev, format),
                    "{v}: -w {format} at {rev}"
                );
            }
        }
    }
    // Deletions and puts change the hash at every revision.
    assert_eq!(
        hashes.len() as i64,
        current - compact + 1,
        "{v}: {hashes:?}"
    );

    // Through zstd | age on stdin: the same bytes.
    let key = dir.path().join("key.txt");
    sh_ok(&format!("age-keygen -o {} 2>/dev/null", s(&key)));
    let enc = dir.path().join("snap.db.zst.age");
    sh_ok(&format!(
        "zstd -qc {} | age -r $(age-keygen -y {}) > {}",
        f,
        s(&key),
        s(&enc)
    ));
    let rev = (compact + 2).to_string();
    let piped = status_stdin(
        &["--hashkv", "--rev", &rev, "-w", "json", "-i", &s(&key), "-"],
        &enc,
    );
    assert_eq!(
        (piped.code, piped.stdout.as_str()),
        (
            0,
            ours(&["--hashkv", "--rev", &rev, "-w", "json", &f]).as_str()
        ),
        "{v}: {piped:?}"
    );

    // Below the compaction and after the snapshot: exit 2, one line naming the bound.
    status(&["--hashkv", "--rev", &(compact - 1).to_string(), &f])
        .fails(2)
        .one_line_error(&format!("the compact revision is {compact}"));
    status(&["--hashkv", "--rev", &(current + 1).to_string(), &f])
        .fails(2)
        .one_line_error(&format!("the current revision is {current}"));
}

/// `HASH, HASH REVISION, COMPACT REVISION`.
fn parse_line(line: &str) -> (u64, i64, i64) {
    let parts: Vec<&str> = line.trim_end().split(", ").collect();
    assert_eq!(parts.len(), 3, "{line:?}");
    (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
    )
}

etcd_matrix!(hashkv_matches_etcd: V3_5, V3_6, V3_7);
