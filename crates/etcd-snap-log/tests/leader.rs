//! `etcd-snap-log` requires a leader on its watch: attached to a member that loses its quorum,
//! it is told "no leader" by etcd (the watch refused or canceled), says so in one warning line,
//! and moves on instead of waiting silently; once a quorum is back it resumes at the next
//! revision, so the log holds every revision exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use etcd_revlog::{Reader, Revision};
use etcd_test_support::{etcd_matrix, etcdctl_write, wait_until, Cluster, Running, Tool, Version};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-snap-log");

/// Copies the child's stderr into a shared string as it comes, so the test can wait for a
/// line while the follower runs.
fn tee_stderr(child: &mut Running) -> Arc<Mutex<String>> {
    let seen = Arc::new(Mutex::new(String::new()));
    let pipe = child.child.stderr.take().unwrap();
    let sink = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    seen
}

fn read_dir_log(dir: &Path) -> Vec<Revision> {
    Reader::open_dir(dir)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("log in {}: {e}", dir.display()))
}

/// Waits until the log in `dir` reaches `rev` (segments closed by --segment-time).
fn wait_logged(dir: &Path, rev: i64) {
    let reached = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        etcd_revlog::verify_dir(dir).is_ok_and(|i| i.last_revision >= rev)
    });
    assert!(reached, "the log never reached revision {rev}");
}

/// The member given first loses its two peers (and so its leader): the follower reports "no
/// leader" and leaves it; with the peers back, it logs every revision once.
fn leaves_a_member_without_leader(v: Version) {
    let mut cluster = Cluster::builder(v).members(3).start();
    let eps = cluster.endpoints();
    let start = etcdctl_write(&cluster, &["put", "/begin", "x"]) + 1;
    let dir = tempfile::tempdir().unwrap();
    let mut follower = Tool::new(BIN)
        .args(["--endpoints", &format!("{},{}", eps[0], eps[1])])
        .args(["--from-rev", &start.to_string()])
        .args(["-o", dir.path().to_str().unwrap(), "--segment-time", "1s"])
        .spawn();
    let stderr = tee_stderr(&mut follower);
    let mut before = 0;
    for i in 0..10 {
        before = etcdctl_write(
            &cluster,
            &["put", &format!("/a/{}", i % 3), &format!("v{i}")],
        );
    }
    wait_logged(dir.path(), before);
    // Member 0 alone: it keeps its connections but has no leader. Without a leader required,
    // the watch on it would stay open and silent until a quorum came back.
    cluster.kill_member(1);
    cluster.kill_member(2);
    let warned = wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
        stderr.lock().unwrap().contains("has no leader")
    });
    let seen = stderr.lock().unwrap().clone();
    assert!(
        warned,
        "no 'has no leader' warning within 60 s; stderr:\n{seen}"
    );
    let line = seen.lines().find(|l| l.contains("has no leader")).unwrap();
    assert!(
        line.starts_with(&format!("Warning: {} has no leader", eps[0])),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(
            "reconnecting to another endpoint at revision {}",
            before + 1
        )),
        "{line}"
    );
    // The quorum back; the follower finds it and continues.
    cluster.restart_member(1);
    cluster.restart_member(2);
    let mut last = 0;
    for i in 0..10 {
        last = etcdctl_write(
            &cluster,
            &["put", &format!("/b/{}", i % 3), &format!("v{i}")],
        );
    }
    wait_logged(dir.path(), last);
    follower.signal("TERM");
    follower.finish(Some(Duration::from_secs(30))).succeeds();
    let seen = stderr.lock().unwrap().clone();
    assert!(seen.contains("stopped by SIGTERM"), "{seen}");
    let revs: Vec<i64> = read_dir_log(dir.path())
        .iter()
        .map(|r| r.revision)
        .collect();
    let want: Vec<i64> = (start..=last).collect();
    assert_eq!(revs, want, "lost or repeated revisions");
}
etcd_matrix!(leaves_a_member_without_leader: V3_5, V3_6, V3_7);
