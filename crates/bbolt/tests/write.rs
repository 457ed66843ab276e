//! The copy-on-write editor (`bbolt::write::Editor`) on small synthetic databases.
//!
//! Why it exists: every edit the editor makes must leave a file that the reader opens, that passes
//! the consistency check (bbolt's `tx.Check()` rules: every page reachable or free exactly once,
//! nothing beyond the high-water mark, ordered keys), and whose buckets hold exactly the old
//! contents plus the edits. These files are built by hand (see `common`), with and without a
//! freelist, with inline, single-leaf, multi-level and overflow buckets; files with a freelist are
//! also checked by real bbolt (`etcdutl snapshot status` runs `tx.Check`), since etcd on Linux never
//! writes one.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bbolt::write::{CommitStats, Editor, Error};
use bbolt::{Db, PGID_NO_FREELIST};
use common::etcd::TempDir;
use common::{bucket_kv, bucket_value, key, kv, sample, Builder, NO_FREELIST};

/// (key, raw value, is nested bucket) of every entry of every top-level bucket.
type Contents = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>, bool)>>;

fn contents(db: &Db) -> Contents {
    let mut out = BTreeMap::new();
    for name in db.buckets().unwrap() {
        let b = db.bucket(&name).unwrap().unwrap();
        let entries = b
            .entries()
            .map(|e| {
                let e = e.unwrap();
                (e.key().to_vec(), e.value().to_vec(), e.is_bucket())
            })
            .collect();
        out.insert(name, entries);
    }
    out
}

fn plain(entries: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec(), false))
        .collect()
}

fn owned(entries: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn assert_sound(path: &Path) -> Db {
    let db = Db::open(path).unwrap();
    let errs: Vec<String> = db.check().iter().map(|e| e.to_string()).collect();
    assert!(errs.is_empty(), "{}: {errs:#?}", path.display());
    let len = std::fs::metadata(path).unwrap().len();
    assert!(len >= db.total_size());
    db
}

/// Real bbolt's `tx.Check()`, through `etcdutl snapshot status` (it refuses a file that fails it).
fn go_check(path: &Path) {
    if let Err(e) = common::etcd::etcdutl_status(path) {
        panic!("etcdutl snapshot status {}: {e}", path.display());
    }
}

fn write_image(dir: &TempDir, image: &[u8]) -> PathBuf {
    let path = dir.0.join("db");
    std::fs::write(&path, image).unwrap();
    path
}

/// An empty database: root bucket = one empty leaf; optionally an empty freelist page.
fn empty_db(ps: usize, with_freelist: bool, txid: u64) -> Vec<u8> {
    let mut b = Builder::new(ps);
    let root = b.leaf(&[]);
    let fl = if with_freelist {
        b.freelist(&[], false)
    } else {
        NO_FREELIST
    };
    b.finish(root, fl, txid)
}

#[test]
fn edits_round_trip_on_the_sample() {
    for with_freelist in [true, false] {
        let s = sample(with_freelist);
        let dir = TempDir::new("write-sample");
        let path = write_image(&dir, &s.image);
        let (orig, old_free, old_pgid) = {
            let db = assert_sound(&path);
            (contents(&db), db.free_pages().unwrap(), db.meta().pgid)
        };

        let mut ed = Editor::open(&path).unwrap();
        // inline -> inline
        ed.replace_bucket(b"b", owned(&[(b"z", b"1"), (b"y", b"2")]))
            .unwrap();
        // empty inline -> multi-leaf tree with a branch
        let d: Vec<(Vec<u8>, Vec<u8>)> = (0..400).map(|i| (key(i), vec![b'd'; 40])).rev().collect();
        ed.replace_bucket(b"d", d.clone()).unwrap();
        ed.ensure_bucket(b"e").unwrap();
        ed.ensure_bucket(b"a").unwrap(); // exists: untouched
        ed.upsert(b"f", owned(&[(b"k", b"v")])).unwrap();
        ed.upsert(b"f", owned(&[(b"k", b"v2"), (b"j", b"x")]))
            .unwrap();
        assert_eq!(ed.last_key(b"c").unwrap(), Some(key(299)));
        assert_eq!(ed.last_key(b"e").unwrap(), None);
        assert_eq!(ed.last_key(b"nope").unwrap(), None);
        // 150 appends overflow the last leaf of `c` (3 leaves under one branch): it splits.
        for i in 300..450 {
            ed.append(b"c", key(i), format!("value {i}").into_bytes())
                .unwrap();
        }
        assert_eq!(ed.last_key(b"c").unwrap(), Some(key(449)));
        let stats = ed.commit().unwrap();
        println!("sample (freelist {with_freelist}): {stats:?}");
        assert_eq!(stats.old_pgid, old_pgid);
        assert_eq!(stats.txid, 11);
        assert_eq!(stats.freelist_ids.is_some(), with_freelist);

        let db = assert_sound(&path);
        assert_eq!(db.meta().txid, 11);
        assert_eq!(db.meta().pgid, stats.new_pgid);
        assert_eq!(
            db.meta().freelist == PGID_NO_FREELIST,
            !with_freelist,
            "keeps the freelist form of the source"
        );
        let mut want = orig.clone();
        want.insert(b"b".to_vec(), plain(&[(b"y", b"2"), (b"z", b"1")]));
        let mut d_sorted: Vec<_> = d.into_iter().map(|(k, v)| (k, v, false)).collect();
        d_sorted.sort();
        want.insert(b"d".to_vec(), d_sorted);
        want.insert(b"e".to_vec(), vec![]);
        want.insert(b"f".to_vec(), plain(&[(b"j", b"x"), (b"k", b"v2")]));
        let c = want.get_mut(&b"c"[..]).unwrap();
        for i in 300..450 {
            c.push((key(i), format!("value {i}").into_bytes(), false));
        }
        assert_eq!(contents(&db), want);
        assert!(db.bucket(b"b").unwrap().unwrap().is_inline());
        assert!(!db.bucket(b"d").unwrap().unwrap().is_inline());
        assert!(db.bucket(b"e").unwrap().unwrap().is_inline());

        // Nothing below the old high-water mark moved except freed pages; the old free pages are
        // still free, and the freed ones are now free too.
        let free = db.free_pages().unwrap();
        for id in &old_free {
            assert!(free.contains(id), "old free page {id} still free");
        }
        assert!(free.len() > old_free.len());
        assert!(free.iter().all(|&id| id < stats.new_pgid));
        if with_freelist {
            assert_eq!(stats.freelist_ids, Some(free.len() as u64));
        }
        go_check(&path);
    }
}

#[test]
fn new_meta_never_overwrites_the_only_current_meta() {
    // txid 11 at page 0, 10 at page 1 (as Tx.WriteTo writes): the new txid 12 belongs in page 0,
    // which holds the current meta, so both pages end up with txid 12.
    let dir = TempDir::new("write-meta");
    let path = write_image(&dir, &empty_db(4096, false, 11));
    let mut ed = Editor::open(&path).unwrap();
    ed.ensure_bucket(b"x").unwrap();
    let stats = ed.commit().unwrap();
    assert_eq!((stats.txid, stats.meta_page), (12, 0));
    let db = assert_sound(&path);
    let [m0, m1] = db.meta_pages();
    assert_eq!(m0.unwrap().txid, 12);
    assert_eq!(m1.unwrap().txid, 12);

    // Even txid: the new meta goes to the other page only.
    let path2 = dir.0.join("db2");
    std::fs::write(&path2, empty_db(4096, false, 20)).unwrap();
    let mut ed = Editor::open(&path2).unwrap();
    ed.ensure_bucket(b"x").unwrap();
    let stats = ed.commit().unwrap();
    assert_eq!((stats.txid, stats.meta_page), (21, 1));
    let db = assert_sound(&path2);
    let [m0, m1] = db.meta_pages();
    assert_eq!(m0.unwrap().txid, 20);
    assert_eq!(m1.unwrap().txid, 21);
    assert_eq!(db.buckets().unwrap(), vec![b"x".to_vec()]);
}

#[test]
fn inline_threshold_matches_bbolt() {
    // 16 (page header) + 16 (element) + 1 (key) + 991 (value) = 1024 = pageSize/4: inline.
    let dir = TempDir::new("write-inline");
    let path = write_image(&dir, &empty_db(4096, true, 2));
    let mut ed = Editor::open(&path).unwrap();
    ed.replace_bucket(b"fits", vec![(b"k".to_vec(), vec![7; 991])])
        .unwrap();
    ed.replace_bucket(b"over", vec![(b"k".to_vec(), vec![7; 992])])
        .unwrap();
    // A value bigger than a page: an overflow run.
    ed.replace_bucket(b"huge", vec![(b"k".to_vec(), vec![9; 20_000])])
        .unwrap();
    ed.commit().unwrap();
    let db = assert_sound(&path);
    assert!(db.bucket(b"fits").unwrap().unwrap().is_inline());
    assert!(!db.bucket(b"over").unwrap().unwrap().is_inline());
    let huge = db.bucket(b"huge").unwrap().unwrap();
    let e = huge.get(b"k").unwrap().unwrap();
    assert_eq!(e.value(), &vec![9u8; 20_000][..]);
    let root = huge.root_page().unwrap();
    let img = std::fs::read(&path).unwrap();
    let off = root as usize * 4096;
    let overflow = u32::from_le_bytes(img[off + 12..off + 16].try_into().unwrap());
    assert_eq!(overflow, 4, "16 + 16 + 1 + 20000 bytes need 5 pages");

    // Appending to the overflowing single-leaf bucket, then shrinking it back to inline.
    let mut ed = Editor::open(&path).unwrap();
    ed.append(b"huge", b"l".to_vec(), b"small".to_vec())
        .unwrap();
    ed.commit().unwrap();
    let db = assert_sound(&path);
    assert_eq!(db.bucket(b"huge").unwrap().unwrap().entries().count(), 2);
    drop(db);
    let mut ed = Editor::open(&path).unwrap();
    ed.replace_bucket(b"huge", vec![]).unwrap();
    ed.replace_bucket(b"over", vec![]).unwrap();
    ed.commit().unwrap();
    let db = assert_sound(&path);
    assert!(db.bucket(b"huge").unwrap().unwrap().is_inline());
    assert!(db.bucket(b"over").unwrap().unwrap().is_inline());
    go_check(&path);
}

fn append_many(ps: usize, with_freelist: bool) {
    let dir = TempDir::new("write-append");
    let path = write_image(&dir, &empty_db(ps, with_freelist, 2));
    let n = 10_000usize;
    let value = |i: usize| format!("value-{i}-{}", "v".repeat(i % 50)).into_bytes();
    let k = |i: usize| format!("k{i:08}").into_bytes();
    let mut ed = Some(Editor::open(&path).unwrap());
    let mut last: Option<CommitStats> = None;
    let mut roots = Vec::new();
    for i in 0..n {
        let e = ed.get_or_insert_with(|| Editor::open(&path).unwrap());
        e.append(b"x", k(i), value(i)).unwrap();
        // Commit after each of the first 300 appends (inline -> leaf -> split -> branch), then
        // every 250 (bigger splits, new roots).
        if i < 300 || i % 250 == 249 || i == n - 1 {
            let stats = ed.take().unwrap().commit().unwrap();
            if i % 1000 == 999 || i < 5 {
                let db = assert_sound(&path);
                roots.push(db.bucket(b"x").unwrap().unwrap().root_page());
            }
            last = Some(stats);
        }
    }
    let stats = last.unwrap();
    println!("append {n} (page size {ps}, freelist {with_freelist}): {stats:?}");
    let db = assert_sound(&path);
    let b = db.bucket(b"x").unwrap().unwrap();
    let mut count = 0;
    for (i, e) in b.entries().enumerate() {
        let e = e.unwrap();
        assert_eq!(e.key(), k(i).as_slice());
        assert_eq!(e.value(), value(i).as_slice());
        count += 1;
    }
    assert_eq!(count, n);
    assert_eq!(roots[0], None, "starts inline");
    // Depth: root is a branch whose first child is a branch too (the root has split).
    let img = std::fs::read(&path).unwrap();
    let page = |id: u64| &img[id as usize * ps..];
    let flags = |id: u64| u16::from_le_bytes(page(id)[8..10].try_into().unwrap());
    let root = b.root_page().unwrap();
    assert_eq!(flags(root), 0x01);
    let first_child = u64::from_le_bytes(page(root)[24..32].try_into().unwrap());
    assert_eq!(flags(first_child), 0x01, "three levels: the root has split");
    let editor = Editor::open(&path).unwrap();
    assert_eq!(editor.last_key(b"x").unwrap(), Some(k(n - 1)));
    drop(editor);
    go_check(&path);
}

#[test]
fn append_ten_thousand_keys_one_by_one() {
    append_many(4096, false);
}

#[test]
fn append_ten_thousand_keys_with_a_freelist_and_small_pages() {
    append_many(1024, true);
}

#[test]
fn freelist_count_overflow_form() {
    // 70 000 free pages (more than 0xFFFE) at 512-byte pages, in the count-overflow form.
    let ps = 512;
    let mut b = Builder::new(ps);
    let first = b.alloc(70_000);
    let free: Vec<u64> = (first..first + 70_000).collect();
    let leaf = b.leaf(&[kv(b"a", b"1"), kv(b"b", b"2")]);
    let root = b.leaf(&[bucket_kv(b"t", bucket_value(leaf))]);
    let fl = b.freelist(&free, true);
    let image = b.finish(root, fl, 5);
    let dir = TempDir::new("write-bigfree");
    let path = write_image(&dir, &image);
    let before = assert_sound(&path).free_pages().unwrap().len();
    assert_eq!(before, 70_000);

    let mut ed = Editor::open(&path).unwrap();
    ed.replace_bucket(b"t", owned(&[(b"c", b"3")])).unwrap();
    let stats = ed.commit().unwrap();
    // Freed: the old leaf of `t`, the old root leaf, the old freelist run.
    let old_fl_pages = (16 + 8 + 8 * 70_000usize).div_ceil(ps) as u64;
    assert_eq!(stats.freelist_ids, Some(70_000 + 2 + old_fl_pages));
    let db = assert_sound(&path);
    assert_eq!(db.free_pages().unwrap().len() as u64, 70_002 + old_fl_pages);
    let img = std::fs::read(&path).unwrap();
    let fl = db.meta().freelist as usize * ps;
    assert_eq!(
        u16::from_le_bytes(img[fl + 10..fl + 12].try_into().unwrap()),
        0xFFFF
    );
    assert_eq!(
        contents(&db).get(&b"t"[..]).unwrap(),
        &plain(&[(b"c", b"3")])
    );
    go_check(&path);
}

#[test]
fn bad_requests_are_errors() {
    let s = sample(true);
    let dir = TempDir::new("write-bad");
    let path = write_image(&dir, &s.image);
    let mut ed = Editor::open(&path).unwrap();
    let invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidInput(_)));
    assert!(invalid(
        ed.replace_bucket(b"b", owned(&[(b"k", b"1"), (b"k", b"2")]))
    ));
    assert!(invalid(ed.replace_bucket(b"b", owned(&[(b"", b"1")]))));
    assert!(invalid(ed.replace_bucket(b"", vec![])));
    assert!(invalid(ed.append(b"c", key(5), vec![])));
    assert!(invalid(ed.append(b"c", key(299), vec![])));
    // `a` holds a nested bucket: replacing it would orphan the nested tree.
    assert!(invalid(ed.replace_bucket(b"a", vec![])));
    assert!(invalid(ed.upsert(b"a", owned(&[(b"n", b"x")]))));
    // A second editor cannot open the file while the first holds it.
    assert!(invalid(Editor::open(&path).map(|_| ())));
    // Nothing was committed: the file is unchanged.
    drop(ed);
    assert_eq!(std::fs::read(&path).unwrap(), s.image);
}

#[test]
fn damaged_pages_are_errors_not_panics() {
    let s = sample(false);
    let dir = TempDir::new("write-damaged");
    let db = Db::from_bytes(s.image.clone()).unwrap();
    let c_root = db.bucket(b"c").unwrap().unwrap().root_page().unwrap();
    drop(db);
    // Point the c root's last child past the end, and then at the meta page.
    for bad in [u64::MAX, 1, c_root] {
        let mut img = s.image.clone();
        let off = c_root as usize * s.ps;
        let count = u16::from_le_bytes(img[off + 10..off + 12].try_into().unwrap()) as usize;
        let e = off + 16 + 16 * (count - 1);
        img[e + 8..e + 16].copy_from_slice(&bad.to_le_bytes());
        let path = write_image(&dir, &img);
        let mut ed = Editor::open(&path).unwrap();
        assert!(ed.last_key(b"c").is_err());
        let r = ed.append(b"c", key(1000), vec![]);
        assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    }
}
