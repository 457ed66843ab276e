//! `hash_kv` at the two edges of etcd's hashing rules, against real etcd 3.5, 3.6 and 3.7:
//!
//! - an unfinished compaction (`scheduledCompactRev > finishedCompactRev`), made the real way: a
//!   member with a compaction batch limit of one key is killed (SIGKILL) right after it
//!   scheduled a compaction of thousands of revisions, and its db file is read as it was left,
//!   half compacted. Our hash at every revision above the compaction must equal what the member
//!   answers once restarted (`etcdctl endpoint hashkv --rev R`) and, on 3.6/3.7, what
//!   `etcdutl hashkv --rev R` computes from a copy of the same file (also at the compact
//!   revision itself);
//! - an empty keep set (no key live at R: etcd then hashes every entry up to R, compacted or
//!   not), after a finished compaction.
//!
//! Not checked, on purpose: an empty keep set *and* an unfinished compaction. etcd then hashes
//! whatever its resumed compaction has not deleted yet, so its answer depends on timing; ours is
//! the file as it is.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_db::hash_kv;
use etcd_db::history::Bounds;
use etcd_test_support::{etcd_bin, etcd_matrix, etcdctl_json, run_ok, Cluster, Version};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `etcdctl endpoint hashkv --rev R`: (hash, compact revision) of the member.
fn live_hashkv(cluster: &Cluster, rev: i64) -> (u32, i64) {
    let v = etcdctl_json(cluster, &["endpoint", "hashkv", &format!("--rev={rev}")]);
    let h = &v[0]["HashKV"];
    // Go's encoder omits zero fields.
    (
        h["hash"].as_u64().unwrap_or(0) as u32,
        h["compact_revision"].as_i64().unwrap_or(0),
    )
}

/// `etcdutl hashkv --rev R -w json` (3.6+) of a fresh copy of `file` (etcdutl writes to the file
/// it opens): (hash, compact revision).
fn etcdutl_hashkv(v: Version, file: &Path, rev: i64) -> (u32, i64) {
    let copy = file.with_extension(format!("etcdutl-{rev}"));
    std::fs::copy(file, &copy).unwrap();
    let out = run_ok(Command::new(etcd_bin(v, "etcdutl")).args([
        "hashkv",
        &copy.to_string_lossy(),
        &format!("--rev={rev}"),
        "-w",
        "json",
    ]));
    std::fs::remove_file(&copy).unwrap();
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        j["hash"].as_u64().unwrap() as u32,
        j["compactRevision"].as_i64().unwrap(),
    )
}

fn has_etcdutl_hashkv(v: Version) -> bool {
    matches!(v, Version::V3_6 | Version::V3_7)
}

/// The flag that makes each compaction batch delete one revision (10 ms apart).
fn batch_limit_one(v: Version) -> &'static str {
    match v {
        Version::V3_6 | Version::V3_7 => "--compaction-batch-limit=1",
        _ => "--experimental-compaction-batch-limit=1",
    }
}

const KEYS: usize = 2000;

fn unfinished_compaction(v: Version) {
    let mut cluster = Cluster::builder(v).arg(batch_limit_one(v)).start();
    let gw = cluster.gateway();
    let dir = tempfile::tempdir().unwrap();
    // Every key twice: the first versions are what the compaction deletes, one per batch.
    let key = |i: usize| format!("/k/{i:05}");
    gw.put_all((0..KEYS).map(|i| (key(i), format!("first {i}"))), None);
    let compact = gw.put_all((0..KEYS).map(|i| (key(i), format!("second {i}"))), None);
    // Scheduled (and persisted: etcd commits the mark before it answers), not waited for.
    run_ok(cluster.etcdctl().args(["compaction", &compact.to_string()]));
    let changed = gw.put(key(1).as_bytes(), b"after");
    let deleted = gw.delete_range(key(2).as_bytes(), None);
    assert_eq!(deleted, 1);
    let current = gw.revision();
    // Past the backend's commit interval (100 ms), far from the compaction's end (~20 s).
    std::thread::sleep(std::time::Duration::from_millis(500));
    cluster.kill_member(0);
    let file = dir.path().join("db");
    std::fs::copy(cluster.data_dir(0).join("member/snap/db"), &file).unwrap();

    let db = bbolt::Db::open(&file).unwrap();
    let bounds = Bounds::read(&db).unwrap();
    assert!(
        bounds.unfinished(),
        "{v}: the compaction finished before the kill: {bounds:?}"
    );
    assert_eq!((bounds.compact, bounds.current), (compact, current), "{v}");
    assert!(bounds.finished.unwrap_or(-1) < compact);
    assert!(changed > compact);

    let ours: Vec<(i64, u32)> = (compact..=current)
        .map(|rev| {
            let h = hash_kv(&db, Some(rev)).unwrap();
            assert_eq!((h.compact_revision, h.hash_revision), (compact, rev));
            (rev, h.hash)
        })
        .collect();
    drop(db);
    if has_etcdutl_hashkv(v) {
        for &(rev, hash) in &ours {
            assert_eq!(
                etcdutl_hashkv(v, &file, rev),
                (hash, compact),
                "{v}: etcdutl hashkv --rev {rev} of the half-compacted db"
            );
        }
    }
    // The member resumes the compaction when it boots; its hashes above the compaction do not
    // depend on how far that got (the keep set is not empty).
    cluster.restart_member(0);
    for &(rev, hash) in ours.iter().filter(|(rev, _)| *rev > compact) {
        assert_eq!(
            live_hashkv(&cluster, rev),
            (hash, compact),
            "{v}: endpoint hashkv --rev {rev} after the restart"
        );
    }
}

fn empty_keep_set(v: Version) {
    let cluster = Cluster::builder(v).start();
    let gw = cluster.gateway();
    let dir = tempfile::tempdir().unwrap();
    gw.put(b"/a", b"1");
    gw.put(b"/b", b"1");
    let compact = gw.put(b"/a", b"2");
    gw.put(b"/c", b"1");
    gw.delete_range(b"/c", None);
    gw.compact(compact + 2);
    let compact = compact + 2;
    gw.delete_range(b"/a", None);
    gw.delete_range(b"/b", None);
    let current = gw.revision();
    let file = dir.path().join("snap.db");
    run_ok(
        cluster
            .etcdctl()
            .args(["snapshot", "save", &file.to_string_lossy()]),
    );
    let db = bbolt::Db::open(&file).unwrap();
    assert_eq!(Bounds::read(&db).unwrap().current, current);
    // current: nothing live (empty keep set); current - 1: /b live; compact: /a and /b live
    // (and a deletion exactly at the compact revision, skipped by 3.5.16+ rules).
    for rev in compact..=current {
        let h = hash_kv(&db, Some(rev)).unwrap();
        assert_eq!(h.compact_revision, compact);
        if rev > compact {
            assert_eq!(
                live_hashkv(&cluster, rev),
                (h.hash, compact),
                "{v}: endpoint hashkv --rev {rev}"
            );
        }
        if has_etcdutl_hashkv(v) {
            assert_eq!(
                etcdutl_hashkv(v, &file, rev),
                (h.hash, compact),
                "{v}: etcdutl hashkv --rev {rev}"
            );
        }
    }
    // The empty keep set hashes the compacted entries too: not what a keep filter would give.
    let all = hash_kv(&db, Some(current)).unwrap().hash;
    let one_less = hash_kv(&db, Some(current - 1)).unwrap().hash;
    assert_ne!(all, one_less);
}

etcd_matrix!(unfinished_compaction: V3_5, V3_6, V3_7);
etcd_matrix!(empty_keep_set: V3_5, V3_6, V3_7);
