//! `etcd-backup --follow` (the continuous mode: a revision log beside each backup) and
//! `examples/systemd/etcd-backup-log.service`, against a real etcd 3.5 with the real tools:
//! `etcd-backup` for the backups, `etcd-snap-log` as the follower it runs, `etcd-snap-status
//! --log` to verify what it wrote.
//!
//! Every test starts its own one-member etcd on free loopback ports and keeps its backups in a
//! temporary directory; `--follow-interval 1` makes the mode look for new backups every second,
//! and the tests wait for what it writes (files, its stderr, its metrics), never for a time.
//!
//! What this cannot show: the unit under a running systemd (PID 1 here is not systemd: the unit
//! is checked by `systemd-analyze verify`), and nights: "the nightly backup" is a second run of
//! `etcd-backup` a few seconds after the first.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcd_snap_e2e::support::{self, wait_until, Tool};
use etcd_snap_e2e::{bin_dir, clean_env, example, ours, path_with_tools, program, script, Node};
use serde_json::Value;

/// How long a test waits for what the continuous mode does (it checks every second).
const PATIENCE: Duration = Duration::from_secs(60);

/// A plain-HTTP node (the shared [`Node`]), checked to have etcd-snap-log.
fn start_node() -> Node {
    assert!(
        bin_dir().join("etcd-snap-log").is_file(),
        "etcd-snap-log is missing: run `cargo build -p etcd-snap-log` first"
    );
    Node::start_plain()
}

/// What only the continuous mode's scenarios do with a [`Node`].
trait FollowNode {
    fn log_metrics(&self) -> PathBuf;
    fn stored_backup(&self, args: &[&str]) -> (String, u64);
    fn follow(&self) -> Child;
    fn follow_err(&self) -> PathBuf;
    fn follow_stderr(&self) -> String;
    fn gauge(&self, name: &str) -> Option<u64>;
    fn put_keys(&self, prefix: &str, n: usize) -> u64;
    fn wait_logged(&self, log: &Path, target: u64);
    fn stop(&self, follow: &mut Reaper);
}

impl FollowNode for Node {
    fn log_metrics(&self) -> PathBuf {
        self.root.path().join("metrics/etcd-backup-log.prom")
    }

    /// `etcd-backup --no-encrypt --metrics-file M ARGS DEST`: the name of the stored backup and
    /// its revision (from its `NAME.json`).
    fn stored_backup(&self, args: &[&str]) -> (String, u64) {
        let out = Tool::from_command(self.backup_cmd())
            .args(["--no-encrypt", "--metrics-file"])
            .arg(self.metrics())
            .args(args)
            .arg(self.dest())
            .run();
        out.succeeds();
        let path = PathBuf::from(out.stdout.trim());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let meta = read_json(&self.dest().join(format!("{name}.json")));
        (name, meta["revision"].as_u64().unwrap())
    }

    /// `etcd-backup --follow --no-encrypt --follow-interval 1 --log-segment-time 1s` on DEST,
    /// running, its stderr in `follow.err`.
    fn follow(&self) -> Child {
        let err = fs::File::create(self.follow_err()).unwrap();
        self.backup_cmd()
            .args([
                "--follow",
                "--no-encrypt",
                "--follow-interval",
                "1",
                "--log-segment-time",
                "1s",
                "--metrics-file",
            ])
            .arg(self.metrics())
            .arg(self.dest())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }

    fn follow_err(&self) -> PathBuf {
        self.root.path().join("follow.err")
    }

    fn follow_stderr(&self) -> String {
        fs::read_to_string(self.follow_err()).unwrap_or_default()
    }

    /// A value of the continuous mode's metrics file, when it has the gauge.
    fn gauge(&self, name: &str) -> Option<u64> {
        let text = fs::read_to_string(self.log_metrics()).ok()?;
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
    }

    /// Waits until the log in `log` reaches `target` (a put each round: a segment open for 1s
    /// is closed at the next revision).
    fn wait_logged(&self, log: &Path, target: u64) {
        assert!(
            wait_until(PATIENCE, Duration::from_millis(500), || {
                self.cluster.put("/tick", "t");
                log_status(log).is_some_and(|s| s["lastRevision"].as_u64() >= Some(target))
            }),
            "{} never reached {target}: {}",
            log.display(),
            self.follow_stderr()
        );
    }

    /// SIGTERM to the continuous mode: it exits 0.
    fn stop(&self, follow: &mut Reaper) {
        assert_eq!(
            terminate(&mut follow.0),
            Some(0),
            "{}",
            self.follow_stderr()
        );
    }

    /// Puts `n` keys `/PREFIX/0..n`; returns the last revision.
    fn put_keys(&self, prefix: &str, n: usize) -> u64 {
        for i in 0..n {
            self.cluster
                .put(&format!("/{prefix}/{i}"), &format!("value {i}"));
        }
        self.revision()
    }
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `etcd-snap-status --log DIR -w json`, when it succeeds.
fn log_status(dir: &Path) -> Option<Value> {
    let out = ours("etcd-snap-status")
        .args(["-w", "json", "--log"])
        .arg(dir)
        .run();
    (out.code == 0).then(|| out.stdout_json())
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// SIGTERM to `child` (as `systemctl stop` sends), then its exit code.
fn terminate(child: &mut Child) -> Option<i32> {
    program("kill")
        .args(["-TERM", &child.id().to_string()])
        .run()
        .succeeds();
    child.wait().unwrap().code()
}

/// Stops a child a failed assertion left running.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn follow_logs_each_backup_rotates_on_a_new_one_and_stops_cleanly_on_sigterm() {
    let node = start_node();
    node.put_keys("before", 5);
    let (first, rev1) = node.stored_backup(&[]);
    let mut follow = Reaper(node.follow());
    let log1 = node.dest().join(format!("{first}.log"));

    // The log of the first backup starts at its revision + 1.
    assert!(
        wait_until(PATIENCE, Duration::from_millis(200), || {
            node.gauge("etcd_backup_log_up") == Some(1)
        }),
        "no follower: {}",
        node.follow_stderr()
    );
    assert_eq!(node.gauge("etcd_backup_log_from_revision"), Some(rev1 + 1));
    assert!(log1.is_dir(), "{:?}", names(&node.dest()));
    let written = node.put_keys("day1", 10);
    assert_eq!(written, rev1 + 10);

    // The nightly run: a second backup. The first log is completed up to its revision, and a
    // new log starts after it.
    let (second, rev2) = node.stored_backup(&[]);
    assert!(rev2 >= written);
    let log2 = node.dest().join(format!("{second}.log"));
    assert!(
        wait_until(PATIENCE, Duration::from_millis(200), || {
            node.gauge("etcd_backup_log_from_revision") == Some(rev2 + 1)
                && node
                    .follow_stderr()
                    .contains(&format!("reaches revision {rev2}"))
        }),
        "no rotation: {}",
        node.follow_stderr()
    );
    assert!(log2.is_dir());

    // Revisions after the second backup reach its log (a put each round: a segment open for 1s
    // is closed at the next revision).
    let target = node.put_keys("day2", 3);
    node.wait_logged(&log2, target);

    // SIGTERM: exit 0, every segment closed, nothing partial left.
    node.stop(&mut follow);
    for log in [&log1, &log2] {
        let files = names(log);
        assert!(
            !files.is_empty() && files.iter().all(|f| f.ends_with(".revlog")),
            "{}: {files:?}",
            log.display()
        );
    }
    let s1 = log_status(&log1).expect("the first log verifies");
    assert_eq!(s1["firstRevision"].as_u64(), Some(rev1 + 1), "{s1}");
    assert!(s1["lastRevision"].as_u64() >= Some(rev2), "{s1}");
    assert_eq!(s1["partialFiles"].as_array().map(Vec::len), Some(0), "{s1}");
    let s2 = log_status(&log2).expect("the second log verifies");
    assert_eq!(s2["firstRevision"].as_u64(), Some(rev2 + 1), "{s2}");
    assert!(s2["lastRevision"].as_u64() >= Some(target), "{s2}");
    assert_eq!(s2["partialFiles"].as_array().map(Vec::len), Some(0), "{s2}");
    assert_eq!(node.gauge("etcd_backup_log_up"), Some(0));
    assert!(
        !node.follow_stderr().contains("GAP"),
        "{}",
        node.follow_stderr()
    );
    // The backup runs' own metrics file is not the continuous mode's.
    let backup_metrics = fs::read_to_string(node.metrics()).unwrap();
    assert!(
        !backup_metrics.contains("etcd_backup_log_"),
        "{backup_metrics}"
    );

    // Retention: a backup goes with its metadata and its log.
    let (third, _) = node.stored_backup(&["--keep", "1"]);
    assert_eq!(
        names(&node.dest()),
        vec![third.clone(), format!("{third}.json")],
        "the older backups, their NAME.json and NAME.log are pruned"
    );
}

#[test]
fn a_gap_is_reported_once_and_the_next_backup_starts_a_new_log() {
    let node = start_node();
    node.put_keys("before", 3);
    let (first, _) = node.stored_backup(&[]);
    // History after the backup is compacted away before the follower starts.
    let compact_at = node.put_keys("lost", 5);
    support::run_ok(
        node.cluster
            .etcdctl()
            .args(["compact", &compact_at.to_string()]),
    );
    let mut follow = Reaper(node.follow());
    assert!(
        wait_until(PATIENCE, Duration::from_millis(200), || {
            node.gauge("etcd_backup_log_gap") == Some(1)
        }),
        "no gap reported: {}",
        node.follow_stderr()
    );
    assert_eq!(
        node.gauge("etcd_backup_log_gap_compacted_revision"),
        Some(compact_at)
    );
    assert_eq!(node.gauge("etcd_backup_log_up"), Some(0));
    let err = node.follow_stderr();
    let gaps: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("etcd-backup: GAP: "))
        .collect();
    assert_eq!(gaps.len(), 1, "{err}");
    assert!(
        gaps[0].contains(&format!("{first}.log"))
            && gaps[0].contains(&format!("compacted at {compact_at}")),
        "{err}"
    );

    // It keeps running, waiting for the next backup, which starts a new log.
    assert!(follow.0.try_wait().unwrap().is_none(), "{err}");
    let (second, rev2) = node.stored_backup(&[]);
    assert!(
        wait_until(PATIENCE, Duration::from_millis(200), || {
            node.gauge("etcd_backup_log_up") == Some(1)
                && node.gauge("etcd_backup_log_from_revision") == Some(rev2 + 1)
        }),
        "no new log: {}",
        node.follow_stderr()
    );
    assert_eq!(node.gauge("etcd_backup_log_gap"), Some(0));
    let target = node.put_keys("after", 2);
    let log2 = node.dest().join(format!("{second}.log"));
    node.wait_logged(&log2, target);
    node.stop(&mut follow);
    let s2 = log_status(&log2).unwrap();
    assert_eq!(s2["firstRevision"].as_u64(), Some(rev2 + 1), "{s2}");
    let gaps = node
        .follow_stderr()
        .lines()
        .filter(|l| l.starts_with("etcd-backup: GAP: "))
        .count();
    assert_eq!(gaps, 1, "reported once, not at every check");
}

#[test]
fn follow_refuses_an_unacknowledged_plaintext_log_and_remote_destinations() {
    let root = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(script("etcd-backup"));
        clean_env(&mut cmd);
        cmd.env("PATH", path_with_tools());
        Tool::from_command(cmd).args(args).run()
    };
    let dest = root.path().to_str().unwrap();
    // Encrypted backups: the unencrypted log needs --log-plaintext.
    run(&["--follow", "-r", "age1qqqq", dest])
        .fails(2)
        .one_line_error("--log-plaintext");
    run(&[
        "--follow",
        "--no-encrypt",
        "backup@vault.example.com:/srv/etcd",
    ])
    .fails(2)
    .one_line_error("local directory only");
    run(&["--follow", "--no-encrypt", "s3://bucket/etcd"])
        .fails(2)
        .one_line_error("local directory only");
    run(&["--follow", "--no-encrypt", "--follow-interval", "0", dest])
        .fails(2)
        .one_line_error("--follow-interval 0");
    // --help documents the mode.
    let help = run(&["--help"]);
    help.succeeds();
    assert!(help.stdout.contains("FOLLOW (--follow"), "{}", help.stdout);
}

#[test]
fn the_log_service_unit_verifies_cleanly() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.exists(),
        "{} is missing: run scripts/setup (it installs systemd)",
        analyze.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let unit = fs::read_to_string(example("systemd/etcd-backup-log.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/etcd-backup --follow"),
        "{unit}"
    );
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/etcd-backup",
        &format!("ExecStart={}", script("etcd-backup").display()),
    );
    let path = dir.path().join("etcd-backup-log.service");
    fs::write(&path, unit).unwrap();
    let out = program(analyze).arg("verify").arg(&path).run();
    assert!(out.success() && out.stderr.is_empty(), "{out:?}");

    // The same sandbox as the nightly unit: every hardening line of etcd-backup.service is in it.
    let nightly = fs::read_to_string(example("systemd/etcd-backup.service")).unwrap();
    let follow = fs::read_to_string(&path).unwrap();
    let hardening = nightly
        .split("# Hardening.")
        .nth(1)
        .expect("etcd-backup.service has a # Hardening. part");
    for line in hardening
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        assert!(follow.lines().any(|l| l == line), "missing: {line}");
    }
}

/// The pids of live processes whose command line contains `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn a_killed_follow_mode_leaves_a_closed_log_that_the_next_start_continues() {
    let node = start_node();
    let (first, rev1) = node.stored_backup(&[]);
    let log1 = node.dest().join(format!("{first}.log"));
    let mut follow = Reaper(node.follow());
    let target = node.put_keys("a", 4);
    node.wait_logged(&log1, target);
    let needle = log1.to_string_lossy().into_owned();
    let followers = pids_with(&needle);
    assert_eq!(followers.len(), 1, "one etcd-snap-log on {needle}");

    // SIGKILL (the OOM killer, systemctl kill -s KILL): no trap runs, but the follower gets
    // SIGTERM from its parent-death signal and closes its segment.
    follow.0.kill().unwrap();
    follow.0.wait().unwrap();
    assert!(
        wait_until(PATIENCE, Duration::from_millis(100), || pids_with(&needle)
            .is_empty()),
        "the follower outlived etcd-backup"
    );
    let files = names(&log1);
    assert!(
        files.iter().all(|f| f.ends_with(".revlog")),
        "no .part, no lock left: {files:?}"
    );
    let before = log_status(&log1).unwrap()["lastRevision"].as_u64().unwrap();
    assert!(before >= target);

    // The next start continues the same log, without a gap or a second copy of a revision
    // (etcd-snap-status --log checks that revisions are consecutive).
    let mut follow = Reaper(node.follow());
    let target = node.put_keys("b", 4);
    node.wait_logged(&log1, target);
    node.stop(&mut follow);
    let s = log_status(&log1).unwrap();
    assert_eq!(s["firstRevision"].as_u64(), Some(rev1.max(1) + 1), "{s}");
    assert!(s["lastRevision"].as_u64() >= Some(target), "{s}");
}
