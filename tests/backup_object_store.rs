//! `scripts/etcd-backup` to object storage (through `etcd-snap-store`), its metadata, its
//! grandfather-father-son retention and its metrics, and restores from a URL, against real
//! servers on loopback: `rclone serve s3` (and moto for one round) and a real etcd 3.5.
//!
//! Corruption "behind our back" is real: a stand-in `etcd-snap-store` first in `PATH` rewrites
//! the stored object in the rclone server's directory just before the real tool reads it back.
//! Pre-populated backups of several dates are written straight into that directory (with their
//! `.sha256` and `.json` companions, as `etcd-snap-store put` and etcd-backup leave them).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use etcd_snap_e2e::support::{self, free_port, run_ok, Cluster, Run, S3Server, Tool, Version};
use etcd_snap_e2e::{path_with_tools, program, tool, Node};
use serde_json::Value;

/// The key prefix the backups go under.
const PREFIX: &str = "etcd/prod";

/// A node with a plain-HTTP etcd (the shared [`Node`]), checked to have etcd-snap-store.
fn start_node() -> Node {
    assert!(
        tool("etcd-snap-store").is_file(),
        "etcd-snap-store is missing: run `cargo build --workspace --bins` first"
    );
    Node::start_plain()
}

/// [`Node::backup`] with the S3 server's variables (`env`); nothing inherited from `AWS_*`.
fn backup_to(node: &Node, env: &[(String, String)]) -> Tool {
    let mut cmd = node.backup_cmd();
    clean_env(&mut cmd);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    Tool::from_command(cmd)
}

/// Removes inherited `ETCDCTL_*`/`ETCD_*` and `AWS_*` variables: a developer's shell cannot
/// change what the script does nor where it stores.
fn clean_env(cmd: &mut Command) {
    for k in support::scrubbed_vars() {
        cmd.env_remove(k);
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
}

/// `etcd-snap-store` with the server's variables.
fn store(env: &[(String, String)]) -> Tool {
    let mut cmd = Command::new(tool("etcd-snap-store"));
    clean_env(&mut cmd);
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    Tool::from_command(cmd)
}

/// `bash -c 'set -euo pipefail; SCRIPT' _ ARGS...` with the tools in `PATH` and `env`.
fn sh(script: &str, args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new("bash");
    clean_env(&mut cmd);
    cmd.env("PATH", path_with_tools())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .arg("_")
        .args(args)
        .stdin(Stdio::null());
    Tool::from_command(cmd).run()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `date -u -d @SECS +FORMAT`.
fn date(secs: i64, format: &str) -> String {
    program("date")
        .args(["-u", "-d", &format!("@{secs}"), &format!("+{format}")])
        .run()
        .succeeds()
        .stdout
        .trim()
        .to_string()
}

/// The name time of a backup taken `days` days ago at `hh`:00 UTC (so two of the same day are
/// on the same calendar day whatever time the test runs).
fn stamp_days_ago(days: i64, hh: u32) -> String {
    format!("{}T{hh:02}0000Z", date(now_secs() - days * 86400, "%Y%m%d"))
}

/// Writes a backup object with its `.sha256` and (when `complete`) its `.json`, straight into
/// the rclone server's bucket directory.
fn plant(s3: &S3Server, name: &str, complete: bool) {
    let dir = s3.bucket_dir().unwrap().join(PREFIX);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), b"an older backup").unwrap();
    let sha = sh(
        "sha256sum < \"$1\" | cut -c1-64",
        &[dir.join(name).to_str().unwrap()],
        &[],
    );
    fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{}  {name}\n", sha.stdout.trim()),
    )
    .unwrap();
    if complete {
        fs::write(
            dir.join(format!("{name}.json")),
            format!("{{\"format\":\"etcd-backup-metadata/1\",\"backup\":\"{name}\"}}"),
        )
        .unwrap();
    }
}

/// The keys under PREFIX/ on the server, relative to it.
fn keys(s3: &S3Server) -> BTreeSet<String> {
    s3.keys()
        .into_iter()
        .filter_map(|k| k.strip_prefix(&format!("{PREFIX}/")).map(str::to_string))
        .collect()
}

/// The value of `NAME{cluster_id="CID"}` in a textfile-collector file.
fn gauge(metrics: &str, name: &str, cid: &str) -> Option<String> {
    let prefix = format!("{name}{{cluster_id=\"{cid}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

/// Which of `names` (backups of one cluster, `etcd-<cid>-<stamp>-r<rev>.<ext>`) retention keeps
/// with `--keep-daily D --keep-weekly W --keep-monthly M`, written from the documented rules
/// (the newest of each of the N most recent UTC days / ISO weeks / months that have a backup,
/// and the newest always), independently of etcd-snap-store.
fn gfs_keeps(names: &[String], daily: usize, weekly: usize, monthly: usize) -> BTreeSet<String> {
    // Newest first by the time in the name (all revisions in these names grow with time).
    let mut sorted: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.split('-').nth(2).unwrap().to_string(), n.clone()))
        .collect();
    sorted.sort_by(|a, b| b.cmp(a));
    let week = |stamp: &str| {
        let iso = format!(
            "{}-{}-{} {}:{}:{}",
            &stamp[..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        );
        program("date")
            .args(["-u", "-d", &iso, "+%G-%V"])
            .run()
            .succeeds()
            .stdout
            .trim()
            .to_string()
    };
    let mut keep = BTreeSet::new();
    keep.insert(sorted[0].1.clone());
    // Day, ISO week, month of a name's time.
    let period = |kind: u8, s: &str| match kind {
        0 => s[..8].to_string(),
        1 => week(s),
        _ => s[..6].to_string(),
    };
    for (n, kind) in [(daily, 0u8), (weekly, 1), (monthly, 2)] {
        let mut seen = Vec::new();
        for (stamp, name) in &sorted {
            let p = period(kind, stamp);
            if seen.last() == Some(&p) {
                continue;
            }
            if seen.len() == n {
                break;
            }
            seen.push(p);
            keep.insert(name.clone());
        }
    }
    keep
}

#[test]
fn backup_to_s3_is_verified_has_its_metadata_and_metrics_and_restores_from_the_url() {
    let node = start_node();
    let s3 = S3Server::rclone();
    for i in 0..20 {
        node.cluster.put(
            &format!("/registry/configmaps/default/cm{i}"),
            &"v".repeat(100),
        );
    }
    node.cluster.put("/app/x", "1");
    let cid = node.cluster_id();
    let dest = s3.url(PREFIX);

    // etcd-backup -r age1... --metrics-file F s3://bucket/etcd/prod
    let out = backup_to(&node, &s3.env())
        .args(["-r", &node.recipient, "--metrics-file"])
        .arg(node.metrics())
        .arg(&dest)
        .run();
    assert!(out.success(), "{out:?}\n{}", s3.log_tail());
    let url = out.stdout.trim().to_string();
    let name = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(url, format!("{dest}/{name}"), "stdout is the object's URL");
    let rev: u64 = name
        .strip_prefix(&format!("etcd-{cid}-"))
        .and_then(|r| r.strip_suffix(".db.zst.age"))
        .and_then(|r| r.split_once("-r"))
        .map(|(_, r)| r.parse().unwrap())
        .unwrap_or_else(|| panic!("{name} is not etcd-{cid}-<time>-r<rev>.db.zst.age"));
    assert_eq!(
        keys(&s3),
        [
            name.clone(),
            format!("{name}.json"),
            format!("{name}.sha256")
        ]
        .into_iter()
        .collect(),
        "the backup, its checksum and its metadata, nothing else"
    );

    // The metadata: what a restore needs to choose, without downloading the backup.
    let stored = s3.read_object(&format!("{PREFIX}/{name}"));
    let meta: Value =
        serde_json::from_slice(&s3.read_object(&format!("{PREFIX}/{name}.json"))).unwrap();
    assert_eq!(meta["backup"], name.as_str());
    assert_eq!(meta["clusterId"], cid.as_str());
    assert_eq!(meta["revision"].as_u64(), Some(rev), "{meta}");
    assert_eq!(meta["storedBytes"].as_u64(), Some(stored.len() as u64));
    let sha = sh(
        "etcd-snap-store cat \"$1\" | sha256sum | cut -c1-64",
        &[&url],
        &s3.env(),
    );
    assert_eq!(meta["sha256"], sha.stdout.trim(), "{meta}");
    assert_eq!(meta["encrypted"], true);
    assert_eq!(meta["liveKeys"].as_u64(), Some(21));
    assert_eq!(meta["k8s"]["objects"].as_u64(), Some(20), "{meta}");
    assert_eq!(meta["save"]["revision"].as_u64(), Some(rev));
    assert!(meta["storageVersion"].is_null(), "3.5 has none: {meta}");
    // ls shows it with its metadata.
    let ls = store(&s3.env()).args(["ls", "-w", "json", &dest]).run();
    let ls = ls.succeeds().stdout_json();
    assert_eq!(ls["objects"][0]["metadata"]["revision"].as_u64(), Some(rev));

    let metrics = fs::read_to_string(node.metrics()).unwrap();
    assert_eq!(
        gauge(&metrics, "etcd_backup_last_exit_code", &cid).as_deref(),
        Some("0")
    );
    assert_eq!(
        gauge(&metrics, "etcd_backup_last_size_bytes", &cid),
        Some(stored.len().to_string())
    );
    assert_eq!(
        gauge(&metrics, "etcd_backup_last_revision", &cid),
        Some(rev.to_string())
    );
    let success: i64 = gauge(&metrics, "etcd_backup_last_success_timestamp_seconds", &cid)
        .unwrap()
        .parse()
        .unwrap();
    assert!((now_secs() - success).abs() < 600, "{metrics}");

    // etcd-snap-store cat URL | etcd-snap-restore -i KEY - ...: etcd boots it, same keys.
    let prepared = Cluster::builder(Version::V3_5).prepare();
    let target = prepared.cluster().data_dir(0);
    let args = [
        url.clone(),
        node.identity().display().to_string(),
        target.display().to_string(),
        prepared.cluster().member_name(0),
        prepared.initial_cluster(),
        prepared.cluster().peer_urls()[0].clone(),
        prepared.token().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh(
        "etcd-snap-store cat \"$1\" | etcd-snap-restore -i \"$2\" --data-dir \"$3\" --name \"$4\" \
         --initial-cluster \"$5\" --initial-advertise-peer-urls \"$6\" --initial-cluster-token \"$7\" -",
        &args,
        &s3.env(),
    )
    .succeeds();
    let restored = prepared.start();
    assert_eq!(
        dump(&restored),
        dump(&node.cluster),
        "restored keys and values"
    );
}

/// Every key as `etcdctl get "" --prefix -w json` shows it (key, value, revisions, version).
fn dump(cluster: &Cluster) -> Vec<Value> {
    let out = run_ok(
        cluster
            .etcdctl()
            .args(["get", "", "--prefix", "-w", "json"]),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v["kvs"].as_array().cloned().unwrap_or_default()
}

#[test]
fn gfs_retention_on_s3_keeps_exactly_the_expected_set_and_never_another_clusters() {
    let node = start_node();
    let s3 = S3Server::rclone();
    let cid = node.cluster_id();
    let days = [
        (1, 2),
        (1, 1),
        (2, 1),
        (3, 1),
        (6, 1),
        (9, 1),
        (16, 1),
        (40, 1),
        (75, 1),
        (110, 1),
        (400, 1),
    ];
    let mut ours = Vec::new();
    for (i, (d, h)) in days.iter().enumerate() {
        let n = format!(
            "etcd-{cid}-{}-r{}.db.zst.age",
            stamp_days_ago(*d, *h),
            1000 - i
        );
        plant(&s3, &n, true);
        ours.push(n);
    }
    let mut untouchable = BTreeSet::new();
    for (d, h) in days {
        let n = format!("etcd-0123abcd-{}-r1.db.zst.age", stamp_days_ago(d, h));
        plant(&s3, &n, true);
        untouchable.insert(n);
    }
    // Unfinished (no .json): a stale one of this cluster goes, a recent one (its run may still
    // be verifying) and another cluster's stay; neither counts as a backup for retention.
    let stale = format!("etcd-{cid}-{}-r5.db.zst.age", stamp_days_ago(2, 5));
    plant(&s3, &stale, false);
    let recent = format!(
        "etcd-{cid}-{}-r6.db.zst.age",
        date(now_secs() - 3600, "%Y%m%dT%H%M%SZ")
    );
    plant(&s3, &recent, false);
    untouchable.insert(recent.clone());
    let theirs_unfinished = format!("etcd-0123abcd-{}-r5.db.zst.age", stamp_days_ago(2, 5));
    plant(&s3, &theirs_unfinished, false);
    untouchable.insert(theirs_unfinished);
    fs::write(s3.bucket_dir().unwrap().join(PREFIX).join("notes.txt"), "x").unwrap();
    let before = keys(&s3);
    let policy = [
        "--keep-daily",
        "3",
        "--keep-weekly",
        "3",
        "--keep-monthly",
        "4",
    ];

    // --dry-run names what would go and changes nothing.
    let dry = backup_to(&node, &s3.env())
        .args(["--no-encrypt", "--dry-run"])
        .args(policy)
        .arg(s3.url(PREFIX))
        .run();
    assert!(dry.success(), "{dry:?}");
    assert_eq!(keys(&s3), before, "dry run changed nothing");
    // (the planned backup is the newest: the same keeps as the real run below)
    let planned = format!(
        "etcd-{cid}-{}-r1.db.zst",
        date(now_secs(), "%Y%m%dT%H%M%SZ")
    );
    let mut with_new = ours.clone();
    with_new.push(planned);
    let keep = gfs_keeps(&with_new, 3, 3, 4);
    let doomed: BTreeSet<&String> = ours.iter().filter(|n| !keep.contains(*n)).collect();
    assert!(doomed.len() >= 4, "the test deletes something: {doomed:?}");
    for n in &doomed {
        assert!(
            dry.stderr
                .contains(&format!("would delete {}/{n}\n", s3.url(PREFIX))),
            "{n}: {}",
            dry.stderr
        );
    }
    assert!(
        dry.stderr
            .contains(&format!("would delete {}/{stale}\n", s3.url(PREFIX))),
        "{}",
        dry.stderr
    );

    // etcd-backup --no-encrypt --keep-daily 3 --keep-weekly 3 --keep-monthly 4 s3://...
    let out = backup_to(&node, &s3.env())
        .arg("--no-encrypt")
        .args(policy)
        .arg(s3.url(PREFIX))
        .run();
    assert!(out.success(), "{out:?}");
    let new = out.stdout.trim().rsplit('/').next().unwrap().to_string();
    let mut expected = before.clone();
    for n in &doomed {
        for suffix in ["", ".sha256", ".json"] {
            assert!(expected.remove(&format!("{n}{suffix}")), "{n}{suffix}");
        }
    }
    for suffix in ["", ".sha256"] {
        assert!(
            expected.remove(&format!("{stale}{suffix}")),
            "{stale}{suffix}"
        );
    }
    for suffix in ["", ".sha256", ".json"] {
        expected.insert(format!("{new}{suffix}"));
    }
    assert_eq!(keys(&s3), expected, "stderr: {}", out.stderr);
    for n in &untouchable {
        assert!(keys(&s3).contains(n), "{n} is not ours to delete");
    }
    assert!(keys(&s3).contains("notes.txt"));
}

#[test]
fn local_destination_prunes_by_the_same_rules_with_its_metadata_and_proof_files() {
    let node = start_node();
    let cid = node.cluster_id();
    let dir = node.dest();
    let mut ours = Vec::new();
    for (i, d) in [1, 2, 3, 5, 8, 13, 21, 34].iter().enumerate() {
        let n = format!("etcd-{cid}-{}-r{}.db.zst", stamp_days_ago(*d, 3), 100 - i);
        for f in [n.clone(), format!("{n}.json"), format!("{n}.proof.json")] {
            fs::write(dir.join(f), "x").unwrap();
        }
        ours.push(n);
    }
    let other = format!("etcd-0123abcd-{}-r1.db.zst", stamp_days_ago(34, 3));
    fs::write(dir.join(&other), "x").unwrap();
    fs::write(dir.join(format!("{other}.json")), "x").unwrap();

    let out = backup_to(&node, &[])
        .args(["--no-encrypt", "--keep-daily", "2", "--keep-weekly", "2"])
        .arg(&dir)
        .run();
    assert!(out.success(), "{out:?}");
    let new = out.stdout.trim().rsplit('/').next().unwrap().to_string();
    let mut all = ours.clone();
    all.push(new.clone());
    let keep = gfs_keeps(&all, 2, 2, 0);
    let mut expected: BTreeSet<String> = [other.clone(), format!("{other}.json")].into();
    for n in &keep {
        expected.insert(n.clone());
        expected.insert(format!("{n}.json"));
        if n != &new {
            expected.insert(format!("{n}.proof.json"));
        }
    }
    let left: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, expected, "stderr: {}", out.stderr);
    let meta: Value =
        serde_json::from_str(&fs::read_to_string(dir.join(format!("{new}.json"))).unwrap())
            .unwrap();
    assert_eq!(meta["backup"], new.as_str());
    assert_eq!(
        meta["storedBytes"].as_u64(),
        Some(fs::metadata(dir.join(&new)).unwrap().len())
    );
    assert_eq!(
        fs::metadata(dir.join(format!("{new}.json")))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn an_object_corrupted_in_storage_fails_verification_with_4_and_is_removed() {
    let node = start_node();
    let s3 = S3Server::rclone();
    let cid = node.cluster_id();
    let real = tool("etcd-snap-store");
    // Rewrites one byte of the object in the server's directory, then reads it back for real.
    node.fake(
        "etcd-snap-store",
        &format!(
            "if [ \"$1\" = cat ]; then\n\
             f=\"{bucket}/${{2#s3://{b}/}}\"\n\
             printf 'Z' | dd of=\"$f\" bs=1 seek=40 conv=notrunc status=none\n\
             fi\n\
             exec {real} \"$@\"\n",
            bucket = s3.bucket_dir().unwrap().display(),
            b = support::TEST_BUCKET,
            real = real.display()
        ),
    );
    for mode in [vec!["-r", node.recipient.as_str()], vec!["--no-encrypt"]] {
        let out = backup_to(&node, &s3.env())
            .args(&mode)
            .args(["-q", "--metrics-file"])
            .arg(node.metrics())
            .arg(s3.url(PREFIX))
            .run();
        assert_eq!(out.code, 4, "{mode:?}: {out:?}");
        assert!(out.stderr.contains("verification failed"), "{}", out.stderr);
        assert_eq!(out.stdout, "", "nothing printed as stored");
        assert_eq!(
            keys(&s3),
            BTreeSet::new(),
            "{mode:?}: the bad object and its checksum are removed"
        );
        let metrics = fs::read_to_string(node.metrics()).unwrap();
        assert_eq!(
            gauge(&metrics, "etcd_backup_last_exit_code", &cid).as_deref(),
            Some("4")
        );
        assert_eq!(
            gauge(&metrics, "etcd_backup_last_success", &cid).as_deref(),
            Some("0")
        );
        assert_eq!(
            gauge(&metrics, "etcd_backup_last_success_timestamp_seconds", &cid),
            None
        );
    }
}

#[test]
fn an_upstream_failure_removes_the_object_and_keeps_the_exit_code() {
    let node = start_node();
    let s3 = S3Server::rclone();
    // zstd passes on the start of the stream, then fails: put sees a clean end of input and
    // completes an object that is not a backup.
    node.fake(
        "zstd",
        "$(type -P -a zstd | sed -n 2p) \"$@\" | head -c 64\nexit 1\n",
    );
    let out = backup_to(&node, &s3.env())
        .args(["--no-encrypt", "-q"])
        .arg(s3.url(PREFIX))
        .run();
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stderr.contains("zstd failed in the snapshot pipe"),
        "{}",
        out.stderr
    );
    assert_eq!(
        keys(&s3),
        BTreeSet::new(),
        "the truncated object is removed"
    );
}

#[test]
fn metrics_keep_the_last_success_time_through_a_failure() {
    let node = start_node();
    let s3 = S3Server::rclone();
    let cid = node.cluster_id();
    backup_to(&node, &s3.env())
        .args(["--no-encrypt", "-q", "--metrics-file"])
        .arg(node.metrics())
        .arg(s3.url(PREFIX))
        .run()
        .succeeds();
    let first = fs::read_to_string(node.metrics()).unwrap();
    let success = gauge(&first, "etcd_backup_last_success_timestamp_seconds", &cid).unwrap();
    let size = gauge(&first, "etcd_backup_last_size_bytes", &cid).unwrap();

    // The next run cannot reach etcd: exit 3, result gauges updated, success time kept.
    let out = backup_to(&node, &s3.env())
        .env("ETCDCTL_ENDPOINTS", format!("127.0.0.1:{}", free_port()))
        .args([
            "--no-encrypt",
            "-q",
            "--dial-timeout",
            "1s",
            "--metrics-file",
        ])
        .arg(node.metrics())
        .arg(s3.url(PREFIX))
        .run();
    assert_eq!(out.code, 3, "{out:?}");
    let second = fs::read_to_string(node.metrics()).unwrap();
    assert_eq!(
        gauge(&second, "etcd_backup_last_exit_code", &cid).as_deref(),
        Some("3")
    );
    assert_eq!(
        gauge(&second, "etcd_backup_last_success", &cid).as_deref(),
        Some("0")
    );
    assert_eq!(
        gauge(&second, "etcd_backup_last_success_timestamp_seconds", &cid),
        Some(success),
        "{second}"
    );
    assert_eq!(
        gauge(&second, "etcd_backup_last_size_bytes", &cid),
        Some(size)
    );
    assert!(gauge(&second, "etcd_backup_last_attempt_timestamp_seconds", &cid).is_some());
    // Written by rename: no temporary file left beside it.
    let names: Vec<String> = fs::read_dir(node.metrics().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["etcd-backup.prom".to_string()]);
}

#[test]
fn wrong_credentials_exit_2_and_no_secret_is_printed() {
    let node = start_node();
    let s3 = S3Server::rclone();
    let env = s3.env_wrong_secret();
    let wrong = env
        .iter()
        .find(|(k, _)| k == "AWS_SECRET_ACCESS_KEY")
        .map(|(_, v)| v.clone())
        .unwrap();
    let out = backup_to(&node, &env)
        .args(["--no-encrypt", "-q", "--keep", "2"])
        .arg(s3.url(PREFIX))
        .run();
    out.fails(2);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    for secret in [wrong.as_str(), s3.secret_key()] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{out:?}"
        );
    }
    assert_eq!(keys(&s3), BTreeSet::new());
}

#[test]
fn an_unreachable_endpoint_exits_3() {
    let node = start_node();
    let mut env = S3Server::rclone().env();
    for (k, v) in &mut env {
        if k == "AWS_ENDPOINT_URL" {
            *v = format!("http://127.0.0.1:{}", free_port());
        }
    }
    let out = backup_to(&node, &env)
        .args(["--no-encrypt", "-q"])
        .arg(format!("s3://{}/{PREFIX}", support::TEST_BUCKET))
        .run();
    out.fails(3);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
}

#[test]
fn moto_round_trip_with_retention() {
    let node = start_node();
    let s3 = S3Server::moto();
    let mut stored = Vec::new();
    for i in 0..2 {
        node.cluster.put("/app/round", &i.to_string());
        let out = backup_to(&node, &s3.env())
            .args(["-r", &node.recipient, "--verify-identity"])
            .arg(node.identity())
            .args(["--keep", "1"])
            .arg(s3.url(PREFIX))
            .run();
        assert!(out.success(), "{out:?}\n{}", s3.log_tail());
        stored.push(out.stdout.trim().rsplit('/').next().unwrap().to_string());
        // Names have a one-second resolution.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let last = &stored[1];
    assert_eq!(
        keys(&s3),
        [
            last.clone(),
            format!("{last}.json"),
            format!("{last}.sha256")
        ]
        .into_iter()
        .collect(),
        "--keep 1 removed the first with its companions"
    );
}

#[test]
fn a_url_of_another_scheme_is_refused_with_2() {
    let node = start_node();
    let out = backup_to(&node, &[])
        .args(["--no-encrypt", "-q", "ftp://host/dir"])
        .run();
    out.fails(2);
    out.one_line_error("s3://BUCKET/PREFIX");
}
