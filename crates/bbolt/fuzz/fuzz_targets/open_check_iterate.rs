//! Fuzz target: any bytes given to the bbolt reader must give `Ok` or `Err`, never a panic, a hang or
//! an allocation beyond what the format allows.
//!
//! Why it exists: the reader parses untrusted files (backups arrive from anywhere). Each input is
//! read twice: as it is, and as the head of a 1 GiB sparse file (the input, then zeros), so that the
//! page counts, overflow runs and freelist counts a hostile file on disk can claim are reachable
//! without the memory. Run with an allocation bound, from `crates/bbolt`:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run open_check_iterate -- -malloc_limit_mb=64 -rss_limit_mb=256`
//! (one allocation above 64 MiB is a finding: no sound run is larger than
//! `bbolt::MAX_LEAF_NODE_SIZE`, about 40 MiB); seed the corpus with real snapshots
//! (`fuzz/corpus/open_check_iterate/`). Findings become cases in `tests/mutation.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// Length of the sparse file each input heads.
const SPARSE_LEN: u64 = 1 << 30;

fn exercise(db: &bbolt::Db) {
    let _ = db.check_report(20);
    let _ = db.free_pages();
    let mut stack = vec![db.root()];
    let mut buckets = 0;
    while let Some(b) = stack.pop() {
        buckets += 1;
        if buckets > 10_000 {
            break;
        }
        let _ = b.get(b"key");
        for e in b.entries() {
            let Ok(e) = e else { break };
            // Overlapping inline buckets can nest exponentially; a caller walking nested buckets
            // of an unchecked file must bound its work (the check reports such files).
            if e.is_bucket() && stack.len() < 1_000 {
                if let Ok(child) = b.child(&e) {
                    stack.push(child);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = bbolt::Db::from_bytes(data.to_vec()) {
        exercise(&db);
    }
    if let Ok(db) = bbolt::Db::from_sparse_bytes(data.to_vec(), SPARSE_LEN) {
        exercise(&db);
    }
});
