//! Small bbolt database images laid out by hand, for tests of this crate and of the crates above it.
//!
//! Why it exists: reader tests, corruption tests, the editor's tests and the tests of etcd-db and
//! etcd-common all need exactly known bbolt files without Go or etcd. They share this one builder,
//! written on the [`layout`](crate::layout) module that the reader and the editor use, instead of
//! each laying out pages with its own offsets. It places metas, freelists (both encodings), leaves,
//! branches, overflow runs and inline buckets wherever a test wants them, including wrongly (a meta
//! can name any root, a page any id). It only builds bytes in memory; no production path calls it.

use crate::layout::{self, LayoutError, PageHeader, BUCKET_LEAF_FLAG, META_PAGE_FLAG};
use crate::meta::{Meta, MAGIC, PGID_NO_FREELIST, VERSION};

/// One leaf entry: key, value, element flags ([`BUCKET_LEAF_FLAG`] for a nested bucket).
pub type Kv = (Vec<u8>, Vec<u8>, u32);

/// A plain leaf entry.
pub fn kv(key: &[u8], value: &[u8]) -> Kv {
    (key.to_vec(), value.to_vec(), 0)
}

/// A leaf entry naming a nested bucket whose bucket value is `value`.
pub fn bucket_kv(name: &[u8], value: Vec<u8>) -> Kv {
    (name.to_vec(), value, BUCKET_LEAF_FLAG)
}

/// A leaf page holding `entries` (header id 0, overflow 0, unpadded), as it is stored inline or at
/// the start of a page run.
pub fn leaf_page(entries: &[Kv]) -> Result<Vec<u8>, LayoutError> {
    let mut out = Vec::new();
    let entries = entries
        .iter()
        .map(|(k, v, flags)| (*flags, k.as_slice(), v.as_slice()));
    layout::encode_leaf(entries, &mut out)?;
    Ok(out)
}

/// A branch page over `children` (`(first key, child page)`), header id 0, overflow 0, unpadded.
pub fn branch_page(children: &[(Vec<u8>, u64)]) -> Result<Vec<u8>, LayoutError> {
    let mut out = Vec::new();
    layout::encode_branch(children.iter().map(|(k, id)| (k.as_slice(), *id)), &mut out)?;
    Ok(out)
}

/// A bucket value pointing at the root page `root` (sequence 0).
pub fn bucket_value(root: u64) -> Vec<u8> {
    layout::BucketHeader { root, sequence: 0 }.encode()
}

/// An inline bucket value holding `entries`.
pub fn inline_bucket_value(entries: &[Kv]) -> Result<Vec<u8>, LayoutError> {
    let mut v = bucket_value(0);
    v.extend_from_slice(&leaf_page(entries)?);
    Ok(v)
}

/// A sealed meta (valid magic, version and checksum) for page `index` of a file of `page_size`
/// bytes per page.
pub fn meta(index: u8, page_size: u32, root: u64, freelist: u64, pgid: u64, txid: u64) -> Meta {
    let mut m = Meta {
        index,
        header: PageHeader {
            id: u64::from(index),
            flags: META_PAGE_FLAG,
            count: 0,
            overflow: 0,
        },
        magic: MAGIC,
        version: VERSION,
        page_size,
        flags: 0,
        root,
        sequence: 0,
        freelist,
        pgid,
        txid,
        checksum: 0,
    };
    m.checksum = m.compute_checksum();
    m
}

/// An image of `pages` pages whose two metas are valid (txid 2 in page 0, 1 in page 1, root page 2,
/// no freelist) and count them all; every other page is zeros. For code that only reads metas
/// (sizing a stream by its declared length).
pub fn metas_only(page_size: usize, pages: u64) -> Vec<u8> {
    let mut b = Builder::new(page_size);
    let more = usize::try_from(pages.saturating_sub(2)).unwrap_or(0);
    b.alloc(more);
    b.finish(2, PGID_NO_FREELIST, 2)
}

/// The smallest sound database: two metas (txid 0 in page 0, 1 in page 1) and an empty root leaf
/// at page 2, no freelist.
pub fn empty_db(page_size: usize) -> Vec<u8> {
    let mut b = Builder::new(page_size);
    let empty_leaf = PageHeader {
        id: 0,
        flags: layout::LEAF_PAGE_FLAG,
        count: 0,
        overflow: 0,
    };
    let root = b.put_page(empty_leaf.encode().to_vec());
    let pgid = b.next_id();
    b.write_meta(0, root, PGID_NO_FREELIST, pgid, 0);
    b.write_meta(1, root, PGID_NO_FREELIST, pgid, 1);
    b.image
}

/// An image under construction: two (zeroed) meta pages, then pages appended in id order.
#[derive(Clone, Debug)]
pub struct Builder {
    /// Page size.
    pub ps: usize,
    /// The image so far (a whole number of pages).
    pub image: Vec<u8>,
}

impl Builder {
    /// Two zeroed meta pages of `ps` bytes.
    pub fn new(ps: usize) -> Builder {
        Builder {
            ps,
            image: vec![0u8; 2 * ps],
        }
    }

    /// The id the next page will get.
    pub fn next_id(&self) -> u64 {
        (self.image.len() / self.ps.max(1)) as u64
    }

    /// Byte offset of page `id` in the image.
    pub fn offset(&self, id: u64) -> usize {
        usize::try_from(id)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.ps)
    }

    /// Allocates `n` zeroed pages; returns the first id.
    pub fn alloc(&mut self, n: usize) -> u64 {
        let id = self.next_id();
        self.image.resize(self.image.len() + n * self.ps, 0);
        id
    }

    /// Writes a page body (header first) at fresh ids, padded to whole pages, with its header's id
    /// and overflow set to where it lands; returns its id. A body shorter than a page header is
    /// written as it is (for tests of damaged pages).
    pub fn put_page(&mut self, mut body: Vec<u8>) -> u64 {
        let n = body.len().div_ceil(self.ps).max(1);
        let id = self.alloc(n);
        let overflow = u32::try_from(n - 1).unwrap_or(u32::MAX);
        let _ = layout::place_page(&mut body, id, overflow);
        let off = self.offset(id);
        self.image[off..off + body.len()].copy_from_slice(&body);
        id
    }

    /// Writes a leaf page holding `entries`; returns its id.
    pub fn leaf(&mut self, entries: &[Kv]) -> Result<u64, LayoutError> {
        Ok(self.put_page(leaf_page(entries)?))
    }

    /// Writes a branch page over `children`; returns its id.
    pub fn branch(&mut self, children: &[(Vec<u8>, u64)]) -> Result<u64, LayoutError> {
        Ok(self.put_page(branch_page(children)?))
    }

    /// Builds a tree over sorted `entries`, `per_leaf` entries per leaf and `fanout` children per
    /// branch; returns the root id (an empty leaf when there are no entries).
    pub fn tree(
        &mut self,
        entries: &[Kv],
        per_leaf: usize,
        fanout: usize,
    ) -> Result<u64, LayoutError> {
        let mut level: Vec<(Vec<u8>, u64)> = Vec::new();
        for chunk in entries.chunks(per_leaf.max(1)) {
            let id = self.leaf(chunk)?;
            let first = chunk.first().map(|e| e.0.clone()).unwrap_or_default();
            level.push((first, id));
        }
        while level.len() > 1 {
            let mut up = Vec::new();
            for chunk in level.chunks(fanout.max(2)) {
                let id = self.branch(chunk)?;
                let first = chunk.first().map(|c| c.0.clone()).unwrap_or_default();
                up.push((first, id));
            }
            level = up;
        }
        match level.first() {
            Some((_, root)) => Ok(*root),
            None => self.leaf(&[]),
        }
    }

    /// Writes a freelist page listing `ids` in the given order; `count_overflow_form` forces the
    /// count-in-first-u64 encoding (used anyway from 0xFFFF ids on). Returns its id.
    pub fn freelist(&mut self, ids: &[u64], count_overflow_form: bool) -> u64 {
        self.put_page(layout::encode_freelist(ids, count_overflow_form))
    }

    /// Writes a sealed meta into meta page `index` (0 or 1; its first 80 bytes).
    pub fn write_meta(&mut self, index: u8, root: u64, freelist: u64, pgid: u64, txid: u64) {
        let page_size = u32::try_from(self.ps).unwrap_or(u32::MAX);
        let m = meta(index, page_size, root, freelist, pgid, txid);
        let page = m.page_bytes(index, crate::meta::META_PAGE_PREFIX);
        let off = self.offset(u64::from(index));
        if let Some(dst) = self.image.get_mut(off..off + page.len()) {
            dst.copy_from_slice(&page);
        }
    }

    /// Writes both metas as `Tx.WriteTo` does (page 0 txid `txid`, page 1 `txid - 1`), counting
    /// every page built, and returns the image.
    pub fn finish(mut self, root: u64, freelist: u64, txid: u64) -> Vec<u8> {
        let pgid = self.next_id();
        self.write_meta(0, root, freelist, pgid, txid);
        self.write_meta(1, root, freelist, pgid, txid.saturating_sub(1));
        self.image
    }
}

/// Re-computes the checksum of meta `index` after a test edited its fields in `image`.
pub fn reseal_meta(image: &mut [u8], ps: usize, index: usize) {
    let off = index * ps + layout::PAGE_HEADER_SIZE;
    let Some(body) = image.get(off..off + layout::META_CHECKSUM) else {
        return;
    };
    let sum = crate::meta::fnv1a64(body);
    let _ = layout::write_u64(image, off + layout::META_CHECKSUM, sum);
}

/// Sets the `u64` field at `field` (a `layout::META_*` offset) of meta `index` and reseals it.
pub fn set_meta_u64(image: &mut [u8], ps: usize, index: usize, field: usize, v: u64) {
    let off = index * ps + layout::PAGE_HEADER_SIZE + field;
    let _ = layout::write_u64(image, off, v);
    reseal_meta(image, ps, index);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Db;

    #[test]
    fn empty_db_opens_and_checks() {
        let db = Db::from_bytes(empty_db(4096)).unwrap();
        assert_eq!(db.meta().txid, 1);
        assert_eq!(db.meta().pgid, 3);
        assert!(db.check().is_empty());
        assert!(db.buckets().unwrap().is_empty());
    }

    #[test]
    fn metas_only_declares_every_page() {
        let img = metas_only(4096, 300);
        assert_eq!(img.len(), 300 * 4096);
        for index in 0..2u8 {
            let m = Meta::parse(index, &img[usize::from(index) * 4096..]).unwrap();
            m.validate().unwrap();
            assert_eq!((m.pgid, m.root, m.txid), (300, 2, 2 - u64::from(index)));
            assert!(!m.has_freelist());
        }
    }

    #[test]
    fn trees_and_overflow_runs_read_back() {
        let mut b = Builder::new(1024);
        let entries: Vec<Kv> = (0..50u32)
            .map(|i| kv(format!("k{i:03}").as_bytes(), &[7u8; 300]))
            .collect();
        let t = b.tree(&entries, 7, 3).unwrap();
        let inline = inline_bucket_value(&[kv(b"a", b"1")]).unwrap();
        let root = b
            .leaf(&[bucket_kv(b"i", inline), bucket_kv(b"t", bucket_value(t))])
            .unwrap();
        let db = Db::from_bytes(b.finish(root, PGID_NO_FREELIST, 4)).unwrap();
        assert!(db.check().is_empty(), "{:?}", db.check());
        let t = db.bucket(b"t").unwrap().unwrap();
        assert_eq!(t.entries().count(), 50);
        let i = db.bucket(b"i").unwrap().unwrap();
        assert_eq!(i.entries().count(), 1);
    }
}
