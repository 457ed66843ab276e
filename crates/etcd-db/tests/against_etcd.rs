//! `hashkv`, `history` and `diff` against real etcd 3.5, 3.6 and 3.7: a churned store with
//! deletions, a re-created key and a compaction exactly at a deletion's revision is snapshotted
//! with the version's own `etcdctl`, then every revision it still holds is checked against what
//! the live member answers (`etcdctl endpoint hashkv --rev R`, `etcdctl get --rev R`) and, on 3.6
//! and 3.7, against `etcdutl hashkv --rev R` of the same file.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_db::diff::{diff, Failed, Kind, Side};
use etcd_db::{hash_kv, Error};
use etcd_test_support::{
    base64, etcd_bin, etcd_matrix, etcdctl_json, run, run_ok, Churned, Cluster, Version,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `etcdctl endpoint hashkv [--rev R]`: (hash, compact revision) of the member.
fn live_hashkv(cluster: &Cluster, rev: Option<i64>) -> (u32, i64) {
    let mut args = vec!["endpoint".to_string(), "hashkv".into()];
    if let Some(r) = rev {
        args.push(format!("--rev={r}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = etcdctl_json(cluster, &args);
    let h = &v[0]["HashKV"];
    let hash = h["hash"].as_u64().unwrap_or(0) as u32;
    // Go's encoder omits a zero compact_revision.
    (hash, h["compact_revision"].as_i64().unwrap_or(0))
}

/// `etcdutl hashkv --rev R FILE -w json` of 3.6 and later: (hash, compact, hash revision).
fn etcdutl_hashkv(v: Version, file: &Path, rev: i64) -> (u32, i64, i64) {
    let mut cmd = Command::new(etcd_bin(v, "etcdutl"));
    cmd.args([
        "hashkv",
        &file.to_string_lossy(),
        &format!("--rev={rev}"),
        "-w",
        "json",
    ]);
    let out = run_ok(&mut cmd);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        j["hash"].as_u64().unwrap() as u32,
        j["compactRevision"].as_i64().unwrap(),
        j["hashRevision"].as_i64().unwrap(),
    )
}

/// `etcdctl get KEY --rev R`: (value, mod revision) or `None` when the key was not live.
fn live_get(cluster: &Cluster, key: &str, rev: i64) -> Option<(String, i64)> {
    let v = etcdctl_json(cluster, &["get", key, &format!("--rev={rev}")]);
    let kv = v["kvs"].as_array().and_then(|a| a.first())?;
    Some((
        kv["value"].as_str().unwrap_or("").to_string(),
        kv["mod_revision"].as_i64().unwrap(),
    ))
}

fn churn(v: Version) {
    let cluster = Cluster::builder(v).start();
    let dir = tempfile::tempdir().unwrap();
    // Compacted exactly at a deletion: 3.5.16+ keep that tombstone, earlier versions drop it.
    let Churned {
        churned, // revisions of /churn (puts and deletions)
        compact,
        current,
    } = etcd_test_support::churn(&cluster);

    let file = dir.path().join("snap.db");
    run_ok(
        cluster
            .etcdctl()
            .args(["snapshot", "save", &file.to_string_lossy()]),
    );
    let db = bbolt::Db::open(&file).unwrap();

    // hashkv at the current revision, and at every revision the snapshot still holds.
    let ours = hash_kv(&db, None).unwrap();
    assert_eq!(
        (ours.hash_revision, ours.compact_revision),
        (current, compact)
    );
    assert_eq!(live_hashkv(&cluster, None), (ours.hash, compact));
    // 3.5.1 (before 3.5.16) refuses the compact revision itself (`rev <= compactRev`).
    let first = if v == Version::V3_5 {
        compact + 1
    } else {
        compact
    };
    let etcdutl_copy = dir.path().join("etcdutl.db");
    std::fs::copy(&file, &etcdutl_copy).unwrap();
    for rev in first..=current {
        let ours = hash_kv(&db, Some(rev)).unwrap();
        assert_eq!(ours.hash_revision, rev);
        // At exactly a compaction's revision a 3.5.5+ member answers from the hash it cached
        // while compacting (`hashStorage.HashByRev`): over (previous compaction, C], with the
        // previous compact revision; the history that hash covered is gone from the database.
        if rev > compact {
            assert_eq!(
                live_hashkv(&cluster, Some(rev)),
                (ours.hash, compact),
                "{v}: hashkv at revision {rev}"
            );
        }
        if matches!(v, Version::V3_6 | Version::V3_7) {
            assert_eq!(
                etcdutl_hashkv(v, &etcdutl_copy, rev),
                (ours.hash, compact, rev),
                "{v}: etcdutl hashkv at revision {rev}"
            );
        }
    }
    // Below the compaction, and in the future: refused by both.
    assert!(matches!(
        hash_kv(&db, Some(compact - 1)),
        Err(Error::Compacted { requested, compact: c }) if requested == compact - 1 && c == compact
    ));
    assert!(!run(cluster.etcdctl().args([
        "endpoint",
        "hashkv",
        &format!("--rev={}", compact - 1)
    ]))
    .success());
    assert!(matches!(
        hash_kv(&db, Some(current + 1)),
        Err(Error::FutureRevision { current: c, .. }) if c == current
    ));

    // The value of /churn at every revision, as the member answers `get --rev`.
    for rev in compact..=current {
        let mut seen = Vec::new();
        let at = etcd_db::history::visit_at(
            &db,
            Some(rev),
            |k| k == b"/churn",
            |kv| seen.push((base64(kv.value), kv.mod_revision)),
        )
        .unwrap();
        assert_eq!(at, rev);
        assert_eq!(
            seen.pop(),
            live_get(&cluster, "/churn", rev),
            "{v}: /churn at {rev}"
        );
        assert!(seen.is_empty());
    }
    let refused = etcd_db::history::visit_at(&db, Some(compact - 1), |_| true, |_| {});
    assert!(matches!(refused, Err(Error::Compacted { compact: c, .. }) if c == compact));
    let live = run(cluster
        .etcdctl()
        .args(["get", "/churn", &format!("--rev={}", compact - 1)]));
    assert!(
        !live.success() && live.stderr.contains("compacted"),
        "{live:?}"
    );

    // History: every revision of /churn after the compaction (the one before it was not live at
    // the compaction, so compaction removed it), oldest first, deletions marked.
    let mut history = Vec::new();
    etcd_db::history::history(&db, b"/churn", |rev, kv| {
        history.push((rev.main, rev.tombstone, kv.value.to_vec()))
    })
    .unwrap();
    let want: Vec<i64> = churned.iter().copied().filter(|r| *r >= compact).collect();
    assert_eq!(
        history.iter().map(|h| h.0).collect::<Vec<_>>(),
        [churned[3]].iter().copied().chain(want).collect::<Vec<_>>()
    );
    assert_eq!(history.iter().filter(|h| h.1).count(), 1);
    assert_eq!(history.last().unwrap().2, b"v6");

    // Diff of two revisions of the one database, with the default run size and with runs so
    // small that every few keys spill: the same changes.
    let expect = vec![
        (b"/b".to_vec(), Kind::Removed),
        (b"/c".to_vec(), Kind::Changed),
        (b"/churn".to_vec(), Kind::Changed),
        (b"/e".to_vec(), Kind::Added),
    ];
    for run_bytes in [etcd_db::sorted::DEFAULT_RUN_BYTES, 100] {
        let mut changes = Vec::new();
        let stats = diff(
            Side {
                db: &db,
                at: Some(compact),
            },
            Side { db: &db, at: None },
            run_bytes,
            |_| true,
            |c| {
                changes.push((c.key.to_vec(), c.kind));
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(changes, expect, "{v}: run size {run_bytes}");
        assert_eq!((stats.revision_a, stats.revision_b), (compact, current));
        assert_eq!((stats.keys_a, stats.keys_b), (5, 5), "{stats:?}");
    }
    let refused = diff(
        Side {
            db: &db,
            at: Some(1),
        },
        Side { db: &db, at: None },
        1 << 20,
        |_| true,
        |_| Ok::<(), ()>(()),
    );
    assert!(matches!(refused, Err(Failed::Db(Error::Compacted { .. }))));
}

etcd_matrix!(churn: V3_5, V3_5Sid, V3_6, V3_7);
