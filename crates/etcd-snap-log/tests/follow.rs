//! `etcd-snap-log` against real etcd: the log holds exactly the source's history (every key,
//! value, create/mod revision, version and lease at every revision, compared with `etcdctl get
//! --rev R`), survives a restarted leader and a killed follower without losing or repeating a
//! revision, fails with exit 3 on a compacted gap, and streams through `zstd | age`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use etcd_revlog::{EventKind, Reader, Revision};
use etcd_test_support::{
    base64, etcd_matrix, etcdctl_json, etcdctl_write, run_ok, run_with_stdin, wait_until, Cluster,
    Tool, Version,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-snap-log");

/// A key's state as `etcdctl get -w json` shows it: value, create, mod, version, lease
/// (key and value in base64).
type State = BTreeMap<String, (String, i64, i64, i64, i64)>;

fn dump_at(cluster: &Cluster, rev: i64) -> State {
    let v = etcdctl_json(cluster, &["get", "", "--prefix", "--rev", &rev.to_string()]);
    let mut out = State::new();
    for kv in v["kvs"].as_array().cloned().unwrap_or_default() {
        let n = |f: &str| kv[f].as_i64().unwrap_or(0);
        out.insert(
            kv["key"].as_str().unwrap().to_string(),
            (
                kv["value"].as_str().unwrap_or("").to_string(),
                n("create_revision"),
                n("mod_revision"),
                n("version"),
                n("lease"),
            ),
        );
    }
    out
}

fn apply(state: &mut State, rev: &Revision) {
    for e in &rev.events {
        let key = base64(&e.key);
        match e.kind {
            EventKind::Put => {
                state.insert(
                    key,
                    (
                        base64(&e.value),
                        e.create_revision,
                        e.mod_revision,
                        e.version,
                        e.lease,
                    ),
                );
            }
            EventKind::Delete => {
                state.remove(&key);
            }
        }
    }
}

/// The revisions of a log stream (`-o -`).
fn read_stream_log(bytes: Vec<u8>) -> Vec<Revision> {
    Reader::from_stream(Box::new(std::io::Cursor::new(bytes)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `etcd-snap-log` against the cluster, from revision `from`.
fn log_from(cluster: &Cluster, from: i64) -> Tool {
    let mut t = Tool::new(BIN);
    t.args(["--endpoints", &endpoints(cluster)])
        .args(["--from-rev", &from.to_string()]);
    t
}

fn read_dir_log(dir: &Path) -> Vec<Revision> {
    Reader::open_dir(dir)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("log in {}: {e}", dir.display()))
}

/// Checks that replaying `revs` on the state at `revs[0] - 1` gives the cluster's state at
/// every revision (from `recorded`, else asked now), and that revisions are consecutive from
/// `first` to `last`.
fn assert_log_matches_recorded(
    cluster: &Cluster,
    recorded: &BTreeMap<i64, State>,
    revs: &[Revision],
    first: i64,
    last: i64,
) {
    assert_eq!(revs.first().map(|r| r.revision), Some(first));
    assert_eq!(revs.last().map(|r| r.revision), Some(last));
    for w in revs.windows(2) {
        assert_eq!(
            w[1].revision,
            w[0].revision + 1,
            "lost or repeated revision"
        );
    }
    let at = |r: i64| {
        recorded
            .get(&r)
            .cloned()
            .unwrap_or_else(|| dump_at(cluster, r))
    };
    let mut state = at(first - 1);
    for rev in revs {
        apply(&mut state, rev);
        assert_eq!(
            state,
            at(rev.revision),
            "state differs at revision {}",
            rev.revision
        );
    }
}

fn assert_log_matches(cluster: &Cluster, revs: &[Revision], first: i64, last: i64) {
    assert_log_matches_recorded(cluster, &BTreeMap::new(), revs, first, last);
}

fn endpoints(cluster: &Cluster) -> String {
    cluster.endpoints().join(",")
}

/// Waits until the log in `dir` reaches `rev` (segments closed by --segment-time).
fn wait_logged(dir: &Path, rev: i64) {
    let reached = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        etcd_revlog::verify_dir(dir).is_ok_and(|i| i.last_revision >= rev)
    });
    assert!(reached, "the log never reached revision {rev}");
}

/// Runs `etcdctl txn` with `script` on stdin; the revision it wrote.
fn txn(cluster: &Cluster, script: &str) -> i64 {
    let out = run_with_stdin(
        cluster.etcdctl().args(["txn", "-w", "json"]),
        script.as_bytes(),
    );
    assert!(out.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["header"]["revision"].as_i64().unwrap()
}

fn grant(cluster: &Cluster, ttl: u32) -> (String, i64) {
    let v = etcdctl_json(cluster, &["lease", "grant", &ttl.to_string()]);
    let id = v["ID"].as_i64().unwrap();
    (format!("{id:x}"), id)
}

/// Puts, overwrites, deletes, multi-key txns, leases granted, attached, revoked and expired;
/// returns the last revision and the leases granted with their TTLs.
fn load(cluster: &Cluster) -> (i64, Vec<(i64, i64)>) {
    let w = |args: &[&str]| etcdctl_write(cluster, args);
    for i in 0..20 {
        w(&["put", &format!("/k/{}", i % 7), &format!("v{i}")]);
    }
    w(&["del", "/k/3"]);
    w(&["del", "/k/", "--prefix"]);
    w(&["put", "/bin", "\u{1}\u{2}"]);
    txn(
        cluster,
        "\nput /t/a 1\nput /t/b 2\ndel /bin\nput /t/c 3\n\n\n",
    );
    let (long_hex, long_id) = grant(cluster, 600);
    w(&["put", "/l/1", "x", "--lease", &long_hex]);
    w(&["put", "/l/2", "y", "--lease", &long_hex]);
    w(&["put", "/l/1", "z", "--lease", &long_hex]);
    let (rev_hex, rev_id) = grant(cluster, 300);
    w(&["put", "/r/1", "x", "--lease", &rev_hex]);
    w(&["put", "/r/2", "y", "--lease", &rev_hex]);
    run_ok(cluster.etcdctl().args(["lease", "revoke", &rev_hex]));
    let (exp_hex, exp_id) = grant(cluster, 2);
    w(&["put", "/e/1", "gone soon", "--lease", &exp_hex]);
    let expired = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        cluster.get("/e/1").is_none()
    });
    assert!(expired, "the lease never expired");
    let last = w(&["put", "/c/1", "x"]);
    (last, vec![(long_id, 600), (rev_id, 300), (exp_id, 2)])
}

/// A live follower (started before the load) and a catching-up one (started after it, from
/// the history) write the same log, equal to the cluster's history at every revision.
fn log_matches_history(v: Version) {
    let cluster = Cluster::builder(v).start();
    for i in 0..5 {
        cluster.put(&format!("/pre/{i}"), "before");
    }
    let start = etcdctl_write(&cluster, &["put", "/pre/last", "x"]) + 1;
    let live = tempfile::tempdir().unwrap();
    let follower = log_from(&cluster, start)
        .args([
            "-o",
            live.path().to_str().unwrap(),
            "--segment-size",
            "4KiB",
        ])
        .args(["--segment-time", "1s"])
        .spawn();
    let (loaded, leases) = load(&cluster);
    // Every revision's dump, then a compaction while the follower runs, then one more write.
    let recorded: BTreeMap<i64, State> = (start - 1..=loaded)
        .map(|r| (r, dump_at(&cluster, r)))
        .collect();
    let compact = loaded - 5;
    run_ok(cluster.etcdctl().args(["compaction", &compact.to_string()]));
    let last = etcdctl_write(&cluster, &["put", "/c/2", "y"]);
    wait_logged(live.path(), last);
    follower.signal("TERM");
    let run = follower.finish(Some(Duration::from_secs(30)));
    run.succeeds().stderr_contains("stopped by SIGTERM");
    let revs = read_dir_log(live.path());
    assert_log_matches_recorded(&cluster, &recorded, &revs, start, last);
    let info = etcd_revlog::verify_dir(live.path()).unwrap();
    assert!(info.segments > 1, "{info:?}");
    assert!(info.partial_files.is_empty());
    let compacted = compact + 1;
    let from = revs.iter().position(|r| r.revision == compacted).unwrap();
    // Leases: each recorded once, at its first put, with the TTL it was granted.
    for (id, ttl) in leases {
        let seen: Vec<_> = revs
            .iter()
            .flat_map(|r| r.leases.iter().map(move |l| (r.revision, l)))
            .filter(|(_, l)| l.id == id)
            .collect();
        assert_eq!(seen.len(), 1, "lease {id:x}: {seen:?}");
        let (at, l) = seen[0];
        assert_eq!(l.granted_ttl, ttl);
        let first_put = revs
            .iter()
            .find(|r| r.events.iter().any(|e| e.lease == id))
            .unwrap();
        assert_eq!(at, first_put.revision);
    }
    // Observed times never go backwards.
    assert!(revs
        .windows(2)
        .all(|w| w[0].observed_unix_nanos <= w[1].observed_unix_nanos));

    // A follower started after the fact, from the history etcd still has after the
    // compaction (a catch-up: etcd's unsynced watcher path), to stdout, stopping at --until-rev: the same events.
    let out = log_from(&cluster, compacted)
        .args(["--until-rev", &last.to_string()])
        .args(["-o", "-"])
        .run();
    out.succeeds();
    let caught = read_stream_log(out.stdout_bytes.clone());
    let strip = |r: &[Revision]| -> Vec<(i64, Vec<etcd_revlog::Event>)> {
        r.iter().map(|r| (r.revision, r.events.clone())).collect()
    };
    assert_eq!(strip(&caught), strip(&revs[from..]));

    // Starting below the compaction: exit 3, one line.
    log_from(&cluster, start)
        .args(["-o", "-"])
        .run()
        .fails(3)
        .one_line_error(&format!(
            "gap: compacted at {compact}; take a new snapshot (etcd-snap-save) and start the log from it"
        ));
}
etcd_matrix!(log_matches_history: V3_5, V3_6, V3_7);

/// The leader of a 3-member cluster restarted and the follower killed mid-load: the log is
/// consecutive, without a repeat, and equal to the history.
fn survives_restarts(v: Version) {
    let mut cluster = Cluster::builder(v).members(3).start();
    let start = etcdctl_write(&cluster, &["put", "/begin", "x"]) + 1;
    let dir = tempfile::tempdir().unwrap();
    let follow = |from: Option<i64>| {
        let mut t = Tool::new(BIN);
        t.args([
            "--endpoints",
            &endpoints(&cluster),
            "-o",
            dir.path().to_str().unwrap(),
        ])
        .args(["--segment-time", "1s", "--segment-size", "4KiB"]);
        if let Some(r) = from {
            t.args(["--from-rev", &r.to_string()]);
        }
        t.spawn()
    };
    let first = follow(Some(start));
    for i in 0..60 {
        etcdctl_write(
            &cluster,
            &["put", &format!("/a/{}", i % 9), &format!("v{i}")],
        );
    }
    // Kill the follower (no clean close: its .part is left) and start it again, continuing.
    first.signal("KILL");
    first.finish(Some(Duration::from_secs(10)));
    for i in 0..30 {
        etcdctl_write(
            &cluster,
            &["put", &format!("/b/{}", i % 5), &format!("v{i}")],
        );
    }
    // The restarted follower watches the leader first, so that restarting it breaks the watch.
    let status = etcdctl_json(&cluster, &["endpoint", "status"]);
    let leader_id = status[0]["Status"]["leader"].as_u64().unwrap();
    let leader = status
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s["Status"]["header"]["member_id"].as_u64() == Some(leader_id))
        .unwrap();
    let mut eps = cluster.endpoints();
    eps.swap(0, leader);
    let second = Tool::new(BIN)
        .args([
            "--endpoints",
            &eps.join(","),
            "-o",
            dir.path().to_str().unwrap(),
        ])
        .args(["--segment-time", "1s", "--segment-size", "4KiB"])
        .spawn();
    for i in 0..30 {
        etcdctl_write(
            &cluster,
            &["put", &format!("/c/{}", i % 5), &format!("v{i}")],
        );
    }
    // Restart the leader, with writes going on around it.
    cluster.stop_member(leader);
    for i in 0..20 {
        etcdctl_write(
            &cluster,
            &["put", &format!("/d/{}", i % 5), &format!("v{i}")],
        );
    }
    cluster.restart_member(leader);
    let mut last = 0;
    for i in 0..30 {
        last = etcdctl_write(
            &cluster,
            &["put", &format!("/e/{}", i % 5), &format!("v{i}")],
        );
    }
    wait_logged(dir.path(), last);
    second.signal("INT");
    second
        .finish(Some(Duration::from_secs(30)))
        .succeeds()
        .stderr_contains(format!("Warning: watch on {} broke", eps[0]))
        .stderr_contains("stopped by SIGINT");
    let revs = read_dir_log(dir.path());
    assert_log_matches(&cluster, &revs, start, last);
    // Continuing the directory from a later revision would leave a gap: refused.
    Tool::new(BIN)
        .args([
            "--endpoints",
            &endpoints(&cluster),
            "-o",
            dir.path().to_str().unwrap(),
        ])
        .args(["--from-rev", &(last + 10).to_string()])
        .run()
        .fails(5)
        .one_line_error("would leave a gap");
}
etcd_matrix!(survives_restarts: V3_5, V3_6, V3_7);

/// The log through `zstd | age` and back verifies and holds the same revisions.
#[test]
fn streams_through_zstd_and_age() {
    let cluster = Cluster::builder(Version::V3_6).start();
    let start = etcdctl_write(&cluster, &["put", "/x", "0"]) + 1;
    let mut last = 0;
    for i in 0..50 {
        last = etcdctl_write(
            &cluster,
            &["put", &format!("/x/{}", i % 4), &"v".repeat(i * 40)],
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    // --from-snapshot: the log starts right after the snapshot's revision.
    let snap = tmp.path().join("snap.db");
    run_ok(
        cluster
            .etcdctl()
            .args(["snapshot", "save", snap.to_str().unwrap()]),
    );
    let from_snap = Tool::new(BIN)
        .args(["--endpoints", &endpoints(&cluster), "--quiet"])
        .args(["--from-snapshot", snap.to_str().unwrap()])
        .args(["--until-rev", &(last + 1).to_string(), "-o", "-"])
        .spawn();
    let after = etcdctl_write(&cluster, &["put", "/after-snapshot", "1"]);
    assert_eq!(after, last + 1);
    let run = from_snap.finish(Some(Duration::from_secs(30)));
    run.succeeds();
    let info = etcd_revlog::verify_stream(&run.stdout_bytes[..]).unwrap();
    assert_eq!((info.first_revision, info.last_revision), (after, after));
    let key = tmp.path().join("key.txt");
    assert!(Command::new("age-keygen")
        .args(["-o", key.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    let recipient = run_ok(Command::new("age-keygen").args(["-y", key.to_str().unwrap()]));
    let sealed = tmp.path().join("log.zst.age");
    let pipeline = format!(
        "set -o pipefail; {BIN} --quiet --endpoints {} --from-rev {start} --until-rev {last} \
         --segment-size 4KiB -o - | zstd -q | age -r {} > {}",
        endpoints(&cluster),
        recipient.trim(),
        sealed.display()
    );
    Tool::from_command({
        let mut c = Command::new("bash");
        c.args(["-c", &pipeline]);
        c
    })
    .run()
    .succeeds();
    let plain = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; age -d -i {} {} | zstd -dq",
                key.display(),
                sealed.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(plain.status.success());
    let info = etcd_revlog::verify_stream(&plain.stdout[..]).unwrap();
    assert_eq!((info.first_revision, info.last_revision), (start, last));
    assert!(info.segments > 1);
    let revs = read_stream_log(plain.stdout);
    assert_log_matches(&cluster, &revs, start, last);
}

/// A revision too large for one watch response (a delete of 400 long keys with etcd's request
/// limit at 64 KiB) arrives in fragments: it is logged whole, live and when caught up.
fn fragmented_revision_is_logged_whole(v: Version) {
    let cluster = Cluster::builder(v).arg("--max-request-bytes=65536").start();
    let start = etcdctl_write(&cluster, &["put", "/begin", "x"]) + 1;
    let dir = tempfile::tempdir().unwrap();
    let live = log_from(&cluster, start)
        .args(["-o", dir.path().to_str().unwrap(), "--segment-time", "1s"])
        .spawn();
    let pad = "p".repeat(300);
    for t in 0..4 {
        let script: String = (0..100)
            .map(|i| format!("put /big/{pad}/{t}/{i} v\n"))
            .collect();
        txn(&cluster, &format!("\n{script}\n\n"));
    }
    let del = etcdctl_write(&cluster, &["del", "/big/", "--prefix"]);
    let last = etcdctl_write(&cluster, &["put", "/end", "x"]);
    wait_logged(dir.path(), last);
    live.signal("TERM");
    live.finish(Some(Duration::from_secs(30))).succeeds();
    let revs = read_dir_log(dir.path());
    let deleted = revs.iter().find(|r| r.revision == del).unwrap();
    assert_eq!(deleted.events.len(), 400);
    assert_log_matches(&cluster, &revs, start, last);
    let out = log_from(&cluster, start)
        .args(["--until-rev", &last.to_string(), "-o", "-"])
        .run();
    out.succeeds();
    let caught = read_stream_log(out.stdout_bytes.clone());
    assert_eq!(caught.len(), revs.len());
    for (a, b) in caught.iter().zip(&revs) {
        assert_eq!((a.revision, &a.events), (b.revision, &b.events));
    }
}
etcd_matrix!(fragmented_revision_is_logged_whole: V3_5, V3_6, V3_7);
