//! The editor on snapshots written by real etcd 3.4.23 and 3.5.1, checked by real etcd tools.
//!
//! Why it exists: `snapshot restore` edits a snapshot in place with `bbolt::write::Editor`. For
//! snapshots of several shapes (tiny; ~20k small keys so `key` has branch pages plus a value over
//! 4 KiB for overflow; deletes and a compaction without defrag so the file has free pages), this
//! does what restore does (replace `members` and `members_removed`, ensure `cluster`, set
//! `consistent_index` and `term`, with and without a revision bump), then requires: real
//! `etcdutl snapshot status` (which runs bbolt's `tx.Check`) and etcd 3.4's `etcdctl snapshot
//! status` accept the file and report the expected revision and key count; our own check passes;
//! every bucket holds the original entries plus exactly the edits; the file grew by a few pages.
//! Finally the edited file is restored by the real tools and booted with real etcd 3.4 and 3.5,
//! which must serve the keys at the bumped revision. Fails, never skips, without `.deps`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bbolt::write::{CommitStats, Editor};
use bbolt::Db;
use common::etcd::{bin_dir_of, etcdctl34_status, etcdutl_status, Etcd, TempDir};

type Contents = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

const MEMBER_ID: &str = "8e9e05c52164694d";
const MEMBER_JSON: &str =
    r#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#;
const BUMP: i64 = 1_000_000;

fn contents(db: &Db) -> Contents {
    let mut out = BTreeMap::new();
    for name in db.buckets().unwrap() {
        let b = db.bucket(&name).unwrap().unwrap();
        let entries = b
            .entries()
            .map(|e| {
                let e = e.unwrap();
                assert!(!e.is_bucket(), "etcd never nests buckets");
                (e.key().to_vec(), e.value().to_vec())
            })
            .collect();
        out.insert(name, entries);
    }
    out
}

fn rev_key(main: i64) -> Vec<u8> {
    let mut k = main.to_be_bytes().to_vec();
    k.push(b'_');
    k.extend_from_slice(&0i64.to_be_bytes());
    k
}

fn upsert(entries: &mut Vec<(Vec<u8>, Vec<u8>)>, k: &[u8], v: Vec<u8>) {
    match entries.binary_search_by(|e| e.0.as_slice().cmp(k)) {
        Ok(i) => entries[i].1 = v,
        Err(i) => entries.insert(i, (k.to_vec(), v)),
    }
}

/// Does to `path` what restore does; returns the commit stats and the expected contents.
fn restore_like(path: &Path, orig: &Contents, bump: bool) -> (CommitStats, Contents, i64) {
    let mut want = orig.clone();
    let mut ed = Editor::open(path).unwrap();
    let members = vec![(
        MEMBER_ID.as_bytes().to_vec(),
        MEMBER_JSON.as_bytes().to_vec(),
    )];
    ed.replace_bucket(b"members", members.clone()).unwrap();
    ed.replace_bucket(b"members_removed", vec![]).unwrap();
    ed.ensure_bucket(b"cluster").unwrap();
    let meta_kvs = vec![
        (b"consistent_index".to_vec(), 1u64.to_be_bytes().to_vec()),
        (b"term".to_vec(), 1u64.to_be_bytes().to_vec()),
    ];
    ed.upsert(b"meta", meta_kvs.clone()).unwrap();
    want.insert(b"members".to_vec(), members);
    want.insert(b"members_removed".to_vec(), vec![]);
    want.entry(b"cluster".to_vec()).or_default();
    let meta = want.entry(b"meta".to_vec()).or_default();
    for (k, v) in meta_kvs {
        upsert(meta, &k, v);
    }
    let last = ed.last_key(b"key").unwrap().expect("key bucket not empty");
    assert_eq!(
        Some(&last),
        orig[&b"key"[..]].last().map(|e| &e.0),
        "last_key"
    );
    let mut revision = i64::from_be_bytes(last[0..8].try_into().unwrap());
    if bump {
        revision += BUMP;
        let k = rev_key(revision);
        ed.append(b"key", k.clone(), vec![]).unwrap();
        ed.upsert(b"meta", vec![(b"scheduledCompactRev".to_vec(), k.clone())])
            .unwrap();
        want.get_mut(&b"key"[..]).unwrap().push((k.clone(), vec![]));
        upsert(
            want.get_mut(&b"meta"[..]).unwrap(),
            b"scheduledCompactRev",
            k,
        );
    }
    (ed.commit().unwrap(), want, revision)
}

fn strip_trailer(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(dst).unwrap();
    let len = f.metadata().unwrap().len();
    assert_eq!(len % 512, 32, "snapshot has a hash trailer");
    f.set_len(len - 32).unwrap();
}

/// Edits one snapshot (with and without bump) and checks the result; returns the bumped copy.
fn edit_and_verify(version: &str, shape: &str, snap: &Path, dir: &Path) -> PathBuf {
    let mut bumped = PathBuf::new();
    for bump in [false, true] {
        let path = dir.join(format!(
            "{shape}-{}.db",
            if bump { "bump" } else { "plain" }
        ));
        strip_trailer(snap, &path);
        let size_before = std::fs::metadata(&path).unwrap().len();
        let orig = {
            let db = Db::open(&path).unwrap();
            assert!(db.check().is_empty());
            contents(&db)
        };
        let (stats, want, revision) = restore_like(&path, &orig, bump);
        let size_after = std::fs::metadata(&path).unwrap().len();
        println!(
            "etcd {version} {shape} bump={bump}: {size_before} -> {size_after} bytes \
             (+{} pages written, {} pages freed, pgid {} -> {}, freelist {:?})",
            stats.pages_written,
            stats.pages_freed,
            stats.old_pgid,
            stats.new_pgid,
            stats.freelist_ids
        );
        assert!(
            stats.pages_written <= 8,
            "{shape}: wrote {} pages",
            stats.pages_written
        );
        assert_eq!(size_after, stats.new_pgid * u64::from(stats.page_size));

        let db = Db::open(&path).unwrap();
        let errs: Vec<String> = db.check().iter().map(|e| e.to_string()).collect();
        assert!(errs.is_empty(), "{shape}: {errs:#?}");
        let got = contents(&db);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (name, entries) in &want {
            assert!(
                &got[name] == entries,
                "{shape}: bucket {} differs",
                String::from_utf8_lossy(name)
            );
        }
        let ours = common::status(&db).unwrap();
        let total: u64 = want.values().map(|v| v.len() as u64).sum();
        assert_eq!(ours.total_key, total);
        assert_eq!(ours.revision, revision);

        let (hash, rev, total_key, total_size) =
            etcdutl_status(&path).unwrap_or_else(|e| panic!("etcdutl status {shape}: {e}"));
        assert_eq!(
            (hash, rev, total_key, total_size),
            (ours.hash, revision, total, db.total_size()),
            "{shape}: etcdutl snapshot status"
        );
        if version.starts_with("3.4") {
            let s34 = etcdctl34_status(&path)
                .unwrap_or_else(|e| panic!("etcdctl 3.4 status {shape}: {e}"));
            assert_eq!(
                (s34.1, s34.2),
                (revision, total),
                "{shape}: etcdctl 3.4 status"
            );
        }
        if bump {
            bumped = path;
        }
    }
    bumped
}

fn json_number(s: &str, name: &str) -> i64 {
    let i = s
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("no {name} in {s}"));
    s[i + name.len() + 3..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Restores `db` with the real tool of `version` (skip hash check: the trailer is gone), boots
/// real etcd on the result and returns (`get --prefix ""` count, header revision).
fn restore_and_boot(version: &str, db: &Path, dir: &Path) -> (i64, i64) {
    let bin = bin_dir_of(version);
    let (client, peer) = (free_port(), free_port());
    let curl = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let data = dir.join(format!("restored-{version}"));
    let tool = if version.starts_with("3.4") {
        "etcdctl"
    } else {
        "etcdutl"
    };
    let out = Command::new(bin.join(tool))
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(db)
        .arg("--skip-hash-check")
        .arg("--data-dir")
        .arg(&data)
        .args(["--initial-cluster", &format!("default={purl}")])
        .args(["--initial-advertise-peer-urls", &purl])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} {version} snapshot restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::File::create(dir.join(format!("etcd-{version}.log"))).unwrap();
    let _etcd = Killed(
        Command::new(bin.join("etcd"))
            .args(["--name", "default", "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args([
                "--listen-peer-urls",
                &purl,
                "--initial-advertise-peer-urls",
                &purl,
            ])
            .args(["--initial-cluster", &format!("default={purl}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let ctl = |args: &[&str]| {
        Command::new(bin.join("etcdctl"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &curl])
            .args(args)
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = ctl(&["get", "--prefix", "", "--limit", "1", "-w", "json"]);
        if o.status.success() {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            return (json_number(&s, "count"), json_number(&s, "revision"));
        }
        assert!(
            Instant::now() < deadline,
            "etcd {version} did not serve the restored data: {}",
            std::fs::read_to_string(dir.join(format!("etcd-{version}.log"))).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn live_keys(etcd: &Etcd) -> i64 {
    let s = etcd.ctl(&["get", "--prefix", "", "--limit", "1", "-w", "json"]);
    json_number(&s, "count")
}

fn run(version: &str) {
    let etcd = Etcd::start_version(version);
    let dir = TempDir::new("write-etcd");
    let snap = |name: &str| {
        let p = dir.0.join(format!("{name}.snap"));
        etcd.snapshot(&p);
        p
    };
    // tiny
    etcd.ctl(&["put", "foo", "bar"]);
    etcd.ctl(&["put", "foo2", "baz"]);
    let tiny = snap("tiny");
    // ~20k small keys (branch pages in `key`) and one value over 4 KiB (overflow)
    etcd.ctl(&["put", "big", &"x".repeat(10_000)]);
    for chunk in 0..2 {
        let kvs: Vec<(String, String)> = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| (format!("k{i:05}"), format!("v{i}")))
            .collect();
        etcd.put_many(&kvs);
    }
    let big = snap("big");
    // deletes and a compaction, no defrag: free pages inside the file
    etcd.ctl(&["del", "--prefix", "k0"]);
    let rev = json_number(&etcd.ctl(&["get", "foo", "-w", "json"]), "revision");
    etcd.ctl(&["compaction", &rev.to_string()]);
    let live = live_keys(&etcd);
    let compacted = snap("compacted");
    drop(etcd);

    for (shape, p) in [("tiny", &tiny), ("big", &big)] {
        edit_and_verify(version, shape, p, &dir.0);
    }
    let bumped = edit_and_verify(version, "compacted", &compacted, &dir.0);
    let (count, revision) = restore_and_boot(version, &bumped, &dir.0);
    println!("etcd {version} booted the restored edit: {count} keys at revision {revision}");
    assert_eq!(count, live, "live keys after restore + boot");
    assert!(revision >= rev + BUMP, "revision {revision} is bumped");
}

#[test]
fn restore_edit_on_etcd_3_5_snapshots() {
    run("3.5.1");
}

#[test]
fn restore_edit_on_etcd_3_4_snapshots() {
    run("3.4.23");
}
