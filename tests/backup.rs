//! `scripts/etcd-backup` and `examples/systemd/` against a real etcd 3.5.
//!
//! Each test starts its own one-member etcd on free loopback ports, with mutual TLS whose
//! certificates are laid out the way kubeadm lays out `/etc/kubernetes/pki/etcd` (`ca.crt`,
//! `server.crt`, `server.key`) in a temporary directory that `--pki-dir`/`ETCD_BACKUP_PKI_DIR`
//! points at (plain HTTP only where the gateway loader or password authentication needs it). Backups go to a temporary directory, or over ssh to a real OpenSSH server on
//! loopback (`Sshd`). Failures are made real where possible (etcd killed mid-stream, nothing
//! listening on the ssh port); corruption in storage comes from stand-in `age`/`ssh` wrappers
//! first in `PATH` that flip one byte of what they pass on.
//!
//! What this cannot show: the units under a running systemd (PID 1 here is not systemd, so the
//! sandbox options are checked by `systemd-analyze verify`/`security --offline`, and the unit's
//! command line with its environment file is run without the sandbox), and a real kubeadm node.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_snap_e2e::support::{
    self, free_port, run_ok, wait_until, Cluster, Run, Sshd, Tool, Version,
};
use etcd_snap_e2e::{example, ours, path_with_tools, program, script, user_mount_namespace, Node};
use serde_json::Value;

/// What only these scenarios do with a [`Node`].
trait BackupNode {
    fn backup_age(&self) -> Run;
    fn backup_in_a_mount_namespace(&self, prepare: &str, dest: &Path, args: &[&str]) -> Run;
    fn put_keys(&self, n: usize);
}

impl BackupNode for Node {
    /// `etcd-backup -r RECIPIENT DEST`, run to the end.
    fn backup_age(&self) -> Run {
        self.backup()
            .args(["-r", &self.recipient])
            .arg(self.dest())
            .run()
    }

    /// `etcd-backup ARGS DEST` in a user and mount namespace of its own (`unshare -rm`) after
    /// `prepare` (shell, with `$1` = DEST, ending in `;` or `&&`) has mounted something there:
    /// stdout is `exit CODE` and then `ls -A DEST`, stderr the script's.
    fn backup_in_a_mount_namespace(&self, prepare: &str, dest: &Path, args: &[&str]) -> Run {
        Tool::from_command(self.with_backup_env(Command::new("unshare")))
            .args(["-rm", "sh", "-c"])
            .arg(format!(
                "{prepare} d=$1; prog=$2; shift 2; \
                 \"$prog\" \"$@\" \"$d\"; echo \"exit $?\"; ls -A \"$d\""
            ))
            .arg("_")
            .arg(dest)
            .arg(script("etcd-backup"))
            .args(args)
            .run()
    }

    /// Puts `n` keys `/app/0..n`.
    fn put_keys(&self, n: usize) {
        for i in 0..n {
            self.cluster
                .put(&format!("/app/{i}"), &format!("value {i}"));
        }
    }
}

/// The names in `dir`, sorted, without the backups' metadata files (`NAME.json`, checked by
/// [`metadata_matches_backups`]).
fn names(dir: &Path) -> Vec<String> {
    all_names(dir)
        .into_iter()
        .filter(|n| !is_metadata(n))
        .collect()
}

/// Every name in `dir`, sorted.
fn all_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Whether `name` is a backup's metadata file (`etcd-...db.zst[.age].json`).
fn is_metadata(name: &str) -> bool {
    name.starts_with("etcd-")
        && (name.ends_with(".db.zst.json") || name.ends_with(".db.zst.age.json"))
}

/// Each backup of cluster `cid` in `dir` has its `NAME.json` (with its name, cluster ID and the
/// revision of its name) and no `NAME.json` is left without its backup.
#[track_caller]
fn metadata_matches_backups(dir: &Path, cid: &str) {
    let all = all_names(dir);
    for n in &all {
        if let Some(backup) = n.strip_suffix(".json").filter(|_| is_metadata(n)) {
            assert!(
                all.iter().any(|b| b == backup),
                "{n} outlived its backup: {all:?}"
            );
        } else if parse_name(n, cid, "db.zst.age").is_some()
            || parse_name(n, cid, "db.zst").is_some()
        {
            let meta = dir.join(format!("{n}.json"));
            let text =
                fs::read_to_string(&meta).unwrap_or_else(|e| panic!("{}: {e}", meta.display()));
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["backup"], n.as_str(), "{text}");
            assert_eq!(v["clusterId"], cid, "{text}");
            let stored = fs::read(dir.join(n)).unwrap();
            assert_eq!(
                v["storedBytes"].as_u64(),
                Some(stored.len() as u64),
                "{text}"
            );
        }
    }
}

/// `etcd-<cid>-<YYYYmmddTHHMMSSZ>-r<rev>.<ext>` → (timestamp, revision), or `None`.
fn parse_name(name: &str, cid: &str, ext: &str) -> Option<(String, u64)> {
    let rest = name.strip_prefix(&format!("etcd-{cid}-"))?;
    let rest = rest.strip_suffix(&format!(".{ext}"))?;
    let (stamp, rev) = rest.split_once("-r")?;
    let b = stamp.as_bytes();
    let shape_ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    let rev_ok = !rev.is_empty() && rev.bytes().all(|c| c.is_ascii_digit());
    (shape_ok && rev_ok).then(|| (stamp.to_string(), rev.parse().unwrap()))
}

/// The UTC time `secs_ago` seconds ago (negative: in the future) as in the names.
fn stamp(secs_ago: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    program("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", now - secs_ago),
            "+%Y%m%dT%H%M%SZ",
        ])
        .run()
        .succeeds()
        .stdout
        .clone()
        .trim()
        .to_string()
}

/// `bash -c 'set -o pipefail; SCRIPT' _ ARGS...` with the tools in `PATH`.
fn sh(script: &str, args: &[&Path]) -> String {
    program("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .arg("_")
        .args(args)
        .env("PATH", path_with_tools())
        .run()
        .succeeds()
        .stdout
        .clone()
}

/// `etcdutl snapshot status FILE -w json`.
fn etcdutl_status(db: &Path) -> Value {
    let etcdutl = support::etcd_bin(Version::V3_5, "etcdutl");
    let out = run_ok(
        Command::new(etcdutl)
            .args(["snapshot", "status", "-w", "json"])
            .arg(db),
    );
    serde_json::from_str(&out).unwrap()
}

/// `etcd-snap-status -w json FILE` (with `-i IDENTITY` when given).
fn snap_status(file: &Path, identity: Option<&Path>) -> Value {
    let mut cmd = ours("etcd-snap-status");
    cmd.args(["-w", "json"]);
    if let Some(id) = identity {
        cmd.arg("-i").arg(id);
    }
    cmd.arg(file).run().succeeds().stdout_json()
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// `ssh` options for the fixture (its `ssh_args()` without the destination), as one string.
fn ssh_opts(sshd: &Sshd) -> String {
    let mut args = sshd.ssh_args();
    args.pop();
    args.join(" ")
}

#[test]
fn local_backup_of_a_kubeadm_tls_member_is_named_by_cluster_and_revision_and_restorable() {
    let node = Node::start();
    node.put_keys(5);
    let cid = node.cluster_id();
    let before = stamp(0);

    // etcd-backup --pki-dir /etc/kubernetes/pki/etcd -r age1... /var/backups/etcd
    let out = node
        .backup()
        .env_remove("ETCD_BACKUP_PKI_DIR")
        .arg("--pki-dir")
        .arg(node.pki())
        .args(["-r", &node.recipient])
        .arg(node.dest())
        .run();
    assert!(out.success(), "etcd-backup failed: {out:?}");
    assert!(
        out.stderr.contains("kubeadm certificates"),
        "stderr: {}",
        out.stderr
    );
    let after = stamp(0);

    let stored = names(&node.dest());
    assert_eq!(stored.len(), 1, "exactly one file, no .part: {stored:?}");
    let name = &stored[0];
    assert_eq!(
        out.stdout,
        format!("{}/{name}\n", node.dest().display()),
        "stdout is the location"
    );
    let (ts, rev) = parse_name(name, &cid, "db.zst.age")
        .unwrap_or_else(|| panic!("{name} is not etcd-{cid}-<UTC time>-r<rev>.db.zst.age"));
    assert!(
        before <= ts && ts <= after,
        "{ts} not in [{before}, {after}]"
    );
    assert_eq!(
        rev,
        node.revision(),
        "the name carries the snapshot's revision"
    );
    let file = node.dest().join(name);
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // age -d -i backup.key FILE | zstd -d > snap.db; etcdutl snapshot status snap.db
    let db = node.root.path().join("snap.db");
    sh(
        r#"age -d -i "$1" "$2" | zstd -dc > "$3""#,
        &[&node.identity(), &file, &db],
    );
    let ours = etcdutl_status(&db);
    let reference = node.root.path().join("reference.db");
    run_ok(
        node.cluster
            .etcdctl()
            .args(["snapshot", "save"])
            .arg(&reference),
    );
    let theirs = etcdutl_status(&reference);
    assert_eq!(ours["revision"].as_u64(), Some(rev));
    assert_eq!(ours["totalKey"], theirs["totalKey"], "etcdutl's key count");
    assert_eq!(ours["hash"], theirs["hash"], "etcdutl's hash");
    assert_eq!(snap_status(&db, None)["liveKeys"].as_u64(), Some(5));

    // NAME.json beside it: what a restore needs to choose it, without reading it.
    let meta_path = node.dest().join(format!("{name}.json"));
    assert_eq!(
        fs::metadata(&meta_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let meta: Value = serde_json::from_str(&fs::read_to_string(&meta_path).unwrap()).unwrap();
    assert_eq!(meta["backup"], name.as_str());
    assert_eq!(meta["clusterId"], cid.as_str());
    assert_eq!(meta["revision"].as_u64(), Some(rev));
    assert_eq!(meta["liveKeys"].as_u64(), Some(5));
    assert_eq!(meta["encrypted"], true);
    assert_eq!(meta["verification"], "pipe");
    assert_eq!(meta["snapshotTime"].as_str().unwrap().len(), 20, "{meta}");
    assert_eq!(
        meta["storedBytes"].as_u64(),
        Some(fs::metadata(&file).unwrap().len())
    );
    let sha = sh(r#"sha256sum < "$1" | cut -c1-64"#, &[&file]);
    assert_eq!(
        meta["sha256"],
        sha.trim(),
        "the SHA-256 of the stored bytes"
    );
    assert_eq!(
        meta["k8s"]["objects"].as_u64(),
        Some(0),
        "no /registry keys: {meta}"
    );
    assert_eq!(
        meta["save"]["revision"].as_u64(),
        Some(rev),
        "etcd-snap-save's report"
    );
    metadata_matches_backups(&node.dest(), &cid);
}

#[test]
fn identity_mode_reads_back_and_no_encrypt_stores_verified_zstd() {
    let node = Node::start();
    node.put_keys(3);
    let cid = node.cluster_id();

    // etcd-backup -r age1... --verify-identity backup.key DIR
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--verify-identity"])
        .arg(node.identity())
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr.contains("read back, decrypted"),
        "{}",
        out.stderr
    );
    let age_file = PathBuf::from(out.stdout.trim());
    let status = snap_status(&age_file, Some(&node.identity()));
    assert_eq!(status["layers"], serde_json::json!(["age", "zstd"]));
    assert_eq!(status["liveKeys"].as_u64(), Some(3));

    // Without recipients the run is refused, unless --no-encrypt says so.
    let refused = node.backup().arg(node.dest()).run();
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("--no-encrypt"),
        "{}",
        refused.stderr
    );

    node.cluster.put("/app/more", "x");
    let out = node.backup().arg("--no-encrypt").arg(node.dest()).run();
    assert!(out.success(), "{out:?}");
    let zst = PathBuf::from(out.stdout.trim());
    let name = zst.file_name().unwrap().to_str().unwrap();
    let (_, rev) = parse_name(name, &cid, "db.zst").expect(name);
    assert_eq!(rev, node.revision());
    let db = node.root.path().join("plain.db");
    sh(r#"zstd -dc "$1" > "$2""#, &[&zst, &db]);
    assert_eq!(etcdutl_status(&db)["revision"].as_u64(), Some(rev));
    assert_eq!(names(&node.dest()).len(), 2);
    metadata_matches_backups(&node.dest(), &cid);
}

#[test]
fn ssh_destination_stores_verifies_and_prunes_on_the_remote_host() {
    let node = Node::start();
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv-etcd");
    fs::create_dir(&remote_dir).unwrap();
    let dest = format!("{}@127.0.0.1:{}", sshd.user(), remote_dir.display());
    let cid = node.cluster_id();
    let old = format!("etcd-{cid}-{}-r1.db.zst.age", stamp(3 * 86400));
    fs::write(remote_dir.join(&old), "an old backup").unwrap();
    fs::write(remote_dir.join(format!("{old}.json")), "{}").unwrap();

    // etcd-backup -r age1... --ssh-opts '-p PORT -i KEY ...' --keep 1 root@127.0.0.1:/srv/etcd
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--keep", "1", "--ssh-opts"])
        .arg(ssh_opts(&sshd))
        .arg(&dest)
        .run();
    assert!(out.success(), "{out:?}\nsshd log:\n{}", sshd.log_tail());
    let stored = names(&remote_dir);
    assert_eq!(stored.len(), 1, "the old backup is pruned: {stored:?}");
    assert_eq!(
        all_names(&remote_dir),
        vec![stored[0].clone(), format!("{}.json", stored[0])],
        "the old backup's metadata is pruned with it, the new one's is written"
    );
    metadata_matches_backups(&remote_dir, &cid);
    assert_eq!(out.stdout, format!("{dest}/{}\n", stored[0]));
    assert!(out.stderr.contains(&format!("deleted {dest}/{old}")));

    // The same with a full read-back over ssh, options from the environment.
    node.cluster.put("/app/x", "1");
    let out = node
        .backup()
        .env("ETCD_BACKUP_SSH_OPTS", ssh_opts(&sshd))
        .env("ETCD_BACKUP_VERIFY_IDENTITY", node.identity())
        .args(["-r", &node.recipient])
        .arg(&dest)
        .run();
    assert!(out.success(), "{out:?}");
    let file = remote_dir.join(out.stdout.trim().rsplit('/').next().unwrap());
    let status = snap_status(&file, Some(&node.identity()));
    assert_eq!(status["revision"].as_u64(), Some(node.revision()));
    assert_eq!(names(&remote_dir).len(), 2);
}

#[test]
fn ssh_destination_under_the_remote_home_with_tilde_spaces_and_quotes() {
    // scp users write HOST:~/dir; the remote shell must expand the ~ (it did not: `cd -- '~/dir'`).
    let node = Node::start_plain();
    let sshd = Sshd::start();
    let home = run_ok(sshd.ssh_command("pwd").stdin(Stdio::null()));
    let in_home = tempfile::Builder::new()
        .prefix("etcd-backup-test-")
        .tempdir_in(home.trim())
        .unwrap();
    let rel = in_home.path().file_name().unwrap().to_str().unwrap();
    let odd = "it's a $dir; `x`";
    fs::create_dir(in_home.path().join(odd)).unwrap();
    let user = sshd.user();
    for (dest, dir) in [
        (
            format!("{user}@127.0.0.1:~/{rel}"),
            in_home.path().to_path_buf(),
        ),
        (
            format!("{user}@127.0.0.1:{rel}/{odd}"),
            in_home.path().join(odd),
        ),
        (
            format!("{user}@127.0.0.1:~/{rel}/{odd}/"),
            in_home.path().join(odd),
        ),
    ] {
        // etcd-backup --no-encrypt --keep 1 --ssh-opts '...' 'root@127.0.0.1:~/dir'
        let out = node
            .backup()
            .args(["--no-encrypt", "--keep", "1", "--ssh-opts"])
            .arg(ssh_opts(&sshd))
            .arg(&dest)
            .run();
        assert!(out.success(), "{dest}: {out:?}");
        let stored = names(&dir);
        let stored: Vec<&String> = stored.iter().filter(|n| n.starts_with("etcd-")).collect();
        assert_eq!(stored.len(), 1, "{dest}: {stored:?}");
        assert_eq!(
            out.stdout,
            format!("{}/{}\n", dest.trim_end_matches('/'), stored[0])
        );
        snap_status(&dir.join(stored[0]), None);
        std::thread::sleep(Duration::from_millis(1100));
    }
}

#[test]
fn ssh_destination_works_with_a_long_tmpdir() {
    // The ssh control socket lived in TMPDIR: past ~90 characters ssh refused it ("too long for
    // Unix domain socket") and every run exited 3, retried for ever as a transient failure.
    let node = Node::start_plain();
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv-etcd");
    fs::create_dir(&remote_dir).unwrap();
    let tmp = node.root.path().join("t".repeat(100));
    fs::create_dir(&tmp).unwrap();
    let dest = format!("{}@127.0.0.1:{}", sshd.user(), remote_dir.display());

    // TMPDIR=/a/long/path etcd-backup --no-encrypt --ssh-opts '...' root@127.0.0.1:/srv/etcd
    let out = node
        .backup()
        .env("TMPDIR", &tmp)
        .args(["--no-encrypt", "--ssh-opts"])
        .arg(ssh_opts(&sshd))
        .arg(&dest)
        .run();
    assert!(out.success(), "{out:?}");
    assert_eq!(names(&remote_dir).len(), 1);
    assert_eq!(names(&tmp), Vec::<String>::new(), "work dir left behind");
}

#[test]
fn retention_by_count_keeps_the_newest_and_touches_only_this_clusters_backups() {
    let node = Node::start();
    let cid = node.cluster_id();
    let backup = |hours_ago: i64, rev: u64| {
        format!("etcd-{cid}-{}-r{rev}.db.zst.age", stamp(hours_ago * 3600))
    };
    let older = [backup(5, 10), backup(4, 11), backup(3, 9), backup(2, 12)];
    let unrelated = [
        format!("etcd-0123abcd-{}-r1.db.zst.age", stamp(9 * 3600)),
        format!("etcd-{cid}-{}-r1.db.zst.age.bak", stamp(9 * 3600)),
        format!("etcd-{cid}-{}-r1.db", stamp(9 * 3600)),
        "notes.txt".to_string(),
    ];
    // A .part of this cluster that nobody holds the lock on: left by a killed run, removed.
    let leftover = format!("etcd-{cid}-{}.db.zst.age.part", stamp(3600));
    for n in older.iter().chain(&unrelated).chain([&leftover]) {
        fs::write(node.dest().join(n), "x").unwrap();
    }
    // Their metadata files go with them.
    for n in &older {
        fs::write(node.dest().join(format!("{n}.json")), "{}").unwrap();
    }

    // etcd-backup -r age1... --keep 3 DIR
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--keep", "3"])
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{leftover}, left by an etcd-backup that was killed"
        )),
        "{}",
        out.stderr
    );
    let new = out.stdout.trim().rsplit('/').next().unwrap().to_string();
    let mut expected: Vec<String> = unrelated.to_vec();
    expected.extend([new.clone(), older[3].clone(), older[2].clone()]);
    expected.sort();
    assert_eq!(names(&node.dest()), expected);
    let mut metadata: Vec<String> = [&new, &older[3], &older[2]]
        .iter()
        .map(|n| format!("{n}.json"))
        .collect();
    metadata.sort();
    let left: Vec<String> = all_names(&node.dest())
        .into_iter()
        .filter(|n| is_metadata(n))
        .collect();
    assert_eq!(left, metadata, "pruned with their backups");
}

#[test]
fn retention_by_age_reads_the_time_in_the_name_and_never_deletes_the_newest() {
    let node = Node::start();
    let cid = node.cluster_id();
    let day = 86400;
    let old_name_new_mtime = format!("etcd-{cid}-{}-r3.db.zst.age", stamp(40 * day));
    let new_name_old_mtime = format!("etcd-{cid}-{}-r4.db.zst", stamp(2 * day));
    let stale_part = format!("etcd-{cid}-{}.db.zst.age.part", stamp(2 * day));
    let other_cluster = format!("etcd-feedbeef-{}-r3.db.zst.age", stamp(40 * day));
    for n in [
        &old_name_new_mtime,
        &new_name_old_mtime,
        &stale_part,
        &other_cluster,
    ] {
        fs::write(node.dest().join(n), "x").unwrap();
    }
    let touch_old = node.dest().join(&new_name_old_mtime);
    program("touch")
        .args(["-d", "2001-01-01"])
        .arg(&touch_old)
        .run()
        .succeeds();

    // etcd-backup -r age1... --keep-days 30 DIR
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--keep-days", "30"])
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    let new = out.stdout.trim().rsplit('/').next().unwrap().to_string();
    let mut expected = vec![new.clone(), new_name_old_mtime.clone(), other_cluster];
    expected.sort();
    assert_eq!(names(&node.dest()), expected, "stderr: {}", out.stderr);

    // A backup named in the future (a clock that was ahead) is the newest: it stays, and so does
    // the one just stored, even with --keep 1 --keep-days 1.
    let future = format!("etcd-{cid}-{}-r2.db.zst.age", stamp(-400 * day));
    fs::write(node.dest().join(&future), "x").unwrap();
    node.cluster.put("/app/y", "1");
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--keep", "1", "--keep-days", "1"])
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    let newest = out.stdout.trim().rsplit('/').next().unwrap().to_string();
    let left = names(&node.dest());
    assert!(left.contains(&future) && left.contains(&newest), "{left:?}");
    assert!(!left.contains(&new) && !left.contains(&new_name_old_mtime));
}

#[test]
fn bad_calls_exit_2_before_anything_is_written() {
    let node = Node::start();
    for (args, says) in [
        (vec!["-r", "age1notakey"], "bad age recipient"),
        (vec!["-r", "ssh-ed25519 garbage"], "bad age recipient"),
        (vec!["--keep", "0", "--no-encrypt"], "--keep 0"),
        (vec!["--keep-days", "soon", "--no-encrypt"], "--keep-days"),
        (
            vec!["--no-encrypt", "--password", "secret"],
            "ETCDCTL_PASSWORD",
        ),
        (vec!["--no-encrypt", "--frobnicate"], "unknown option"),
        // A password in argv in any form is refused, and not repeated.
        (
            vec!["--no-encrypt", "--user", "root:secret"],
            "--user: give the user name only",
        ),
        (
            vec!["--no-encrypt", "--user=:secret"],
            "--user: give the user name only",
        ),
        (
            vec![
                "--no-encrypt",
                "--endpoints",
                "https://root:secret@127.0.0.1:2379",
            ],
            "credentials in an endpoint",
        ),
    ] {
        let out = node.backup().args(&args).arg(node.dest()).run();
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("secret"), "no secret in errors");
    }
    // A client certificate the server does not trust: etcd refuses the TLS setup.
    let tls = node.cluster.tls_files().unwrap();
    let out = node
        .backup()
        .arg("--no-encrypt")
        .arg("--cacert")
        .arg(&tls.ca)
        .arg("--cert")
        .arg(&tls.other_client_cert)
        .arg("--key")
        .arg(&tls.other_client_key)
        .arg(node.dest())
        .run();
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(names(&node.dest()), Vec::<String>::new());
}

#[test]
fn a_keep_value_beyond_shell_arithmetic_is_refused_and_deletes_nothing() {
    // Bash arithmetic wraps at 2^63: --keep 9999999999999999999 became negative (every backup but
    // the newest deleted), --keep-days 200000000000000 a date out of range after the backup.
    let node = Node::start_plain();
    let cid = node.cluster_id();
    let mut older: Vec<String> = (2..5)
        .map(|h| format!("etcd-{cid}-{}-r1.db.zst", stamp(h * 3600)))
        .collect();
    older.sort();
    for n in &older {
        fs::write(node.dest().join(n), "x").unwrap();
    }
    for args in [
        ["--keep", "9999999999999999999"],
        ["--keep-days", "200000000000000"],
        ["--keep-days", "213503982334602"],
    ] {
        // etcd-backup --no-encrypt --keep 9999999999999999999 DIR
        let out = node
            .backup()
            .arg("--no-encrypt")
            .args(args)
            .arg(node.dest())
            .run();
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(args[0]), "{args:?}: {}", out.stderr);
        assert_eq!(names(&node.dest()), older, "{args:?}");
    }
    // The largest values accepted work and delete nothing here.
    let out = node
        .backup()
        .args(["--no-encrypt", "--keep", "1000000", "--keep-days", "36500"])
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    assert_eq!(names(&node.dest()).len(), 4);
}

#[test]
fn credentials_come_from_etcdctl_variables_and_a_rejected_password_exits_2() {
    let node = Node::with(Cluster::builder(Version::V3_5).auth().start());
    node.put_keys(2);

    // ETCDCTL_USER=root ETCDCTL_PASSWORD=... etcd-backup --no-encrypt DIR
    let out = node
        .backup()
        .env("ETCDCTL_USER", "root")
        .env("ETCDCTL_PASSWORD", support::ROOT_PASSWORD)
        .arg("--no-encrypt")
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    assert!(!out.stderr.contains(support::ROOT_PASSWORD));

    let out = node
        .backup()
        .env("ETCDCTL_USER", "root")
        .env("ETCDCTL_PASSWORD", "not-the-password")
        .arg("--no-encrypt")
        .arg(node.dest())
        .run();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!out.stderr.contains("not-the-password"), "{}", out.stderr);
    assert_eq!(names(&node.dest()).len(), 1, "only the first backup");
}

/// A non-root account on a kubeadm node (the key is root's, 0600): exit 6 naming the key and
/// what to do, not a TLS failure at etcd. Runs the script as `nobody` (setpriv) from a copy in a
/// world-readable temp dir, with stand-ins for the tools that it never reaches.
#[test]
fn an_unreadable_kubeadm_key_says_so_before_reaching_etcd() {
    if !program("id").arg("-u").run().stdout.trim().eq("0") {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test switches to nobody with setpriv: run the suite as root"
        );
        eprintln!("note: not root, cannot switch to nobody: unreadable-key check not run");
        return;
    }
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let open =
        |p: &Path, mode: u32| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    for d in ["bin", "pki", "backups", "tmp"] {
        fs::create_dir(root.join(d)).unwrap();
    }
    open(root, 0o755);
    open(&root.join("bin"), 0o755);
    open(&root.join("pki"), 0o755);
    open(&root.join("backups"), 0o777);
    open(&root.join("tmp"), 0o1777);
    fs::copy(script("etcd-backup"), root.join("etcd-backup")).unwrap();
    open(&root.join("etcd-backup"), 0o755);
    for t in ["etcd-health", "etcd-snap-save", "etcd-snap-status"] {
        fs::write(root.join("bin").join(t), "#!/bin/sh\nexit 99\n").unwrap();
        open(&root.join("bin").join(t), 0o755);
    }
    for f in ["ca.crt", "server.crt", "server.key"] {
        fs::copy(node.pki().join(f), root.join("pki").join(f)).unwrap();
        open(&root.join("pki").join(f), 0o644);
    }
    open(&root.join("pki/server.key"), 0o600);

    let out = program("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            "-i",
        ])
        .arg(format!("PATH={}:/usr/bin:/bin", root.join("bin").display()))
        .arg(format!("TMPDIR={}", root.join("tmp").display()))
        .arg(root.join("etcd-backup"))
        .arg("--pki-dir")
        .arg(root.join("pki"))
        .args(["-r", &node.recipient])
        .arg(root.join("backups"))
        .run();
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stderr.contains("server.key exists but") && out.stderr.contains("run as root"),
        "{}",
        out.stderr
    );
    assert!(names(&root.join("backups")).is_empty());
}

#[test]
fn unwritable_or_missing_destination_exits_6_and_leaves_nothing() {
    let node = Node::start();
    let file = node.root.path().join("a-file");
    fs::write(&file, "x").unwrap();
    for dest in [
        file.clone(),
        file.join("backups"),
        node.root.path().join("missing"),
        PathBuf::from("/proc/self"),
    ] {
        let out = node.backup().args(["-r", &node.recipient]).arg(&dest).run();
        assert_eq!(out.code, 6, "{}: {out:?}", dest.display());
        assert_eq!(out.stdout, "");
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_full_destination_file_system_exits_6_and_leaves_nothing() {
    // A full tmpfs of its own, in a user and mount namespace (`unshare -rm`): no root needed, and
    // nothing outside the run sees it. Filled up first, so the empty .part fits but no data does.
    if !user_mount_namespace("cannot mount a full tmpfs") {
        return;
    }
    let node = Node::start_plain();
    for args in [vec!["--no-encrypt"], vec!["-r", &node.recipient]] {
        // unshare -rm sh -c 'mount -t tmpfs -o size=64k tmpfs DIR && dd if=/dev/zero of=DIR/filler;
        //   etcd-backup ARGS DIR; echo "exit $?"; ls -A DIR' _ DIR etcd-backup ARGS
        let out = node.backup_in_a_mount_namespace(
            "mount -t tmpfs -o size=64k tmpfs \"$1\" && dd if=/dev/zero of=\"$1/filler\" \
             bs=4k 2>/dev/null;",
            &node.dest(),
            &args,
        );
        assert!(out.success(), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "exit 6\nfiller\n", "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("No space left on device"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn etcd_unreachable_exits_3_and_leaves_nothing() {
    let mut node = Node::start();
    node.cluster.kill_member(0);
    let out = node.backup_age();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("cluster ID"), "{}", out.stderr);
    assert_eq!(names(&node.dest()), Vec::<String>::new());
}

#[test]
fn etcd_killed_mid_stream_exits_3_and_leaves_no_part_and_no_backup() {
    let node = Node::start_plain();
    // 8 MiB of incompressible values: more than the pipes and socket buffers hold (the stream
    // breaks after about 0.6 MiB).
    load_incompressible(&node, 0x9e37_79b9_7f4a_7c15);
    // zstd that lets the first 64 KiB through, then kills etcd, then goes on.
    let pid = node.cluster.pid(0).unwrap();
    node.fake(
        "zstd",
        &format!("{{ head -c 65536; kill -KILL {pid}; sleep 0.5; cat; }} | /usr/bin/zstd \"$@\"\n"),
    );
    let out = node.backup_age();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("etcd-snap-save failed"),
        "{}",
        out.stderr
    );
    assert_eq!(names(&node.dest()), Vec::<String>::new());
}

#[test]
fn ssh_host_unreachable_exits_3() {
    let node = Node::start();
    let sshd = Sshd::start();
    let closed = free_port();
    let opts = ssh_opts(&sshd).replace(&format!("-p {}", sshd.port()), &format!("-p {closed}"));
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--ssh-opts", &opts])
        .arg(format!("{}@127.0.0.1:/tmp", sshd.user()))
        .run();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("ssh"), "{}", out.stderr);

    // A remote directory that does not exist is the destination's problem: 6.
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--ssh-opts", &ssh_opts(&sshd)])
        .arg(format!(
            "{}@127.0.0.1:{}/missing",
            sshd.user(),
            sshd.dir().display()
        ))
        .run();
    assert_eq!(out.code, 6, "{out:?}");
}

#[test]
fn sigterm_or_sigint_mid_run_stops_the_pipe_and_removes_the_part() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let node = Node::start();
        let pidfile = node.root.path().join("zstd.pid");
        node.fake(
            "zstd",
            &format!("echo $$ > {}\nexec sleep 60\n", pidfile.display()),
        );
        let mut child = node
            .backup_cmd()
            .args(["-r", &node.recipient])
            .arg(node.dest())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(15), Duration::from_millis(20), || {
                fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
            }),
            "the pipe did not start"
        );
        let stuck: u32 = fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The last stage of the pipe creates the .part: wait for it.
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                let part = names(&node.dest());
                part.len() == 1 && part[0].ends_with(".db.zst.age.part")
            }),
            "no .part: {:?}",
            names(&node.dest())
        );

        // kill -TERM (or -INT) <etcd-backup's pid>
        program("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .run()
            .succeeds();
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no exit after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by SIG{signal}")),
            "{stderr}"
        );
        assert_eq!(names(&node.dest()), Vec::<String>::new());
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                !running(stuck)
            }),
            "the stuck pipe stage {stuck} is still running after SIG{signal}"
        );
    }
}

#[test]
fn a_rename_that_fails_is_an_io_error_not_a_refusal() {
    // The final `mv -n` failed (an I/O error): reported as "already exists" (5), which it was not.
    let node = Node::start_plain();
    node.fake(
        "mv",
        "echo \"mv: cannot move '$3' to '$4': Input/output error\" >&2\nexit 1\n",
    );
    let out = node.backup().arg("--no-encrypt").arg(node.dest()).run();
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("Input/output error"), "{}", out.stderr);
    assert!(!out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(names(&node.dest()), Vec::<String>::new());
}

#[test]
fn a_second_sigterm_during_cleanup_does_not_cut_the_cleanup_short() {
    // An impatient operator presses Ctrl-C twice, or a supervisor repeats SIGTERM: the cleanup
    // (stopping the pipe, removing the .part, here or over ssh) must still finish.
    let node = Node::start_plain();
    let tmp = node.root.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let (zstd_pid, in_rm) = (
        node.root.path().join("zstd.pid"),
        node.root.path().join("in-rm"),
    );
    node.fake(
        "zstd",
        &format!("echo $$ > {}\nexec sleep 60\n", zstd_pid.display()),
    );
    // A slow removal of the .part (as over a slow ssh link).
    node.fake(
        "rm",
        &format!(
            "case \"$*\" in *.part*) touch {}; sleep 1 ;; esac\nexec /usr/bin/rm \"$@\"\n",
            in_rm.display()
        ),
    );
    let child = node
        .backup_cmd()
        .arg("--no-encrypt")
        .arg(node.dest())
        .env("TMPDIR", &tmp)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(
        Duration::from_secs(15),
        Duration::from_millis(20),
        || fs::read_to_string(&zstd_pid).is_ok_and(|s| s.ends_with('\n'))
    ));
    // kill -TERM PID; (cleanup starts) kill -TERM PID
    let pid = child.id().to_string();
    program("kill").args(["-TERM", &pid]).run().succeeds();
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || in_rm.exists()
    ));
    program("kill").args(["-TERM", &pid]).run().succeeds();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert_eq!(names(&node.dest()), Vec::<String>::new());
    assert_eq!(names(&tmp), Vec::<String>::new(), "work dir left behind");
}

#[test]
fn a_run_in_the_same_second_as_another_is_refused_and_leaves_the_others_part_alone() {
    let node = Node::start();
    let cid = node.cluster_id();
    // Another run's .part for every second from one ago to 15 ahead: ours collides with one.
    let parts: Vec<String> = (-15..=1)
        .map(|ago| format!("etcd-{cid}-{}.db.zst.age.part", stamp(ago)))
        .collect();
    for p in &parts {
        fs::write(node.dest().join(p), "another run's data").unwrap();
    }
    // The other run is alive: it holds the lock (flock) on its .part, as etcd-backup does.
    let mut holder = Command::new("bash")
        .arg("-c")
        .arg("for f; do exec {fd}<\"$f\"; flock -n $fd || exit 1; done; echo locked; exec sleep 60")
        .arg("_")
        .args(parts.iter().map(|p| node.dest().join(p)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let out = node.backup_age();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("another etcd-backup"), "{}", out.stderr);
    let mut expected = parts.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(names(&node.dest()), expected);
    for p in &parts {
        assert_eq!(
            fs::read_to_string(node.dest().join(p)).unwrap(),
            "another run's data"
        );
    }
}

#[test]
fn corruption_in_storage_exits_4_and_leaves_no_backup() {
    // Identity mode, local: an age that flips one byte of what it encrypts.
    let node = Node::start();
    node.fake(
        "age",
        "set -o pipefail
case \" $* \" in *' -d '*|*' --decrypt '*) exec /usr/bin/age \"$@\";; esac
/usr/bin/age \"$@\" | { head -c 300; head -c 1 | LC_ALL=C tr '\\000-\\377' '\\001-\\377\\000'; cat; }
",
    );
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--verify-identity"])
        .arg(node.identity())
        .arg(node.dest())
        .run();
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("verification failed"), "{}", out.stderr);
    assert_eq!(names(&node.dest()), Vec::<String>::new());
    fs::remove_file(node.fakebin().join("age")).unwrap();

    // Pipe mode, over ssh: an ssh whose remote `exec 3>FILE; ... exec cat >&3` (the writer)
    // stores one byte changed.
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv");
    fs::create_dir(&remote_dir).unwrap();
    node.fake(
        "ssh",
        "set -o pipefail
case \"${!#}\" in
  *'exec cat >&3'*) { head -c 300; head -c 1 | LC_ALL=C tr '\\000-\\377' '\\001-\\377\\000'; cat; } | /usr/bin/ssh \"$@\" ;;
  *) exec /usr/bin/ssh \"$@\" ;;
esac
",
    );
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--ssh-opts", &ssh_opts(&sshd)])
        .arg(format!(
            "{}@127.0.0.1:{}",
            sshd.user(),
            remote_dir.display()
        ))
        .run();
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("stored bytes differ"), "{}", out.stderr);
    assert_eq!(names(&remote_dir), Vec::<String>::new());
}

/// The value of the gauge `name{cluster_id="cid"}` in a textfile-collector file.
fn gauge(metrics: &str, name: &str, cid: &str) -> Option<String> {
    let prefix = format!("{name}{{cluster_id=\"{cid}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

#[test]
fn prove_records_the_proof_beside_the_backup_and_in_the_metrics() {
    let mut node = Node::with(Cluster::builder(Version::V3_5).members(3).start());
    node.put_keys(5);
    let cid = node.cluster_id();
    let metrics = node.metrics();
    let run = |node: &Node| {
        node.backup()
            .args(["--prove", "--keep", "1", "--dial-timeout", "1s"])
            .arg("--metrics-file")
            .arg(&metrics)
            .args(["-r", &node.recipient])
            .arg(node.dest())
            .run()
    };

    // Proven: the backup, its sidecar with every member's hash, the gauges.
    let out = run(&node);
    assert!(out.success(), "etcd-backup --prove failed: {out:?}");
    let stored = names(&node.dest());
    assert_eq!(stored.len(), 2, "the backup and its sidecar: {stored:?}");
    let backup = &stored[0];
    assert_eq!(stored[1], format!("{backup}.proof.json"));
    assert_eq!(out.stdout, format!("{}/{backup}\n", node.dest().display()));
    let (_, rev) = parse_name(backup, &cid, "db.zst.age").unwrap();
    let sidecar: Value =
        serde_json::from_str(&fs::read_to_string(node.dest().join(&stored[1])).unwrap()).unwrap();
    let proof = &sidecar["proof"];
    assert_eq!(proof["verdict"], "proven", "{sidecar}");
    assert_eq!(proof["revision"].as_u64(), Some(rev), "{sidecar}");
    let members = proof["members"].as_array().unwrap();
    let mut seen: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ["m0", "m1", "m2"]);
    assert!(members
        .iter()
        .all(|m| m["hash"] == proof["hash"] && m["result"] == "equal"));
    assert!(out.stderr.contains("proof: proven at revision"), "{out:?}");
    let text = fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        gauge(&text, "etcd_backup_proof_ok", &cid).as_deref(),
        Some("1")
    );
    assert_eq!(
        gauge(&text, "etcd_backup_last_revision", &cid),
        Some(rev.to_string())
    );
    assert_eq!(
        gauge(&text, "etcd_backup_proof_divergent_members", &cid).as_deref(),
        Some("0")
    );

    // A member down: the backup is stored but unproven (exit 3 naming it), the gauge says 0,
    // and --keep 1 does not prune the proven backup.
    node.cluster.kill_member(2);
    // m2 may have led: wait until the other two have elected a leader and take writes.
    let writable = || {
        node.cluster
            .etcdctl_on(&[0, 1], None)
            .args(["--command-timeout", "2s", "put", "/app/after", "1"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        writable
    ));
    std::thread::sleep(Duration::from_millis(1100));
    let out = run(&node);
    assert_eq!(out.code, 3, "{out:?}");
    let error: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Error: "))
        .collect();
    assert_eq!(error.len(), 1, "{out:?}");
    assert!(
        error[0].contains("member m2 (") && error[0].contains("not pruned"),
        "{out:?}"
    );
    let now = names(&node.dest());
    assert_eq!(now.len(), 4, "two backups and two sidecars: {now:?}");
    let newest = now
        .iter()
        .find(|n| n.ends_with(".db.zst.age") && *n != backup)
        .unwrap();
    assert_eq!(out.stdout, format!("{}/{newest}\n", node.dest().display()));
    let sidecar: Value = serde_json::from_str(
        &fs::read_to_string(node.dest().join(format!("{newest}.proof.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["proof"]["verdict"], "unproven", "{sidecar}");
    let text = fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        gauge(&text, "etcd_backup_proof_ok", &cid).as_deref(),
        Some("0")
    );

    // The member back: proven again, and --keep 1 prunes the older backups with their sidecars.
    node.cluster.restart_member(2);
    std::thread::sleep(Duration::from_millis(1100));
    let out = run(&node);
    assert!(out.success(), "{out:?}");
    let last = names(&node.dest());
    assert_eq!(last.len(), 2, "the newest backup and its sidecar: {last:?}");
    assert_eq!(last[1], format!("{}.proof.json", last[0]));
    assert!(!last.contains(newest) && !last.contains(backup));
    let text = fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        gauge(&text, "etcd_backup_proof_ok", &cid).as_deref(),
        Some("1")
    );

    // Over ssh the sidecar is stored beside the backup on the remote host, mode 0600.
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv-etcd");
    fs::create_dir(&remote_dir).unwrap();
    let dest = format!("{}@127.0.0.1:{}", sshd.user(), remote_dir.display());
    let out = node
        .backup()
        .args(["--prove", "-r", &node.recipient, "--ssh-opts"])
        .arg(ssh_opts(&sshd))
        .arg(&dest)
        .run();
    assert!(out.success(), "{out:?}\nsshd log:\n{}", sshd.log_tail());
    let remote = names(&remote_dir);
    assert_eq!(remote.len(), 2, "{remote:?}");
    let sidecar = remote_dir.join(&remote[1]);
    assert_eq!(remote[1], format!("{}.proof.json", remote[0]));
    assert_eq!(
        fs::metadata(&sidecar).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sidecar: Value = serde_json::from_str(&fs::read_to_string(&sidecar).unwrap()).unwrap();
    assert_eq!(sidecar["proof"]["verdict"], "proven", "{sidecar}");
}

#[test]
fn help_documents_every_flag_variable_and_exit_code() {
    let out = Tool::new(script("etcd-backup")).arg("--help").run();
    assert!(out.success(), "{out:?}");
    for word in [
        "--recipient",
        "--recipients-file",
        "--no-encrypt",
        "--verify-identity",
        "--keep ",
        "--keep-days",
        "--compress-level",
        "--pki-dir",
        "--ssh-opts",
        "--dry-run",
        "--quiet",
        "--endpoints",
        "--cacert",
        "--cert",
        "--key",
        "--password-file",
        "ETCD_BACKUP_DEST",
        "ETCD_BACKUP_RECIPIENTS_FILE",
        "ETCD_BACKUP_NO_ENCRYPT",
        "ETCD_BACKUP_VERIFY_IDENTITY",
        "ETCD_BACKUP_KEEP",
        "ETCD_BACKUP_KEEP_DAYS",
        "ETCD_BACKUP_COMPRESS_LEVEL",
        "ETCD_BACKUP_PKI_DIR",
        "ETCD_BACKUP_SSH_OPTS",
        "--prove",
        "--metrics-file",
        "ETCD_BACKUP_PROVE",
        "ETCD_BACKUP_METRICS_FILE",
        "--keep-daily",
        "--keep-weekly",
        "--keep-monthly",
        "ETCD_BACKUP_KEEP_DAILY",
        "ETCD_BACKUP_KEEP_WEEKLY",
        "ETCD_BACKUP_KEEP_MONTHLY",
        "s3://BUCKET/PREFIX",
        "NAME.json",
        "etcd_backup_last_success_timestamp_seconds",
        "\n  1  --prove",
        "ETCDCTL_PASSWORD",
        "ServerAliveInterval=15",
        "--user NAME:PASSWORD",
        "TMPDIR",
        "\n  2  usage",
        "\n  3  transient",
        "\n  4  integrity",
        "\n  5  refused",
        "\n  6  local I/O",
        "\n130  interrupted (SIGINT), 143 terminated (SIGTERM)",
    ] {
        assert!(out.stdout.contains(word), "--help lacks {word:?}");
    }
}

#[test]
fn dry_run_names_what_pruning_would_delete_and_changes_nothing() {
    let node = Node::start();
    let cid = node.cluster_id();
    // An empty destination: nothing to prune.
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--keep", "2", "--dry-run"])
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    assert!(out.stderr.contains("would store"), "{}", out.stderr);
    assert_eq!(names(&node.dest()), Vec::<String>::new());

    let old = format!("etcd-{cid}-{}-r1.db.zst.age", stamp(90 * 86400));
    fs::write(node.dest().join(&old), "x").unwrap();
    let out = node
        .backup()
        .args(["-r", &node.recipient, "--keep-days", "30", "--dry-run"])
        .arg(node.dest())
        .run();
    assert!(out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("would delete {}/{old}", node.dest().display())),
        "{}",
        out.stderr
    );
    assert_eq!(names(&node.dest()), vec![old]);
}

/// The `KEY=VALUE` lines of a systemd environment file (comments skipped, quotes removed).
fn env_file(path: &Path) -> BTreeMap<String, String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

/// The values of `Key=` in a unit file, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

/// `systemd-analyze`, which `scripts/setup` installs (package `systemd`).
fn systemd_analyze() -> Tool {
    let path = Path::new("/usr/bin/systemd-analyze");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (it installs systemd)",
        path.display()
    );
    program(path)
}

/// The units copied into `dir` with `ExecStart` pointing at this checkout's script (verify
/// checks that the program exists).
fn units_in(dir: &Path) -> PathBuf {
    let service = fs::read_to_string(example("systemd/etcd-backup.service")).unwrap();
    let service = service.replace(
        "ExecStart=/usr/local/bin/etcd-backup",
        &format!("ExecStart={}", script("etcd-backup").display()),
    );
    fs::write(dir.join("etcd-backup.service"), service).unwrap();
    fs::copy(
        example("systemd/etcd-backup.timer"),
        dir.join("etcd-backup.timer"),
    )
    .unwrap();
    dir.join("etcd-backup.service")
}

#[test]
fn systemd_units_verify_cleanly_and_the_service_is_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let service = units_in(dir.path());
    let out = systemd_analyze()
        .arg("verify")
        .arg(&service)
        .arg(dir.path().join("etcd-backup.timer"))
        .run();
    assert!(out.success() && out.stderr.is_empty(), "{out:?}");

    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&service)
        .run();
    assert!(out.success(), "{out:?}");
    let level: f64 = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for etcd-backup.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{}", out.stdout));
    assert!(level <= 2.0, "exposure {level}:\n{}", out.stdout);

    let unit = fs::read_to_string(example("systemd/etcd-backup.service")).unwrap();
    let env = env_file(&example("systemd/etcd-backup.env"));
    let rw = unit_values(&unit, "ReadWritePaths").join(" ");
    assert!(
        rw.contains(&env["ETCD_BACKUP_DEST"]),
        "ReadWritePaths= ({rw}) must allow ETCD_BACKUP_DEST ({})",
        env["ETCD_BACKUP_DEST"]
    );
    // The example metrics file (commented out in the env file) is writable, by rename: its
    // directory is listed.
    let env_text = fs::read_to_string(example("systemd/etcd-backup.env")).unwrap();
    let metrics = env_text
        .lines()
        .find_map(|l| l.strip_prefix("#ETCD_BACKUP_METRICS_FILE="))
        .expect("the env file shows ETCD_BACKUP_METRICS_FILE");
    let metrics_dir = Path::new(metrics).parent().unwrap().to_str().unwrap();
    assert!(
        unit_values(&unit, "ReadWritePaths")
            .iter()
            .any(|p| p.trim_start_matches('-') == metrics_dir),
        "ReadWritePaths= ({rw}) must allow {metrics_dir}"
    );
    // Object storage credentials: a separate, optional environment file, none in the unit.
    assert!(unit_values(&unit, "EnvironmentFile")
        .iter()
        .any(|f| f == "-/etc/etcd-backup/object-store.env"));
    assert!(
        !unit.contains("AWS_SECRET_ACCESS_KEY=") && !unit.contains("AZURE_STORAGE_ACCOUNT_KEY=")
    );
    let timer = fs::read_to_string(example("systemd/etcd-backup.timer")).unwrap();
    assert_eq!(unit_values(&timer, "OnCalendar"), ["*-*-* 03:17:00"]);
    // No core dumps: the tools hold passwords, decrypted pages and age identities in memory.
    assert_eq!(unit_values(&unit, "LimitCORE"), ["0"]);
}

#[test]
fn systemd_exec_start_with_the_example_environment_file_backs_up() {
    let node = Node::start();
    let unit = fs::read_to_string(example("systemd/etcd-backup.service")).unwrap();
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    let mut argv: Vec<String> = exec[0].split_whitespace().map(str::to_string).collect();
    assert_eq!(argv[0], "/usr/local/bin/etcd-backup");
    argv[0] = script("etcd-backup").display().to_string();
    // The settings, and (optional, '-') the object storage credentials, which the example does
    // not use: every active line of object-store.env is a comment.
    assert_eq!(
        unit_values(&unit, "EnvironmentFile"),
        [
            "/etc/etcd-backup/etcd-backup.env",
            "-/etc/etcd-backup/object-store.env"
        ]
    );
    assert!(env_file(&example("systemd/object-store.env")).is_empty());

    // The example environment file, with this machine's paths in place of the node's.
    let mut env = env_file(&example("systemd/etcd-backup.env"));
    let recipients = node.root.path().join("recipients");
    fs::write(&recipients, format!("{}\n", node.recipient)).unwrap();
    for (key, value) in [
        ("ETCD_BACKUP_DEST", node.dest().display().to_string()),
        (
            "ETCD_BACKUP_RECIPIENTS_FILE",
            recipients.display().to_string(),
        ),
        ("ETCD_BACKUP_PKI_DIR", node.pki().display().to_string()),
        ("ETCDCTL_ENDPOINTS", format!("https://{}", node.endpoint())),
    ] {
        assert!(env.contains_key(key), "the example sets {key}");
        env.insert(key.to_string(), value);
    }
    // Environment= lines of the unit (TMPDIR=%t/etcd-backup), with %t a runtime directory here.
    let runtime = node.root.path().join("run");
    fs::create_dir_all(runtime.join("etcd-backup")).unwrap();
    for line in unit_values(&unit, "Environment") {
        let (k, v) = line.split_once('=').unwrap();
        env.insert(
            k.to_string(),
            v.replace("%t", &runtime.display().to_string()),
        );
    }
    let cid = node.cluster_id();
    let old = format!("etcd-{cid}-{}-r1.db.zst.age", stamp(60 * 86400));
    fs::write(node.dest().join(&old), "x").unwrap();

    // As systemd runs it: a clean environment, PATH, the file's variables, umask from UMask=.
    let mut cmd = Command::new(&argv[0]);
    cmd.env_clear();
    let out = Tool::from_command(cmd)
        .args(&argv[1..])
        .env("PATH", path_with_tools())
        .envs(&env)
        .run();
    assert!(out.success(), "{out:?}");
    let left = names(&node.dest());
    assert_eq!(
        left.len(),
        1,
        "ETCD_BACKUP_KEEP_DAYS=30 pruned {old}: {left:?}"
    );
    assert!(
        parse_name(&left[0], &cid, "db.zst.age").is_some(),
        "{left:?}"
    );
    assert_eq!(names(&runtime.join("etcd-backup")), Vec::<String>::new());
}

#[test]
fn a_link_or_fifo_planted_at_the_part_name_is_never_followed_nor_written() {
    // The .part's name is predictable (cluster ID and the second). The script created it, then
    // reopened it by name for writing: a link put there in between sent root's backup into the
    // link's target. A stand-in `mkfifo` (which runs between the checks and the pipe) plants, at
    // the name the run uses, a link to a victim file or a FIFO, replacing a .part if one was
    // created already. The writer must refuse (exit 5), follow nothing, write nothing, and
    // leave what it did not create alone. A stand-in `date` pins the second in the name (the
    // local run chooses it after mkfifo, the remote one before), so the plant is at the very
    // name the run picks however long each step takes on a loaded machine.
    let node = Node::start_plain();
    let cid = node.cluster_id();
    let pinned = stamp(0);
    node.fake(
        "date",
        &format!(
            "if [[ \"$*\" == '-u +%Y%m%dT%H%M%SZ' ]]; then echo {pinned}; else exec /usr/bin/date \"$@\"; fi\n"
        ),
    );
    let part = format!("etcd-{cid}-{pinned}.db.zst.part");
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv");
    fs::create_dir(&remote_dir).unwrap();
    let victim = node.root.path().join("victim");
    for (kind, remote) in [("link", false), ("fifo", false), ("link", true)] {
        fs::write(&victim, "precious").unwrap();
        let dir = if remote {
            remote_dir.clone()
        } else {
            node.dest()
        };
        let plant = match kind {
            "link" => format!("ln -s {} \"$n\"", victim.display()),
            _ => "/usr/bin/mkfifo \"$n\"".to_string(),
        };
        node.fake(
            "mkfifo",
            &format!(
                "n={dir}/{part}\nrm -f \"$n\"; {plant}\nexec /usr/bin/mkfifo \"$@\"\n",
                dir = dir.display(),
            ),
        );
        let mut cmd = node.backup();
        cmd.arg("--no-encrypt");
        if remote {
            cmd.args(["--ssh-opts", &ssh_opts(&sshd)]).arg(format!(
                "{}@127.0.0.1:{}",
                sshd.user(),
                remote_dir.display()
            ));
        } else {
            cmd.arg(node.dest());
        }
        // etcd-backup --no-encrypt DIR (or HOST:DIR), with the plant in place of mkfifo; a run
        // that hangs on the plant is killed and fails the test.
        let out = cmd
            .timeout(Duration::from_secs(60))
            .run()
            .named(format!("{kind} (remote: {remote})"));
        out.fails(5).stderr_contains("refused, not followed");
        assert_eq!(out.stdout, "", "no backup is reported");
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "precious",
            "{kind}: victim written"
        );
        // Only the plant is left: no backup, nothing of ours, the plant not removed.
        let left = names(&dir);
        assert_eq!(left, std::slice::from_ref(&part), "{kind}");
        for n in &left {
            let meta = fs::symlink_metadata(dir.join(n)).unwrap();
            match kind {
                "link" => assert!(meta.file_type().is_symlink(), "{n}"),
                _ => assert!(
                    std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()),
                    "{n}"
                ),
            }
            fs::remove_file(dir.join(n)).unwrap();
        }
    }
}

#[test]
fn tool_and_script_errors_never_repeat_a_password() {
    // `--user ':secret'` printed `no password for user ":secret"`, and an endpoint with
    // user:password@ was printed whole, by the tools and so by etcd-backup.
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-pw";
    let url = format!("http://root:{secret}@127.0.0.1:2379");
    let user = format!(":{secret}");
    for t in ["etcd-health", "etcd-snap-save"] {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
        let cases: [Case; 4] = [
            (&["--user", &user], &[]),
            (&["--endpoints", &url], &[]),
            (&[], &[("ETCDCTL_USER", &user)]),
            (&[], &[("ETCDCTL_ENDPOINTS", &url)]),
        ];
        for (args, env) in cases {
            let mut cmd = ours(t);
            cmd.args(args).envs(env.iter().copied());
            if t == "etcd-snap-save" {
                cmd.arg(dir.path().join("snap.db"));
            }
            let out = cmd.run();
            assert_eq!(out.code, 2, "{t} {args:?} {env:?}: {out:?}");
            assert!(out.stderr.starts_with("Error: "), "{t}: {}", out.stderr);
            assert!(
                !out.stderr.contains(secret),
                "{t} {args:?} {env:?}: {}",
                out.stderr
            );
            assert!(!out.stdout.contains(secret));
        }
    }
    // etcd-backup with the endpoint in ETCDCTL_ENDPOINTS: etcd-health's reason is passed on.
    let out = Tool::new(script("etcd-backup"))
        .env("PATH", path_with_tools())
        .env("ETCDCTL_ENDPOINTS", &url)
        .args(["--no-encrypt", "--pki-dir"])
        .arg(dir.path())
        .arg("--cacert")
        .arg(dir.path().join("none"))
        .arg(dir.path())
        .run();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!out.stderr.contains(secret), "{}", out.stderr);
}

/// The options of every `ssh` call a stand-in recorded, one call a line, up to `--`.
fn recorded_ssh_calls(log: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(log)
        .unwrap()
        .split("\u{1e}\n")
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.lines().map(str::to_string).collect())
        .collect()
}

#[test]
fn ssh_gets_keepalives_by_default_and_ssh_opts_override_them() {
    let node = Node::start_plain();
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv");
    fs::create_dir(&remote_dir).unwrap();
    let log = node.root.path().join("ssh-calls");
    // An ssh that records its options (up to `--`), then runs the real one.
    node.fake(
        "ssh",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = -- ] && break; printf '%s\\n' \"$a\"; done >>{log}\nprintf '\\036\\n' >>{log}\nexec /usr/bin/ssh \"$@\"\n",
            log = log.display()
        ),
    );
    let dest = format!("{}@127.0.0.1:{}", sshd.user(), remote_dir.display());
    for (extra, interval, count) in [("", "15", "4"), (" -o ServerAliveInterval=5", "5", "4")] {
        let _ = fs::remove_file(&log);
        // etcd-backup --no-encrypt --ssh-opts '... [-o ServerAliveInterval=5]' HOST:DIR
        let out = node
            .backup()
            .args(["--no-encrypt", "--ssh-opts"])
            .arg(format!("{}{extra}", ssh_opts(&sshd)))
            .arg(&dest)
            .run();
        assert!(out.success(), "{out:?}");
        let calls = recorded_ssh_calls(&log);
        assert!(calls.len() >= 4, "{calls:?}");
        for call in calls {
            let joined = call.join(" ");
            assert!(
                joined.contains("-o ServerAliveInterval=15 -o ServerAliveCountMax=4"),
                "{joined}"
            );
            // What ssh makes of them: the first value of an option wins.
            let g = program("/usr/bin/ssh")
                .arg("-G")
                .args(&call)
                .arg("127.0.0.1")
                .run()
                .succeeds()
                .stdout
                .clone();
            assert!(
                g.contains(&format!("\nserveraliveinterval {interval}\n")),
                "{joined}: {g}"
            );
            assert!(
                g.contains(&format!("\nserveralivecountmax {count}\n")),
                "{joined}: {g}"
            );
        }
        node.cluster.put("/app/next", "1");
        std::thread::sleep(Duration::from_millis(1100));
    }
}

/// The pid and every descendant of `pid` (from `/proc/*/stat`).
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

#[test]
fn a_peer_that_stops_answering_ends_the_run_with_exit_3_within_the_keepalive_bound() {
    // sshd and its session processes stopped (SIGSTOP) mid-stream: the TCP connection stays up
    // but nothing answers. Without keepalives ssh waited for ever; with them it gives up after
    // ServerAliveInterval x ServerAliveCountMax (1 s x 2 here, set through --ssh-opts).
    let node = Node::start_plain();
    let sshd = Sshd::start();
    let remote_dir = sshd.dir().join("srv");
    fs::create_dir(&remote_dir).unwrap();
    let mark = node.root.path().join("streaming");
    // zstd that passes 100 bytes on, says so, then trickles for as long as the pipe lasts.
    node.fake(
        "zstd",
        &format!(
            "/usr/bin/zstd \"$@\" | {{ head -c 100; touch {}; while sleep 0.2; do printf x; done; }}\n",
            mark.display()
        ),
    );
    let opts = ssh_opts(&sshd).replace("ConnectTimeout=10", "ConnectTimeout=3")
        + " -o ServerAliveInterval=1 -o ServerAliveCountMax=2";
    let mut child = node
        .backup_cmd()
        .args(["--no-encrypt", "--ssh-opts", &opts])
        .arg(format!(
            "{}@127.0.0.1:{}",
            sshd.user(),
            remote_dir.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    stream_started(&mark, "the ssh run");
    let frozen = process_tree(sshd.pid().unwrap());
    for p in &frozen {
        let _ = Command::new("kill")
            .args(["-STOP", &p.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    for p in &frozen {
        let _ = Command::new("kill")
            .args(["-CONT", &p.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status =
        status.unwrap_or_else(|| panic!("still running 40 s after sshd stopped: {stderr}"));
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("ssh "), "{stderr}");
    assert_eq!(out.stdout, b"");
    eprintln!("exit 3 {took:.1?} after sshd stopped");
    // Keepalive bound (2 s) + the cleanup's reconnection attempt (ConnectTimeout=3) + slack.
    assert!(took < Duration::from_secs(25), "{took:?}");
}

/// 8 MiB of incompressible values in `node`'s etcd: more than the pipes and zstd's buffers
/// hold, so a stalled stage keeps every stage before it alive and blocked.
/// `seed` starts the xorshift generator of the values.
fn load_incompressible(node: &Node, mut seed: u64) {
    let values: Vec<(String, Vec<u8>)> = (0..16)
        .map(|i| {
            let v: Vec<u8> = (0..512 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            (format!("/big/{i}"), v)
        })
        .collect();
    node.cluster.gateway().put_all(values, None);
}

/// Waits (20 s at most) for `mark`, which a stand-in creates once the stream of the run `what`
/// is under way.
#[track_caller]
fn stream_started(mark: &Path, what: &str) {
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
            mark.exists()
        }),
        "{what}: the stream did not start"
    );
}

/// The names in `dir` that start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn sigkill_of_the_script_kills_its_pipe_and_the_next_run_removes_the_leftovers() {
    // `kill -9 PID` (only the script) and `timeout -s KILL` (the script's process group): no
    // trap runs. The pipe (etcd-snap-save, tee, zstd, age, tee, writer, the in-pipe check) ran
    // in its own process group to the end and left a .part and a work dir. Now every stage must
    // be gone within a few seconds, and the next run removes the .part and the work dir.
    let node = Node::start_plain();
    load_incompressible(&node, 0x2545_f491_4f6c_dd1d);
    let tmp = node.root.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let mark = node.root.path().join("streaming");
    for how in ["kill -9", "timeout -s KILL"] {
        let _ = fs::remove_file(&mark);
        // zstd whose output stalls for 60 s after the first 4 KiB: the stream is slow enough.
        node.fake(
            "zstd",
            &format!(
                "/usr/bin/zstd \"$@\" | {{ head -c 4096; touch {}; sleep 60; cat; }}\n",
                mark.display()
            ),
        );
        let mut cmd = if how == "kill -9" {
            node.backup_cmd()
        } else {
            // timeout -s KILL 4 etcd-backup ...
            let mut c = node.with_backup_env(Command::new("timeout"));
            c.args(["-s", "KILL", "4"]).arg(script("etcd-backup"));
            c
        };
        let mut child = cmd
            .args(["-r", &node.recipient])
            .arg(node.dest())
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        stream_started(&mark, how);
        std::thread::sleep(Duration::from_millis(300));
        // The script (or timeout) and everything it started, the stages among them.
        let tree = process_tree(child.id());
        let stages: Vec<String> = tree
            .iter()
            .filter_map(|p| fs::read_to_string(format!("/proc/{p}/comm")).ok())
            .map(|c| c.trim().to_string())
            .collect();
        for stage in ["etcd-snap-save", "zstd", "age", "tee", "etcd-snap-statu"] {
            assert!(
                stages.iter().any(|c| c == stage),
                "{how}: no {stage} in {stages:?}"
            );
        }
        if how == "kill -9" {
            program("kill")
                .args(["-KILL", &child.id().to_string()])
                .run()
                .succeeds();
        }
        let status = child.wait().unwrap();
        let killed = Instant::now();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{how}: {status:?}"
        );
        let survived = || {
            tree.iter()
                .copied()
                .filter(|&p| running(p))
                .collect::<Vec<_>>()
        };
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                survived().is_empty()
            }),
            "{how}: still running 5 s after SIGKILL: {:?}",
            survived()
                .iter()
                .map(|p| fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
                .collect::<Vec<_>>()
        );
        eprintln!(
            "{how}: {} processes gone {:.1?} after SIGKILL",
            tree.len(),
            killed.elapsed()
        );
        // What the killed run left: a partial .part and its work dir.
        let parts = named(&node.dest(), "etcd-");
        assert_eq!(parts.len(), 1, "{how}: {parts:?}");
        assert!(parts[0].ends_with(".db.zst.age.part"), "{how}: {parts:?}");
        assert_eq!(named(&tmp, "etcd-backup.").len(), 1, "{how}");

        next_run_removes_the_leftovers(&node, &tmp, how);
    }
}

/// After a killed run left a `.part` and a work dir in `tmp`: the next run, with the real zstd,
/// succeeds, says it removed both, and leaves one backup (removed here for the next round).
#[track_caller]
fn next_run_removes_the_leftovers(node: &Node, tmp: &Path, how: &str) {
    fs::remove_file(node.fakebin().join("zstd")).unwrap();
    node.backup()
        .args(["-r", &node.recipient])
        .arg(node.dest())
        .env("TMPDIR", tmp)
        .run()
        .named(how)
        .succeeds()
        .stderr_contains("left by an etcd-backup that was killed")
        .stderr_contains("the work directory of an etcd-backup that was killed");
    let left = names(&node.dest());
    assert_eq!(left.len(), 1, "{how}: {left:?}");
    assert!(left[0].ends_with(".db.zst.age"), "{how}: {left:?}");
    assert_eq!(names(tmp), Vec::<String>::new(), "{how}: work dirs left");
    fs::remove_file(node.dest().join(&left[0])).unwrap();
}

#[test]
fn a_link_at_a_part_name_of_this_cluster_is_never_pruned_nor_followed() {
    // Pruning the .parts of killed runs opens and removes only regular files of this user: a
    // link at such a name (here to a victim file) is neither followed nor removed.
    let node = Node::start_plain();
    let cid = node.cluster_id();
    let victim = node.root.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let link = node
        .dest()
        .join(format!("etcd-{cid}-{}.db.zst.part", stamp(3600)));
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = node.backup().arg("--no-encrypt").arg(node.dest()).run();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn two_runs_started_together_one_succeeds_the_other_exits_5_every_time() {
    // The winner is held in its stand-in zstd (the first zstd of a round, after it claimed and
    // locked its .part) until the other run has exited: the two always overlap, however the
    // machine schedules them, and a loser that never met the lock would fail the test.
    let node = Node::start_plain();
    let gate = node.root.path().join("gate");
    fs::create_dir(&gate).unwrap();
    let fifo = gate.join("fifo");
    let taken = gate.join("taken");
    assert!(program("mkfifo").arg(&fifo).run().success());
    node.fake(
        "zstd",
        &format!(
            "if mkdir {taken} 2>/dev/null; then cat {fifo} >/dev/null; fi\nexec /usr/bin/zstd \"$@\"\n",
            taken = taken.display(),
            fifo = fifo.display()
        ),
    );
    let started = Instant::now();
    for round in 0..20 {
        let _ = fs::remove_dir(&taken);
        let spawn = || {
            node.backup_cmd()
                .arg("--no-encrypt")
                .arg(node.dest())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b) = (spawn(), spawn());
        // Until one run has exited; then the one held at the gate (if any) goes on.
        loop {
            let a_done = a.try_wait().unwrap().is_some();
            let b_done = b.try_wait().unwrap().is_some();
            if (a_done && b_done) || ((a_done || b_done) && taken.exists()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if taken.exists() {
            // Opening blocks until the gated zstd opens its end; closing lets it go on.
            fs::write(&fifo, "go\n").unwrap();
        }
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut codes = [a.status.code(), b.status.code()];
        codes.sort();
        let stderr = format!(
            "{}\n---\n{}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        assert_eq!(codes, [Some(0), Some(5)], "round {round}: {stderr}");
        let loser = if a.status.code() == Some(5) { &a } else { &b };
        let loser_err = String::from_utf8_lossy(&loser.stderr);
        let errors: Vec<&str> = loser_err
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .collect();
        assert_eq!(errors.len(), 1, "round {round}: {loser_err}");
        assert!(
            errors[0].contains("another etcd-backup"),
            "round {round}: {loser_err}"
        );
        let left = names(&node.dest());
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
        assert!(left[0].ends_with(".db.zst"), "round {round}: {left:?}");
        // The next round may get the same name (same second, same revision): clear it and its
        // metadata, which the winner wrote and the loser did not touch.
        fs::remove_file(node.dest().join(&left[0])).unwrap();
        fs::remove_file(node.dest().join(format!("{}.json", left[0]))).unwrap();
    }
    eprintln!("20 rounds in {:.1?}", started.elapsed());
}

#[test]
fn a_part_that_cannot_be_removed_from_a_read_only_destination_is_named_in_the_error() {
    // The destination turns read-only under the run (ext4's errors=remount-ro, a storage
    // failure): the .part cannot be removed, and the one error line says so. A bind mount of
    // its own in a user and mount namespace (`unshare -rm`); a stand-in `rm` remounts it
    // read-only just before the cleanup's real rm; a stand-in zstd fails the pipe.
    if !user_mount_namespace("cannot mount a read-only destination") {
        return;
    }
    let node = Node::start_plain();
    let dest = node.dest();
    node.fake(
        "zstd",
        "head -c 1000 >/dev/null; echo 'zstd: broken' >&2; exit 1\n",
    );
    node.fake(
        "rm",
        &format!(
            "case \"$*\" in *.part*) mount -o remount,bind,ro {} ;; esac\nexec /usr/bin/rm \"$@\"\n",
            dest.display()
        ),
    );
    let out =
        node.backup_in_a_mount_namespace("mount --bind \"$1\" \"$1\" &&", &dest, &["--no-encrypt"]);
    assert!(out.success(), "{out:?}");
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("exit 6"), "{}", out.stderr);
    let part = lines.next().unwrap_or_default().to_string();
    assert!(part.ends_with(".db.zst.part"), "{}", out.stdout);
    // etcd-snap-save's own line comes first (its reader, zstd, went away); the script's last.
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: ")
            && last.contains("zstd failed")
            && last.contains(&format!(
                "{}/{part} could not be removed (Read-only file system): it is incomplete and unverified, remove it by hand",
                dest.display()
            )),
        "{}",
        out.stderr
    );
    // --help says the same.
    let help = node.backup().arg("--help").run().stdout;
    assert!(help.contains("could not be removed (REASON)"), "{help}");
}
