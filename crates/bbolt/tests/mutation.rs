//! Deterministic random mutation of valid bbolt files: open, iterate and check must return `Ok` or
//! `Err`, never panic, hang or run out of memory.
//!
//! Why it exists: a stable-toolchain stand-in for the `cargo fuzz` target in `fuzz/` that runs on
//! every `cargo test`. A xorshift generator with fixed seeds makes every failure reproducible; any
//! input that ever crashed becomes a case in `regressions`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use bbolt::Db;
use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything a caller might do with a db; results are ignored, only panics matter.
fn exercise(img: Vec<u8>) {
    let Ok(db) = Db::from_bytes(img) else { return };
    let _ = db.check_report(50);
    let _ = db.free_pages();
    let _ = walk_all(&db);
    if let Ok(names) = db.buckets() {
        for n in names.iter().take(8) {
            if let Ok(Some(b)) = db.bucket(n) {
                for k in [&b"k1"[..], b"key-000150", b"big", b"", b"\xff"] {
                    let _ = b.get(k);
                }
                let _ = b.buckets();
            }
        }
    }
}

fn mutate(rng: &mut Rng, base: &[u8], ps: usize) -> Vec<u8> {
    let mut m = base.to_vec();
    let pages = m.len() / ps;
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            2 => {
                // A header or element field of some page set to a random or extreme value.
                let page = rng.below(pages);
                let field = rng.below(64) * 4;
                let off = page * ps + field;
                let v: u32 = match rng.below(4) {
                    0 => 0,
                    1 => u32::MAX,
                    2 => rng.below(ps * 2) as u32,
                    _ => rng.next() as u32,
                };
                if off + 4 <= m.len() {
                    m[off..off + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            3 => {
                let len = rng.below(m.len());
                m.truncate(len);
                return m;
            }
            4 => {
                // One page copied over another (stale pages, wrong ids).
                let (a, b) = (rng.below(pages), rng.below(pages));
                let src = m[a * ps..(a + 1) * ps].to_vec();
                m[b * ps..(b + 1) * ps].copy_from_slice(&src);
            }
            _ => {
                // A page id field pointing somewhere else (child of a branch, bucket root, meta).
                let page = rng.below(pages);
                let off = page * ps + 16 + rng.below(8) * 8;
                let v = rng.below(pages + 3) as u64;
                if off + 8 <= m.len() {
                    m[off..off + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    // Sometimes keep the metas valid so the damage reaches the tree.
    if rng.below(2) == 0 && m.len() >= 2 * ps {
        reseal_meta(&mut m, ps, 0);
        reseal_meta(&mut m, ps, 1);
    }
    m
}

fn run(seed: u64, base: &[u8], ps: usize, rounds: usize) {
    let mut rng = Rng(seed);
    for _ in 0..rounds {
        exercise(mutate(&mut rng, base, ps));
    }
}

#[test]
fn mutated_sample_with_freelist_never_panics() {
    let s = sample(true);
    exercise(s.image.clone());
    run(0x1234_5678_9abc_def1, &s.image, s.ps, 1500);
}

#[test]
fn mutated_sample_without_freelist_never_panics() {
    let s = sample(false);
    run(0x0fed_cba9_8765_4321, &s.image, s.ps, 1500);
}

#[test]
fn mutated_small_pages_never_panic() {
    // 512-byte pages: deeper trees, more branch pages per byte.
    let mut b = Builder::new(512);
    let keys: Vec<Kv> = (0..400).map(|i| kv(&key(i), &[b'v'; 7])).collect();
    let t = b.tree(&keys, 8, 4);
    let inner = b.leaf(&[kv(b"x", &[7u8; 1500])]);
    let root = b.leaf(&[
        bucket_kv(b"t", bucket_value(t)),
        bucket_kv(b"u", bucket_value(inner)),
        bucket_kv(
            b"v",
            inline_bucket_value(&[bucket_kv(b"w", inline_bucket_value(&[kv(b"a", b"b")]))]),
        ),
    ]);
    let free = vec![b.alloc(1), b.alloc(1)];
    let fl = b.freelist(&free, true);
    let img = b.finish(root, fl, 9);
    assert!(Db::from_bytes(img.clone()).unwrap().check().is_empty());
    run(0xdead_beef_cafe_f00d, &img, 512, 1500);
}

#[test]
fn every_truncation_of_a_sample_is_an_error() {
    let s = sample(true);
    for len in (0..s.image.len()).step_by(61) {
        assert!(Db::from_bytes(s.image[..len].to_vec()).is_err(), "{len}");
    }
}

/// Inputs that once crashed or hung a reader; each must now give Ok or Err.
#[test]
fn regressions() {
    // A page whose overflow count reaches u32::MAX.
    let s = sample(true);
    let mut m = s.image.clone();
    let off = 3 * s.ps + 12;
    m[off..off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    exercise(m);
    // A freelist count of u64::MAX in the overflow form.
    let mut m = s.image.clone();
    let off = s.freelist as usize * s.ps;
    m[off + 10..off + 12].copy_from_slice(&0xFFFFu16.to_le_bytes());
    m[off + 16..off + 24].copy_from_slice(&u64::MAX.to_le_bytes());
    exercise(m);
}
