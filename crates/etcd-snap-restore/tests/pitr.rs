//! Point-in-time restore against real etcd 3.5, 3.6 and 3.7: a snapshot, etcd-snap-log following
//! a load (puts, overwrites, deletes, multi-key transactions, leases granted, attached and
//! revoked), then `--log DIR --to-rev R` for several R: the restored member, booted, serves at
//! every revision between the snapshot and R exactly what the source served (`get --rev`), and
//! `endpoint hashkv --rev R` equals the source's. A damaged, truncated or reordered log, a log
//! through `zstd | age` on stdin, `--to-time` before and after the log: refused or restored as
//! documented, nothing written when refused.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{base64, bbolt_cli, Cluster, Run, Tool, Version};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{member_args, RESTORE};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `etcdctl get "" --prefix --rev REV -w json` kvs.
fn dump_at(mut etcdctl: Command, rev: i64) -> Vec<Value> {
    let rev = rev.to_string();
    let v = json_of(etcdctl.args(["get", "", "--prefix", "--rev", &rev]));
    v["kvs"].as_array().cloned().unwrap_or_default()
}

/// `etcdctl ARGS -w json` (it must succeed), parsed.
fn json_of(etcdctl: &mut Command) -> Value {
    serde_json::from_str(&etcd_test_support::run_ok(etcdctl.args(["-w", "json"]))).expect("json")
}

/// `etcdctl endpoint hashkv --rev REV`: (hash, compact revision).
fn hashkv(mut etcdctl: Command, rev: i64) -> (u64, i64) {
    let v = json_of(etcdctl.args(["endpoint", "hashkv", "--rev", &rev.to_string()]));
    let h = &v[0]["HashKV"];
    (
        h["hash"].as_u64().expect("hash"),
        h["compact_revision"].as_i64().unwrap_or(0),
    )
}

/// Lease IDs (decimal) the member has, sorted.
fn leases(mut etcdctl: Command) -> Vec<i64> {
    let out = etcdctl
        .args(["lease", "list", "-w", "json"])
        .output()
        .expect("lease list");
    assert!(out.status.success(), "lease list: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut ids: Vec<i64> = v["leases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l["id"].as_i64())
        .collect();
    ids.sort_unstable();
    ids
}

/// What the source did and served.
struct Recorded {
    snap: PathBuf,
    log_dir: PathBuf,
    snap_rev: i64,
    last_rev: i64,
    /// The dump at every revision in (snap_rev, last_rev].
    dumps: Vec<(i64, Vec<Value>)>,
    hashes: Vec<(i64, (u64, i64))>,
    /// A lease granted before the snapshot and revoked after it, and one granted after it.
    revoked_lease: i64,
    new_lease: i64,
    /// Observed commit times: a moment between two revisions, and the revision before it.
    between: Option<(String, i64)>,
    _cluster: Cluster,
    _dir: tempfile::TempDir,
}

fn record(version: Version) -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::builder(version).start();
    let gw = cluster.gateway();
    for i in 0..20 {
        gw.put(format!("/base/{i:02}").as_bytes(), b"v0");
    }
    let old_lease = gw.lease_grant(3600);
    gw.put_with_lease(b"/leased/old", b"x", Some(old_lease));
    gw.put(b"/gone-later", b"1");
    let snap = dir.path().join("snap.db");
    let out = cluster
        .etcdctl()
        .args(["snapshot", "save", &s(&snap)])
        .output()
        .unwrap();
    assert!(out.status.success(), "snapshot save: {out:?}");
    let snap_rev = gw.revision();
    let log_dir = dir.path().join("log");
    fs::create_dir(&log_dir).unwrap();
    let endpoint = cluster.endpoints()[0].clone();
    let follower = Tool::new("etcd-snap-log")
        .args([
            "--endpoints",
            &endpoint,
            "--from-snapshot",
            &s(&snap),
            "-o",
            &s(&log_dir),
            "--segment-size",
            "4KiB",
            "--quiet",
        ])
        .spawn();

    // The load: overwrites, deletes, multi-key transactions, leases.
    let mut times = Vec::new();
    let new_lease = gw.lease_grant(600);
    for round in 0..3 {
        for i in 0..20 {
            let rev = gw.put(
                format!("/base/{i:02}").as_bytes(),
                format!("v{}-{}", round + 1, "x".repeat(100)).as_bytes(),
            );
            if i == 10 {
                times.push(rev);
            }
        }
        gw.put_all(
            (0..5).map(|i| (format!("/txn/{round}/{i}"), format!("t{round}"))),
            None,
        );
        gw.delete_range(format!("/base/{:02}", round * 3).as_bytes(), None);
        gw.put_with_lease(
            format!("/leased/new/{round}").as_bytes(),
            b"y",
            Some(new_lease),
        );
    }
    // A transaction that puts and deletes (several keys, one revision).
    let body = format!(
        "{{\"success\":[{{\"request_put\":{{\"key\":\"{}\",\"value\":\"{}\"}}}},{{\"request_delete_range\":{{\"key\":\"{}\",\"range_end\":\"{}\"}}}}]}}",
        base64(b"/mixed"),
        base64(b"m"),
        base64(b"/txn/0/"),
        base64(b"/txn/0/\xff"),
    );
    gw.call("/v3/kv/txn", &body);
    gw.delete_range(b"/gone-later", None);
    // Revoking deletes the lease's keys in one revision.
    gw.call("/v3/lease/revoke", &format!("{{\"ID\":\"{old_lease}\"}}"));
    let last_rev = gw.put(b"/last", b"end");

    let mut dumps = Vec::new();
    let mut hashes = Vec::new();
    for rev in snap_rev + 1..=last_rev {
        dumps.push((rev, dump_at(cluster.etcdctl(), rev)));
        hashes.push((rev, hashkv(cluster.etcdctl(), rev)));
    }
    // Stop the follower (SIGTERM closes its segment), then let it continue the same directory
    // through the last revision: a restart mid-log, and a known end.
    follower.signal("TERM");
    follower.finish(Some(Duration::from_secs(60))).succeeds();
    Tool::new("etcd-snap-log")
        .args([
            "--endpoints",
            &endpoint,
            "-o",
            &s(&log_dir),
            "--until-rev",
            &last_rev.to_string(),
            "--segment-size",
            "4KiB",
            "--quiet",
        ])
        .timeout(Duration::from_secs(60))
        .run()
        .succeeds();
    let info = etcd_revlog::verify_dir(&log_dir).unwrap();
    assert_eq!(
        (info.first_revision, info.last_revision),
        (snap_rev + 1, last_rev)
    );
    let between = times.first().map(|&rev| {
        // The log's own observation times: the moment between `rev` and `rev + 1`.
        let (at, next) = observed(&log_dir, rev);
        let mid = at + (next - at) / 2;
        (rfc3339(mid), rev)
    });
    Recorded {
        snap,
        log_dir,
        snap_rev,
        last_rev,
        dumps,
        hashes,
        revoked_lease: old_lease,
        new_lease,
        between,
        _cluster: cluster,
        _dir: dir,
    }
}

/// The observation times of revisions `rev` and `rev + 1` in the log.
fn observed(dir: &Path, rev: i64) -> (i64, i64) {
    let reader = etcd_revlog::Reader::open_dir(dir).unwrap();
    let mut at = None;
    for r in reader {
        let r = r.unwrap();
        if r.revision == rev {
            at = Some(r.observed_unix_nanos);
        }
        if r.revision == rev + 1 {
            return (at.unwrap(), r.observed_unix_nanos);
        }
    }
    panic!("revision {rev} not in the log");
}

fn rfc3339(nanos: i64) -> String {
    etcd_snap_restore::log::rfc3339(nanos)
}

/// Restores into a fresh prepared member with `extra` args; boots it and returns it.
fn restore_and_boot(version: Version, rec: &Recorded, extra: &[&str]) -> Cluster {
    let prepared = Cluster::builder(version).prepare();
    let data_dir = prepared.cluster().data_dir(0);
    let mut args = vec![s(&rec.snap), "--data-dir".into(), s(&data_dir)];
    args.extend(member_args(&prepared));
    args.extend(extra.iter().map(|a| a.to_string()));
    Tool::new(RESTORE).args(&args).run().succeeds();
    // The Go checker agrees the appended tree is sound.
    let db = data_dir.join("member").join("snap").join("db");
    let out = Command::new(bbolt_cli())
        .args(["check", &s(&db)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    prepared.start()
}

fn check_restored(version: Version, rec: &Recorded, to: i64, extra: &[&str]) {
    let restored = restore_and_boot(version, rec, extra);
    for (rev, want) in rec.dumps.iter().filter(|(r, _)| *r <= to) {
        assert_eq!(
            &dump_at(restored.etcdctl(), *rev),
            want,
            "get --rev {rev} after a restore to {to}"
        );
    }
    let (_, want_hash) = rec.hashes.iter().find(|(r, _)| *r == to).unwrap();
    assert_eq!(hashkv(restored.etcdctl(), to), *want_hash, "hashkv at {to}");
    // Later revisions do not exist.
    let out = restored
        .etcdctl()
        .args(["get", "/last", "--rev", &(to + 1).to_string()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "revision {} exists after a restore to {to}",
        to + 1
    );
}

fn pitr(version: Version) {
    let rec = record(version);
    let log = s(&rec.log_dir);
    // The first revision after the snapshot, one in the middle, the last (default).
    let mid = (rec.snap_rev + rec.last_rev) / 2;
    for to in [rec.snap_rev + 1, mid] {
        check_restored(
            version,
            &rec,
            to,
            &["--log", &log, "--to-rev", &to.to_string()],
        );
    }
    check_restored(version, &rec, rec.last_rev, &["--log", &log]);

    // Leases: the new one is restored with its TTL; the revoked one comes back keyless.
    let restored = restore_and_boot(version, &rec, &["--log", &log]);
    let ids = leases(restored.etcdctl());
    assert!(
        ids.contains(&rec.new_lease),
        "{ids:?} lacks {}",
        rec.new_lease
    );
    assert!(
        ids.contains(&rec.revoked_lease),
        "{ids:?} lacks {}",
        rec.revoked_lease
    );
    let out = restored
        .etcdctl()
        .args([
            "lease",
            "timetolive",
            &format!("{:x}", rec.new_lease),
            "--keys",
            "-w",
            "json",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["granted-ttl"].as_i64(), Some(600), "{v}");
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(3), "{v}");
    drop(restored);

    // --to-time between two commits: the revision before.
    if let Some((time, rev)) = &rec.between {
        check_restored(version, &rec, *rev, &["--log", &log, "--to-time", time]);
    }
}

#[test]
fn pitr_3_5() {
    pitr(Version::V3_5);
}

#[test]
fn pitr_3_6() {
    pitr(Version::V3_6);
}

#[test]
fn pitr_3_7() {
    pitr(Version::V3_7);
}

/// Refusals: each leaves the target untouched (no data dir created) and says why in one line.
#[test]
fn bad_logs_are_refused_before_anything_is_written() {
    let rec = record(Version::V3_6);
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("restored");
    let refused = |log: &Path, extra: &[&str]| -> Run {
        let mut args = vec![
            s(&rec.snap),
            "--data-dir".into(),
            s(&target),
            "--log".into(),
            s(log),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let run = Tool::new(RESTORE).args(&args).run();
        assert!(
            !target.exists(),
            "a refused restore wrote {}",
            target.display()
        );
        run
    };
    let mut segments: Vec<PathBuf> = fs::read_dir(&rec.log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "revlog"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "want several segments: {segments:?}");
    let copy = |name: &str, edit: &dyn Fn(&Path)| -> PathBuf {
        let d = work.path().join(name);
        fs::create_dir(&d).unwrap();
        for seg in &segments {
            fs::copy(seg, d.join(seg.file_name().unwrap())).unwrap();
        }
        edit(&d);
        d
    };
    // A segment removed in the middle.
    let middle = segments[1].file_name().unwrap().to_owned();
    let removed = copy("removed", &|d| fs::remove_file(d.join(&middle)).unwrap());
    refused(&removed, &[]).fails(4);
    // A byte flipped.
    let corrupt = copy("corrupt", &|d| {
        let p = d.join(&middle);
        let mut bytes = fs::read(&p).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        fs::write(&p, bytes).unwrap();
    });
    refused(&corrupt, &[]).fails(4);
    // Two segments' contents swapped (names kept: the order is wrong).
    let swapped = copy("swapped", &|d| {
        let a = d.join(segments[1].file_name().unwrap());
        let b = d.join(segments[2].file_name().unwrap());
        let (x, y) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        fs::write(&a, y).unwrap();
        fs::write(&b, x).unwrap();
    });
    refused(&swapped, &[]).fails(4);
    // The first segment missing: a gap after the snapshot.
    let first = segments[0].file_name().unwrap().to_owned();
    let gap = copy("gap", &|d| fs::remove_file(d.join(&first)).unwrap());
    refused(&gap, &[]).fails(4).one_line_error("missing");
    // Targets outside the log.
    refused(&rec.log_dir, &["--to-rev", &(rec.last_rev + 1).to_string()])
        .fails(5)
        .one_line_error("log ends at revision");
    refused(&rec.log_dir, &["--to-time", "2200-01-01T00:00:00Z"])
        .fails(5)
        .one_line_error("is later");
    // Both from stdin.
    common::restore(&["-", "--data-dir", &s(&target), "--log", "-"]).fails(2);
    assert!(!target.exists());
}

/// The log through `zstd | age` on stdin, the snapshot from a file; and a --to-time before the
/// log's first revision restores the snapshot itself.
#[test]
fn a_layered_log_on_stdin_and_a_time_before_the_log() {
    let rec = record(Version::V3_6);
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key.txt");
    let run = Command::new("age-keygen").args(["-o", &s(&key)]).output();
    let Ok(out) = run else {
        panic!("age-keygen is needed (scripts/setup installs it)");
    };
    assert!(out.status.success(), "{out:?}");
    let recipient = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("Public key: ").map(str::to_string))
        .unwrap();
    let stream = work.path().join("log.zst.age");
    let status = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; cat {}/*.revlog | zstd -q -c | age -r {recipient} > {}",
                s(&rec.log_dir),
                s(&stream)
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let prepared = Cluster::builder(Version::V3_6).prepare();
    let data_dir = prepared.cluster().data_dir(0);
    let mut args = vec![s(&rec.snap), "--data-dir".into(), s(&data_dir)];
    args.extend(member_args(&prepared));
    args.extend(["--log".into(), "-".into(), "-i".into(), s(&key)]);
    Tool::new(RESTORE)
        .args(&args)
        .stdin_file(&stream)
        .run()
        .succeeds();
    let restored = prepared.start();
    let (rev, want) = rec.dumps.last().unwrap();
    assert_eq!(&dump_at(restored.etcdctl(), *rev), want);
    drop(restored);

    // Before the first logged revision: the snapshot, said on stderr.
    let prepared = Cluster::builder(Version::V3_6).prepare();
    let data_dir = prepared.cluster().data_dir(0);
    let mut args = vec![s(&rec.snap), "--data-dir".into(), s(&data_dir)];
    args.extend(member_args(&prepared));
    args.extend([
        "--log".into(),
        s(&rec.log_dir),
        "--to-time".into(),
        "2000-01-01T00:00:00Z".into(),
    ]);
    Tool::new(RESTORE)
        .args(&args)
        .run()
        .succeeds()
        .stderr_contains("restoring the snapshot itself");
    let restored = prepared.start();
    let out = restored.etcdctl().args(["get", "/last"]).output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    drop(restored);

    // A bump applies after the log: the latest revision is the log's last + N, its data there.
    let restored = restore_and_boot(
        Version::V3_6,
        &rec,
        &[
            "--log",
            &s(&rec.log_dir),
            "--bump-revision",
            "1000",
            "--mark-compacted",
        ],
    );
    let out = restored
        .etcdctl()
        .args(["get", "/last", "-w", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["header"]["revision"].as_i64(),
        Some(rec.last_rev + 1000),
        "{v}"
    );
    assert_eq!(
        v["kvs"][0]["mod_revision"].as_i64(),
        Some(rec.last_rev),
        "{v}"
    );
}

/// An empty cluster's snapshot shows revision 0 while etcd stands at revision 1, which holds no
/// event: the follower started from that snapshot logs from revision 2, and the restore accepts
/// that log as starting right after the snapshot.
#[test]
fn a_log_from_an_empty_clusters_snapshot() {
    let version = Version::V3_6;
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::builder(version).start();
    let snap = dir.path().join("empty.db");
    let out = cluster
        .etcdctl()
        .args(["snapshot", "save", &s(&snap)])
        .output()
        .unwrap();
    assert!(out.status.success(), "snapshot save: {out:?}");
    let log_dir = dir.path().join("log");
    fs::create_dir(&log_dir).unwrap();
    let endpoint = cluster.endpoints()[0].clone();
    let follower = Tool::new("etcd-snap-log")
        .args(["--endpoints", &endpoint, "--from-snapshot", &s(&snap)])
        .args(["-o", &s(&log_dir), "--until-rev", "3", "--quiet"])
        .spawn();
    let gw = cluster.gateway();
    assert_eq!(gw.put(b"/first", b"1"), 2);
    assert_eq!(gw.put(b"/second", b"2"), 3);
    follower.finish(Some(Duration::from_secs(60))).succeeds();
    let info = etcd_revlog::verify_dir(&log_dir).unwrap();
    assert_eq!((info.first_revision, info.last_revision), (2, 3));

    let prepared = Cluster::builder(version).prepare();
    let data_dir = prepared.cluster().data_dir(0);
    let mut args = vec![s(&snap), "--data-dir".into(), s(&data_dir)];
    args.extend(member_args(&prepared));
    args.extend(["--log".to_string(), s(&log_dir)]);
    Tool::new(RESTORE).args(&args).run().succeeds();
    let restored = prepared.start();
    let kvs = dump_at(restored.etcdctl(), 3);
    let keys: Vec<&str> = kvs.iter().map(|kv| kv["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [base64(b"/first"), base64(b"/second")]);
}
