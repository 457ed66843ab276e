//! This crate against the real thing: `etcdutl snapshot restore` (3.5.1) and the WAL and `.snap`
//! files written here must be byte-identical for the same flags, and a data dir made of our WAL
//! and `.snap` plus etcdutl's `db` must boot real etcd 3.5.1 and 3.4.23, single member and three
//! members, with the IDs we computed.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use etcd_test_support::{etcd_bin, run_ok, Cluster, Version};
use etcd_wal::proto::RaftSnapshot;
use etcd_wal::wal::{read_segment, FIRST_SEGMENT_NAME, SEGMENT_SIZE_BYTES};
use etcd_wal::RestorePlan;

/// A snapshot of a fresh etcd 3.5.1 holding `foo=bar`, saved into `dir`.
fn make_snapshot(dir: &Path) -> PathBuf {
    let cluster = Cluster::builder(Version::V3_5).start();
    cluster.put("foo", "bar");
    let path = dir.join("snapshot.db");
    run_ok(cluster.etcdctl().arg("snapshot").arg("save").arg(&path));
    path
}

/// The restore flags of one case.
struct Flags<'a> {
    /// `--name`.
    name: &'a str,
    /// `--initial-cluster`.
    cluster: &'a str,
    /// `--initial-cluster-token`.
    token: &'a str,
    /// `--initial-advertise-peer-urls`.
    advertise: &'a str,
}

impl Flags<'_> {
    /// Our plan for these flags.
    fn plan(&self) -> RestorePlan {
        match etcd_wal::plan(self.name, self.cluster, self.token, self.advertise) {
            Ok(p) => p,
            Err(e) => panic!("plan failed: {e}"),
        }
    }
}

/// Runs the real `etcdutl snapshot restore` into `data_dir`.
fn etcdutl_restore(snapshot: &Path, data_dir: &Path, f: &Flags<'_>) {
    let mut cmd = Command::new(etcd_bin(Version::V3_5, "etcdutl"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCD") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--name", f.name])
        .args(["--initial-cluster", f.cluster])
        .args(["--initial-cluster-token", f.token])
        .args(["--initial-advertise-peer-urls", f.advertise]);
    run_ok(&mut cmd);
}

/// Creates `dir` and its parents with mode 0700.
fn mkdir(dir: &Path) {
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        panic!("mkdir {}: {e}", dir.display());
    }
}

/// Reads a file or panics.
fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The single `.snap` file in a snap dir.
fn snap_file(snap_dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir(snap_dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", snap_dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one .snap in {}: {found:?}",
        snap_dir.display()
    );
    found.remove(0)
}

/// Writes our WAL and `.snap` into `data_dir/member/{wal,snap}`.
fn write_ours(data_dir: &Path, plan: &RestorePlan) -> (PathBuf, PathBuf) {
    let wal_dir = data_dir.join("member/wal");
    let snap_dir = data_dir.join("member/snap");
    mkdir(&wal_dir);
    mkdir(&snap_dir);
    let wal = etcd_wal::write_wal(&wal_dir, plan).unwrap_or_else(|e| panic!("write_wal: {e}"));
    let snap = etcd_wal::write_snap(&snap_dir, plan).unwrap_or_else(|e| panic!("write_snap: {e}"));
    (wal, snap)
}

/// Describes a WAL's records for a failure message.
fn describe_wal(bytes: &[u8]) -> String {
    match read_segment(bytes) {
        Ok(recs) => recs
            .iter()
            .map(|r| {
                let data: String = r
                    .data
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("{:?} crc={:#010x} data={data}\n", r.kind, r.crc)
            })
            .collect(),
        Err(e) => format!("does not decode: {e}"),
    }
}

/// Asserts the two WAL files are identical, the whole 64,000,000 bytes.
fn assert_same_wal(theirs: &Path, ours: &Path) {
    let (t, o) = (read(theirs), read(ours));
    assert_eq!(t.len() as u64, SEGMENT_SIZE_BYTES, "etcdutl's WAL length");
    assert_eq!(o.len() as u64, SEGMENT_SIZE_BYTES, "our WAL length");
    if let Some(i) = t.iter().zip(&o).position(|(a, b)| a != b) {
        let end = t.iter().rposition(|&b| b != 0).unwrap_or(0) + 1;
        panic!(
            "WAL differs first at byte {i}\n--- etcdutl ---\n{}--- ours ---\n{}",
            describe_wal(&t[..end]),
            describe_wal(&o[..end.max(i + 1)])
        );
    }
    let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();
    assert_eq!(mode(ours), Some(0o600));
    assert_eq!(mode(theirs), Some(0o600));
}

/// Decodes a `.snap` file or panics.
fn decode_snap(bytes: &[u8]) -> RaftSnapshot {
    etcd_wal::snap::decode(bytes).unwrap_or_else(|e| panic!("snap does not decode: {e}"))
}

/// Asserts the two `.snap` files have the same name and bytes. (Their modes differ on
/// purpose: etcd writes 0666 less the umask, we write 0600.)
fn assert_same_snap(theirs: &Path, ours: &Path) {
    assert_eq!(theirs.file_name(), ours.file_name(), "snap file names");
    let (t, o) = (read(theirs), read(ours));
    if t != o {
        let (ts, os) = (decode_snap(&t), decode_snap(&o));
        let tj = String::from_utf8_lossy(ts.data.as_deref().unwrap_or_default()).into_owned();
        let oj = String::from_utf8_lossy(os.data.as_deref().unwrap_or_default()).into_owned();
        let at = tj
            .bytes()
            .zip(oj.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(tj.len().min(oj.len()));
        let from = at.saturating_sub(200);
        panic!(
            "snap differs; metadata etcdutl {:?} ours {:?}; v2 JSON differs at {at}:\n--- etcdutl ---\n{}\n--- ours ---\n{}",
            ts.metadata,
            os.metadata,
            &tj[from..(at + 200).min(tj.len())],
            &oj[from..(at + 200).min(oj.len())]
        );
    }
}

/// Both cases byte for byte: the defaults, and member `b` of a three-member cluster.
#[test]
fn wal_and_snap_are_byte_identical_to_etcdutl() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let snapshot = make_snapshot(tmp.path());
    let cases = [
        Flags {
            name: "default",
            cluster: "default=http://localhost:2380",
            token: "etcd-cluster",
            advertise: "http://localhost:2380",
        },
        Flags {
            name: "b",
            cluster: "a=http://127.0.0.1:1001,b=http://127.0.0.1:1002,c=http://127.0.0.1:1003",
            token: "tok",
            advertise: "http://127.0.0.1:1002",
        },
    ];
    for (i, f) in cases.iter().enumerate() {
        let theirs = tmp.path().join(format!("etcdutl-{i}"));
        let ours = tmp.path().join(format!("ours-{i}"));
        etcdutl_restore(&snapshot, &theirs, f);
        let plan = f.plan();
        let (wal, snap) = write_ours(&ours, &plan);
        assert_same_wal(&theirs.join("member/wal").join(FIRST_SEGMENT_NAME), &wal);
        assert_same_snap(&snap_file(&theirs.join("member/snap")), &snap);
    }
}

/// Boots `members` members of etcd `version` on data dirs holding our WAL and `.snap` and the
/// `db` of etcdutl's restore with the same flags, and checks health, membership and data.
fn boot(version: Version, members: usize) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let snapshot = make_snapshot(tmp.path());
    let prepared = Cluster::builder(version).members(members).prepare();
    let initial_cluster = prepared.initial_cluster();
    let token = prepared.token().to_string();
    let mut plans = Vec::new();
    for i in 0..members {
        let c = prepared.cluster();
        let (name, url) = (c.member_name(i), c.peer_urls()[i].clone());
        let f = Flags {
            name: &name,
            cluster: &initial_cluster,
            token: &token,
            advertise: &url,
        };
        let theirs = tmp.path().join(format!("etcdutl-{i}"));
        etcdutl_restore(&snapshot, &theirs, &f);
        let plan = f.plan();
        let data_dir = c.data_dir(i);
        write_ours(&data_dir, &plan);
        let db = data_dir.join("member/snap/db");
        if let Err(e) = fs::copy(theirs.join("member/snap/db"), &db) {
            panic!("copy db: {e}");
        }
        plans.push(plan);
    }
    let cluster = prepared.start();

    run_ok(cluster.etcdctl().args(["endpoint", "health"]));
    assert_eq!(cluster.get("foo").as_deref(), Some("bar"));

    let list = run_ok(cluster.etcdctl().args(["member", "list"]));
    let mut listed: Vec<(String, String)> = list
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split(", ").collect();
            (
                cols[0].to_string(),
                cols.get(2).copied().unwrap_or_default().to_string(),
            )
        })
        .collect();
    listed.sort();
    let plan = &plans[0];
    let mut want: Vec<(String, String)> = plan
        .members
        .iter()
        .map(|m| (format!("{:x}", m.id), m.name.clone()))
        .collect();
    want.sort();
    assert_eq!(listed, want, "member list:\n{list}");

    let json = run_ok(cluster.etcdctl().args(["member", "list", "-w", "json"]));
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("member list json: {e}: {json}"));
    assert_eq!(
        v["header"]["cluster_id"].as_u64(),
        Some(plan.cluster_id),
        "cluster id: {json}"
    );
    eprintln!(
        "{version}: {members} member(s) booted from our WAL and .snap; cluster {:x}",
        plan.cluster_id
    );
}

#[test]
fn boots_etcd_3_5_single_member() {
    boot(Version::V3_5, 1);
}

#[test]
fn boots_etcd_3_4_single_member() {
    boot(Version::V3_4, 1);
}

#[test]
fn boots_etcd_3_5_three_members() {
    boot(Version::V3_5, 3);
}

#[test]
fn boots_etcd_3_4_three_members() {
    boot(Version::V3_4, 3);
}

/// Unusual but valid flags: URL normalisation (scheme case, whitespace, a bare `#`, a query,
/// an empty port, IPv6, non-ASCII and `&` in host names, several URLs per member) and JSON
/// escaping in names and URLs must give etcdutl's bytes too. Only the local member's URLs are
/// IPs: etcdutl resolves those through DNS, never the others.
#[test]
fn unusual_flags_are_byte_identical_to_etcdutl() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let snapshot = make_snapshot(tmp.path());
    let cases = [
        Flags {
            name: "n<1>&",
            cluster: "n<1>&=HTTP://127.0.0.1:1001 , other=https://x&y:2?q=1&r=<2>,z=http://é:3,e=http://h:",
            token: "t\"ok",
            advertise: " http://127.0.0.1:1001#",
        },
        Flags {
            name: "m",
            cluster: "m=http://127.0.0.2:2,m=unix://[::1]:1,m=http://127.0.0.1:1,v6=http://[fe80::1]:2380",
            token: "",
            advertise: "http://127.0.0.1:1,UNIX://[::1]:1,http://127.0.0.2:2",
        },
    ];
    for (i, f) in cases.iter().enumerate() {
        let theirs = tmp.path().join(format!("etcdutl-{i}"));
        let ours = tmp.path().join(format!("ours-{i}"));
        etcdutl_restore(&snapshot, &theirs, f);
        let plan = f.plan();
        let (wal, snap) = write_ours(&ours, &plan);
        assert_same_wal(&theirs.join("member/wal").join(FIRST_SEGMENT_NAME), &wal);
        assert_same_snap(&snap_file(&theirs.join("member/snap")), &snap);
    }
}

/// Refused flags: our error text must be etcdutl's `Error: ...` line. (The snapshot path does
/// not exist: etcdutl checks the flags before it opens it.)
#[test]
fn refusals_match_etcdutl_error_texts() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ip = "http://127.0.0.1:1";
    let cases: &[(&str, &str, &str)] = &[
        ("x", "a=http://127.0.0.1:1", ip),
        ("a", "", ip),
        ("", "a=http://127.0.0.1:1", ip),
        ("a", "a=http://127.0.0.1:1", "http://127.0.0.1:2"),
        (
            "a",
            "a=http://127.0.0.1:1",
            "http://127.0.0.1:1,http://127.0.0.1:2",
        ),
        ("a", "a=http://127.0.0.1:1,a=http://127.0.0.1:2", ip),
        ("a", "a=http://127.0.0.1:1,a=http://127.0.0.1:1", ip),
        ("a", "a=http://127.0.0.1:1,b=http://127.0.0.1:1", ip),
        ("a", "a=http://127.0.0.1:1,b=http://127.0.0.1:1/", ip),
        ("a", "a=http://127.0.0.1:1", "127.0.0.1:1"),
        ("a", "a=http://127.0.0.1:1", ""),
        ("a", "a=http://127.0.0.1:1,b", ip),
        ("a", "a=ftp://127.0.0.1:1", ip),
        ("a", "a=http://127.0.0.1", ip),
        ("a", "a=http:127.0.0.1:1", ip),
        ("a", "a=http://127.0.0.1:1", "http://127.0.0.1:1/x"),
        ("a", "a=http://127.0.0.1:x", ip),
        ("a", "a=:x", ip),
        ("a", "a=http://a b:1", ip),
        ("a", "a=http://[::1:1", ip),
        ("a", "a=http://%41:1", ip),
        ("a", "a=http://%zz:1", ip),
        ("a", "a=http://h:1/%zz", ip),
        ("a", "a=1http://h:1", ip),
        ("a", "a=http://h\u{1}:1", ip),
        ("a", "a=http://a:b:1", ip),
    ];
    let bin = etcd_bin(Version::V3_5, "etcdutl");
    let mut mismatches = Vec::new();
    for (i, (name, cluster, adv)) in cases.iter().enumerate() {
        let out = Command::new(&bin)
            .args(["snapshot", "restore"])
            .arg(tmp.path().join("missing.db"))
            .arg("--data-dir")
            .arg(tmp.path().join(format!("d{i}")))
            .args(["--name", name, "--initial-cluster", cluster])
            .args(["--initial-cluster-token", "tok"])
            .args(["--initial-advertise-peer-urls", adv])
            .output()
            .unwrap_or_else(|e| panic!("run etcdutl: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let theirs = stderr
            .lines()
            .find_map(|l| l.strip_prefix("Error: "))
            .unwrap_or("<no Error: line>")
            .to_string();
        let ours = match etcd_wal::plan(name, cluster, "tok", adv) {
            Ok(_) => "<accepted>".to_string(),
            Err(e) => e.to_string(),
        };
        if theirs != ours {
            mismatches.push(format!(
                "--name {name:?} --initial-cluster {cluster:?} --initial-advertise-peer-urls {adv:?}\n  etcdutl: {theirs}\n  ours:    {ours}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
