//! Page headers and the branch/leaf elements inside a page.
//!
//! Why it exists: this is the only place that turns raw page bytes into header fields, keys, values
//! and child page ids. Every offset read from the file is checked here against the bytes actually
//! held, so the rest of the crate can never index out of bounds.

use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, Result};

use crate::layout::{element_offset, BranchElement, LeafElement};
pub use crate::layout::{
    PageHeader, BRANCH_PAGE_FLAG, BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, ELEMENT_SIZE,
    FREELIST_COUNT_SIZE, FREELIST_PAGE_FLAG, LEAF_PAGE_FLAG, META_PAGE_FLAG, PAGE_HEADER_SIZE,
    PGID_SIZE,
};

/// bbolt's `MaxKeySize`: the longest key `Bucket.Put` accepts (bbolt `bucket.go`, the same in v1.3.x
/// and v1.4.x; `Put` returns `ErrKeyTooLarge` above it).
pub const MAX_KEY_SIZE: usize = 32768;
/// bbolt's `minKeysPerPage` (`page.go`). `node.splitTwo` never splits a node of at most
/// `2 * MIN_KEYS_PER_PAGE` elements, and otherwise cuts pieces that fit one page or hold exactly
/// `MIN_KEYS_PER_PAGE` elements; so a node larger than a page holds at most `2 * MIN_KEYS_PER_PAGE`
/// elements.
pub const MIN_KEYS_PER_PAGE: usize = 2;
/// etcd's recommended limit on one request (`recommendedMaxRequestBytes = 10 * 1024 * 1024` in etcd
/// `server/etcdserver/server.go`, 3.4 to 3.6; etcd warns when `--max-request-bytes` is set above it,
/// whose default is 1.5 MiB). A value in etcd's buckets is at most one request's key and value.
pub const ETCD_MAX_REQUEST_BYTES: usize = 10 << 20;
/// The largest branch page run a sound file holds: a node larger than one page holds at most
/// `2 * MIN_KEYS_PER_PAGE` elements, each a 16-byte struct and a key of at most [`MAX_KEY_SIZE`].
/// A run above this and above one page is refused before it is read.
pub const MAX_BRANCH_NODE_SIZE: usize =
    PAGE_HEADER_SIZE + 2 * MIN_KEYS_PER_PAGE * (ELEMENT_SIZE + MAX_KEY_SIZE);
/// The largest leaf page run this reader holds in memory: `2 * MIN_KEYS_PER_PAGE` elements, each
/// with a key of at most [`MAX_KEY_SIZE`] and a value of at most [`ETCD_MAX_REQUEST_BYTES`]
/// (about 40 MiB). bbolt itself allows values up to 2 GiB (`MaxValueSize`), but etcd never writes
/// one that large, and a page run as large as the file is how a hostile file asks for gigabytes of
/// memory. A run above this and above one page is refused before it is read.
pub const MAX_LEAF_NODE_SIZE: usize = PAGE_HEADER_SIZE
    + 2 * MIN_KEYS_PER_PAGE * (ELEMENT_SIZE + MAX_KEY_SIZE + ETCD_MAX_REQUEST_BYTES);

/// The most pages (the first page and its overflow) a run of this `kind` may span in a file of
/// `pgid` pages of `page_size` bytes, by the format: a branch or leaf node is at most
/// [`MAX_BRANCH_NODE_SIZE`] or [`MAX_LEAF_NODE_SIZE`] bytes (or one page, if that is larger), a
/// freelist lists each page below the high-water mark at most once, a meta page is one page, and a
/// page of no known kind is not read beyond its first page.
pub fn max_run_pages(kind: Option<PageKind>, page_size: u64, pgid: u64) -> u64 {
    let ps = page_size.max(1);
    let bytes = match kind {
        Some(PageKind::Branch) => MAX_BRANCH_NODE_SIZE as u64,
        Some(PageKind::Leaf) => MAX_LEAF_NODE_SIZE as u64,
        Some(PageKind::Freelist) => {
            (PAGE_HEADER_SIZE + FREELIST_COUNT_SIZE) as u64 + pgid.saturating_mul(PGID_SIZE as u64)
        }
        Some(PageKind::Meta) | None => ps,
    };
    bytes.div_ceil(ps).max(1)
}

/// The kind of a page, from its header flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// Branch page (`0x01`): keys and child page ids.
    Branch,
    /// Leaf page (`0x02`): keys and values.
    Leaf,
    /// Meta page (`0x04`).
    Meta,
    /// Freelist page (`0x10`).
    Freelist,
}

impl PageKind {
    /// The kind for exactly one known flag value; `None` for anything else.
    pub fn from_flags(flags: u16) -> Option<PageKind> {
        match flags {
            BRANCH_PAGE_FLAG => Some(PageKind::Branch),
            LEAF_PAGE_FLAG => Some(PageKind::Leaf),
            META_PAGE_FLAG => Some(PageKind::Meta),
            FREELIST_PAGE_FLAG => Some(PageKind::Freelist),
            _ => None,
        }
    }

    /// Lower-case name used in messages ("branch", "leaf", ...).
    pub fn name(self) -> &'static str {
        match self {
            PageKind::Branch => "branch",
            PageKind::Leaf => "leaf",
            PageKind::Meta => "meta",
            PageKind::Freelist => "freelist",
        }
    }
}

impl PageHeader {
    /// The page kind, if the flags are exactly one known type.
    pub fn kind(&self) -> Option<PageKind> {
        PageKind::from_flags(self.flags)
    }
}

/// A branch or leaf page held in memory: a shared buffer and the byte range of the page in it.
///
/// A normal page's buffer is its whole run of pages (overflow included). An inline bucket's page is
/// a sub-range of the value in its holder page, so no bytes are copied to read it.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    buf: Arc<[u8]>,
    start: usize,
    end: usize,
    /// Page id for messages: the page itself, or for an inline page the page holding it.
    id: u64,
    inline: bool,
    header: PageHeader,
    kind: PageKind,
}

/// A leaf element, decoded: ranges are absolute offsets into the page's shared buffer.
#[derive(Clone, Debug)]
pub(crate) struct LeafElem {
    pub flags: u32,
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// A branch element, decoded.
#[derive(Clone, Debug)]
pub(crate) struct BranchElem {
    pub key: Range<usize>,
    pub pgid: u64,
}

impl Page {
    /// Wraps `buf[start..end]` as a branch or leaf page, checking that the header is there, that the
    /// type is branch or leaf, and that the element array fits in the bytes held.
    pub(crate) fn new(
        buf: Arc<[u8]>,
        start: usize,
        end: usize,
        id: u64,
        inline: bool,
    ) -> Result<Page> {
        let what = if inline { "inline bucket page" } else { "page" };
        let bytes = buf.get(start..end).ok_or_else(|| {
            Error::corrupt(
                id,
                format!("{what} range {start}..{end} is outside its buffer"),
            )
        })?;
        let header = PageHeader::parse(bytes).ok_or_else(|| {
            Error::corrupt(
                id,
                format!(
                    "{what} is {} bytes, shorter than a page header",
                    bytes.len()
                ),
            )
        })?;
        let kind = match header.kind() {
            Some(k @ (PageKind::Branch | PageKind::Leaf)) => k,
            Some(k) => {
                return Err(Error::corrupt(
                    id,
                    format!(
                        "{what} is a {} page where a branch or leaf page was expected",
                        k.name()
                    ),
                ))
            }
            None => {
                return Err(Error::corrupt(
                    id,
                    format!("{what} has invalid type flags 0x{:02x}", header.flags),
                ))
            }
        };
        if inline && kind != PageKind::Leaf {
            return Err(Error::corrupt(id, "inline bucket page is not a leaf page"));
        }
        let need = PAGE_HEADER_SIZE + usize::from(header.count) * ELEMENT_SIZE;
        if need > bytes.len() {
            return Err(Error::corrupt(
                id,
                format!(
                    "{what}: {} {} elements need {need} bytes but the page has {}",
                    header.count,
                    kind.name(),
                    bytes.len()
                ),
            ));
        }
        Ok(Page {
            buf,
            start,
            end,
            id,
            inline,
            header,
            kind,
        })
    }

    /// The page id used in messages.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Branch or leaf.
    pub(crate) fn kind(&self) -> PageKind {
        self.kind
    }

    /// Whether this is a leaf page.
    pub(crate) fn is_leaf(&self) -> bool {
        self.kind == PageKind::Leaf
    }

    /// Number of elements.
    pub(crate) fn count(&self) -> usize {
        usize::from(self.header.count)
    }

    /// The shared buffer the page lives in.
    pub(crate) fn buf(&self) -> &Arc<[u8]> {
        &self.buf
    }

    /// Bytes of an absolute range of the buffer (ranges come from this page's decoders, so they are
    /// in bounds; an out-of-range request yields an empty slice rather than a panic).
    pub(crate) fn slice(&self, r: &Range<usize>) -> &[u8] {
        self.buf.get(r.clone()).unwrap_or(&[])
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    fn label(&self) -> &'static str {
        if self.inline {
            "inline leaf"
        } else {
            self.kind.name()
        }
    }

    /// Reads the three or four u32/u64 fields of element `i`, checking it exists.
    fn elem_offset(&self, i: usize) -> Result<usize> {
        if i >= self.count() {
            return Err(Error::corrupt(
                self.id,
                format!(
                    "{} element {i} does not exist (count {})",
                    self.label(),
                    self.count()
                ),
            ));
        }
        Ok(element_offset(i))
    }

    /// Checks that `[from, from+len)` (relative to the page start) lies within the page and converts
    /// it to an absolute range of the buffer.
    fn range(&self, i: usize, part: &str, from: u64, len: u64) -> Result<Range<usize>> {
        let size = self.bytes().len() as u64;
        let end = from.saturating_add(len);
        if end > size {
            return Err(Error::corrupt(
                self.id,
                format!(
                    "{} element {i} {part} extends past the page (offset {end} > {size})",
                    self.label()
                ),
            ));
        }
        // Both fit in `size`, which is a usize.
        let (from, end) = (from as usize, end as usize);
        Ok(self.start + from..self.start + end)
    }

    /// Decodes leaf element `i`.
    pub(crate) fn leaf(&self, i: usize) -> Result<LeafElem> {
        let off = self.elem_offset(i)?;
        let b = self.bytes();
        // The element is within the page (checked by `new`); a missing one reads as out of range.
        let (flags, pos, ksize, vsize) = LeafElement::read(b, off)
            .map(|e| (e.flags, e.pos.into(), e.ksize.into(), e.vsize.into()))
            .unwrap_or((0, u64::MAX, u64::MAX, u64::MAX));
        let kstart = (off as u64).saturating_add(pos);
        let key = self.range(i, "key", kstart, ksize)?;
        let value = self.range(i, "value", kstart.saturating_add(ksize), vsize)?;
        Ok(LeafElem { flags, key, value })
    }

    /// Decodes branch element `i`.
    pub(crate) fn branch(&self, i: usize) -> Result<BranchElem> {
        let off = self.elem_offset(i)?;
        let b = self.bytes();
        let (pos, ksize, pgid) = BranchElement::read(b, off)
            .map(|e| (e.pos.into(), e.ksize.into(), e.pgid))
            .unwrap_or((u64::MAX, u64::MAX, u64::MAX));
        let key = self.range(i, "key", (off as u64).saturating_add(pos), ksize)?;
        Ok(BranchElem { key, pgid })
    }

    /// The key of element `i`, whichever the page kind.
    pub(crate) fn key_range(&self, i: usize) -> Result<Range<usize>> {
        match self.kind {
            PageKind::Branch => Ok(self.branch(i)?.key),
            _ => Ok(self.leaf(i)?.key),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn page(bytes: Vec<u8>) -> Result<Page> {
        let len = bytes.len();
        Page::new(Arc::from(bytes), 0, len, 7, false)
    }

    fn header(buf: &mut [u8], id: u64, flags: u16, count: u16) {
        let h = PageHeader {
            id,
            flags,
            count,
            overflow: 0,
        };
        buf[..PAGE_HEADER_SIZE].copy_from_slice(&h.encode());
    }

    #[test]
    fn decodes_leaf_element() {
        let mut b = vec![0u8; 64];
        header(&mut b, 7, LEAF_PAGE_FLAG, 1);
        // flags, pos, ksize, vsize; key at 16+16 = 32
        b[16..20].copy_from_slice(&0u32.to_le_bytes());
        b[20..24].copy_from_slice(&16u32.to_le_bytes());
        b[24..28].copy_from_slice(&3u32.to_le_bytes());
        b[28..32].copy_from_slice(&2u32.to_le_bytes());
        b[32..37].copy_from_slice(b"abcxy");
        let p = page(b).unwrap();
        let e = p.leaf(0).unwrap();
        assert_eq!(p.slice(&e.key), b"abc");
        assert_eq!(p.slice(&e.value), b"xy");
        assert!(p.leaf(1).is_err());
    }

    #[test]
    fn rejects_value_past_page() {
        let mut b = vec![0u8; 64];
        header(&mut b, 7, LEAF_PAGE_FLAG, 1);
        b[20..24].copy_from_slice(&16u32.to_le_bytes());
        b[24..28].copy_from_slice(&3u32.to_le_bytes());
        b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        let p = page(b).unwrap();
        let err = p.leaf(0).unwrap_err().to_string();
        assert!(
            err.starts_with("page 7: leaf element 0 value extends past the page"),
            "{err}"
        );
    }

    #[test]
    fn rejects_too_many_elements_and_bad_types() {
        let mut b = vec![0u8; 64];
        header(&mut b, 7, LEAF_PAGE_FLAG, 4);
        assert!(page(b.clone()).is_err());
        header(&mut b, 7, 0x03, 0);
        assert!(page(b.clone())
            .unwrap_err()
            .to_string()
            .contains("invalid type flags 0x03"));
        header(&mut b, 7, META_PAGE_FLAG, 0);
        assert!(page(b).is_err());
        assert!(page(vec![0u8; 10]).is_err());
    }
}
