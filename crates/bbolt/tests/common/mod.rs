//! A tiny test-only bbolt writer, laying out pages by hand.
//!
//! Why it exists: the reader's unit and corruption tests need small, exactly known bbolt files that
//! do not depend on Go or etcd. This writer places meta pages, freelists (both encodings), leaves,
//! branches, overflow runs and inline buckets wherever a test wants them, including wrongly.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod etcd;

pub const MAGIC: u32 = 0xED0C_DAED;
pub const LEAF: u16 = 0x02;
pub const BRANCH: u16 = 0x01;
pub const META: u16 = 0x04;
pub const FREELIST: u16 = 0x10;
pub const BUCKET: u32 = 0x01;
pub const NO_FREELIST: u64 = u64::MAX;

/// One leaf entry: key, value, element flags.
pub type Kv = (Vec<u8>, Vec<u8>, u32);

pub fn kv(k: &[u8], v: &[u8]) -> Kv {
    (k.to_vec(), v.to_vec(), 0)
}

pub fn fnv64a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Serializes a leaf page (header id 0, no padding), as stored inline or at the start of a page.
pub fn leaf_bytes(entries: &[Kv]) -> Vec<u8> {
    let n = entries.len();
    let mut b = vec![0u8; 16 + 16 * n];
    b[8..10].copy_from_slice(&LEAF.to_le_bytes());
    b[10..12].copy_from_slice(&(n as u16).to_le_bytes());
    for (i, (k, v, flags)) in entries.iter().enumerate() {
        let elem = 16 + 16 * i;
        let pos = (b.len() - elem) as u32;
        b[elem..elem + 4].copy_from_slice(&flags.to_le_bytes());
        b[elem + 4..elem + 8].copy_from_slice(&pos.to_le_bytes());
        b[elem + 8..elem + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
        b[elem + 12..elem + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    b
}

/// Serializes a branch page body.
pub fn branch_bytes(children: &[(Vec<u8>, u64)]) -> Vec<u8> {
    let n = children.len();
    let mut b = vec![0u8; 16 + 16 * n];
    b[8..10].copy_from_slice(&BRANCH.to_le_bytes());
    b[10..12].copy_from_slice(&(n as u16).to_le_bytes());
    for (i, (k, pgid)) in children.iter().enumerate() {
        let elem = 16 + 16 * i;
        let pos = (b.len() - elem) as u32;
        b[elem..elem + 4].copy_from_slice(&pos.to_le_bytes());
        b[elem + 4..elem + 8].copy_from_slice(&(k.len() as u32).to_le_bytes());
        b[elem + 8..elem + 16].copy_from_slice(&pgid.to_le_bytes());
        b.extend_from_slice(k);
    }
    b
}

/// A bucket value pointing at a root page.
pub fn bucket_value(root: u64) -> Vec<u8> {
    let mut v = root.to_le_bytes().to_vec();
    v.extend_from_slice(&0u64.to_le_bytes());
    v
}

/// An inline bucket value holding `entries`.
pub fn inline_bucket_value(entries: &[Kv]) -> Vec<u8> {
    let mut v = bucket_value(0);
    v.extend_from_slice(&leaf_bytes(entries));
    v
}

/// A bucket entry for a leaf.
pub fn bucket_kv(name: &[u8], value: Vec<u8>) -> Kv {
    (name.to_vec(), value, BUCKET)
}

pub struct Builder {
    pub ps: usize,
    pub image: Vec<u8>,
}

impl Builder {
    pub fn new(ps: usize) -> Builder {
        Builder {
            ps,
            image: vec![0u8; 2 * ps],
        }
    }

    pub fn next_id(&self) -> u64 {
        (self.image.len() / self.ps) as u64
    }

    /// Allocates `n` zeroed pages, returns the first id.
    pub fn alloc(&mut self, n: usize) -> u64 {
        let id = self.next_id();
        self.image.resize(self.image.len() + n * self.ps, 0);
        id
    }

    /// Writes a page body (header included, id and overflow patched) at a fresh id.
    pub fn put_page(&mut self, mut body: Vec<u8>) -> u64 {
        let n = body.len().div_ceil(self.ps).max(1);
        let id = self.alloc(n);
        body[0..8].copy_from_slice(&id.to_le_bytes());
        body[12..16].copy_from_slice(&((n - 1) as u32).to_le_bytes());
        let off = id as usize * self.ps;
        self.image[off..off + body.len()].copy_from_slice(&body);
        id
    }

    pub fn leaf(&mut self, entries: &[Kv]) -> u64 {
        self.put_page(leaf_bytes(entries))
    }

    pub fn branch(&mut self, children: &[(Vec<u8>, u64)]) -> u64 {
        self.put_page(branch_bytes(children))
    }

    /// Builds a tree over sorted `entries`, `per_leaf` entries per leaf and `fanout` children per
    /// branch; returns the root id.
    pub fn tree(&mut self, entries: &[Kv], per_leaf: usize, fanout: usize) -> u64 {
        let mut level: Vec<(Vec<u8>, u64)> = Vec::new();
        for chunk in entries.chunks(per_leaf.max(1)) {
            let id = self.leaf(chunk);
            level.push((chunk[0].0.clone(), id));
        }
        if level.is_empty() {
            return self.leaf(&[]);
        }
        while level.len() > 1 {
            let mut up = Vec::new();
            for chunk in level.chunks(fanout.max(2)) {
                let id = self.branch(chunk);
                up.push((chunk[0].0.clone(), id));
            }
            level = up;
        }
        level[0].1
    }

    /// Writes a freelist page; `overflow_form` forces the count-in-first-u64 encoding.
    pub fn freelist(&mut self, ids: &[u64], overflow_form: bool) -> u64 {
        let mut b = vec![0u8; 16];
        b[8..10].copy_from_slice(&FREELIST.to_le_bytes());
        if overflow_form || ids.len() >= 0xFFFF {
            b[10..12].copy_from_slice(&0xFFFFu16.to_le_bytes());
            b.extend_from_slice(&(ids.len() as u64).to_le_bytes());
        } else {
            b[10..12].copy_from_slice(&(ids.len() as u16).to_le_bytes());
        }
        for id in ids {
            b.extend_from_slice(&id.to_le_bytes());
        }
        self.put_page(b)
    }

    /// Writes meta `index` into the image.
    pub fn write_meta(&mut self, index: usize, root: u64, freelist: u64, pgid: u64, txid: u64) {
        let off = index * self.ps;
        let p = &mut self.image[off..off + 80];
        p.fill(0);
        p[0..8].copy_from_slice(&(index as u64).to_le_bytes());
        p[8..10].copy_from_slice(&META.to_le_bytes());
        let mut m = Vec::new();
        m.extend_from_slice(&MAGIC.to_le_bytes());
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&(self.ps as u32).to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(&root.to_le_bytes());
        m.extend_from_slice(&0u64.to_le_bytes());
        m.extend_from_slice(&freelist.to_le_bytes());
        m.extend_from_slice(&pgid.to_le_bytes());
        m.extend_from_slice(&txid.to_le_bytes());
        let sum = fnv64a(&m);
        m.extend_from_slice(&sum.to_le_bytes());
        p[16..80].copy_from_slice(&m);
    }

    /// Writes both metas as `Tx.WriteTo` does (page 0 txid `txid`, page 1 `txid - 1`) and returns
    /// the image.
    pub fn finish(mut self, root: u64, freelist: u64, txid: u64) -> Vec<u8> {
        let pgid = self.next_id();
        self.write_meta(0, root, freelist, pgid, txid);
        self.write_meta(1, root, freelist, pgid, txid - 1);
        self.image
    }
}

/// Re-computes the checksum of meta `index` after a test edited its fields.
pub fn reseal_meta(image: &mut [u8], ps: usize, index: usize) {
    let off = index * ps + 16;
    let sum = fnv64a(&image[off..off + 56]);
    image[off + 56..off + 64].copy_from_slice(&sum.to_le_bytes());
}

/// Sets a u64 field of meta `index` (offset within the meta struct) and reseals it.
pub fn set_meta_u64(image: &mut [u8], ps: usize, index: usize, field_off: usize, v: u64) {
    let off = index * ps + 16 + field_off;
    image[off..off + 8].copy_from_slice(&v.to_le_bytes());
    reseal_meta(image, ps, index);
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
