//! etcd-snap-restore against real etcd 3.4, 3.5, 3.6 and 3.7: restored data dirs boot and serve
//! exactly the source's data on the snapshot's own version and on the next one (the upgrades etcd
//! allows), and with `--target-version` on the previous one; members agree on IDs with etcdutl,
//! bumps compact, every written database passes the Go `bbolt check`, refusals and kills leave
//! the target as it was. The round trips run through `etcd_matrix!`, one test per source version.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{
    bbolt_cli, etcd_bin, etcd_matrix, Cluster, Run, Tool, Version, ROOT_PASSWORD,
};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{member_args, restore, RESTORE};

/// `etcd-snap-restore ARGS`, about to run (no inherited `ETCDCTL_*`, stdin closed).
fn restore_tool(args: &[&str]) -> Tool {
    let mut tool = Tool::new(RESTORE);
    tool.args(args);
    tool
}

/// A bash command line, run to the end.
fn bash(line: &str) -> Run {
    Tool::from_command(Command::new("bash"))
        .args(["-c", line])
        .run()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The Go `bbolt check` (a second, independent checker) on a restored data dir's database.
fn assert_bbolt_check(data_dir: &Path) {
    let db = data_dir.join("member").join("snap").join("db");
    let out = Command::new(bbolt_cli())
        .args(["check", &s(&db)])
        .output()
        .expect("bbolt check");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "bbolt check {}: {out:?}",
        db.display()
    );
}

/// The targets a snapshot of `source` is restored onto: its own version and the next one (the
/// upgrade etcd allows).
fn targets(source: Version) -> Vec<Version> {
    match source {
        Version::V3_4 => vec![Version::V3_4, Version::V3_5],
        Version::V3_5 | Version::V3_5Sid => vec![source, Version::V3_6],
        Version::V3_6 => vec![Version::V3_6, Version::V3_7],
        Version::V3_7 => vec![Version::V3_7],
    }
}

/// Each `--target-version` that takes a snapshot of `source` down to an older etcd, and the
/// etcd that boots the result.
fn downs(source: Version) -> Vec<(&'static str, Version)> {
    match source {
        Version::V3_6 => vec![("3.5", Version::V3_5)],
        Version::V3_7 => vec![("3.6", Version::V3_6), ("3.5", Version::V3_5)],
        _ => vec![],
    }
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
        let mut tool = restore_tool(&args);
        if let Some(bytes) = stdin {
            tool.stdin_bytes(bytes);
        }
        let out = tool.run().named(format!("restore member {i}"));
        out.succeeds();
        assert_bbolt_check(&c.data_dir(i));
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

/// The meta and cluster keys etcd reads its versions from, in a restore into `dir` (not booted).
fn versions_after(snap: &Path, extra: &[&str], dir: &Path) -> etcd_db::schema::VersionState {
    let mut args = vec![s(snap), "--data-dir".into(), s(dir)];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = restore(&args);
    out.succeeds();
    assert_bbolt_check(dir);
    let db = bbolt::Db::open(dir.join("member/snap/db")).expect("open db");
    etcd_db::schema::VersionState::read(&db).expect("read versions")
}

/// Every shape, restored from a snapshot of `v` onto `v` and the next version, then with
/// `--target-version` onto each older one (3.6 -> 3.5.1, 3.7 -> 3.6 and 3.5.1): the same data.
fn every_shape_restores_and_boots(v: Version) {
    // The deep keys (a three-level key bucket) once, where the old test had them.
    let deep = if v == Version::V3_5 { 20_000 } else { 0 };
    let source = source(v, deep);
    let mut runs: Vec<(Version, Vec<&str>)> = targets(v).into_iter().map(|t| (t, vec![])).collect();
    for (flag, older) in downs(v) {
        runs.push((older, vec!["--target-version", flag]));
    }
    for (target, flags) in runs {
        let case = format!("{v:?} -> {target:?} {flags:?}");
        let (restored, summaries) = restore_and_boot(target, 1, &s(&source.snap), &flags, None);
        assert_same_data(&source, &restored);
        assert_eq!(
            header_revision(ctl(&restored, &[0])),
            source.revision,
            "{case}"
        );
        let summary = &summaries[0];
        assert_eq!(
            member_list(&restored),
            vec![(
                "m0".to_string(),
                summary["memberId"].as_str().unwrap().to_string()
            )],
            "{case}"
        );
        assert_eq!(
            summary["revision"].as_i64(),
            Some(source.revision),
            "{case}"
        );
        match flags.get(1) {
            Some(flag) => assert_eq!(summary["targetVersion"].as_str(), Some(*flag), "{case}"),
            None => assert!(summary.get("targetVersion").is_none(), "{case}: {summary}"),
        }
    }
    // What the version keys say: untouched by default (as etcdutl), etcd's downgrade with
    // --target-version.
    let scratch = tempfile::tempdir().expect("tempdir");
    let own = versions_after(&source.snap, &[], &scratch.path().join("own"));
    let expected_own = match v {
        Version::V3_6 => Some(&b"3.6.0"[..]),
        Version::V3_7 => Some(&b"3.7.0"[..]),
        _ => None,
    };
    assert_eq!(own.storage_version.as_deref(), expected_own, "{v:?}");
    for (flag, _) in downs(v) {
        let down = versions_after(
            &source.snap,
            &["--target-version", flag],
            &scratch.path().join(format!("down-{flag}")),
        );
        let stored = format!("{flag}.0");
        let expected = (flag != "3.5").then_some(stored.as_bytes());
        assert_eq!(down.storage_version.as_deref(), expected, "{v:?}");
        assert_eq!(down.cluster_version.as_deref(), Some(stored.as_bytes()));
        assert_eq!(down.term, own.term);
    }
}
etcd_matrix!(every_shape_restores_and_boots: V3_4, V3_5, V3_6, V3_7);

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

/// Through stdin: the four input layerings take turns over the source -> target pairs, so that
/// each layering and each pair runs once (3.4->3.4 zstd, 3.4->3.5 age, 3.5->3.5 zstd+armored
/// age, 3.5->3.6 cat, 3.6->3.6 zstd, 3.6->3.7 age, 3.7->3.7 zstd+age).
fn through_stdin_with_zstd_and_age(v: Version) {
    let source = source(v, 0);
    let (key, recipient) = keygen(source.cluster.dir());
    let snap = s(&source.snap);
    let pipelines = [
        format!("zstd -qc {snap}"),
        format!("age -r {recipient} {snap}"),
        format!("zstd -qc {snap} | age -a -r {recipient}"),
        format!("cat {snap}"),
    ];
    let first = match v {
        Version::V3_4 => 0,
        Version::V3_5 | Version::V3_5Sid => 2,
        Version::V3_6 => 4,
        Version::V3_7 => 6,
    };
    for (i, target) in targets(v).into_iter().enumerate() {
        let pipeline = &pipelines[(first + i) % pipelines.len()];
        let bytes = shell_bytes(pipeline);
        let (restored, summaries) =
            restore_and_boot(target, 1, "-", &["-i", &s(&key)], Some(&bytes));
        assert_same_data(&source, &restored);
        assert!(
            summaries[0]["sha256"].is_string(),
            "{v:?} -> {target:?} {pipeline}: the trailer was verified"
        );
    }
}
etcd_matrix!(through_stdin_with_zstd_and_age: V3_4, V3_5, V3_6, V3_7);

/// The member and cluster IDs etcdutl logs for the same flags.
fn etcdutl_ids(
    version: Version,
    snap: &Path,
    initial: &str,
    token: &str,
    name: &str,
    peer: &str,
    dir: &Path,
) -> (Vec<String>, String) {
    let out = Command::new(etcd_bin(version, "etcdutl"))
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

/// Three members from one snapshot of `v`, on `v` and on the next version: IDs equal etcdutl's
/// (the target's; 3.5's for 3.4, which has none), one leader, every member serves the data.
fn three_members_from_one_snapshot(v: Version) {
    let source = source(v, 0);
    for target in targets(v) {
        three_members_on(&source, target);
    }
}
etcd_matrix!(three_members_from_one_snapshot: V3_4, V3_5, V3_6, V3_7);

fn three_members_on(source: &Source, target: Version) {
    let (restored, summaries) = restore_and_boot(target, 3, &s(&source.snap), &[], None);
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
    let etcdutl = if target == Version::V3_4 {
        Version::V3_5
    } else {
        target
    };
    let (etcdutl_member_ids, etcdutl_cluster) = etcdutl_ids(
        etcdutl,
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
        assert_eq!(
            dump(ctl(&restored, &[i])),
            source.kvs,
            "{target:?} member {i}"
        );
    }
}

/// Bump and mark compacted from a snapshot of `v` with a deep key bucket (where appending the
/// bump key rewrites a three-level path): both flag sets on `v`, the Kubernetes preset on the
/// next version.
fn bump_and_mark_compacted(v: Version) {
    let source = source(v, 20_000);
    let explicit = vec!["--bump-revision", "1000", "--mark-compacted"];
    let k8s = vec!["--k8s"];
    let mut runs = vec![(v, explicit, 1000i64), (v, k8s.clone(), 1_000_000_000)];
    runs.extend(
        targets(v)
            .into_iter()
            .skip(1)
            .map(|t| (t, k8s.clone(), 1_000_000_000)),
    );
    for (target, flags, bump) in runs {
        let (restored, summaries) = restore_and_boot(target, 1, &s(&source.snap), &flags, None);
        assert_eq!(
            summaries[0]["revisionAfter"].as_i64(),
            Some(source.revision + bump)
        );
        assert_eq!(
            header_revision(ctl(&restored, &[0])),
            source.revision + bump,
            "{v:?} -> {target:?} {flags:?}"
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
etcd_matrix!(bump_and_mark_compacted: V3_4, V3_5, V3_6, V3_7);

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
    let mine = restore(
        &[
            &[s(&source.snap).as_str(), "--data-dir", &s(&ours)][..],
            &flags,
        ]
        .concat(),
    );
    mine.succeeds();
    assert_bbolt_check(&ours);
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
    let out = restore(&[&snap, "--data-dir", &s(&occupied)]);
    out.fails(5).stderr_contains("--move-aside");
    assert_eq!(fs::read(occupied.join("keep")).expect("read"), b"precious");

    let wal = dir.path().join("wal");
    fs::create_dir(&wal).expect("mkdir");
    fs::write(wal.join("x"), b"x").expect("write");
    let out = restore(&[
        &snap,
        "--data-dir",
        &s(&dir.path().join("d1")),
        "--wal-dir",
        &s(&wal),
    ]);
    out.fails(5);
    assert!(!dir.path().join("d1").exists());

    let mut corrupt = fs::read(&source.snap).expect("read");
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0x40;
    let bad = dir.path().join("bad.db");
    fs::write(&bad, &corrupt).expect("write");
    let out = restore(&[&s(&bad), "--data-dir", &s(&dir.path().join("d2"))]);
    out.fails(4).stderr_contains("SHA-256 mismatch");

    let no_hash = dir.path().join("nohash.db");
    fs::write(
        &no_hash,
        &fs::read(&source.snap).expect("read")[..corrupt.len() - 32],
    )
    .expect("write");
    let out = restore(&[&s(&no_hash), "--data-dir", &s(&dir.path().join("d3"))]);
    out.fails(4).stderr_contains("--skip-hash-check");

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
        let out = restore(&full);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
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

/// Issue 12 item 6 for restore: a real snapshot followed by 2 GiB of zeros, zstd-compressed to a
/// few MiB, piped in. The copy into the staging tree must stop at the size the meta page declares
/// (+ the trailer, or + bbolt's preallocation with `--skip-hash-check`) with one error line and
/// exit 4, leaving nothing behind. `prlimit --fsize` just above that size makes any write past the
/// cap fail (SIGXFSZ/EFBIG, a different exit), so passing proves the staging db never grew past it.
/// The same snapshot without the zeros still restores from the pipe.
#[test]
fn an_endless_stream_stops_at_the_declared_size() {
    let source = source(Version::V3_5, 0);
    let snap = s(&source.snap);
    let snap_len = fs::metadata(&source.snap).expect("stat").len();
    let db_len = snap_len - 32;
    let dir = tempfile::tempdir().expect("tempdir");
    for (flags, slack, extra) in [
        ("", 32u64, "the 32-byte SHA-256 trailer"),
        (
            "--skip-hash-check",
            16 << 20,
            "16777216 bytes bbolt may preallocate",
        ),
    ] {
        let target = dir.path().join("endless");
        let fsize = db_len + slack + 4096;
        let script = format!(
            "{{ cat {snap}; head -c 2G /dev/zero; }} | zstd -q -1 -c \
             | prlimit --fsize={fsize} {RESTORE} - {flags} --data-dir {}",
            s(&target)
        );
        let out = bash(&script);
        assert_eq!(out.code, 4, "{flags}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "Error: stdin: the data goes on past the {db_len} bytes its meta page declares \
                 (+ {extra}): not a snapshot; stopped spooling\n"
            ),
            "{flags}: one error line"
        );
        assert!(!target.exists(), "{flags}: the target must not exist");
        assert_eq!(
            listing(dir.path()),
            Vec::<String>::new(),
            "{flags}: no staging left"
        );
    }
    for flags in ["", "--skip-hash-check"] {
        let target = dir
            .path()
            .join(if flags.is_empty() { "plain" } else { "skip" });
        let script = format!(
            "zstd -q -c {snap} | {RESTORE} - {flags} --data-dir {}",
            s(&target)
        );
        let out = bash(&script);
        assert_eq!(out.code, 0, "{flags}: {out:?}");
        assert_bbolt_check(&target);
    }
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
    let mut args = vec![
        s(&copied),
        "--skip-hash-check".into(),
        "--move-aside".into(),
    ];
    args.extend(member_args(&prepared));
    args.extend(["--data-dir".into(), s(&target)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = restore(&args);
    out.succeeds();
    assert!(out.stdout.contains("moved aside"), "{out:?}");
    assert_bbolt_check(&target);
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
        let mut running = restore_tool(&[&s(&snap), "--data-dir", &s(&target)]).spawn();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = running.child.kill();
        if running.finish(None).success() {
            // It finished first: the target is complete; start over.
            assert_bbolt_check(&target);
            fs::remove_dir_all(&target).expect("rm");
        } else {
            assert!(
                !target.exists(),
                "killed after {delay_ms} ms: the target must not exist"
            );
        }
    }
    // The next run cleans up what the killed ones left and succeeds.
    let out = restore(&[&s(&snap), "--data-dir", &s(&target)]);
    out.succeeds();
    assert_bbolt_check(&target);
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["data"], "no stale staging directory left");
}

#[test]
fn layout_modes_and_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (_cluster, snap) = k_v_snapshot();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("data");
    let wal = dir.path().join("wal");
    let out = restore(&[
        &s(&snap),
        "--data-dir",
        &s(&target),
        "--wal-dir",
        &s(&wal),
        "--owner",
        "65534:65534",
    ]);
    out.succeeds();
    assert_bbolt_check(&target);
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

/// A running one-member 3.5 cluster holding `k=v`, and a snapshot of it in its directory.
fn k_v_snapshot() -> (Cluster, PathBuf) {
    let cluster = Cluster::builder(Version::V3_5).start();
    cluster.put("k", "v");
    let snap = cluster.dir().join("snap.db");
    etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
    (cluster, snap)
}

/// `strace`, which injects faults into a real run; required (scripts/setup installs it).
fn strace() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("strace"))
            .find(|p| p.is_file())
    });
    found.expect("strace is missing: install the apt package strace (scripts/setup does)")
}

/// A restore with the `when`-th rename onwards (`when` is strace's syntax: `4`, `2+`) failing
/// with EIO.
fn restore_with_failing_rename(when: &str, args: &[&str]) -> Run {
    Tool::new(strace())
        .args(["-f", "-o", "/dev/null", "-qq"])
        .args(["-e", "trace=rename,renameat,renameat2"])
        .arg("-e")
        .arg(format!(
            "inject=rename,renameat,renameat2:error=EIO:when={when}"
        ))
        .arg(RESTORE)
        .args(args)
        .run()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Issue 12 item 4, with the swap of issue 21: every rename of the swap is made to fail in turn
/// (strace fault injection into the real binary). Before the commit (the data dir's exchange)
/// the targets are put back as they were, with nothing left behind; after it the restore is in
/// place and the next run moves the old trees aside.
#[test]
fn a_failed_swap_is_undone() {
    let (_cluster, snap) = k_v_snapshot();
    let snap = s(&snap);
    // renameat2 calls without --wal-dir: probe (1), exchange = commit (2), old aside (3). With
    // it: probes (1, 2), WAL exchange (3), data exchange = commit (4), old trees aside (5, 6).
    for (with_wal, renames, commit) in [(false, 3, 2), (true, 6, 4)] {
        for when in 1..=renames {
            let dir = tempfile::tempdir().expect("tempdir");
            let data = dir.path().join("data");
            let wal = dir.path().join("wal");
            fs::create_dir(&data).expect("mkdir");
            fs::write(data.join("old"), b"old data").expect("write");
            let mut args = vec![snap.clone(), "--data-dir".into(), s(&data)];
            if with_wal {
                fs::create_dir(&wal).expect("mkdir");
                fs::write(wal.join("old"), b"old wal").expect("write");
                args.extend(["--wal-dir".into(), s(&wal)]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = restore_with_failing_rename(
                &when.to_string(),
                &[&args[..], &["--move-aside"]].concat(),
            );
            let case = format!("--wal-dir {with_wal}, rename {when} fails");
            let out = out.named(&case);
            out.fails(6).one_line_error("Input/output error");
            if when > commit {
                assert!(
                    out.stderr.contains("the restore is in place"),
                    "{case}: {out:?}"
                );
                assert!(data.join("member/snap/db").is_file(), "{case}");
                // The next run moves the old trees aside before it refuses the occupied targets.
                let again = restore(&args);
                assert_eq!(again.code, 5, "{case}: {again:?}");
                let mut names = listing(dir.path());
                names.retain(|n| !n.contains(".bak-"));
                let want: &[&str] = if with_wal {
                    &["data", "wal"]
                } else {
                    &["data"]
                };
                assert_eq!(names, want, "{case}: nothing left");
                continue;
            }
            if with_wal && when == commit {
                assert!(out.stderr.contains("undone: "), "{case}: {out:?}");
            }
            assert_eq!(
                fs::read(data.join("old")).expect("old data"),
                b"old data",
                "{case}"
            );
            assert_eq!(listing(&data), ["old"], "{case}");
            if with_wal {
                assert_eq!(
                    fs::read(wal.join("old")).expect("old wal"),
                    b"old wal",
                    "{case}"
                );
                assert_eq!(listing(&wal), ["old"], "{case}");
                assert_eq!(listing(dir.path()), ["data", "wal"], "{case}: nothing left");
            } else {
                assert_eq!(listing(dir.path()), ["data"], "{case}: nothing left");
            }
        }
    }
}

/// Undoing fails too (the data exchange and every rename after it fail): one line names where
/// each piece is; the next run puts the old pair back; a restore then boots.
#[test]
fn a_failed_swap_whose_undoing_fails_is_explained_and_put_back() {
    let (_cluster, snap) = k_v_snapshot();
    let snap = s(&snap);
    let wal = tempfile::tempdir().expect("tempdir");
    let wal = wal.path().join("wal");
    let prepared = Cluster::builder(Version::V3_5)
        .arg(&format!("--wal-dir={}", s(&wal)))
        .prepare();
    let target = prepared.cluster().data_dir(0);
    fs::create_dir_all(&target).expect("mkdir");
    fs::write(target.join("old"), b"old data").expect("write");
    fs::create_dir_all(&wal).expect("mkdir");
    fs::write(wal.join("old"), b"old wal").expect("write");
    let mut args = vec![snap.clone()];
    args.extend(member_args(&prepared));
    args.extend(["--data-dir".into(), s(&target), "--wal-dir".into(), s(&wal)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = restore_with_failing_rename("4+", &[&args[..], &["--move-aside"]].concat());
    out.fails(6).one_line_error("undoing it failed too");
    let line = out.stderr.trim_end();
    assert!(line.contains("undoing it failed too"), "{line}");
    assert!(
        line.contains("the new wal dir is at ") && line.contains("puts them back"),
        "{line}"
    );
    assert!(
        wal.join("0000000000000000-0000000000000000.wal").is_file(),
        "{line}"
    );
    let again = restore(&args);
    again.fails(5);
    assert_eq!(listing(&wal), ["old"]);
    assert_eq!(listing(&target), ["old"]);
    let out = restore(&[&args[..], &["--move-aside"]].concat());
    out.succeeds();
    assert_bbolt_check(&target);
    let restored = prepared.start();
    let got = lines(ctl(&restored, &[0]), &["get", "k", "--print-value-only"]);
    assert_eq!(got, ["v"]);
}

/// Issue 12 item 3: a running restore's staging tree (its lock held by another process, here
/// this test, under a PID that does not exist in this namespace) is never removed by another
/// run; an unlocked one is, even when its PID is alive (1); a symlink named like one is left
/// alone and not followed.
#[test]
fn a_running_restores_staging_tree_is_never_removed() {
    let (_cluster, snap) = k_v_snapshot();
    let dir = tempfile::tempdir().expect("tempdir");
    let running = dir.path().join(".data.etcd-snap-restore-999999999.tmp");
    fs::create_dir_all(running.join("member/snap")).expect("mkdir");
    fs::write(running.join("member/snap/db"), b"being written").expect("write");
    let holder = fs::File::open(&running).expect("open");
    holder.try_lock().expect("lock");
    let stale = dir.path().join(".data.etcd-snap-restore-1.tmp");
    fs::create_dir_all(stale.join("member")).expect("mkdir");
    let victim = dir.path().join("victim");
    fs::create_dir(&victim).expect("mkdir");
    fs::write(victim.join("precious"), b"keep").expect("write");
    let planted = dir.path().join(".data.etcd-snap-restore-2.tmp");
    std::os::unix::fs::symlink(&victim, &planted).expect("symlink");

    let out = restore(&[&s(&snap), "--data-dir", &s(&dir.path().join("data"))]);
    out.succeeds();
    assert_bbolt_check(&dir.path().join("data"));
    assert_eq!(
        fs::read(running.join("member/snap/db")).expect("still there"),
        b"being written"
    );
    assert!(!stale.exists(), "{:?}", listing(dir.path()));
    assert!(fs::symlink_metadata(&planted)
        .expect("link kept")
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(victim.join("precious")).expect("kept"), b"keep");

    drop(holder);
    let out = restore(&[&s(&snap), "--data-dir", &s(&dir.path().join("data2"))]);
    out.succeeds();
    assert_bbolt_check(&dir.path().join("data2"));
    assert_eq!(
        listing(dir.path()),
        [".data.etcd-snap-restore-2.tmp", "data", "data2", "victim"],
        "the lock holder gone, its tree is cleared"
    );
}

/// A snapshot whose storage version is newer than any etcd this tool knows (here 3.8.0, written
/// into a 3.7 snapshot) is refused up front with exit 5 and one line naming both versions, with
/// and without --target-version, and nothing is left behind; --target-version outside 3.5..3.7
/// is a usage error.
#[test]
fn refuses_a_storage_version_etcd_would_refuse() {
    let cluster = Cluster::builder(Version::V3_7).start();
    cluster.put("k", "v");
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("snap.db");
    etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
    let bytes = fs::read(&snap).expect("read");
    let future = dir.path().join("future.db");
    fs::write(&future, &bytes[..bytes.len() - 32]).expect("write");
    let mut editor = bbolt::write::Editor::open(&future).expect("edit");
    editor
        .upsert(
            b"meta",
            vec![(b"storageVersion".to_vec(), b"3.8.0".to_vec())],
        )
        .expect("upsert");
    editor.commit().expect("commit");
    let target = dir.path().join("data");
    for (extra, named) in [
        (vec![], ["3.8", "3.7"]),
        (vec!["--target-version", "3.6"], ["3.8", "3.6"]),
    ] {
        let mut args = vec![s(&future), "--skip-hash-check".into()];
        args.extend(["--data-dir".into(), s(&target)]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = restore(&args).named(format!("{extra:?}"));
        for v in named {
            out.fails(5).one_line_error(v);
        }
        assert_eq!(
            listing(dir.path()),
            ["future.db", "snap.db"],
            "nothing left behind"
        );
    }
    for bad in ["3.4", "3.8", "x"] {
        let out = restore(&[
            &s(&snap),
            "--data-dir",
            &s(&target),
            "--target-version",
            bad,
        ]);
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(out.stderr.contains("--target-version"), "{out:?}");
    }
}

/// The version keys of a snapshot file or a stopped member's database, read in place.
fn db_versions(db: &Path) -> etcd_db::schema::VersionState {
    let db = bbolt::Db::open(db).expect("open db");
    etcd_db::schema::VersionState::read(&db).expect("read versions")
}

/// `endpoint status -w json` of the one member of `cluster` (3.6+ etcdctl: `storageVersion`
/// and `downgradeInfo` are in it).
fn status(cluster: &Cluster) -> Value {
    let out =
        etcd_test_support::run_ok(ctl(cluster, &[0]).args(["endpoint", "status", "-w", "json"]));
    let v: Value = serde_json::from_str(&out).expect("json");
    v[0]["Status"].clone()
}

/// A downgrade in progress, as the real `etcdctl downgrade validate 3.5` and `downgrade enable
/// 3.5` leave it on a one-member 3.6 cluster, snapshotted twice: at once (the keys still 3.6,
/// `cluster/downgrade` enabled towards 3.5.0) and after etcd's version monitor has acted (within
/// about 4 s: `clusterVersion` 3.5.0, `storageVersion` deleted, the downgrade still enabled, as it
/// stays until every member runs 3.5). With `--target-version 3.5` each boots on etcd 3.5.1 with
/// the source's data and `cluster/downgrade` cleared; without it each boots on etcd 3.6, which
/// keeps the downgrade pending (and so goes on lowering its versions towards 3.5).
#[test]
fn a_pending_downgrade_is_cleared_for_3_5() {
    let pending: &[u8] = br#"{"target-version":"3.5.0","enabled":true}"#;
    let cluster = Cluster::builder(Version::V3_6).auth().start();
    let gw = cluster.gateway();
    let lease = gw.lease_grant(3600);
    gw.put_all((0..5).map(|i| (format!("/k/{i}"), format!("v{i}"))), None);
    gw.put_with_lease(b"/leased", b"x", Some(lease));
    for step in ["validate", "enable"] {
        let out = etcd_test_support::run_ok(cluster.etcdctl().args(["downgrade", step, "3.5"]));
        assert!(out.contains(&format!("Downgrade {step} success")), "{out}");
    }
    let info = &status(&cluster)["downgradeInfo"];
    assert_eq!(info["enabled"], true, "{info}");
    assert_eq!(info["targetVersion"], "3.5.0", "{info}");
    let save = |name: &str| {
        let snap = cluster.dir().join(name);
        etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
        snap
    };
    let early = save("early.db");
    let before = db_versions(&early);
    assert_eq!(before.downgrade.as_deref(), Some(pending));
    // The monitor may already have run; what matters for `early` is the pending downgrade.
    let mut late = PathBuf::new();
    let lowered =
        etcd_test_support::wait_until(Duration::from_secs(15), Duration::from_millis(250), || {
            late = save("late.db");
            let v = db_versions(&late);
            v.cluster_version.as_deref() == Some(b"3.5.0") && v.storage_version.is_none()
        });
    assert!(
        lowered,
        "etcd 3.6 lowers the cluster and storage versions during a downgrade"
    );
    assert_eq!(db_versions(&late).downgrade.as_deref(), Some(pending));
    let source = Source {
        kvs: dump(cluster.etcdctl()),
        leases: lines(cluster.etcdctl(), &["lease", "list"]),
        users: lines(cluster.etcdctl(), &["user", "list"]),
        roles: lines(cluster.etcdctl(), &["role", "list"]),
        revision: header_revision(cluster.etcdctl()),
        snap: early.clone(),
        cluster,
    };
    assert_eq!(source.kvs.len(), 6);

    let scratch = tempfile::tempdir().expect("tempdir");
    for (name, snap) in [("early", &early), ("late", &late)] {
        // --target-version 3.5: etcd's downgrade edits, the pending downgrade cleared.
        let down = versions_after(
            snap,
            &["--target-version", "3.5"],
            &scratch.path().join(format!("{name}-down")),
        );
        assert_eq!(down.storage_version, None, "{name}");
        assert_eq!(
            down.cluster_version.as_deref(),
            Some(&b"3.5.0"[..]),
            "{name}"
        );
        assert_eq!(
            down.downgrade.as_deref(),
            Some(etcd_db::schema::NO_DOWNGRADE),
            "{name}"
        );
        let (mut restored, summaries) = restore_and_boot(
            Version::V3_5,
            1,
            &s(snap),
            &["--target-version", "3.5"],
            None,
        );
        assert_same_data(&source, &restored);
        assert_eq!(
            header_revision(ctl(&restored, &[0])),
            source.revision,
            "{name}"
        );
        assert_eq!(summaries[0]["targetVersion"], "3.5", "{name}");
        restored.stop_member(0);
        let after = db_versions(&restored.data_dir(0).join("member/snap/db"));
        assert_eq!(
            after.downgrade.as_deref(),
            Some(etcd_db::schema::NO_DOWNGRADE),
            "{name}: etcd 3.5.1 ran on it and left it cleared"
        );
        assert_bbolt_check(&restored.data_dir(0));

        // No --target-version: the keys as they were, and etcd 3.6 boots it with the downgrade
        // still pending.
        let own = versions_after(snap, &[], &scratch.path().join(format!("{name}-own")));
        let was = db_versions(snap);
        assert_eq!(
            (own.storage_version, own.cluster_version, own.downgrade),
            (was.storage_version, was.cluster_version, was.downgrade),
            "{name}: untouched"
        );
        let (restored, _) = restore_and_boot(Version::V3_6, 1, &s(snap), &[], None);
        assert_same_data(&source, &restored);
        let st = status(&restored);
        assert_eq!(st["downgradeInfo"]["enabled"], true, "{name}: {st}");
        assert_eq!(
            st["downgradeInfo"]["targetVersion"], "3.5.0",
            "{name}: {st}"
        );
    }
}
