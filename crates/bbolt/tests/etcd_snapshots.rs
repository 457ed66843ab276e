//! The reader against snapshots written by a real etcd 3.5.1, compared with the real `etcdutl`.
//!
//! Why it exists: the synthetic tests prove the reader agrees with our reading of the format; this
//! proves it agrees with etcd itself. One etcd server makes snapshots of several shapes (fresh,
//! overflow values and a lease, a deep tree with deletes and a compaction); for each, open + check +
//! full iteration must succeed and the `snapshot status` numbers computed from this crate must equal
//! `etcdutl snapshot status -w json`. Then the deepest snapshot is truncated and bit-flipped: every
//! truncation below the database size and every damaged page header must give an error, and no
//! damage may panic. A snapshot of etcd 3.4.23 is compared with its own `etcdctl snapshot status`.
//! Needs `.deps/etcd-3.5.1` and `.deps/etcd-3.4.23` from `scripts/setup`; fails, never skips,
//! without them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use bbolt::Db;
use common::etcd::{etcdctl34_status, etcdutl_status, Etcd, TempDir};
use common::{status, walk_all};

fn compare(path: &Path) -> common::Status {
    let db = Db::open(path).unwrap();
    let errs: Vec<String> = db.check().iter().map(|e| e.to_string()).collect();
    assert!(errs.is_empty(), "{}: {errs:#?}", path.display());
    walk_all(&db).unwrap();
    let ours = status(&db).unwrap();
    let (hash, revision, total_key, total_size) = etcdutl_status(path).unwrap();
    let theirs = common::Status {
        hash,
        revision,
        total_key,
        total_size,
    };
    assert_eq!(ours, theirs, "{}", path.display());
    ours
}

/// Page ids of every branch and leaf page reachable from the buckets, found by parsing the raw
/// image independently of the crate's walker (bucket roots come from the crate).
fn tree_pages(img: &[u8], ps: usize, db: &Db) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let mut todo: Vec<u64> = vec![db.meta().root];
    for name in db.buckets().unwrap() {
        if let Some(id) = db.bucket(&name).unwrap().unwrap().root_page() {
            todo.push(id);
        }
    }
    while let Some(id) = todo.pop() {
        let p = &img[id as usize * ps..];
        let flags = u16::from_le_bytes([p[8], p[9]]);
        let count = u16::from_le_bytes([p[10], p[11]]) as usize;
        out.push((id, flags));
        if flags == 0x01 {
            for i in 0..count {
                let e = 16 + 16 * i;
                todo.push(u64::from_le_bytes(p[e + 8..e + 16].try_into().unwrap()));
            }
        }
    }
    out
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Opens, checks and walks `img`; Ok(status) only if all of that succeeds. A damaged file is walked
/// even when the check fails, so iteration over damage is exercised too.
fn try_all(img: Vec<u8>) -> Result<common::Status, String> {
    let db = Db::from_bytes(img).map_err(|e| e.to_string())?;
    let errs = db.check();
    let walked = walk_all(&db);
    if let Some(e) = errs.first() {
        return Err(e.to_string());
    }
    walked.map_err(|e| e.to_string())?;
    status(&db).map_err(|e| e.to_string())
}

#[test]
fn snapshots_match_etcdutl_and_damage_is_detected() {
    let etcd = Etcd::start();
    let dir = TempDir::new("snaps");

    // Shape 1: a fresh server.
    let s0 = dir.0.join("fresh.db");
    etcd.snapshot(&s0);
    compare(&s0);

    // Shape 2: small keys, values spanning overflow pages, a lease.
    let mut kvs: Vec<(String, String)> = (0..200)
        .map(|i| (format!("/small/{i:04}"), format!("v{i}")))
        .collect();
    for (i, n) in [4097usize, 5000, 9000, 20000, 70000].iter().enumerate() {
        kvs.push((format!("/big/{i}"), "x".repeat(*n)));
    }
    etcd.put_many(&kvs);
    let lease = etcd.ctl(&["lease", "grant", "600"]);
    let lease_id = lease.split_whitespace().nth(1).unwrap().to_string();
    etcd.ctl(&["put", "--lease", &lease_id, "/leased", "yes"]);
    let s1 = dir.0.join("overflow.db");
    etcd.snapshot(&s1);
    let st1 = compare(&s1);
    assert!(st1.total_key > 205);

    // Shape 3: 20 000 keys (branch pages), half deleted, compacted without defrag.
    let kvs: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("/deep/{i:06}"), format!("value-{i}")))
        .collect();
    etcd.put_many(&kvs);
    etcd.ctl(&["del", "--prefix", "/deep/01"]);
    let rev_line = etcd.ctl(&["put", "/after", "x", "-w", "fields"]);
    let rev: String = rev_line
        .lines()
        .find(|l| l.starts_with("\"Revision\""))
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    etcd.ctl(&["compaction", &rev]);
    let s2 = dir.0.join("deep.db");
    etcd.snapshot(&s2);
    let st2 = compare(&s2);
    assert_eq!(st2.revision.to_string(), rev);
    drop(etcd);

    let img = std::fs::read(&s2).unwrap();
    let db = Db::from_bytes(img.clone()).unwrap();
    let report = db.check_report(10);
    assert!(report.stats.branch_pages > 0, "{:?}", report.stats);
    let ps = db.page_size() as usize;
    eprintln!("deep snapshot: {} bytes, {:?}", img.len(), report.stats);
    let size = db.total_size() as usize;
    assert_eq!(
        img.len(),
        size + 32,
        "a snapshot carries a SHA-256 after the database"
    );
    let st1_db = Db::open(&s1).unwrap();
    assert!(st1_db.check_report(10).stats.overflow_pages > 0);

    // Truncation anywhere below the database size is an error at open.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cuts: Vec<usize> = (0..size).step_by((size / 64).max(ps)).collect();
    cuts.extend((0..64).map(|_| rng.next() as usize % size));
    cuts.push(size - 1);
    for cut in cuts {
        assert!(
            Db::from_bytes(img[..cut].to_vec()).is_err(),
            "truncated at {cut} opened"
        );
    }
    // Cutting only the trailing checksum leaves the database readable.
    assert_eq!(try_all(img[..size].to_vec()).unwrap(), st2);
    assert_eq!(
        common::status_scan(&Db::from_bytes(img[..size].to_vec()).unwrap()).0,
        st2
    );

    // Damaged page headers (id, flags) of branch and leaf pages are errors.
    let pages = tree_pages(&img, ps, &db);
    assert!(pages.iter().any(|p| p.1 == 0x01) && pages.iter().any(|p| p.1 == 0x02));
    let mut header_flips = 0;
    for &(id, _) in pages.iter().step_by(pages.len().div_ceil(16)) {
        for byte in [0usize, 1, 8, 9] {
            let mut m = img.clone();
            m[id as usize * ps + byte] ^= 1 << (rng.next() % 8);
            assert!(
                try_all(m).is_err(),
                "header byte {byte} of page {id} flipped: no error"
            );
            header_flips += 1;
        }
    }

    // The smaller snapshot (overflow values, a lease) for the many-flips part.
    let img = std::fs::read(&s1).unwrap();
    let db = Db::from_bytes(img.clone()).unwrap();
    let pages = tree_pages(&img, ps, &db);
    // Meta pages: a flip in the header or meta struct of either meta is caught by the check.
    for meta in 0..2 {
        for _ in 0..20 {
            let byte = rng.next() as usize % 80;
            if (10..12).contains(&byte) {
                continue; // the meta page's element count means nothing to anyone
            }
            let mut m = img.clone();
            m[meta * ps + byte] ^= 1 << (rng.next() % 8);
            assert!(
                try_all(m).is_err(),
                "meta {meta} byte {byte} flipped: no error"
            );
        }
    }
    // Random flips in the first 256 bytes (headers, element arrays, keys) of tree pages: an error,
    // or a readable db (a flipped data byte is invisible to any checker); never a panic or a hang.
    let mut errors = 0;
    let t = std::time::Instant::now();
    let rounds = 400;
    for _ in 0..rounds {
        let (id, _) = pages[rng.next() as usize % pages.len()];
        let off = id as usize * ps + rng.next() as usize % 256;
        let mut m = img.clone();
        m[off] ^= 1 << (rng.next() % 8);
        let db = Db::from_bytes(m).unwrap();
        let bad = !db.check().is_empty();
        let walked = walk_all(&db);
        if bad || walked.is_err() {
            errors += 1;
        }
    }
    eprintln!(
        "header flips: {header_flips}; random flips: {errors} of {rounds} detected ({:?})",
        t.elapsed()
    );
    assert!(errors > rounds / 10);
}

#[test]
fn etcd_3_4_snapshot_matches_etcdctl_3_4() {
    let etcd = Etcd::start_version("3.4.23");
    let dir = TempDir::new("snaps34");
    let mut kvs: Vec<(String, String)> = (0..3000)
        .map(|i| (format!("/k/{i:05}"), format!("v{i}")))
        .collect();
    kvs.push(("/big".to_string(), "y".repeat(9000)));
    etcd.put_many(&kvs);
    etcd.ctl(&["del", "--prefix", "/k/01"]);
    let path = dir.0.join("s.db");
    etcd.snapshot(&path);
    drop(etcd);
    let db = Db::open(&path).unwrap();
    assert!(db.check().is_empty());
    let ours = status(&db).unwrap();
    assert_eq!(common::status_scan(&db).0, ours);
    let (hash, revision, total_key, total_size) = etcdctl34_status(&path).unwrap();
    assert_eq!(
        ours,
        common::Status {
            hash,
            revision,
            total_key,
            total_size
        }
    );
    // etcdutl 3.5 agrees on the 3.4 file too.
    let (hash, revision, total_key, total_size) = etcdutl_status(&path).unwrap();
    assert_eq!(
        ours,
        common::Status {
            hash,
            revision,
            total_key,
            total_size
        }
    );
}
