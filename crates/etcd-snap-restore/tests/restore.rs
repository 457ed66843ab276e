//! etcd-snap-restore against real etcd 3.4 and 3.5: restored data dirs boot and serve exactly the
//! source's data, members agree on IDs with etcdutl, bumps compact, refusals and kills leave the
//! target as it was.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{etcd_bin, run, Cluster, CmdOutput, Version, ROOT_PASSWORD};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const RESTORE: &str = env!("CARGO_BIN_EXE_etcd-snap-restore");

fn restore_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(RESTORE);
    cmd.args(args);
    cmd
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A source cluster with data in every shape the issue names, and its snapshot.
struct Source {
    cluster: Cluster,
    snap: PathBuf,
    kvs: Vec<Value>,
    leases: Vec<String>,
    users: Vec<String>,
    roles: Vec<String>,
    revision: i64,
}

/// `etcdctl get "" --prefix -w json` kvs (every key, value, revision, version and lease).
fn dump(mut etcdctl: Command) -> Vec<Value> {
    let out = etcdctl
        .args(["get", "", "--prefix", "-w", "json"])
        .output()
        .expect("etcdctl get");
    assert!(out.status.success(), "etcdctl get: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["kvs"].as_array().cloned().unwrap_or_default()
}

fn lines(mut etcdctl: Command, args: &[&str]) -> Vec<String> {
    let out = etcdctl.args(args).output().expect("etcdctl");
    assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn header_revision(mut etcdctl: Command) -> i64 {
    let out = etcdctl
        .args(["get", "x", "-w", "json"])
        .output()
        .expect("etcdctl");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["header"]["revision"].as_i64().expect("revision")
}

/// Builds a source on `version` with Kubernetes-shaped keys, an overflow value, churn (overwrites,
/// deletes, compaction without defrag), leases, binary keys, auth, and `deep` extra small keys.
fn source(version: Version, deep: usize) -> Source {
    let cluster = Cluster::builder(version)
        .auth()
        .arg("--max-txn-ops=20000")
        .start();
    let gw = cluster.gateway().batch(5000);
    let lease = gw.lease_grant(3600);
    gw.put_all(
        (0..200).map(|i| {
            (
                format!("/registry/pods/ns{}/pod-{i}", i % 7),
                format!("{{\"kind\":\"Pod\",\"i\":{i}}}"),
            )
        }),
        None,
    );
    gw.put(b"/registry/configmaps/kube-system/big", &vec![b'v'; 20_000]);
    gw.put_with_lease(
        b"/registry/leases/kube-node-lease/n1",
        b"lease-held",
        Some(lease),
    );
    gw.put(b"bin\x00key\xff\x01", b"\x00\xff\x00");
    gw.put(b"\xff\xff", b"last");
    for round in 0..5 {
        gw.put_all(
            (0..50).map(|i| (format!("/churn/{i}"), format!("r{round}"))),
            None,
        );
    }
    gw.delete_range(b"/churn/1", Some(b"/churn/3"));
    let rev = gw.revision();
    gw.compact(rev - 3);
    gw.put(b"/churn/after-compaction", b"x");
    if deep > 0 {
        gw.put_all((0..deep).map(|i| (format!("/deep/{i:08}"), "x")), None);
    }
    let snap = cluster.dir().join("snap.db");
    etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
    Source {
        kvs: dump(cluster.etcdctl()),
        leases: lines(cluster.etcdctl(), &["lease", "list"]),
        users: lines(cluster.etcdctl(), &["user", "list"]),
        roles: lines(cluster.etcdctl(), &["role", "list"]),
        revision: header_revision(cluster.etcdctl()),
        snap,
        cluster,
    }
}

/// An etcdctl for a restored cluster, as root.
fn ctl(cluster: &Cluster, members: &[usize]) -> Command {
    let mut cmd = cluster.etcdctl_raw();
    let eps: Vec<String> = members
        .iter()
        .map(|i| cluster.host_ports()[*i].clone())
        .collect();
    cmd.args([
        "--endpoints",
        &eps.join(","),
        "--user",
        &format!("root:{ROOT_PASSWORD}"),
    ]);
    cmd
}

/// Restores `snap` into every member of a prepared `target` cluster (with `extra` flags and `input`
/// feeding stdin when `snap` is "-"), boots it, and returns it with the summaries.
fn restore_and_boot(
    target: Version,
    members: usize,
    snap: &str,
    extra: &[&str],
    stdin: Option<&[u8]>,
) -> (Cluster, Vec<Value>) {
    let prepared = Cluster::builder(target).members(members).prepare();
    let initial = prepared.initial_cluster();
    let token = prepared.token().to_string();
    let mut summaries = Vec::new();
    for i in 0..members {
        let c = prepared.cluster();
        let name = c.member_name(i);
        let peer = c.peer_urls()[i].clone();
        let data = s(&c.data_dir(i));
        let mut args = vec![
            snap,
            "--name",
            &name,
            "--initial-cluster",
            &initial,
            "--initial-cluster-token",
            &token,
            "--initial-advertise-peer-urls",
            &peer,
            "--data-dir",
            &data,
            "-w",
            "json",
        ];
        args.extend_from_slice(extra);
        let mut cmd = restore_cmd(&args);
        let out = match stdin {
            Some(bytes) => {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut child = cmd.spawn().expect("spawn");
                let mut pipe = child.stdin.take().expect("stdin");
                let bytes = bytes.to_vec();
                let writer = std::thread::spawn(move || {
                    use std::io::Write;
                    let _ = pipe.write_all(&bytes);
                });
                let out = child.wait_with_output().expect("wait");
                writer.join().expect("writer");
                CmdOutput {
                    status: out.status,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }
            }
            None => run(&mut cmd),
        };
        assert_eq!(out.code(), 0, "restore member {i}: {out:?}");
        summaries.push(serde_json::from_str(&out.stdout).expect("summary json"));
    }
    (prepared.start(), summaries)
}

fn assert_same_data(source: &Source, restored: &Cluster) {
    let all: Vec<usize> = (0..restored.len()).collect();
    assert_eq!(
        dump(ctl(restored, &all[..1])),
        source.kvs,
        "every key, value, revision, version and lease"
    );
    assert_eq!(
        lines(ctl(restored, &all[..1]), &["lease", "list"]),
        source.leases
    );
    assert_eq!(
        lines(ctl(restored, &all[..1]), &["user", "list"]),
        source.users
    );
    assert_eq!(
        lines(ctl(restored, &all[..1]), &["role", "list"]),
        source.roles
    );
}

fn member_list(cluster: &Cluster) -> Vec<(String, String)> {
    let out = ctl(cluster, &[0])
        .args(["member", "list", "-w", "json"])
        .output()
        .expect("member list");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut members: Vec<(String, String)> = v["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or_default().to_string(),
                format!("{:x}", m["ID"].as_u64().unwrap_or(0)),
            )
        })
        .collect();
    members.sort();
    members
}

#[test]
fn every_shape_restores_and_boots_on_3_4_and_3_5() {
    for source_version in Version::all_required() {
        let source = source(source_version, 20_000);
        for target in Version::all_required() {
            let (restored, summaries) = restore_and_boot(target, 1, &s(&source.snap), &[], None);
            assert_same_data(&source, &restored);
            assert_eq!(
                header_revision(ctl(&restored, &[0])),
                source.revision,
                "{source_version:?} -> {target:?}"
            );
            let summary = &summaries[0];
            assert_eq!(
                member_list(&restored),
                vec![(
                    "m0".to_string(),
                    summary["memberId"].as_str().unwrap().to_string()
                )]
            );
            assert_eq!(summary["revision"].as_i64(), Some(source.revision));
        }
    }
}

fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("age.key");
    assert!(Command::new("age-keygen")
        .args(["-o", &s(&key)])
        .output()
        .expect("age-keygen")
        .status
        .success());
    let public = Command::new("age-keygen")
        .args(["-y", &s(&key)])
        .output()
        .expect("age-keygen");
    (
        key,
        String::from_utf8_lossy(&public.stdout).trim().to_string(),
    )
}

fn shell_bytes(cmd: &str) -> Vec<u8> {
    let out = Command::new("bash")
        .args(["-c", cmd])
        .output()
        .expect("bash");
    assert!(out.status.success(), "{cmd}: {out:?}");
    out.stdout
}

#[test]
fn through_stdin_with_zstd_and_age() {
    let source = source(Version::V3_5, 0);
    let (key, recipient) = keygen(source.cluster.dir());
    let snap = s(&source.snap);
    for pipeline in [
        format!("zstd -qc {snap}"),
        format!("age -r {recipient} {snap}"),
        format!("zstd -qc {snap} | age -a -r {recipient}"),
        format!("cat {snap}"),
    ] {
        let bytes = shell_bytes(&pipeline);
        let (restored, summaries) =
            restore_and_boot(Version::V3_5, 1, "-", &["-i", &s(&key)], Some(&bytes));
        assert_same_data(&source, &restored);
        assert!(
            summaries[0]["sha256"].is_string(),
            "{pipeline}: the trailer was verified"
        );
    }
}

/// The member and cluster IDs etcdutl logs for the same flags.
fn etcdutl_ids(
    snap: &Path,
    initial: &str,
    token: &str,
    name: &str,
    peer: &str,
    dir: &Path,
) -> (Vec<String>, String) {
    let out = Command::new(etcd_bin(Version::V3_5, "etcdutl"))
        .args([
            "snapshot",
            "restore",
            &s(snap),
            "--name",
            name,
            "--initial-cluster",
            initial,
            "--initial-cluster-token",
            token,
            "--initial-advertise-peer-urls",
            peer,
            "--data-dir",
            &s(dir),
        ])
        .output()
        .expect("etcdutl");
    assert!(out.status.success(), "{out:?}");
    let mut ids = Vec::new();
    let mut cluster = String::new();
    // etcdutl logs "<time>\tinfo\t<caller>\t<message>\t{json fields}".
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let fields = line.find('{').map_or("", |at| &line[at..]);
        if let Ok(v) = serde_json::from_str::<Value>(fields) {
            if let Some(id) = v["added-peer-id"].as_str() {
                ids.push(id.to_string());
            }
            if let Some(c) = v["cluster-id"].as_str() {
                cluster = c.to_string();
            }
        }
    }
    ids.sort();
    (ids, cluster)
}

#[test]
fn three_members_from_one_snapshot() {
    let source = source(Version::V3_5, 0);
    let (restored, summaries) = restore_and_boot(Version::V3_5, 3, &s(&source.snap), &[], None);
    let mut ids: Vec<String> = summaries
        .iter()
        .map(|v| v["memberId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let cluster_ids: Vec<&str> = summaries
        .iter()
        .map(|v| v["clusterId"].as_str().unwrap())
        .collect();
    assert!(
        cluster_ids.iter().all(|c| *c == cluster_ids[0]),
        "every member computes the same cluster ID"
    );
    let initial = (0..3)
        .map(|i| format!("{}={}", restored.member_name(i), restored.peer_urls()[i]))
        .collect::<Vec<_>>()
        .join(",");
    let scratch = tempfile::tempdir().expect("tempdir");
    let (etcdutl_member_ids, etcdutl_cluster) = etcdutl_ids(
        &source.snap,
        &initial,
        restored.token(),
        "m1",
        &restored.peer_urls()[1],
        &scratch.path().join("x"),
    );
    assert_eq!(ids, etcdutl_member_ids, "member IDs equal etcdutl's");
    assert_eq!(
        cluster_ids[0], etcdutl_cluster,
        "cluster ID equals etcdutl's"
    );

    let mut listed: Vec<String> = member_list(&restored)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    listed.sort();
    assert_eq!(listed, ids);
    // A leader, and every member serves the data.
    let status = ctl(&restored, &[0, 1, 2])
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .expect("status");
    let status: Value = serde_json::from_slice(&status.stdout).expect("json");
    let leaders: Vec<u64> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Status"]["leader"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        leaders.iter().all(|l| *l != 0 && *l == leaders[0]),
        "one leader: {status}"
    );
    for i in 0..3 {
        assert_eq!(dump(ctl(&restored, &[i])), source.kvs, "member {i}");
    }
}

#[test]
fn bump_and_mark_compacted() {
    let source = source(Version::V3_5, 0);
    for (flags, bump) in [
        (vec!["--bump-revision", "1000", "--mark-compacted"], 1000i64),
        (vec!["--k8s"], 1_000_000_000),
    ] {
        for target in Version::all_required() {
            let (restored, summaries) = restore_and_boot(target, 1, &s(&source.snap), &flags, None);
            assert_eq!(
                summaries[0]["revisionAfter"].as_i64(),
                Some(source.revision + bump)
            );
            assert_eq!(
                header_revision(ctl(&restored, &[0])),
                source.revision + bump,
                "{target:?} {flags:?}"
            );
            let old = ctl(&restored, &[0])
                .args([
                    "get",
                    "/registry/pods/ns0/pod-0",
                    &format!("--rev={}", source.revision),
                ])
                .output()
                .expect("etcdctl");
            assert!(!old.status.success(), "older revisions are compacted");
            assert!(
                String::from_utf8_lossy(&old.stderr).contains("compacted"),
                "{old:?}"
            );
            // The data itself is all there, at its original revisions.
            assert_eq!(dump(ctl(&restored, &[0])), source.kvs);
        }
    }
}

/// What etcd-db reads from a restored data dir's database.
fn analysis_of(data_dir: &Path) -> etcd_db::Analysis {
    let db = bbolt::Db::open(data_dir.join("member/snap/db")).expect("open db");
    assert!(
        db.check().is_empty(),
        "the restored db passes the consistency check"
    );
    etcd_db::analyze(&db).expect("analyze")
}

#[test]
fn bump_matches_etcdutl_3_5_from_debian_sid() {
    // etcdutl 3.5.1 predates --bump-revision; Debian sid's 3.5.x has it. Optional: sid may be absent.
    let Some(etcdutl) = etcd_test_support::etcd_bin_optional(Version::V3_5Sid, "etcdutl") else {
        return;
    };
    let source = source(Version::V3_5, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let (theirs, ours) = (dir.path().join("theirs"), dir.path().join("ours"));
    let flags = ["--bump-revision", "1000", "--mark-compacted"];
    let out = Command::new(etcdutl)
        .args([
            "snapshot",
            "restore",
            &s(&source.snap),
            "--data-dir",
            &s(&theirs),
        ])
        .args(flags)
        .output()
        .expect("etcdutl");
    assert!(out.status.success(), "{out:?}");
    let mine = run(restore_cmd(&[&s(&source.snap), "--data-dir", &s(&ours)]).args(flags));
    assert_eq!(mine.code(), 0, "{mine:?}");
    let (a, b) = (analysis_of(&theirs), analysis_of(&ours));
    assert_eq!(a.status.revision, b.status.revision);
    assert_eq!(a.status.total_key, b.status.total_key);
    assert_eq!(a.details.live_keys, b.details.live_keys);
    assert_eq!(
        a.details.scheduled_compact_revision,
        b.details.scheduled_compact_revision
    );
    assert_eq!(a.details.compact_revision, b.details.compact_revision);
    assert_eq!(a.details.consistent_index, b.details.consistent_index);
    assert_eq!(a.details.term, b.details.term);
    assert_eq!(a.details.members, b.details.members);
}

#[test]
fn refusals_leave_nothing_behind() {
    let source = source(Version::V3_5, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = s(&source.snap);
    let occupied = dir.path().join("occupied");
    fs::create_dir(&occupied).expect("mkdir");
    fs::write(occupied.join("keep"), b"precious").expect("write");
    let out = run(&mut restore_cmd(&[&snap, "--data-dir", &s(&occupied)]));
    assert_eq!(out.code(), 5, "{out:?}");
    assert!(out.stderr.contains("--move-aside"), "{out:?}");
    assert_eq!(fs::read(occupied.join("keep")).expect("read"), b"precious");

    let wal = dir.path().join("wal");
    fs::create_dir(&wal).expect("mkdir");
    fs::write(wal.join("x"), b"x").expect("write");
    let out = run(&mut restore_cmd(&[
        &snap,
        "--data-dir",
        &s(&dir.path().join("d1")),
        "--wal-dir",
        &s(&wal),
    ]));
    assert_eq!(out.code(), 5, "{out:?}");
    assert!(!dir.path().join("d1").exists());

    let mut corrupt = fs::read(&source.snap).expect("read");
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0x40;
    let bad = dir.path().join("bad.db");
    fs::write(&bad, &corrupt).expect("write");
    let out = run(&mut restore_cmd(&[
        &s(&bad),
        "--data-dir",
        &s(&dir.path().join("d2")),
    ]));
    assert_eq!(out.code(), 4, "{out:?}");
    assert!(out.stderr.contains("SHA-256 mismatch"), "{out:?}");

    let no_hash = dir.path().join("nohash.db");
    fs::write(
        &no_hash,
        &fs::read(&source.snap).expect("read")[..corrupt.len() - 32],
    )
    .expect("write");
    let out = run(&mut restore_cmd(&[
        &s(&no_hash),
        "--data-dir",
        &s(&dir.path().join("d3")),
    ]));
    assert_eq!(out.code(), 4, "{out:?}");
    assert!(out.stderr.contains("--skip-hash-check"), "{out:?}");

    for (args, needle) in [
        (vec!["--name", "nobody"], "nobody"),
        (
            vec![
                "--initial-cluster",
                "default=http://127.0.0.1:1,x=http://127.0.0.1:1",
            ],
            "127.0.0.1:1",
        ),
        (
            vec!["--initial-advertise-peer-urls", "http://127.0.0.1:9"],
            "http://127.0.0.1:9",
        ),
        (vec!["--mark-compacted"], "--bump-revision"),
        (vec!["--bump-revision", "5"], "--mark-compacted"),
    ] {
        let mut full = vec![snap.as_str(), "--data-dir"];
        let target = s(&dir.path().join("d4"));
        full.push(&target);
        full.extend(args.iter().copied());
        let out = run(&mut restore_cmd(&full));
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
    }
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["bad.db", "nohash.db", "occupied", "wal"],
        "no staging or partial data dir left"
    );
}

#[test]
fn skip_hash_check_and_move_aside() {
    let mut source = source(Version::V3_5, 0);
    source.cluster.stop_member(0);
    let copied = source
        .cluster
        .data_dir(0)
        .join("member")
        .join("snap")
        .join("db");
    let prepared = Cluster::builder(Version::V3_5).prepare();
    let target = prepared.cluster().data_dir(0);
    fs::create_dir_all(&target).expect("mkdir");
    fs::write(target.join("old-file"), b"old").expect("write");
    let args = [
        s(&copied),
        "--skip-hash-check".into(),
        "--move-aside".into(),
        "--name".into(),
        prepared.cluster().member_name(0),
        "--initial-cluster".into(),
        prepared.initial_cluster(),
        "--initial-cluster-token".into(),
        prepared.token().into(),
        "--initial-advertise-peer-urls".into(),
        prepared.cluster().peer_urls()[0].clone(),
        "--data-dir".into(),
        s(&target),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut restore_cmd(&args));
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("moved aside"), "{out:?}");
    let parent = target.parent().unwrap();
    let aside: Vec<PathBuf> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| s(p).contains(".bak-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        fs::read(aside[0].join("old-file")).expect("kept"),
        b"old",
        "moved, never deleted"
    );
    let restored = prepared.start();
    assert_eq!(dump(ctl(&restored, &[0])), source.kvs);
}

#[test]
fn killed_at_any_moment_leaves_the_target_as_it_was() {
    let cluster = Cluster::builder(Version::V3_5)
        .arg("--max-txn-ops=20000")
        .start();
    let gw = cluster.gateway().batch(2000);
    gw.put_all(
        (0..40).map(|i| (format!("/big/{i}"), vec![b'x'; 1_000_000])),
        None,
    );
    let snap = cluster.dir().join("snap.db");
    etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("data");
    for delay_ms in [5u64, 20, 60, 150, 400] {
        let mut child = restore_cmd(&[&s(&snap), "--data-dir", &s(&target)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        if status.success() {
            // It finished first: the target is complete; start over.
            assert!(target.join("member/snap/db").exists());
            fs::remove_dir_all(&target).expect("rm");
        } else {
            assert!(
                !target.exists(),
                "killed after {delay_ms} ms: the target must not exist"
            );
        }
    }
    // The next run cleans up what the killed ones left and succeeds.
    let out = run(&mut restore_cmd(&[&s(&snap), "--data-dir", &s(&target)]));
    assert_eq!(out.code(), 0, "{out:?}");
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["data"], "no stale staging directory left");
}

#[test]
fn help_is_golden() {
    let out = run(&mut restore_cmd(&["--help"]));
    assert_eq!(out.code(), 0);
    assert_eq!(
        out.stdout,
        include_str!("golden/help.txt"),
        "update tests/golden/help.txt if the change is intended"
    );
}

#[test]
fn layout_modes_and_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let cluster = Cluster::builder(Version::V3_5).start();
    cluster.put("k", "v");
    let snap = cluster.dir().join("snap.db");
    etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("data");
    let wal = dir.path().join("wal");
    let out = run(&mut restore_cmd(&[
        &s(&snap),
        "--data-dir",
        &s(&target),
        "--wal-dir",
        &s(&wal),
        "--owner",
        "65534:65534",
    ]));
    assert_eq!(out.code(), 0, "{out:?}");
    let mut seen = 0;
    let mut stack = vec![target.clone(), wal.clone()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "{}",
            path.display()
        );
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            stack.extend(
                fs::read_dir(&path)
                    .expect("read")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        seen += 1;
    }
    assert!(target.join("member/snap/db").is_file() && !target.join("member/wal").exists());
    let wal_files: Vec<_> = fs::read_dir(&wal).expect("wal").collect();
    assert_eq!(wal_files.len(), 1, "one WAL segment in --wal-dir");
    assert!(seen >= 7, "{seen} paths checked");
}
