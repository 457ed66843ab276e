//! Fuzz target: any bytes given to the bbolt reader must give `Ok` or `Err`, never a panic, a hang or
//! an unbounded allocation.
//!
//! Why it exists: the reader parses untrusted files (backups arrive from anywhere). Run with
//! `cargo +nightly fuzz run open_check_iterate` from `crates/bbolt`; seed the corpus with real
//! snapshots (`fuzz/corpus/open_check_iterate/`). Crashes found become cases in
//! `tests/mutation.rs::regressions`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = bbolt::Db::from_bytes(data.to_vec()) else {
        return;
    };
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
});
