//! etcd-snap-status against snapshots made at test time by real etcd 3.4, 3.5, 3.6 and 3.7, in
//! many shapes: each test body runs once per server version (`etcd_matrix!`).
//!
//! Each shape is checked three ways: against the `snapshot status` of the etcd that wrote it
//! (etcdutl; etcdctl for 3.4: JSON fields, and `simple`/`table` byte for byte), and on the churned
//! shape against every other version's too through `--as-etcdutl`; against what the test knows
//! it wrote (live keys, leases, users, roles, compaction, members,
//! alarms, the SHA-256 trailer), and through every layering of `zstd` and `age`, from a file and
//! from stdin. Corrupt input of every kind must exit 4 with one line and no panic.
//!
//! nextest runs each test in its own process, so a test builds its shapes on one cluster and
//! runs every assertion on each snapshot it saves.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::*;
use etcd_test_support::{etcd_matrix, Cluster, Gateway, Version};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// What the test knows about a snapshot it saved.
#[derive(Debug, Clone)]
struct Expect {
    /// Distinct live keys.
    live_keys: usize,
    /// Leases granted and still alive.
    leases: i64,
    /// Whether the cluster has auth on (then 2 users and 2 roles: see the harness).
    auth: bool,
    /// The last compaction.
    compact: Option<i64>,
    /// The current revision when the snapshot was saved.
    revision: i64,
    /// Only age(zstd) from stdin, not every layering (for the many-keys shape).
    light_layers: bool,
    /// Active alarms.
    alarms: usize,
}

impl Expect {
    fn new(live_keys: usize, revision: i64) -> Expect {
        Expect {
            live_keys,
            leases: 0,
            auth: false,
            compact: None,
            revision,
            alarms: 0,
            light_layers: false,
        }
    }
}

/// A deterministic byte stream (xorshift), so values are incompressible but reproducible.
struct Bytes(u64);

impl Bytes {
    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 24) as u8
            })
            .collect()
    }

    /// Like protobuf or JSON text: compressible about 2:1.
    fn text(&mut self, n: usize) -> Vec<u8> {
        self.take(n)
            .into_iter()
            .map(|b| b"abcdefghijklmnop"[usize::from(b & 15)])
            .collect()
    }
}

/// Saves a snapshot of `cluster` as `dir/name` and checks it every way: etcdutl (and etcdctl 3.4),
/// ground truth, layering. Returns its path and our JSON report.
#[track_caller]
fn check_shape(
    cluster: &Cluster,
    dir: &Path,
    name: &str,
    expect: &Expect,
    key: &AgeKey,
) -> (PathBuf, Value) {
    let _t = Timer::start(format!("{} {name}", cluster.version()));
    let what = format!("{} {name}", cluster.version());
    let path = {
        let _t = Timer::start(format!("{what}: save"));
        save(cluster, dir, &format!("{name}.db"))
    };
    let report = {
        let _t = Timer::start(format!("{what}: etcdutl"));
        assert_matches_etcdutl_of(cluster.version(), &path, &[], &what)
    };
    assert_ground_truth(cluster, &path, &report, expect, &what);
    let _t = Timer::start(format!("{what}: layers"));
    // Decoding does not depend on the etcd version: every layering on one version's snapshots.
    let light = expect.light_layers || cluster.version() != Version::V3_6;
    assert_layers_agree(&path, &report, key, light, &what);
    (path, report)
}

/// Our additions against what the test wrote.
#[track_caller]
fn assert_ground_truth(cluster: &Cluster, path: &Path, r: &Value, e: &Expect, what: &str) {
    assert_eq!(
        r["sha256"],
        trailer_hex(path).as_str(),
        "{what}: sha256 = the last 32 bytes"
    );
    assert_eq!(r["sha256Verified"], true, "{what}");
    assert_eq!(int(r, "liveKeys"), e.live_keys as i64, "{what}: liveKeys");
    assert_eq!(int(r, "revision"), e.revision, "{what}: revision");
    assert_eq!(int(r, "leases"), e.leases, "{what}: leases");
    assert_eq!(bucket_entries(r, "lease"), e.leases, "{what}: lease bucket");
    assert_eq!(r["authEnabled"], e.auth, "{what}: authEnabled");
    let (users, roles) = if e.auth { (2, 2) } else { (0, 0) };
    assert_eq!(int(r, "users"), users, "{what}: users (root, reader)");
    assert_eq!(int(r, "roles"), roles, "{what}: roles (root, app-reader)");
    assert_eq!(
        bucket_entries(r, "authUsers"),
        users,
        "{what}: authUsers bucket"
    );
    assert_eq!(
        bucket_entries(r, "authRoles"),
        roles,
        "{what}: authRoles bucket"
    );
    match e.compact {
        Some(rev) => {
            assert_eq!(int(r, "compactRevision"), rev, "{what}: compactRevision");
            assert_eq!(int(r, "scheduledCompactRevision"), rev, "{what}: scheduled");
        }
        None => {
            assert!(
                r["compactRevision"].is_null(),
                "{what}: compactRevision: {r}"
            );
            assert!(
                r["scheduledCompactRevision"].is_null(),
                "{what}: scheduled: {r}"
            );
        }
    }
    assert_eq!(
        r["alarms"].as_array().unwrap().len(),
        e.alarms,
        "{what}: alarms: {r}"
    );
    assert_members(cluster, r, what);
    assert_eq!(r["removedMembers"], serde_json::json!([]), "{what}");
    // etcdutl 3.5's total keys: the bucket entries; 3.6's: the live keys, with the version.
    let buckets = r["buckets"].as_array().unwrap();
    let total: i64 = buckets.iter().map(|b| b["entries"].as_i64().unwrap()).sum();
    let v = cluster.version();
    let storage_version = match v {
        Version::V3_6 => Some("3.6.0"),
        Version::V3_7 => Some("3.7.0"),
        _ => None,
    };
    // 3.6+ may not have written the storage version yet (see assert_no_storage_version_yet).
    let written =
        |field: &str, sv: &str| r[field] == sv || r[field] == Value::Null || r[field] == "";
    match storage_version {
        None => {
            assert_eq!(total, int(r, "totalKey"), "{what}: totalKey = entries");
            assert!(r.get("version").is_none(), "{what}: no version: {r}");
        }
        Some(sv) => {
            assert_eq!(int(r, "totalKey"), int(r, "liveKeys"), "{what}: totalKey");
            assert!(written("version", sv), "{what}: version: {r}");
        }
    }
    assert_eq!(
        bucket_entries(r, "key"),
        int(r, "keyRevisions"),
        "{what}: key bucket"
    );
    assert!(int(r, "tombstones") <= int(r, "keyRevisions"), "{what}");
    assert!(
        int(r, "liveKeys") + int(r, "tombstones") <= int(r, "keyRevisions"),
        "{what}"
    );
    for b in ["key", "meta", "members", "cluster", "lease", "auth"] {
        assert!(
            buckets.iter().any(|x| x["name"] == b),
            "{what}: no bucket {b}: {r}"
        );
    }
    // Raft state.
    if cluster.version() == Version::V3_4 && e.revision == 0 {
        // etcd 3.4 writes the consistent index with the first write transaction.
        assert!(
            r["consistentIndex"].is_null(),
            "{what}: consistentIndex: {r}"
        );
    } else {
        assert!(
            int(r, "consistentIndex") > 0,
            "{what}: consistentIndex: {r}"
        );
    }
    if cluster.version() == Version::V3_4 {
        assert!(r["term"].is_null(), "{what}: etcd 3.4 stores no term: {r}");
    } else {
        assert!(int(r, "term") >= 1, "{what}: term: {r}");
    }
    let want_cv = match v {
        Version::V3_4 => "3.4.0",
        Version::V3_5 | Version::V3_5Sid => "3.5.0",
        Version::V3_6 => "3.6.0",
        Version::V3_7 => "3.7.0",
    };
    assert_eq!(r["clusterVersion"], want_cv, "{what}: clusterVersion");
    match storage_version {
        None => assert!(r["storageVersion"].is_null(), "{what}: storageVersion"),
        Some(sv) => assert!(written("storageVersion", sv), "{what}: storageVersion: {r}"),
    }
    assert_eq!(int(r, "pageSize"), 4096, "{what}");
    assert_eq!(int(r, "totalSize") % 4096, 0, "{what}");
    assert_eq!(
        r["layers"],
        serde_json::json!([]),
        "{what}: a raw file has no layers"
    );
}

/// Our members against `etcdctl member list`: the same hex IDs, names and peer URLs. Client URLs
/// are in the db only when the server wrote them there: etcd 3.4 does when a member publishes
/// them; etcd 3.5.1 keeps them in its v2 store only, so its snapshots have none.
#[track_caller]
fn assert_members(cluster: &Cluster, r: &Value, what: &str) {
    let ours = report_members(r);
    let theirs = member_list(cluster);
    let without_clients = |m: &[(String, String, Vec<String>, Vec<String>)]| {
        m.iter()
            .map(|(id, n, p, _)| (id.clone(), n.clone(), p.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_clients(&ours),
        without_clients(&theirs),
        "{what}: members vs member list"
    );
    for (o, t) in ours.iter().zip(&theirs) {
        if cluster.version() == Version::V3_4 {
            assert_eq!(o.3, t.3, "{what}: client URLs of {}", o.0);
        } else {
            assert!(
                o.3.is_empty() || o.3 == t.3,
                "{what}: client URLs of {}: {:?} vs {:?}",
                o.0,
                o.3,
                t.3
            );
        }
    }
}

/// Empty; Kubernetes-shaped keys; binary keys with NUL and 0xff; values bigger than a page;
/// overwrites, deletes and a compaction without defrag; then the member's own db file with and
/// without `--skip-hash-check`.
fn shapes(v: Version) {
    let _t = Timer::start(format!("{v} shapes"));
    let mut cluster = Cluster::builder(v).arg("--max-txn-ops=1000").start();
    let dir = cluster.dir().join("snaps");
    fs::create_dir(&dir).unwrap();
    let key = age_key(&dir, "age.key");
    let gw = cluster.gateway().batch(1000);
    let mut live: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut rng = Bytes(0x9e37_79b9_7f4a_7c15);

    // Empty: no revision in the key bucket, so etcdutl says revision 0 (the server says 1).
    assert_eq!(gw.revision(), 1);
    check_shape(&cluster, &dir, "empty", &Expect::new(0, 0), &key);

    // Kubernetes-shaped: /registry/<resource>/<namespace>/<name>, protobuf-ish values.
    let mut k8s = Vec::new();
    for (resource, n) in [
        ("pods", 120),
        ("configmaps", 60),
        ("events", 80),
        ("secrets", 20),
    ] {
        for i in 0..n {
            let ns = ["default", "kube-system", "monitoring"][i % 3];
            let k = format!("/registry/{resource}/{ns}/{resource}-{i:04}").into_bytes();
            let mut val = b"k8s\x00\n\x0bv1\x12\x03Pod".to_vec();
            val.extend(rng.text(300 + i * 7));
            k8s.push((k, val));
        }
    }
    k8s.push((
        b"/registry/apiregistration.k8s.io/apiservices/v1.".to_vec(),
        b"{\"kind\":\"APIService\"}".to_vec(),
    ));
    k8s.push((b"compact_rev_key".to_vec(), b"1".to_vec()));
    let rev = gw.put_all(k8s.iter().map(|(k, v)| (k, v)), None);
    live.extend(k8s.iter().map(|(k, _)| k.clone()));
    check_shape(&cluster, &dir, "k8s", &Expect::new(live.len(), rev), &key);

    // Binary keys: every single byte, and NUL/0xff prefixed; binary values, one empty.
    let mut binary: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for b in 0..=255u8 {
        binary.push((vec![b], rng.take(usize::from(b) % 40)));
        binary.push((vec![0, b], vec![0xff, b, 0]));
        binary.push((vec![0xff, b, 0xff], vec![0, 0, b]));
    }
    binary.push((vec![0xff; 300], vec![0; 64]));
    binary.push((b"a\x00b\x00c".to_vec(), Vec::new()));
    let rev = gw.put_all(binary.iter().map(|(k, v)| (k, v)), None);
    live.extend(binary.iter().map(|(k, _)| k.clone()));
    check_shape(
        &cluster,
        &dir,
        "binary",
        &Expect::new(live.len(), rev),
        &key,
    );

    // Values bigger than a page: overflow pages.
    let mut rev = 0;
    for size in [4096, 4097, 9000, 65_536 + 3, 300_000, 1_000_000] {
        let k = format!("/big/{size}").into_bytes();
        rev = gw.put(&k, &rng.text(size));
        live.insert(k);
    }
    check_shape(
        &cluster,
        &dir,
        "overflow",
        &Expect::new(live.len(), rev),
        &key,
    );

    // Overwrites, deletes, a compaction (no defrag: free pages), then more history on top.
    for round in 0..2u8 {
        gw.put_all(
            k8s.iter()
                .map(|(k, v)| (k.clone(), [v.as_slice(), &[round]].concat())),
            None,
        );
    }
    let (start, end) = (vec![0u8], vec![0u8, 0x80]);
    let deleted = gw.delete_range(&start, Some(&end));
    let gone: Vec<Vec<u8>> = live.range(start..end).cloned().collect();
    assert_eq!(deleted as usize, gone.len(), "delete_range count");
    for k in gone {
        live.remove(&k);
    }
    let events = b"/registry/events/".to_vec();
    let deleted = gw.delete_range(&events, Some(b"/registry/events0"));
    assert_eq!(deleted, 80);
    live.retain(|k| !k.starts_with(&events));
    assert_eq!(gw.delete_range(b"/big/300000", None), 1);
    live.remove(b"/big/300000".as_slice());
    let compacted = gw.revision();
    gw.compact(compacted);
    // After the compaction: tombstones and overwrites it has not seen.
    assert_eq!(gw.delete_range(b"/big/1000000", None), 1);
    live.remove(b"/big/1000000".as_slice());
    assert_eq!(gw.delete_range(&[0xff, 0x00, 0xff], None), 1);
    live.remove([0xff, 0x00, 0xff].as_slice());
    gw.put(b"/registry/pods/default/pods-0000", b"after compaction");
    let rev = gw.put(b"/new/after/compaction", b"x");
    live.insert(b"/new/after/compaction".to_vec());
    let mut e = Expect::new(live.len(), rev);
    e.compact = Some(compacted);
    let (churned, churn) = check_shape(&cluster, &dir, "churn", &e, &key);
    assert!(
        int(&churn, "tombstones") >= 2,
        "{v}: tombstones after the compaction: {churn}"
    );
    assert!(
        int(&churn, "liveKeys") < int(&churn, "keyRevisions"),
        "{v}: churn: etcdutl 3.5 and 3.6 count differently: {churn}"
    );
    // The same file as every etcdutl shows it.
    assert_as_every_etcdutl(&churned, &[], &format!("{v} churn"));

    // The member's own db file: no trailer, so only with --skip-hash-check.
    cluster.stop_member(0);
    let db = dir.join("member.db");
    fs::copy(cluster.data_dir(0).join("member/snap/db"), &db).unwrap();
    let what = format!("{v} data-dir db");
    let out = status(&[&s(&db)]);
    out.clone().named(&what).fails(4).one_line_error("");
    assert!(
        out.stderr.contains("--skip-hash-check"),
        "{what}: the error names the flag: {out:?}"
    );
    status_stdin(&["-w", "json"], &db)
        .named(format!("{what} (stdin)"))
        .fails(4)
        .one_line_error("");
    let report = assert_matches_etcdutl_of(v, &db, &["--skip-hash-check"], &what);
    if matches!(v, Version::V3_6 | Version::V3_7) {
        assert_no_storage_version_yet(v, &db, &dir);
    }
    assert!(report["sha256"].is_null(), "{what}: {report}");
    assert_eq!(report["sha256Verified"], false, "{what}");
    assert_eq!(int(&report, "liveKeys"), live.len() as i64, "{what}");
    assert_eq!(int(&report, "compactRevision"), compacted, "{what}");
    let piped = json(&assert_ok(
        status_stdin(&["--skip-hash-check", "-w", "json"], &db),
        &what,
    ));
    assert_eq!(piped, report, "{what}: stdin vs file");
    // The same numbers as the snapshot, apart from the size and the trailer.
    for f in [
        "hash",
        "revision",
        "totalKey",
        "liveKeys",
        "keyRevisions",
        "tombstones",
        "leases",
    ] {
        assert_eq!(report[f], churn[f], "{what}: {f} vs the snapshot");
    }
}

etcd_matrix!(shapes: V3_4, V3_5, V3_6, V3_7);

/// etcd 3.6+ writes `meta/storageVersion` a moment after the cluster version is decided, so an
/// early snapshot of a new cluster (seen with three members) has `cluster/clusterVersion` 3.6.0
/// but no storage version. Its etcdutl still counts live keys and prints an empty version: a
/// copy of `db` without the key must be shown the same way by default.
fn assert_no_storage_version_yet(v: Version, db: &Path, dir: &Path) {
    let what = format!("{v} without storageVersion");
    let copy = dir.join("no-storage-version.db");
    fs::copy(db, &copy).unwrap();
    let kept: Vec<(Vec<u8>, Vec<u8>)> = {
        let d = bbolt::Db::open(&copy).unwrap();
        let meta = d.bucket(b"meta").unwrap().unwrap();
        meta.entries()
            .map(|e| e.unwrap())
            .filter(|e| e.key() != b"storageVersion")
            .map(|e| (e.key().to_vec(), e.plain_value().unwrap().to_vec()))
            .collect()
    };
    let mut editor = bbolt::write::Editor::open(&copy).unwrap();
    editor.replace_bucket(b"meta", kept).unwrap();
    editor.commit().unwrap();
    let r = assert_matches_etcdutl_of(v, &copy, &["--skip-hash-check"], &what);
    assert!(r["storageVersion"].is_null(), "{what}: {r}");
    assert_eq!(r["version"], "", "{what}: {r}");
    assert_eq!(r["totalKey"], r["liveKeys"], "{what}: {r}");
}

/// Auth on (2 users, 2 roles), leases with keys attached, then a NOSPACE alarm.
fn auth_leases_alarm(v: Version) {
    let _t = Timer::start(format!("{v} auth, leases, alarm"));
    let cluster = Cluster::builder(v)
        .auth()
        .arg("--max-txn-ops=1000")
        .arg("--quota-backend-bytes=6291456")
        .start();
    let dir = cluster.dir().join("snaps");
    fs::create_dir(&dir).unwrap();
    let key = age_key(&dir, "age.key");
    let gw = cluster.gateway().batch(1000);
    let leases: Vec<i64> = [60, 600, 3600]
        .iter()
        .map(|&ttl| gw.lease_grant(ttl))
        .collect();
    let mut live = 0;
    for (i, &lease) in leases.iter().enumerate() {
        let kvs = (0..10).map(|j| (format!("/app/lease{i}/k{j}"), format!("v{j}")));
        gw.put_all(kvs, Some(lease));
        live += 10;
    }
    let rev = gw.put_all((0..20).map(|j| (format!("/app/plain/{j}"), "x")), None);
    live += 20;
    let mut e = Expect::new(live, rev);
    e.leases = 3;
    e.auth = true;
    check_shape(&cluster, &dir, "auth-leases", &e, &key);

    // Fill the quota until etcd refuses: a NOSPACE alarm in the snapshot.
    let value = "A".repeat(700_000);
    let mut refused = None;
    for i in 0..40 {
        let body = format!(
            "{{\"key\":\"{}\",\"value\":\"{value}\"}}",
            etcd_test_support::base64(format!("/fill/{i}").as_bytes())
        );
        let (code, answer) = gw.try_call("/v3/kv/put", &body).unwrap();
        if code != 200 {
            refused = Some(answer);
            break;
        }
        live += 1;
    }
    let refused = refused.expect("etcd never refused a put over its 6 MiB quota");
    assert!(refused.contains("space exceeded"), "{v}: {refused}");
    // The refused put may still be applied: etcd checks the quota both at the API (refused before
    // raft) and at apply time (applied, then the alarm raised), whichever trips first.
    e.live_keys = gw.count_all() as usize;
    assert!(
        e.live_keys == live + 1 || e.live_keys == live,
        "{v}: {} keys after the refused put, {live} before",
        e.live_keys
    );
    e.revision = gw.revision();
    e.alarms = 1;
    let (_, r) = check_shape(&cluster, &dir, "nospace", &e, &key);
    let member = &member_list(&cluster)[0].0;
    assert_eq!(r["alarms"][0]["alarm"], "NOSPACE", "{v}: {r}");
    assert_eq!(&r["alarms"][0]["memberId"], member.as_str(), "{v}: {r}");
}

etcd_matrix!(auth_leases_alarm: V3_4, V3_5, V3_6, V3_7);

/// A 3-member cluster: every member with its hex ID, name, peer and client URLs.
fn three_members(v: Version) {
    let _t = Timer::start(format!("{v} three members"));
    let cluster = Cluster::builder(v).members(3).start();
    let dir = cluster.dir().join("snaps");
    fs::create_dir(&dir).unwrap();
    let key = age_key(&dir, "age.key");
    let gw = cluster.gateway_on(1);
    let rev = gw.put_all(
        (0..50).map(|i| (format!("/three/{i}"), format!("{i}"))),
        None,
    );
    // Member 0 (the one saved) has applied it once it answers a linearizable read.
    etcd_test_support::run_ok(cluster.etcdctl_on(&[0], None).args(["get", "/three/49"]));
    let (_, r) = check_shape(&cluster, &dir, "three", &Expect::new(50, rev), &key);
    let members = report_members(&r);
    assert_eq!(members.len(), 3, "{v}: {r}");
    let mut names: Vec<&str> = members.iter().map(|m| m.1.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["m0", "m1", "m2"]);
    let mut peers: Vec<String> = members.iter().flat_map(|m| m.2.clone()).collect();
    peers.sort();
    let mut want = cluster.peer_urls();
    want.sort();
    assert_eq!(peers, want, "{v}: peer URLs");
    let mut clients: Vec<String> = members.iter().flat_map(|m| m.3.clone()).collect();
    clients.sort();
    let mut want = cluster.endpoints();
    want.sort();
    if v == Version::V3_5 {
        assert!(
            clients.is_empty(),
            "{v}: etcd 3.5.1 keeps client URLs out of the db: {clients:?}"
        );
    } else {
        assert_eq!(clients, want, "{v}: client URLs");
    }
}

etcd_matrix!(three_members: V3_4, V3_5, V3_6, V3_7);

/// 50 000 tiny keys: a `key` bucket three levels deep (a root over branch pages over hundreds of
/// leaves).
fn many_keys(v: Version) {
    let _t = Timer::start(format!("{v} 50k keys"));
    let cluster = Cluster::builder(v).arg("--max-txn-ops=10000").start();
    let dir = cluster.dir().join("snaps");
    fs::create_dir(&dir).unwrap();
    let key = age_key(&dir, "age.key");
    let gw: Gateway = cluster.gateway().batch(10_000);
    let rev = {
        let _t = Timer::start(format!("{v} loading 50k keys"));
        gw.put_all((0..50_000u32).map(|i| (format!("k{i}"), [i as u8])), None)
    };
    let mut e = Expect::new(50_000, rev);
    e.light_layers = true;
    let (_, r) = check_shape(&cluster, &dir, "50k", &e, &key);
    assert_eq!(int(&r, "keyRevisions"), 50_000, "{v}");
    assert_eq!(int(&r, "tombstones"), 0, "{v}");
}

etcd_matrix!(many_keys: V3_4, V3_5, V3_6, V3_7);

/// A page of the snapshot, by what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Meta,
    Branch,
    Leaf,
    Freelist,
    /// Not reachable: in the free list (etcd writes none, so bbolt rebuilds it from the trees).
    Free,
    /// The second and later pages of a value bigger than a page.
    Overflow,
}

/// Classifies every page below the high-water mark, with the bbolt crate's free list and the page
/// headers (id u64, flags u16 at 8, count u16 at 10, overflow u32 at 12).
fn classify(path: &Path) -> Vec<(u64, Kind)> {
    let db = bbolt::Db::open(path).unwrap();
    let page_size = u64::from(db.page_size());
    let high = db.total_size() / page_size;
    let free: BTreeSet<u64> = db.free_pages().unwrap().into_iter().collect();
    let bytes = fs::read(path).unwrap();
    let mut pages = Vec::new();
    let mut id = 0;
    while id < high {
        let off = (id * page_size) as usize;
        let h = &bytes[off..off + 16];
        let flags = u16::from_le_bytes([h[8], h[9]]);
        let overflow = u64::from(u32::from_le_bytes([h[12], h[13], h[14], h[15]]));
        if free.contains(&id) {
            pages.push((id, Kind::Free));
            id += 1;
            continue;
        }
        assert_eq!(
            u64::from_le_bytes(h[..8].try_into().unwrap()),
            id,
            "page {id} header id"
        );
        let kind = match flags {
            0x01 => Kind::Branch,
            0x02 => Kind::Leaf,
            0x04 => Kind::Meta,
            0x10 => Kind::Freelist,
            other => panic!("page {id}: unexpected flags {other:#x}"),
        };
        pages.push((id, kind));
        for o in 1..=overflow {
            pages.push((id + o, Kind::Overflow));
        }
        id += 1 + overflow;
    }
    pages
}

/// Flips bit `bit` of byte `offset` in a copy of `bytes`.
fn flipped(bytes: &[u8], offset: usize, bit: u8) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[offset] ^= 1 << bit;
    b
}

/// The snapshot every corruption case starts from, made once per test process by a real etcd
/// 3.5 (3000 small keys, overwrites, deletes, three 20 kB values, compacted) and kept under
/// `CARGO_TARGET_TMPDIR` after its cluster is gone, so that each case below is its own test.
struct Corpus {
    /// Where the snapshot and each case's files live.
    dir: PathBuf,
    /// The snapshot, with its SHA-256 trailer.
    snap: PathBuf,
    /// Its bytes.
    bytes: Vec<u8>,
    /// Our JSON report of the database without the trailer.
    base_nohash: Value,
    /// Every page and its kind.
    pages: Vec<(u64, Kind)>,
}

/// Page size of the corpus.
const PAGE: usize = 4096;

/// The corpus, built by the first corruption test that asks for it.
fn corpus() -> &'static Corpus {
    static CORPUS: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let _t = Timer::start("corruption corpus");
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // The corpus of an earlier run outlives it (statics are not dropped): remove it here.
        for entry in fs::read_dir(root).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("status-corruption-")
                .and_then(|p| p.parse().ok());
            if pid.is_some_and(|pid: u32| !etcd_test_support::pid_alive(pid)) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(format!("status-corruption-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let cluster = Cluster::builder(Version::V3_5)
            .arg("--max-txn-ops=1000")
            .start();
        let gw = cluster.gateway().batch(1000);
        let mut rng = Bytes(42);
        gw.put_all(
            (0..3000).map(|i| (format!("/c/{i:05}"), rng.take(100))),
            None,
        );
        for i in 0..3 {
            gw.put(format!("/big/{i}").as_bytes(), &rng.take(20_000));
        }
        gw.put_all(
            (0..3000)
                .step_by(3)
                .map(|i| (format!("/c/{i:05}"), rng.take(120))),
            None,
        );
        gw.delete_range(b"/c/01000", Some(b"/c/01500"));
        gw.delete_range(b"/big/1", None);
        gw.compact(gw.revision());
        let snap = save(&cluster, &dir, "c.db");
        drop(cluster);
        let bytes = fs::read(&snap).unwrap();
        let base = json(&assert_ok(status(&[&s(&snap), "-w", "json"]), "baseline"));
        let nohash = dir.join("nohash.db");
        write(&nohash, &bytes[..bytes.len() - 32]);
        let base_nohash = json(&assert_ok(
            status(&[&s(&nohash), "-w", "json", "--skip-hash-check"]),
            "baseline without trailer",
        ));
        assert!(same(&base, &base_nohash));
        let pages = classify(&snap);
        let corpus = Corpus {
            dir,
            snap,
            bytes,
            base_nohash,
            pages,
        };
        let (branches, leaves, free, overflow) = (
            corpus.of(Kind::Branch),
            corpus.of(Kind::Leaf),
            corpus.of(Kind::Free),
            corpus.of(Kind::Overflow),
        );
        eprintln!(
            "pages: {} branch, {} leaf, {} free, {} overflow, {} freelist",
            branches.len(),
            leaves.len(),
            free.len(),
            overflow.len(),
            corpus.of(Kind::Freelist).len()
        );
        assert!(
            branches.len() >= 2,
            "the snapshot needs branch pages: {:?}",
            corpus.pages
        );
        assert!(
            leaves.len() >= 10 && !free.is_empty() && !overflow.is_empty(),
            "{:?}",
            corpus.pages
        );
        corpus
    })
}

impl Corpus {
    /// The database without its trailer.
    fn data(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 32]
    }

    /// The pages of kind `k`.
    fn of(&self, k: Kind) -> Vec<u64> {
        self.pages
            .iter()
            .filter(|p| p.1 == k)
            .map(|p| p.0)
            .collect()
    }

    /// Both meta pages and three pages of each other kind, spread over the file.
    fn targets(&self) -> Vec<(Kind, u64)> {
        let pick = |v: &[u64], n: usize| -> Vec<u64> {
            (0..n.min(v.len()))
                .map(|i| v[i * v.len() / n.min(v.len())])
                .collect()
        };
        let mut targets: Vec<(Kind, u64)> = vec![(Kind::Meta, 0), (Kind::Meta, 1)];
        for k in [Kind::Branch, Kind::Leaf, Kind::Free, Kind::Overflow] {
            targets.extend(pick(&self.of(k), 3).into_iter().map(|p| (k, p)));
        }
        targets
    }

    /// A case's own damaged file and empty `TMPDIR` (the cases run in parallel).
    fn case(&self, name: &str) -> (PathBuf, PathBuf) {
        let tmp = self.dir.join(format!("{name}.tmp"));
        fs::create_dir_all(&tmp).unwrap();
        (self.dir.join(format!("{name}.db")), tmp)
    }
}

/// Two reports equal but for the trailer's fields.
fn same(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        let o = v.as_object_mut().unwrap();
        o.remove("sha256");
        o.remove("sha256Verified");
        v
    };
    strip(a) == strip(b)
}

/// Nothing left behind in a case's `TMPDIR`.
#[track_caller]
fn assert_empty(tmp: &Path) {
    let left: Vec<_> = fs::read_dir(tmp).unwrap().collect();
    assert!(left.is_empty(), "files left in TMPDIR: {left:?}");
}

/// Truncation at many offsets, from a file and from stdin: exit 4, one line, no panic, nothing
/// left in TMPDIR; cut to the bare database it is fine with `--skip-hash-check`.
#[test]
fn corruption_truncated_at_many_offsets() {
    let c = corpus();
    let (bytes, len, page, data) = (&c.bytes, c.bytes.len(), PAGE, c.data());
    let (f, tmp) = c.case("truncated");
    let mut runs = 0;
    let mut offsets: BTreeSet<usize> = [
        0, 1, 8, 16, 19, 20, 63, 64, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16384,
    ]
    .into_iter()
    .collect();
    offsets.extend((1..24).map(|k| k * len / 24));
    offsets.extend([len - 33, len - 32, len - 31, len - 1, page * 5 + 32]);
    for (n, &at) in offsets.iter().enumerate() {
        write(&f, &bytes[..at]);
        let what = format!("truncated at {at} of {len}");
        status(&[&s(&f)]).named(&what).fails(4).one_line_error("");
        if n % 4 == 0 {
            status_stdin_tmp(&["-w", "json"], &f, Some(&tmp))
                .named(&what)
                .fails(4)
                .one_line_error("");
        }
        runs += 1;
    }
    // Truncated to the bare database, the file is fine with --skip-hash-check.
    write(&f, data);
    assert_ok(status(&[&s(&f), "--skip-hash-check"]), "untruncated db");

    assert_empty(&tmp);
    eprintln!("{runs} truncations");
}

/// A flipped bit in every kind of page of a snapshot with its trailer: exit 4 (the hash at
/// least), one line.
#[test]
fn corruption_flipped_bits_with_the_trailer() {
    let c = corpus();
    let (bytes, page, targets) = (&c.bytes, PAGE, c.targets());
    let (f, _tmp) = c.case("flipped");
    let mut runs = 0;
    for &(kind, id) in &targets {
        for (off, bit) in [
            (8usize, 0u8),
            (10, 3),
            (16, 0),
            (40, 5),
            (300, 1),
            (4000, 7),
        ] {
            let at = id as usize * page + off;
            write(&f, &flipped(bytes, at, bit));
            status(&[&s(&f)])
                .named(format!("{kind:?} page {id}: bit {bit} of byte {off}"))
                .fails(4)
                .one_line_error("");
            runs += 1;
        }
    }

    eprintln!("{runs} flipped bits");
}

/// Writes `bytes` to `f` and runs `status --skip-hash-check -w json` on it: the report, or `None`
/// when it failed as it must fail (exit 4, one line); `what` names the case in a failure.
#[track_caller]
fn nohash_report(f: &Path, bytes: &[u8], what: &str) -> Option<Value> {
    write(f, bytes);
    let out = status(&[&s(f), "--skip-hash-check", "-w", "json"]);
    if out.code == 0 {
        return Some(json(&out.stdout));
    }
    out.clone().named(what).fails(4).one_line_error("");
    None
}

/// Without the trailer the structure itself is checked: a broken meta page (one or both), a
/// branch or leaf page that changed type or claims 65535 elements, exit 4; a flipped bit in a
/// free page changes nothing.
#[test]
fn corruption_broken_pages_without_the_trailer() {
    let c = corpus();
    let (data, page, targets, base_nohash) = (c.data(), PAGE, c.targets(), &c.base_nohash);
    let (f, _tmp) = c.case("nohash");
    let mut runs = 0;
    let run_nohash = |bytes: &[u8], what: &str| nohash_report(&f, bytes, what);
    // One meta page broken. etcdutl (Go bbolt) silently uses the other one, which describes the
    // same tree; we report the broken page (exit 4), as the issue asks for flipped meta bits.
    for m in [0usize, 1] {
        for off in [16, 20, 24, 32, 48, 56, 72] {
            let what = format!("meta {m} byte {off}");
            let r = run_nohash(&flipped(data, m * page + off, 2), &what);
            assert!(
                r.is_none(),
                "{what}: a broken meta page must be reported: {r:?}"
            );
            runs += 1;
        }
    }
    // Both broken: nothing to read.
    for off in [16, 20, 32, 56, 72] {
        let b = flipped(&flipped(data, off, 0), page + off, 0);
        assert!(run_nohash(&b, &format!("both metas, byte {off}")).is_none());
        runs += 1;
    }
    // A branch or leaf page that is no longer a branch or leaf page, or claims too many elements.
    for &(kind, id) in targets
        .iter()
        .filter(|t| matches!(t.0, Kind::Branch | Kind::Leaf))
    {
        let at = id as usize * page;
        let type_bit = if kind == Kind::Branch { 0 } else { 1 };
        let what = format!("{kind:?} page {id}");
        assert!(run_nohash(&flipped(data, at + 8, type_bit), &format!("{what}: type")).is_none());
        let mut b = data.to_vec();
        b[at + 10] = 0xff;
        b[at + 11] = 0xff;
        assert!(run_nohash(&b, &format!("{what}: count 65535")).is_none());
        runs += 2;
    }
    // A free or a freelist page: not part of the data; the report does not change.
    for &(kind, id) in targets
        .iter()
        .filter(|t| matches!(t.0, Kind::Free | Kind::Freelist))
    {
        for off in [0, 8, 12, 100] {
            let what = format!("{kind:?} page {id} byte {off}");
            let r = run_nohash(&flipped(data, id as usize * page + off, 0), &what);
            assert!(r.is_some_and(|r| same(&r, base_nohash)), "{what}");
            runs += 1;
        }
    }
    eprintln!("{runs} broken pages");
}

/// Anywhere else in branch and leaf pages of a database without its trailer, our verdict agrees
/// with etcdutl's check, and when both accept the file they report the same numbers (we may be
/// stricter: we decode every revision; etcdutl does not).
#[test]
fn corruption_page_bodies_agree_with_etcdutl() {
    let c = corpus();
    let (data, page, targets) = (c.data(), PAGE, c.targets());
    let (f, _tmp) = c.case("bodies");
    let mut runs = 0;
    let run_nohash = |bytes: &[u8], what: &str| nohash_report(&f, bytes, what);
    let mut stricter = Vec::new();
    for &(kind, id) in targets
        .iter()
        .filter(|t| matches!(t.0, Kind::Branch | Kind::Leaf))
    {
        let at = id as usize * page;
        let mut mutations: Vec<(String, Vec<u8>)> = [
            (12usize, 0u8),
            (16, 1),
            (17, 0),
            (20, 2),
            (24, 4),
            (28, 0),
            (30, 6),
            (64, 3),
            (2000, 5),
        ]
        .into_iter()
        .map(|(off, bit)| {
            (
                format!("bit {bit} of byte {off}"),
                flipped(data, at + off, bit),
            )
        })
        .collect();
        let mut b = data.to_vec();
        b[at + 10] = 0;
        b[at + 11] = 0;
        mutations.push(("count 0".into(), b));
        for (mutation, b) in mutations {
            let what = format!("{kind:?} page {id}: {mutation}");
            let ours = run_nohash(&b, &what);
            let theirs =
                std::process::Command::new(etcd_test_support::etcd_bin(Version::V3_5, "etcdutl"))
                    .args(["snapshot", "status", &s(&f), "-w", "json"])
                    .output()
                    .unwrap();
            let theirs_ok = theirs.status.success();
            let theirs_crashed =
                !theirs_ok && String::from_utf8_lossy(&theirs.stderr).contains("panic");
            match (ours, theirs_ok) {
                (Some(r), true) => {
                    let t = json(&String::from_utf8_lossy(&theirs.stdout));
                    for k in ["hash", "revision", "totalKey", "totalSize"] {
                        assert_eq!(r[k], t[k], "{what}: {k}");
                    }
                }
                (Some(r), false) => {
                    assert!(
                        theirs_crashed,
                        "{what}: etcdutl rejects it, we accept it: {r}\netcdutl: {}",
                        String::from_utf8_lossy(&theirs.stderr)
                    );
                }
                (None, true) => stricter.push(what),
                (None, false) => {}
            }
            runs += 1;
        }
    }
    eprintln!(
        "stricter than etcdutl on {} flips: {stricter:?}",
        stricter.len()
    );

    eprintln!("{runs} page bodies");
}

/// Layers: a wrong or missing age identity, broken zstd and age streams, things that are not
/// snapshots: exit 4, one line, nothing left in TMPDIR.
#[test]
fn corruption_broken_layers() {
    let c = corpus();
    let (snap, bytes, len) = (&c.snap, &c.bytes, c.bytes.len());
    let (f, tmp) = c.case("layers");
    let dir = c.dir.join("layers");
    fs::create_dir_all(&dir).unwrap();
    let mut runs = 0;
    let key = age_key(&dir, "right.key");
    let wrong = age_key(&dir, "wrong.key");
    let (id, wrong_id) = (s(&key.identity), s(&wrong.identity));
    let zst = dir.join("c.db.zst");
    let age = dir.join("c.db.zst.age");
    let asc = dir.join("c.db.asc");
    sh_ok(&format!("zstd -q -c < {} > {}", s(snap), s(&zst)));
    sh_ok(&format!(
        "age -r {} < {} > {}",
        key.recipient,
        s(&zst),
        s(&age)
    ));
    sh_ok(&format!(
        "age -a -r {} < {} > {}",
        key.recipient,
        s(snap),
        s(&asc)
    ));
    for p in [&age, &asc] {
        let what = format!("{} with the wrong identity", s(p));
        status(&[&s(p), "-i", &wrong_id])
            .named(&what)
            .fails(4)
            .one_line_error("");
        status_stdin_tmp(&["-i", &wrong_id], p, Some(&tmp))
            .named(&what)
            .fails(4)
            .one_line_error("");
        let out = status(&[&s(p)]);
        assert_ne!(out.code, 0, "{what}: no identity: {out:?}");
        out.clone()
            .named(format!("{} without an identity", s(p)))
            .fails(out.code)
            .one_line_error("");
        runs += 3;
    }
    let zbytes = fs::read(&zst).unwrap();
    let abytes = fs::read(&age).unwrap();
    let armored = fs::read(&asc).unwrap();
    let mut broken: Vec<(String, Vec<u8>)> = vec![
        ("zstd truncated".into(), zbytes[..zbytes.len() / 2].to_vec()),
        (
            "zstd without its last byte".into(),
            zbytes[..zbytes.len() - 1].to_vec(),
        ),
        ("zstd frame header".into(), flipped(&zbytes, 4, 6)),
        ("zstd block".into(), flipped(&zbytes, zbytes.len() / 3, 2)),
        (
            "zstd checksum".into(),
            flipped(&zbytes, zbytes.len() - 2, 0),
        ),
        ("zstd magic only".into(), zbytes[..4].to_vec()),
        (
            "age truncated".into(),
            abytes[..abytes.len() - 100].to_vec(),
        ),
        ("age header".into(), flipped(&abytes, 40, 1)),
        ("age payload".into(), flipped(&abytes, abytes.len() / 2, 1)),
        (
            "armor truncated".into(),
            armored[..armored.len() - 40].to_vec(),
        ),
        ("armor payload".into(), {
            let mut b = armored.clone();
            let i = b.len() / 2;
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            b
        }),
        (
            "not a snapshot".into(),
            b"hello, this is not an etcd snapshot\n".repeat(200),
        ),
        ("empty".into(), Vec::new()),
        ("zeros".into(), vec![0; 8192 + 32]),
    ];
    // The zstd of a truncated snapshot is a valid zstd stream of a bad database.
    broken.push(("zstd of a truncated db".into(), {
        let t = dir.join("t.db");
        write(&t, &bytes[..len / 2]);
        let z = dir.join("t.db.zst");
        sh_ok(&format!("zstd -q -c < {} > {}", s(&t), s(&z)));
        fs::read(&z).unwrap()
    }));
    for (what, b) in &broken {
        write(&f, b);
        status(&[&s(&f), "-i", &id])
            .named(what)
            .fails(4)
            .one_line_error("");
        status_stdin_tmp(&["-i", &id, "-w", "json"], &f, Some(&tmp))
            .named(format!("{what} (stdin)"))
            .fails(4)
            .one_line_error("");
        runs += 2;
    }
    assert_empty(&tmp);
    eprintln!("{runs} broken layers");
}

/// Bad flags and values exit 2 with one line (`--help` and `--version` are goldens in
/// `tests/cmd`).
#[test]
fn command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.db");
    write(&file, b"x");
    let f = s(&file);
    let missing = s(&dir.path().join("missing.db"));
    let d = s(dir.path());
    for args in [
        vec!["--bogus"],
        vec!["-x", &f],
        vec![&f, "-w", "yaml"],
        vec![&f, "--write-out"],
        vec![&f, &f],
        vec![&f, "-"],
        vec![&f, "-i"],
        vec![&f, "-i", &missing],
        vec![&f, "--skip-hash-check=maybe"],
        vec![&f, "--as-etcdutl"],
        vec![&f, "--as-etcdutl", "3.4"],
        vec![&f, "--as-etcdutl", "3.8"],
        vec![&f, "--as-etcdutl=v3.6"],
        vec![&missing],
        vec![&d],
    ] {
        status(&args)
            .named(format!("{args:?}"))
            .fails(2)
            .one_line_error("");
    }
    status_cmd(&[&f], None)
        .env("ETCDCTL_WRITE_OUT", "yaml")
        .run()
        .fails(2)
        .one_line_error("ETCDCTL_WRITE_OUT");
}

/// `ETCDCTL_WRITE_OUT` picks the format, and a flag overrides it.
#[test]
fn write_out_variable() {
    let cluster = Cluster::builder(Version::V3_5).start();
    cluster.put("/a", "1");
    let snap = save(&cluster, cluster.dir(), "v.db");
    let table = etcdutl_status(&snap, "table");
    let run_env = |value: &str, args: &[&str]| -> Out {
        status_cmd(args, None).env("ETCDCTL_WRITE_OUT", value).run()
    };
    assert_eq!(
        assert_ok(run_env("table", &[&s(&snap)]), "env table"),
        table
    );
    let simple = etcdutl_status(&snap, "simple");
    assert_eq!(
        assert_ok(run_env("table", &[&s(&snap), "-w", "simple"]), "flag wins"),
        simple
    );
}
