//! Test helpers: `bbolt::build` with infallible node writers, the standard sample database, and
//! the `snapshot status` numbers computed from a `Db`.
//!
//! Why it exists: the reader's unit and corruption tests need small, exactly known bbolt files that
//! do not depend on Go or etcd. The pages are laid out by `bbolt::build` (the one builder, on the
//! crate's layout module); this module adds the shared sample and the status arithmetic.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

pub mod etcd;

use std::ops::{Deref, DerefMut};

pub use bbolt::build::{bucket_kv, bucket_value, kv, reseal_meta, Kv};
pub const LEAF: u16 = bbolt::LEAF_PAGE_FLAG;
pub const BRANCH: u16 = bbolt::BRANCH_PAGE_FLAG;
pub const META: u16 = bbolt::META_PAGE_FLAG;
pub const FREELIST: u16 = bbolt::FREELIST_PAGE_FLAG;
pub const BUCKET: u32 = bbolt::BUCKET_LEAF_FLAG;
pub const NO_FREELIST: u64 = bbolt::PGID_NO_FREELIST;

pub fn fnv64a(data: &[u8]) -> u64 {
    bbolt::fnv1a64(data)
}

/// Serializes a leaf page (header id 0, no padding), as stored inline or at the start of a page.
pub fn leaf_bytes(entries: &[Kv]) -> Vec<u8> {
    bbolt::build::leaf_page(entries).unwrap()
}

/// Serializes a branch page body.
pub fn branch_bytes(children: &[(Vec<u8>, u64)]) -> Vec<u8> {
    bbolt::build::branch_page(children).unwrap()
}

/// An inline bucket value holding `entries`.
pub fn inline_bucket_value(entries: &[Kv]) -> Vec<u8> {
    bbolt::build::inline_bucket_value(entries).unwrap()
}

/// [`bbolt::build::Builder`] whose node writers cannot fail in these tests (they unwrap).
pub struct Builder(pub bbolt::build::Builder);

impl Deref for Builder {
    type Target = bbolt::build::Builder;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Builder {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Builder {
    pub fn new(ps: usize) -> Builder {
        Builder(bbolt::build::Builder::new(ps))
    }

    pub fn leaf(&mut self, entries: &[Kv]) -> u64 {
        self.0.leaf(entries).unwrap()
    }

    pub fn branch(&mut self, children: &[(Vec<u8>, u64)]) -> u64 {
        self.0.branch(children).unwrap()
    }

    pub fn tree(&mut self, entries: &[Kv], per_leaf: usize, fanout: usize) -> u64 {
        self.0.tree(entries, per_leaf, fanout).unwrap()
    }

    /// Writes meta `index` into the image.
    pub fn write_meta(&mut self, index: usize, root: u64, freelist: u64, pgid: u64, txid: u64) {
        self.0.write_meta(index as u8, root, freelist, pgid, txid)
    }

    pub fn finish(self, root: u64, freelist: u64, txid: u64) -> Vec<u8> {
        self.0.finish(root, freelist, txid)
    }
}

/// Sets a u64 field of meta `index` (offset within the meta struct) and reseals it.
pub fn set_meta_u64(image: &mut [u8], ps: usize, index: usize, field_off: usize, v: u64) {
    bbolt::build::set_meta_u64(image, ps, index, field_off, v)
}

pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

/// The standard sample: buckets
/// * `a`: own leaf page: plain values, one 10 000-byte value (overflow), nested bucket `n` (own page);
/// * `b`: inline bucket with two entries;
/// * `c`: a two-level tree of 300 keys (branch + leaves);
/// * `d`: empty inline bucket;
///
/// plus a freelist listing two free pages. Page size 4096.
pub struct Sample {
    pub image: Vec<u8>,
    pub ps: usize,
    pub freelist: u64,
    pub free: Vec<u64>,
    pub c_keys: Vec<Kv>,
}

pub fn sample(with_freelist: bool) -> Sample {
    let ps = 4096;
    let mut b = Builder::new(ps);
    let free_a = b.alloc(1);
    let n_root = b.leaf(&[kv(b"x", b"1"), kv(b"y", b"2")]);
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let a_root = b.leaf(&[
        kv(b"alpha", b"one"),
        kv(b"big", &big),
        bucket_kv(b"n", bucket_value(n_root)),
        kv(b"zeta", b""),
    ]);
    let free_b = b.alloc(1);
    let c_keys: Vec<Kv> = (0..300)
        .map(|i| kv(&key(i), format!("value {i}").as_bytes()))
        .collect();
    let c_root = b.tree(&c_keys, 100, 16);
    let root = b.leaf(&[
        bucket_kv(b"a", bucket_value(a_root)),
        bucket_kv(
            b"b",
            inline_bucket_value(&[kv(b"k1", b"v1"), kv(b"k2", b"v2")]),
        ),
        bucket_kv(b"c", bucket_value(c_root)),
        bucket_kv(b"d", inline_bucket_value(&[])),
    ]);
    let free = vec![free_a, free_b];
    let freelist = if with_freelist {
        b.freelist(&free, false)
    } else {
        NO_FREELIST
    };
    let image = b.finish(root, freelist, 10);
    Sample {
        image,
        ps,
        freelist,
        free,
        c_keys,
    }
}

/// Iterates every bucket (recursively) and every entry; returns (buckets, entries, value bytes).
pub fn walk_all(db: &bbolt::Db) -> bbolt::Result<(u64, u64, u64)> {
    let mut totals = (0, 0, 0);
    let mut stack = vec![db.root()];
    while let Some(b) = stack.pop() {
        totals.0 += 1;
        for e in b.entries() {
            let e = e?;
            if e.is_bucket() {
                stack.push(b.child(&e)?);
            } else {
                totals.1 += 1;
                totals.2 += e.value().len() as u64;
            }
        }
    }
    Ok(totals)
}

/// CRC-32C (Castagnoli), as Go's `crc32.MakeTable(crc32.Castagnoli)`.
pub struct Crc32c {
    table: [u32; 256],
    state: u32,
}

impl Crc32c {
    pub fn new() -> Crc32c {
        let mut table = [0u32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *t = c;
        }
        Crc32c {
            table,
            state: 0xFFFF_FFFF,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.state;
        for &b in data {
            c = self.table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.state = c;
    }

    pub fn sum(&self) -> u32 {
        self.state ^ 0xFFFF_FFFF
    }
}

/// What `etcdutl snapshot status` reports.
#[derive(Debug, PartialEq, Eq)]
pub struct Status {
    pub hash: u32,
    pub revision: i64,
    pub total_key: u64,
    pub total_size: u64,
}

/// Computes the 3.5 `snapshot status` numbers from a db (reference section 4).
pub fn status(db: &bbolt::Db) -> bbolt::Result<Status> {
    let mut h = Crc32c::new();
    let mut revision = 0i64;
    let mut total_key = 0u64;
    for name in db.buckets()? {
        let b = db.bucket(&name)?.expect("listed bucket exists");
        h.update(&name);
        let is_key = name == b"key";
        for e in b.entries() {
            let e = e?;
            h.update(e.key());
            if let Some(v) = e.plain_value() {
                h.update(v);
            }
            if is_key && e.key().len() >= 8 {
                revision = i64::from_be_bytes(e.key()[0..8].try_into().unwrap());
            }
            total_key += 1;
        }
    }
    Ok(Status {
        hash: h.sum(),
        revision,
        total_key,
        total_size: db.total_size(),
    })
}

/// The same numbers in one pass with [`bbolt::Db::scan`], with the check's errors.
pub fn status_scan(db: &bbolt::Db) -> (Status, Vec<String>) {
    let mut h = Crc32c::new();
    let mut revision = 0i64;
    let mut total_key = 0u64;
    let mut in_key = false;
    let report = db.scan(100, &mut |ev| match ev {
        bbolt::ScanEvent::Bucket { depth: 1, entry } => {
            h.update(entry.key());
            in_key = entry.key() == b"key";
        }
        bbolt::ScanEvent::Entry { depth: 1, entry } => {
            h.update(entry.key());
            if let Some(v) = entry.plain_value() {
                h.update(v);
            }
            if in_key && entry.key().len() >= 8 {
                revision = i64::from_be_bytes(entry.key()[0..8].try_into().unwrap());
            }
            total_key += 1;
        }
        _ => {}
    });
    let errors = report.errors.iter().map(|e| e.to_string()).collect();
    (
        Status {
            hash: h.sum(),
            revision,
            total_key,
            total_size: db.total_size(),
        },
        errors,
    )
}
