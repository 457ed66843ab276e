//! Hostile length fields: a page header, a freelist count or a nested bucket must never make the
//! reader allocate more than the format allows, whatever size the file claims.
//!
//! Why it exists: issue 12 item 5. A 64 GiB sparse file (a few KiB on disk) whose leaf page claims
//! an overflow run as large as the file made the reader allocate 64 GiB and abort. This binary
//! counts every allocation (a global allocator that records the largest single request and the
//! peak of live bytes) and asserts the bounds, so a regression fails here rather than in a
//! customer's restore. Tests take a lock so that the counters see one test at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bbolt::{Db, MAX_LEAF_NODE_SIZE};
use common::*;

/// Counts allocations for the bounds asserted below; forwards everything to the system allocator.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

fn record(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::SeqCst) + size;
    PEAK.fetch_max(live, Ordering::SeqCst);
    LARGEST.fetch_max(size, Ordering::SeqCst);
}

// The only unsafe code in the workspace's tests: a global allocator must be an `unsafe impl`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            record(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            record(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Held for the whole of each test, so that the counters see one test at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` and returns (largest single allocation, peak live bytes above the start).
fn measured(f: impl FnOnce()) -> (usize, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    LARGEST.store(0, Ordering::SeqCst);
    f();
    (
        LARGEST.load(Ordering::SeqCst),
        PEAK.load(Ordering::SeqCst).saturating_sub(base),
    )
}

const PS: usize = 4096;
const MIB: usize = 1 << 20;

/// A small sound db: a root leaf holding bucket "a" (inline, one key), no freelist page. Returns
/// the image and the root page id.
fn small_db() -> (Vec<u8>, u64) {
    let mut b = Builder::new(PS);
    let root = b.leaf(&[bucket_kv(b"a", inline_bucket_value(&[kv(b"k", b"v")]))]);
    (b.finish(root, NO_FREELIST, 3), root)
}

/// Sets the high-water mark of both metas to `pgid` (the file is then read as `pgid` pages).
fn set_pgid(img: &mut [u8], pgid: u64) {
    for m in 0..2 {
        set_meta_u64(img, PS, m, 40, pgid);
    }
}

fn set_overflow(img: &mut [u8], id: u64, overflow: u32) {
    let off = id as usize * PS + 12;
    img[off..off + 4].copy_from_slice(&overflow.to_le_bytes());
}

fn check_strings(db: &Db) -> Vec<String> {
    db.check().iter().map(ToString::to_string).collect()
}

/// The case of the issue, on disk: a 64 GiB sparse file whose root leaf claims every page after it
/// as overflow. Before the fix this aborted with "memory allocation of 68719456256 bytes failed".
#[test]
fn leaf_run_as_large_as_a_64_gib_sparse_file_is_refused() {
    let _serial = serial();
    let (mut img, root) = small_db();
    let size: u64 = 64 << 30;
    let pgid = size / PS as u64;
    set_pgid(&mut img, pgid);
    set_overflow(&mut img, root, (pgid - root - 1) as u32);
    let dir = std::env::temp_dir().join(format!("bbolt-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sparse64g.db");
    std::fs::write(&path, &img).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(size)
        .unwrap();
    let (largest, _) = measured(|| {
        let db = Db::open(&path).unwrap();
        let errs = check_strings(&db);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with(&format!(
                "page {root}: leaf page claims {} overflow pages",
                pgid - root - 1
            )) && errs[0].contains("more than a leaf page can span"),
            "{errs:#?}"
        );
        let err = db.buckets().unwrap_err().to_string();
        assert!(err.contains("more than a leaf page can span"), "{err}");
    });
    std::fs::remove_dir_all(&dir).unwrap();
    // Two bitmaps of 16M pages (2 MiB each) are the largest things this needs.
    assert!(largest <= 4 * MIB, "largest allocation {largest} bytes");
}

/// A leaf run just within the cap is read (a sound page may be that large); one page more is not.
#[test]
fn leaf_run_cap_is_the_format_limit() {
    let _serial = serial();
    let (mut img, root) = small_db();
    let cap_pages = MAX_LEAF_NODE_SIZE.div_ceil(PS) as u64;
    let pgid = root + cap_pages + 1;
    set_pgid(&mut img, pgid);
    set_overflow(&mut img, root, (cap_pages - 1) as u32);
    let len = pgid * PS as u64;
    let (largest, _) = measured(|| {
        let db = Db::from_sparse_bytes(img.clone(), len).unwrap();
        assert!(check_strings(&db).is_empty(), "{:#?}", check_strings(&db));
        assert_eq!(db.buckets().unwrap(), vec![b"a".to_vec()]);
    });
    assert!((MAX_LEAF_NODE_SIZE - PS..=MAX_LEAF_NODE_SIZE + PS).contains(&largest));
    set_overflow(&mut img, root, cap_pages as u32);
    let (largest, _) = measured(|| {
        let db = Db::from_sparse_bytes(img.clone(), len).unwrap();
        let errs = check_strings(&db);
        assert!(
            errs[0].contains("more than a leaf page can span"),
            "{errs:#?}"
        );
    });
    assert!(largest <= MIB, "largest allocation {largest} bytes");
}

/// Branch pages hold keys only: a run beyond four maximal keys is refused.
#[test]
fn branch_run_beyond_four_maximal_keys_is_refused() {
    let _serial = serial();
    let mut b = Builder::new(PS);
    let leaf = b.leaf(&[kv(b"k", b"v")]);
    let branch = b.branch(&[(b"k".to_vec(), leaf)]);
    let root = b.leaf(&[bucket_kv(b"a", bucket_value(branch))]);
    let mut img = b.finish(root, NO_FREELIST, 3);
    let pgid = 1 << 20;
    set_pgid(&mut img, pgid);
    set_overflow(&mut img, branch, 1000);
    let (largest, _) = measured(|| {
        let db = Db::from_sparse_bytes(img.clone(), pgid * PS as u64).unwrap();
        let errs = check_strings(&db);
        assert!(
            errs.iter().any(|e| e.starts_with(&format!(
                "page {branch}: branch page claims 1000 overflow pages"
            ))),
            "{errs:#?}"
        );
        let a = db.bucket(b"a").unwrap().unwrap();
        assert!(a.entries().any(|e| e.is_err()));
    });
    assert!(largest <= MIB, "largest allocation {largest} bytes");
}

/// A freelist whose count claims ids for every page of a large sparse file is read in pieces:
/// memory stays flat and the defects (ids repeated) are reported.
#[test]
fn freelist_count_of_a_sparse_file_is_read_in_pieces() {
    let _serial = serial();
    let mut b = Builder::new(PS);
    let root = b.leaf(&[bucket_kv(b"a", inline_bucket_value(&[kv(b"k", b"v")]))]);
    let pgid: u64 = 2 << 20; // an 8 GiB file
                             // A count-overflow freelist page claiming pgid ids: 16 MiB of (zero) ids in its run.
    let fl = b.freelist(&[], true);
    let mut img = b.finish(root, fl, 3);
    let run_pages = (16 + 8 + 8 * pgid).div_ceil(PS as u64);
    let off = fl as usize * PS;
    img[off + 16..off + 24].copy_from_slice(&pgid.to_le_bytes());
    set_overflow(&mut img, fl, (run_pages - 1) as u32);
    set_pgid(&mut img, pgid);
    let head: std::sync::Arc<[u8]> = img.clone().into();
    let (largest, peak) = measured(|| {
        let db = Db::from_sparse_bytes(head.clone(), pgid * PS as u64).unwrap();
        let report = db.check_report(5);
        let errs: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errs[0], "page 0: already freed", "{errs:#?}");
        assert!(report.limit_reached);
    });
    assert!(largest <= 2 * MIB, "largest allocation {largest} bytes");
    assert!(peak <= 8 * MIB, "peak {peak} bytes");
    // One page more than pgid ids can fill is refused before anything is read.
    set_overflow(&mut img, fl, run_pages as u32);
    let db = Db::from_sparse_bytes(img, pgid * PS as u64).unwrap();
    let errs = check_strings(&db);
    assert!(
        errs[0].contains("more than a freelist page can span"),
        "{errs:#?}"
    );
}

/// A sound freelist larger than the in-memory limit (600 000 free pages, a 4.6 MiB run) reads the
/// same as a small one: every id free, none reported.
#[test]
fn large_sound_freelist_reads_in_pieces() {
    let _serial = serial();
    let n: u64 = 600_000;
    let mut b = Builder::new(PS);
    let root = b.leaf(&[bucket_kv(b"a", inline_bucket_value(&[kv(b"k", b"v")]))]);
    let run_pages = (16 + 8 + 8 * n).div_ceil(PS as u64);
    let first_free = b.next_id() + run_pages;
    let ids: Vec<u64> = (first_free..first_free + n).collect();
    let fl = b.freelist(&ids, false);
    assert_eq!(b.next_id(), first_free);
    let mut img = b.finish(root, fl, 3);
    let pgid = first_free + n;
    set_pgid(&mut img, pgid);
    let head: std::sync::Arc<[u8]> = img.into();
    let (largest, _) = measured(|| {
        let db = Db::from_sparse_bytes(head.clone(), pgid * PS as u64).unwrap();
        let report = db.check_report(5);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.stats.free_pages, n);
        assert_eq!(report.stats.freelist_pages, run_pages);
    });
    assert!(largest <= 2 * MIB, "largest allocation {largest} bytes");
}

/// A nested bucket queued for a later visit holds a copy of its own entry, not the (possibly huge)
/// page it was read from: two maximal leaf runs, one inside the other's bucket, are never both
/// held.
#[test]
fn nested_buckets_do_not_hold_their_parents_page() {
    let _serial = serial();
    let mut b = Builder::new(PS);
    let inner = b.leaf(&[kv(b"k", b"v")]);
    let outer = b.leaf(&[bucket_kv(b"b", bucket_value(inner))]);
    let root = b.leaf(&[bucket_kv(b"a", bucket_value(outer))]);
    let mut img = b.finish(root, NO_FREELIST, 3);
    let cap_pages = MAX_LEAF_NODE_SIZE.div_ceil(PS) as u64;
    // Each leaf gets a maximal run; their continuation pages must not overlap, so the pages are
    // moved apart: root first, then outer, then inner, each followed by its run.
    let mut moved = vec![0u8; 2 * PS];
    moved.copy_from_slice(&img[..2 * PS]);
    let place = |moved: &mut Vec<u8>, page: &[u8], id: u64| {
        let off = id as usize * PS;
        if moved.len() < off + PS {
            moved.resize(off + PS, 0);
        }
        moved[off..off + PS].copy_from_slice(page);
        moved[off..off + 8].copy_from_slice(&id.to_le_bytes());
        moved[off + 12..off + 16].copy_from_slice(&((cap_pages - 1) as u32).to_le_bytes());
    };
    let (r_id, o_id, i_id) = (2, 2 + cap_pages, 2 + 2 * cap_pages);
    let page = |id: u64| img[id as usize * PS..(id as usize + 1) * PS].to_vec();
    let (mut rp, mut op, ip) = (page(root), page(outer), page(inner));
    // Re-point the bucket values (root u64 at the start of each bucket value).
    let patch_bucket_root = |p: &mut Vec<u8>, to: u64| {
        let pos = u32::from_le_bytes(p[20..24].try_into().unwrap()) as usize;
        let ksize = u32::from_le_bytes(p[24..28].try_into().unwrap()) as usize;
        let v = 16 + pos + ksize;
        p[v..v + 8].copy_from_slice(&to.to_le_bytes());
    };
    patch_bucket_root(&mut rp, o_id);
    patch_bucket_root(&mut op, i_id);
    place(&mut moved, &rp, r_id);
    place(&mut moved, &op, o_id);
    place(&mut moved, &ip, i_id);
    let pgid = i_id + cap_pages;
    img = moved;
    for m in 0..2 {
        set_meta_u64(&mut img, PS, m, 16, r_id);
    }
    set_pgid(&mut img, pgid);
    let head: std::sync::Arc<[u8]> = img.into();
    let (_, peak) = measured(|| {
        let db = Db::from_sparse_bytes(head.clone(), pgid * PS as u64).unwrap();
        let mut seen = 0;
        let report = db.scan(10, &mut |_| seen += 1);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.stats.buckets, 2);
        assert!(seen >= 4);
    });
    // At most one maximal run at a time (plus windows and bitmaps), not three.
    assert!(peak <= MAX_LEAF_NODE_SIZE + 16 * MIB, "peak {peak} bytes");
}
