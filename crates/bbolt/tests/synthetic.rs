//! Reader and check behaviour on small bbolt files built page by page, no etcd needed.
//!
//! Why it exists: every format feature (inline buckets, overflow values, branch pages, both freelist
//! encodings, no freelist, page sizes, meta fallback) and every defect the check must find is pinned
//! here on a file whose every byte the test controls.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use bbolt::{CheckError, Db, Error};
use common::*;

fn entries(b: &bbolt::Bucket<'_>) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    b.entries()
        .map(|e| {
            let e = e.unwrap();
            (e.key().to_vec(), e.value().to_vec(), e.is_bucket())
        })
        .collect()
}

fn check_strings(db: &Db) -> Vec<String> {
    db.check().iter().map(|e| e.to_string()).collect()
}

#[test]
fn reads_sample_with_freelist() {
    let s = sample(true);
    let db = Db::from_bytes(s.image.clone()).unwrap();
    assert_eq!(db.page_size(), 4096);
    assert_eq!(db.meta().txid, 10);
    assert_eq!(db.meta().freelist, s.freelist);
    assert_eq!(db.total_size(), s.image.len() as u64);
    assert_eq!(check_strings(&db), Vec::<String>::new());
    assert_eq!(
        db.buckets().unwrap(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
    );

    let a = db.bucket(b"a").unwrap().unwrap();
    assert!(!a.is_inline());
    let ea = entries(&a);
    assert_eq!(ea.len(), 4);
    assert_eq!(ea[0], (b"alpha".to_vec(), b"one".to_vec(), false));
    assert_eq!(ea[1].1.len(), 10_000);
    assert!(ea[1]
        .1
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    assert!(ea[2].2);
    assert_eq!(ea[3], (b"zeta".to_vec(), vec![], false));
    let n = a.bucket(b"n").unwrap().unwrap();
    assert_eq!(entries(&n).len(), 2);
    assert!(
        a.bucket(b"alpha").unwrap().is_none(),
        "a plain value is not a bucket"
    );
    assert!(a.bucket(b"nope").unwrap().is_none());
    assert_eq!(a.get(b"big").unwrap().unwrap().value().len(), 10_000);
    assert!(a.get(b"b").unwrap().is_none());

    let b = db.bucket(b"b").unwrap().unwrap();
    assert!(b.is_inline());
    assert_eq!(b.root_page(), None);
    assert_eq!(
        entries(&b),
        vec![
            (b"k1".to_vec(), b"v1".to_vec(), false),
            (b"k2".to_vec(), b"v2".to_vec(), false)
        ]
    );
    assert_eq!(b.get(b"k2").unwrap().unwrap().value(), b"v2");

    let c = db.bucket(b"c").unwrap().unwrap();
    let ec = entries(&c);
    assert_eq!(ec.len(), 300);
    for (i, (k, v, _)) in ec.iter().enumerate() {
        assert_eq!(k, &s.c_keys[i].0);
        assert_eq!(v, &s.c_keys[i].1);
    }
    for i in [0, 1, 99, 100, 101, 199, 200, 299] {
        let e = c.get(&key(i)).unwrap().unwrap();
        assert_eq!(e.value(), format!("value {i}").as_bytes());
    }
    assert!(c.get(b"key-").unwrap().is_none());
    assert!(c.get(b"zzz").unwrap().is_none());
    assert!(c.get(b"").unwrap().is_none());

    let d = db.bucket(b"d").unwrap().unwrap();
    assert!(entries(&d).is_empty());
    assert!(db.bucket(b"zz").unwrap().is_none());

    assert_eq!(db.free_pages().unwrap(), s.free);
    let r = db.check_report(10);
    assert!(r.errors.is_empty());
    assert_eq!(r.stats.free_pages, 2);
    assert_eq!(r.stats.buckets, 5);
    assert_eq!(r.stats.inline_buckets, 2);
    assert_eq!(r.stats.keys, 3 + 2 + 2 + 300);
    assert_eq!(r.stats.overflow_pages, 2);
    assert_eq!(r.stats.branch_pages, 1);
    assert_eq!(r.stats.leaf_pages, 1 + 2 + 3);
    assert_eq!(r.stats.freelist_pages, 1);
    assert_eq!(walk_all(&db).unwrap().1, 307);
}

#[test]
fn no_freelist_means_unreachable_pages_are_free() {
    let s = sample(false);
    let db = Db::from_bytes(s.image).unwrap();
    assert!(!db.meta().has_freelist());
    assert_eq!(check_strings(&db), Vec::<String>::new());
    assert_eq!(db.free_pages().unwrap(), s.free);
    assert_eq!(db.check_report(10).stats.free_pages, 2);
}

#[test]
fn reads_from_a_file_and_ignores_trailing_bytes() {
    let s = sample(true);
    let dir = common::etcd::TempDir::new("synthetic");
    let path = dir.0.join("db");
    let mut image = s.image.clone();
    image.extend_from_slice(&[0xAB; 32]); // like the SHA-256 a snapshot carries
    std::fs::write(&path, &image).unwrap();
    let db = Db::open(&path).unwrap();
    assert_eq!(db.file_size(), image.len() as u64);
    assert_eq!(db.total_size(), s.image.len() as u64);
    assert!(db.check().is_empty());
    assert_eq!(
        walk_all(&db).unwrap(),
        walk_all(&Db::from_bytes(s.image).unwrap()).unwrap()
    );
}

#[test]
fn freelist_count_overflow_form() {
    // The 0xFFFF form with few ids (readers accept it for any count) ...
    let mut b = Builder::new(4096);
    let free: Vec<u64> = (0..3).map(|_| b.alloc(1)).collect();
    let root = b.leaf(&[bucket_kv(b"a", inline_bucket_value(&[kv(b"k", b"v")]))]);
    let fl = b.freelist(&free, true);
    let db = Db::from_bytes(b.finish(root, fl, 3)).unwrap();
    assert!(db.check().is_empty());
    assert_eq!(db.free_pages().unwrap(), free);

    // ... and the real thing: 70 000 free pages of 512 bytes, the freelist spanning overflow pages.
    let mut b = Builder::new(512);
    let first = b.alloc(70_000);
    let free: Vec<u64> = (first..first + 70_000).rev().collect();
    let root = b.leaf(&[bucket_kv(b"a", inline_bucket_value(&[kv(b"k", b"v")]))]);
    let fl = b.freelist(&free, false);
    let img = b.finish(root, fl, 3);
    let db = Db::from_bytes(img).unwrap();
    assert_eq!(db.page_size(), 512);
    let r = db.check_report(10);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.stats.free_pages, 70_000);
    assert!(r.stats.freelist_pages > 1);
    let got = db.free_pages().unwrap();
    assert_eq!(got.len(), 70_000);
    assert_eq!(got[0], first);
}

#[test]
fn page_size_16k_and_meta_fallback() {
    let mut b = Builder::new(16384);
    let root = b.leaf(&[bucket_kv(b"a", inline_bucket_value(&[kv(b"k", b"v")]))]);
    let mut img = b.finish(root, NO_FREELIST, 7);
    let db = Db::from_bytes(img.clone()).unwrap();
    assert_eq!(db.page_size(), 16384);
    assert_eq!(db.meta().txid, 7);
    // Damage meta 0 (the active one): bbolt falls back to meta 1, found by probing page sizes.
    img[16] ^= 0xFF;
    let db = Db::from_bytes(img.clone()).unwrap();
    assert_eq!(db.meta().txid, 6);
    assert_eq!(db.meta().index, 1);
    assert_eq!(db.page_size(), 16384);
    assert_eq!(walk_all(&db).unwrap().1, 1);
    let errs = check_strings(&db);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("meta page 0: invalid magic"),
        "{errs:?}"
    );
    // Damage meta 1 too: not a bbolt file any more.
    img[16384 + 70] ^= 1;
    match Db::from_bytes(img) {
        Err(Error::InvalidMeta { meta0, meta1 }) => {
            assert!(meta0.contains("magic"), "{meta0}");
            assert!(meta1.contains("no valid meta"), "{meta1}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn inactive_meta_damage_is_reported_by_check() {
    let s = sample(true);
    let mut img = s.image;
    img[4096 + 16 + 60] ^= 0x10; // checksum of meta 1
    let db = Db::from_bytes(img.clone()).unwrap();
    assert_eq!(db.meta().index, 0);
    let errs = check_strings(&db);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("meta page 1: checksum mismatch"),
        "{errs:?}"
    );
    // A newer but invalid meta is ignored in favour of the valid older one.
    set_meta_u64(&mut img, 4096, 1, 48, 99);
    img[4096 + 16 + 4] = 3; // version 3
    let db = Db::from_bytes(img).unwrap();
    assert_eq!(db.meta().txid, 10);
}

#[test]
fn truncated_and_tiny_files() {
    let s = sample(true);
    for len in [
        0,
        1,
        79,
        80,
        4095,
        4096,
        4096 + 80,
        8192,
        s.image.len() - 4096,
        s.image.len() - 1,
    ] {
        let r = Db::from_bytes(s.image[..len].to_vec());
        assert!(r.is_err(), "len {len} opened");
    }
    match Db::from_bytes(s.image[..s.image.len() - 1].to_vec()) {
        Err(Error::Truncated { needed, actual }) => {
            assert_eq!(needed, s.image.len() as u64);
            assert_eq!(actual, needed - 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_shrunk_under_the_reader_is_an_error() {
    let s = sample(true);
    let dir = common::etcd::TempDir::new("shrink");
    let path = dir.0.join("db");
    std::fs::write(&path, &s.image).unwrap();
    let db = Db::open(&path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(3 * 4096)
        .unwrap();
    let err = walk_all(&db).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().starts_with("reading page"), "{err}");
    assert!(!db.check().is_empty());
}

/// Builds a db whose root holds bucket `a` with the given root page, letting the caller add pages.
fn with_bucket(f: impl FnOnce(&mut Builder) -> (u64, Vec<u64>)) -> Vec<u8> {
    let mut b = Builder::new(4096);
    let (a_root, free) = f(&mut b);
    let root = b.leaf(&[bucket_kv(b"a", bucket_value(a_root))]);
    let fl = b.freelist(&free, false);
    b.finish(root, fl, 5)
}

fn expect_check(img: Vec<u8>, want: &[&str]) {
    let db = Db::from_bytes(img).unwrap();
    let errs = check_strings(&db);
    for w in want {
        assert!(
            errs.iter().any(|e| e.contains(w)),
            "want {w:?} in {errs:#?}"
        );
    }
    assert!(!errs.is_empty());
}

#[test]
fn check_finds_reachable_freed() {
    let img = with_bucket(|b| {
        let leaf = b.leaf(&[kv(b"k", b"v")]);
        (leaf, vec![leaf])
    });
    expect_check(img, &["reachable freed"]);
}

#[test]
fn check_finds_unreachable_unfreed_and_double_free() {
    let img = with_bucket(|b| {
        let lost = b.alloc(1);
        let freed = b.alloc(1);
        let leaf = b.leaf(&[kv(b"k", b"v")]);
        let _ = lost;
        (leaf, vec![freed, freed])
    });
    expect_check(img, &["unreachable unfreed", "already freed"]);
}

#[test]
fn check_finds_multiple_references_and_iteration_survives_cycles() {
    let mut b = Builder::new(4096);
    let leaf = b.leaf(&[kv(b"k", b"v")]);
    let root = b.leaf(&[
        bucket_kv(b"a", bucket_value(leaf)),
        bucket_kv(b"b", bucket_value(leaf)),
    ]);
    let fl = b.freelist(&[], false);
    expect_check(b.finish(root, fl, 5), &["page 2: multiple references"]);

    // A branch page that lists itself: the check reports it, iteration ends with an error.
    let mut b = Builder::new(4096);
    let self_id = b.next_id();
    let leaf_id = self_id + 1;
    let br = b.branch(&[(b"a".to_vec(), leaf_id), (b"m".to_vec(), self_id)]);
    assert_eq!(br, self_id);
    b.leaf(&[kv(b"a", b"1")]);
    let root = b.leaf(&[bucket_kv(b"a", bucket_value(br))]);
    let img = b.finish(root, NO_FREELIST, 5);
    let db = Db::from_bytes(img.clone()).unwrap();
    let res: Vec<_> = db.bucket(b"a").unwrap().unwrap().entries().collect();
    assert_eq!(res.len(), 2);
    assert!(res[0].is_ok());
    let e = res[1].as_ref().unwrap_err().to_string();
    assert!(e.contains("reached twice"), "{e}");
    expect_check(img, &["multiple references"]);
}

#[test]
fn check_finds_invalid_type_and_out_of_bounds() {
    let img = with_bucket(|b| {
        let fl_like = b.freelist(&[], false);
        (fl_like, vec![])
    });
    let db = Db::from_bytes(img.clone()).unwrap();
    assert!(
        matches!(db.check()[0], CheckError::InvalidType { flags: 0x10, .. }),
        "{:?}",
        db.check()
    );
    assert!(walk_all(&db).is_err());

    let img = with_bucket(|b| {
        let l = b.leaf(&[kv(b"a", b"1")]);
        let br = b.branch(&[(b"a".to_vec(), l), (b"b".to_vec(), 999)]);
        (br, vec![])
    });
    expect_check(img.clone(), &["page 999: out of bounds"]);
    let db = Db::from_bytes(img).unwrap();
    let e = walk_all(&db).unwrap_err().to_string();
    assert!(e.contains("beyond the high-water mark"), "{e}");
}

#[test]
fn check_finds_key_order_defects() {
    // Within a leaf.
    let img = with_bucket(|b| (b.leaf(&[kv(b"b", b"1"), kv(b"a", b"2")]), vec![]));
    expect_check(img.clone(), &["needs to be > (found <)"]);
    let db = Db::from_bytes(img).unwrap();
    assert!(walk_all(&db)
        .unwrap_err()
        .to_string()
        .contains("out of order"));
    let img = with_bucket(|b| (b.leaf(&[kv(b"a", b"1"), kv(b"a", b"2")]), vec![]));
    expect_check(img, &["needs to be > (found =)"]);
    // A child's first key below its branch key.
    let img = with_bucket(|b| {
        let l1 = b.leaf(&[kv(b"a", b"1")]);
        let l2 = b.leaf(&[kv(b"c", b"1")]);
        (
            b.branch(&[(b"b".to_vec(), l1), (b"c".to_vec(), l2)]),
            vec![],
        )
    });
    expect_check(
        img,
        &["the first key needs to be >= the key in the parent branch"],
    );
    // A child's key at or beyond the next branch key.
    let img = with_bucket(|b| {
        let l1 = b.leaf(&[kv(b"a", b"1"), kv(b"d", b"1")]);
        let l2 = b.leaf(&[kv(b"c", b"1")]);
        (
            b.branch(&[(b"a".to_vec(), l1), (b"c".to_vec(), l2)]),
            vec![],
        )
    });
    expect_check(img, &["needs to be < the next key in the parent branch"]);
}

#[test]
fn check_finds_header_and_element_defects() {
    // Page header id differs from its position.
    let s = sample(true);
    let mut img = s.image.clone();
    let a_root = {
        let db = Db::from_bytes(img.clone()).unwrap();
        db.bucket(b"a").unwrap().unwrap().root_page().unwrap()
    };
    let off = a_root as usize * 4096;
    img[off] ^= 0x40;
    expect_check(
        img.clone(),
        &[&format!("page {a_root}: page header says it is page")],
    );
    let db = Db::from_bytes(img).unwrap();
    assert!(walk_all(&db).is_err());

    // A key that extends past the page.
    let mut img = s.image.clone();
    img[off + 16 + 8..off + 16 + 12].copy_from_slice(&50_000u32.to_le_bytes()); // ksize of elem 0
    expect_check(
        img.clone(),
        &[&format!(
            "page {a_root}: leaf element 0 key extends past the page"
        )],
    );
    let db = Db::from_bytes(img).unwrap();
    let e = walk_all(&db).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "page {a_root}: leaf element 0 key extends past the page (offset"
        )),
        "{e}"
    );

    // Too many elements for the page.
    let mut img = s.image.clone();
    img[off + 10..off + 12].copy_from_slice(&60000u16.to_le_bytes());
    expect_check(img, &["elements need"]);

    // A bucket value too short for a bucket header.
    let mut b = Builder::new(4096);
    let root = b.leaf(&[(b"a".to_vec(), vec![1, 2, 3], BUCKET)]);
    let img = b.finish(root, NO_FREELIST, 3);
    expect_check(img.clone(), &["shorter than a bucket header"]);
    let db = Db::from_bytes(img).unwrap();
    assert!(db.bucket(b"a").is_err());
    assert!(walk_all(&db).is_err());

    // An overflow count running past the high-water mark.
    let mut img = s.image.clone();
    img[off + 12..off + 16].copy_from_slice(&1000u32.to_le_bytes());
    expect_check(img, &["overflow pages run past the high-water mark"]);
}

#[test]
fn freelist_defects() {
    let s = sample(true);
    let off = s.freelist as usize * 4096;
    // Count larger than the page can hold.
    let mut img = s.image.clone();
    img[off + 10..off + 12].copy_from_slice(&600u16.to_le_bytes());
    expect_check(img.clone(), &["freelist holds 600 ids"]);
    assert!(Db::from_bytes(img).unwrap().free_pages().is_err());
    // Wrong type.
    let mut img = s.image.clone();
    img[off + 8] = 0x02;
    expect_check(img, &["its type flags are 0x02"]);
    // An id beyond the high-water mark.
    let mut img = s.image.clone();
    img[off + 16..off + 24].copy_from_slice(&77777u64.to_le_bytes());
    expect_check(img, &["page 77777: out of bounds"]);
}

#[test]
fn meta_fields_out_of_range_fall_back_or_fail() {
    let s = sample(true);
    // Active meta with root beyond pgid: use meta 1.
    let mut img = s.image.clone();
    set_meta_u64(&mut img, 4096, 0, 16, 1 << 40);
    let db = Db::from_bytes(img.clone()).unwrap();
    assert_eq!(db.meta().index, 1);
    set_meta_u64(&mut img, 4096, 1, 16, 1 << 40);
    let e = Db::from_bytes(img).unwrap_err().to_string();
    assert!(e.contains("root page 1099511627776 is outside"), "{e}");
    // Absurd pgid: truncated.
    let mut img = s.image.clone();
    set_meta_u64(&mut img, 4096, 0, 40, u64::MAX / 2);
    set_meta_u64(&mut img, 4096, 1, 40, u64::MAX / 2);
    assert!(matches!(Db::from_bytes(img), Err(Error::Truncated { .. })));
}

#[test]
fn overlapping_inline_buckets_do_not_explode() {
    // An inline bucket whose elements all point at one shared value that is itself an inline bucket,
    // nested many levels: without a budget the walk would be exponential.
    fn nest(depth: usize) -> Vec<u8> {
        let inner = if depth == 0 {
            leaf_bytes(&[kv(b"k", b"v")])
        } else {
            nest(depth - 1)
        };
        let mut value = bucket_value(0);
        value.extend_from_slice(&inner);
        // 8 elements sharing the same key and value bytes.
        let n = 8usize;
        let mut b = vec![0u8; 16 + 16 * n];
        b[8..10].copy_from_slice(&LEAF.to_le_bytes());
        b[10..12].copy_from_slice(&(n as u16).to_le_bytes());
        let data = b.len();
        for i in 0..n {
            let elem = 16 + 16 * i;
            b[elem..elem + 4].copy_from_slice(&BUCKET.to_le_bytes());
            b[elem + 4..elem + 8].copy_from_slice(&((data - elem) as u32).to_le_bytes());
            b[elem + 8..elem + 12].copy_from_slice(&1u32.to_le_bytes());
            b[elem + 12..elem + 16].copy_from_slice(&(value.len() as u32).to_le_bytes());
        }
        b.push(b'x');
        b.extend_from_slice(&value);
        b
    }
    let mut b = Builder::new(4096);
    let mut v = bucket_value(0);
    v.extend_from_slice(&nest(10));
    let root = b.leaf(&[bucket_kv(b"a", v)]);
    let img = b.finish(root, NO_FREELIST, 3);
    let db = Db::from_bytes(img).unwrap();
    let t = std::time::Instant::now();
    assert!(!db.check().is_empty());
    let errs: Vec<String> = db
        .check_report(usize::MAX)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(errs.iter().any(|e| e.contains("overlapping")), "{errs:?}");
    assert!(errs.len() < 1000, "{}", errs.len());
    assert!(t.elapsed().as_secs() < 5);
}

#[test]
fn check_limit_is_respected() {
    let img = with_bucket(|b| {
        b.alloc(500); // 500 unreachable, unfreed pages
        (b.leaf(&[kv(b"k", b"v")]), vec![])
    });
    let db = Db::from_bytes(img).unwrap();
    assert_eq!(db.check().len(), 100);
    let r = db.check_report(7);
    assert_eq!(r.errors.len(), 7);
    assert!(r.limit_reached);
}

#[test]
fn scan_shows_buckets_and_entries_in_order() {
    let s = sample(true);
    let db = Db::from_bytes(s.image).unwrap();
    let mut events = Vec::new();
    let report = db.scan(10, &mut |ev| match ev {
        bbolt::ScanEvent::Bucket { depth, entry } => {
            events.push(format!("B{depth} {}", String::from_utf8_lossy(entry.key())))
        }
        bbolt::ScanEvent::Entry { depth, entry } => {
            let kind = if entry.is_bucket() { "b" } else { "v" };
            events.push(format!(
                "E{depth}{kind} {}",
                String::from_utf8_lossy(entry.key())
            ))
        }
    });
    assert!(report.errors.is_empty());
    // Entries of each bucket, grouped per depth, in key order.
    let of = |d: &str| {
        events
            .iter()
            .filter(|e| e.starts_with(d))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("E0"), ["E0b a", "E0b b", "E0b c", "E0b d"]);
    assert_eq!(of("B1"), ["B1 a", "B1 b", "B1 c", "B1 d"]);
    assert_eq!(of("B2"), ["B2 n"]);
    assert_eq!(of("E2"), ["E2v x", "E2v y"]);
    // Depth-1 entries come after their bucket's event and before the next one.
    let mut current = String::new();
    let mut per_bucket: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for e in &events {
        if let Some(name) = e.strip_prefix("B1 ") {
            current = name.to_string();
        } else if let Some(k) = e.strip_prefix("E1") {
            per_bucket
                .entry(current.clone())
                .or_default()
                .push(k[2..].to_string());
        }
    }
    assert_eq!(per_bucket["a"], ["alpha", "big", "n", "zeta"]);
    assert_eq!(per_bucket["b"], ["k1", "k2"]);
    assert_eq!(per_bucket["c"].len(), 300);
    assert!(per_bucket["c"].windows(2).all(|w| w[0] < w[1]));
    assert!(!per_bucket.contains_key("d"));
    let (st, errs) = status_scan(&db);
    assert!(errs.is_empty());
    assert_eq!(st, status(&db).unwrap());
}
