//! bbolt's on-disk layout: every offset, size and flag of the file format, in one place.
//!
//! Why it exists: the reader (`page`, `meta`, `freelist`, `cursor`, `check`), the copy-on-write
//! editor (`write`) and the test image builder (`build`) all read or write the same structures.
//! Each fact of the format is defined here once, with named offsets, and every module reads and
//! writes pages through these helpers instead of slicing raw bytes (bbolt `internal/common/page.go`,
//! `meta.go`, `bucket.go` and `freelist.go`, the same in v1.3.x and v1.4.x). All integers are
//! little-endian.
//!
//! ```text
//! Page header (every page, and the page inside an inline bucket value), 16 bytes:
//!   0        8          10         12            16
//!   | id u64 | flags u16 | count u16 | overflow u32 | elements ... | keys and values ...
//!
//! Branch element, 16 bytes, one per child:  Leaf element, 16 bytes, one per entry:
//!   0         4           8          16       0           4         8           12          16
//!   | pos u32 | ksize u32 | pgid u64 |        | flags u32 | pos u32 | ksize u32 | vsize u32 |
//!   `pos` counts from the element's own first byte to its key; a leaf value follows its key.
//!   bbolt writes keys (and values) in element order right after the element array.
//!
//! Bucket value (leaf element with BUCKET_LEAF_FLAG), 16-byte header:
//!   0          8               16
//!   | root u64 | sequence u64 | inline leaf page when root == 0 ...
//!
//! Meta page: page header, then the 64-byte meta struct:
//!   0           4             8               12          16         24             32
//!   | magic u32 | version u32 | page_size u32 | flags u32 | root u64 | sequence u64 |
//!   32              40         48         56             64
//!   | freelist u64 | pgid u64 | txid u64 | checksum u64 |   checksum: FNV-1a 64 of bytes 0..56
//!
//! Freelist page: page header, then
//!   count < 0xFFFF:  count page ids (u64 each)
//!   count = 0xFFFF:  | real count u64 | that many page ids ...   (the count-overflow form)
//! ```

/// Size of the header at the start of every page (and of every inline bucket page).
pub const PAGE_HEADER_SIZE: usize = 16;
/// Offset of the page id (`u64`) in the page header.
pub const PAGE_ID: usize = 0;
/// Offset of the type flags (`u16`) in the page header.
pub const PAGE_FLAGS: usize = 8;
/// Offset of the element count (`u16`) in the page header.
pub const PAGE_COUNT: usize = 10;
/// Offset of the overflow page count (`u32`) in the page header.
pub const PAGE_OVERFLOW: usize = 12;

/// Page flag of a branch page.
pub const BRANCH_PAGE_FLAG: u16 = 0x01;
/// Page flag of a leaf page.
pub const LEAF_PAGE_FLAG: u16 = 0x02;
/// Page flag of a meta page.
pub const META_PAGE_FLAG: u16 = 0x04;
/// Page flag of a freelist page.
pub const FREELIST_PAGE_FLAG: u16 = 0x10;

/// Size of one branch or leaf element struct.
pub const ELEMENT_SIZE: usize = 16;
/// Offset of a leaf element's flags (`u32`).
pub const LEAF_FLAGS: usize = 0;
/// Offset of a leaf element's key position (`u32`, from the element's start).
pub const LEAF_POS: usize = 4;
/// Offset of a leaf element's key size (`u32`).
pub const LEAF_KSIZE: usize = 8;
/// Offset of a leaf element's value size (`u32`).
pub const LEAF_VSIZE: usize = 12;
/// Offset of a branch element's key position (`u32`, from the element's start).
pub const BRANCH_POS: usize = 0;
/// Offset of a branch element's key size (`u32`).
pub const BRANCH_KSIZE: usize = 4;
/// Offset of a branch element's child page id (`u64`).
pub const BRANCH_PGID: usize = 8;
/// Leaf element flag marking the value as a nested bucket header.
pub const BUCKET_LEAF_FLAG: u32 = 0x01;

/// Size of a bucket header (`root u64 | sequence u64`) at the start of a bucket value.
pub const BUCKET_HEADER_SIZE: usize = 16;
/// Offset of the root page id in a bucket header (0: the bucket is inline).
pub const BUCKET_ROOT: usize = 0;
/// Offset of the sequence in a bucket header.
pub const BUCKET_SEQUENCE: usize = 8;

/// Bytes of the meta struct (magic .. checksum), which starts after the page header.
pub const META_SIZE: usize = 64;
/// Offset of the magic number (`u32`) in the meta struct.
pub const META_MAGIC: usize = 0;
/// Offset of the version (`u32`) in the meta struct.
pub const META_VERSION: usize = 4;
/// Offset of the page size (`u32`) in the meta struct.
pub const META_PAGE_SIZE: usize = 8;
/// Offset of the (unused) flags (`u32`) in the meta struct.
pub const META_FLAGS: usize = 12;
/// Offset of the root bucket's root page id (`u64`) in the meta struct.
pub const META_ROOT: usize = 16;
/// Offset of the root bucket's sequence (`u64`) in the meta struct.
pub const META_SEQUENCE: usize = 24;
/// Offset of the freelist page id (`u64`) in the meta struct.
pub const META_FREELIST: usize = 32;
/// Offset of the high-water mark (`u64`) in the meta struct.
pub const META_PGID: usize = 40;
/// Offset of the transaction id (`u64`) in the meta struct.
pub const META_TXID: usize = 48;
/// Offset of the checksum (`u64`) in the meta struct; the checksum covers the bytes before it.
pub const META_CHECKSUM: usize = 56;

/// `count` value of a freelist page header meaning "the real count is in the first u64".
pub const FREELIST_COUNT_OVERFLOW: u16 = 0xFFFF;
/// Size of the count word of a freelist page in its count-overflow form.
pub const FREELIST_COUNT_SIZE: usize = 8;
/// Size of one page id in a freelist page.
pub const PGID_SIZE: usize = 8;

/// Reads a little-endian `u16` at `off`, if the bytes are there.
pub fn read_u16(b: &[u8], off: usize) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_le_bytes(s))
}

/// Reads a little-endian `u32` at `off`, if the bytes are there.
pub fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

/// Reads a little-endian `u64` at `off`, if the bytes are there.
pub fn read_u64(b: &[u8], off: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

/// Writes `v` little-endian at `off`; returns `None` (writing nothing) if `b` is too short.
fn write_at(b: &mut [u8], off: usize, v: &[u8]) -> Option<()> {
    b.get_mut(off..off.checked_add(v.len())?)?
        .copy_from_slice(v);
    Some(())
}

/// Writes a little-endian `u32` at `off`; `None` if `b` is too short.
pub fn write_u32(b: &mut [u8], off: usize, v: u32) -> Option<()> {
    write_at(b, off, &v.to_le_bytes())
}

/// Writes a little-endian `u64` at `off`; `None` if `b` is too short.
pub fn write_u64(b: &mut [u8], off: usize, v: u64) -> Option<()> {
    write_at(b, off, &v.to_le_bytes())
}

/// The 16-byte header at the start of every page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageHeader {
    /// Page id as written in the page (must equal the page's position).
    pub id: u64,
    /// Type flags (exactly one of the `*_PAGE_FLAG` constants in a sound file).
    pub flags: u16,
    /// Number of elements (freelist: see [`freelist_span`]).
    pub count: u16,
    /// Number of additional contiguous pages this page occupies.
    pub overflow: u32,
}

impl PageHeader {
    /// Parses a header from the first 16 bytes of `b`; `None` if `b` is shorter.
    pub fn parse(b: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: read_u64(b, PAGE_ID)?,
            flags: read_u16(b, PAGE_FLAGS)?,
            count: read_u16(b, PAGE_COUNT)?,
            overflow: read_u32(b, PAGE_OVERFLOW)?,
        })
    }

    /// The header's 16 bytes.
    pub fn encode(&self) -> [u8; PAGE_HEADER_SIZE] {
        let mut b = [0u8; PAGE_HEADER_SIZE];
        b[PAGE_ID..PAGE_ID + 8].copy_from_slice(&self.id.to_le_bytes());
        b[PAGE_FLAGS..PAGE_FLAGS + 2].copy_from_slice(&self.flags.to_le_bytes());
        b[PAGE_COUNT..PAGE_COUNT + 2].copy_from_slice(&self.count.to_le_bytes());
        b[PAGE_OVERFLOW..PAGE_OVERFLOW + 4].copy_from_slice(&self.overflow.to_le_bytes());
        b
    }
}

/// Sets the id and overflow count in the header at the start of `page` (a page body is encoded
/// with both zero and placed later); `None` if `page` is shorter than a header.
pub fn place_page(page: &mut [u8], id: u64, overflow: u32) -> Option<()> {
    write_u64(page, PAGE_ID, id)?;
    write_u32(page, PAGE_OVERFLOW, overflow)
}

/// Offset of element `i` in a branch or leaf page.
pub fn element_offset(i: usize) -> usize {
    PAGE_HEADER_SIZE + i * ELEMENT_SIZE
}

/// The raw fields of a leaf element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafElement {
    /// Element flags ([`BUCKET_LEAF_FLAG`] for a nested bucket).
    pub flags: u32,
    /// Distance from the element's first byte to its key.
    pub pos: u32,
    /// Key length.
    pub ksize: u32,
    /// Value length (the value follows the key).
    pub vsize: u32,
}

impl LeafElement {
    /// Reads the element at byte `off` of `page`; `None` if the 16 bytes are not all there.
    pub fn read(page: &[u8], off: usize) -> Option<LeafElement> {
        Some(LeafElement {
            flags: read_u32(page, off.checked_add(LEAF_FLAGS)?)?,
            pos: read_u32(page, off.checked_add(LEAF_POS)?)?,
            ksize: read_u32(page, off.checked_add(LEAF_KSIZE)?)?,
            vsize: read_u32(page, off.checked_add(LEAF_VSIZE)?)?,
        })
    }

    fn encode(&self) -> [u8; ELEMENT_SIZE] {
        let mut b = [0u8; ELEMENT_SIZE];
        b[LEAF_FLAGS..LEAF_FLAGS + 4].copy_from_slice(&self.flags.to_le_bytes());
        b[LEAF_POS..LEAF_POS + 4].copy_from_slice(&self.pos.to_le_bytes());
        b[LEAF_KSIZE..LEAF_KSIZE + 4].copy_from_slice(&self.ksize.to_le_bytes());
        b[LEAF_VSIZE..LEAF_VSIZE + 4].copy_from_slice(&self.vsize.to_le_bytes());
        b
    }
}

/// The raw fields of a branch element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchElement {
    /// Distance from the element's first byte to its key.
    pub pos: u32,
    /// Key length.
    pub ksize: u32,
    /// The child page.
    pub pgid: u64,
}

impl BranchElement {
    /// Reads the element at byte `off` of `page`; `None` if the 16 bytes are not all there.
    pub fn read(page: &[u8], off: usize) -> Option<BranchElement> {
        Some(BranchElement {
            pos: read_u32(page, off.checked_add(BRANCH_POS)?)?,
            ksize: read_u32(page, off.checked_add(BRANCH_KSIZE)?)?,
            pgid: read_u64(page, off.checked_add(BRANCH_PGID)?)?,
        })
    }

    fn encode(&self) -> [u8; ELEMENT_SIZE] {
        let mut b = [0u8; ELEMENT_SIZE];
        b[BRANCH_POS..BRANCH_POS + 4].copy_from_slice(&self.pos.to_le_bytes());
        b[BRANCH_KSIZE..BRANCH_KSIZE + 4].copy_from_slice(&self.ksize.to_le_bytes());
        b[BRANCH_PGID..BRANCH_PGID + 8].copy_from_slice(&self.pgid.to_le_bytes());
        b
    }
}

/// The header at the start of a bucket value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketHeader {
    /// Root page of the bucket's tree, or 0 when the bucket is inline (its page follows).
    pub root: u64,
    /// The bucket's sequence (`NextSequence`).
    pub sequence: u64,
}

impl BucketHeader {
    /// Reads the header at the start of a bucket value; `None` if the value is shorter.
    pub fn parse(value: &[u8]) -> Option<BucketHeader> {
        Some(BucketHeader {
            root: read_u64(value, BUCKET_ROOT)?,
            sequence: read_u64(value, BUCKET_SEQUENCE)?,
        })
    }

    /// The header's 16 bytes, as a bucket value that an inline page may follow.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![0u8; BUCKET_HEADER_SIZE];
        v[BUCKET_ROOT..BUCKET_ROOT + 8].copy_from_slice(&self.root.to_le_bytes());
        v[BUCKET_SEQUENCE..BUCKET_SEQUENCE + 8].copy_from_slice(&self.sequence.to_le_bytes());
        v
    }
}

/// Why a node cannot be encoded as a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// More elements than a page header's count can hold (`0xFFFF` and up).
    TooManyElements(usize),
    /// A key size, value size or element offset above `u32::MAX`.
    FieldTooLarge {
        /// Which field ("element offset", "key size", "value size").
        what: &'static str,
        /// The value that does not fit.
        value: usize,
    },
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::TooManyElements(n) => write!(f, "a node of {n} elements is too large"),
            LayoutError::FieldTooLarge { what, value } => {
                write!(f, "{what} {value} does not fit a page element")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

fn u32_of(value: usize, what: &'static str) -> Result<u32, LayoutError> {
    u32::try_from(value).map_err(|_| LayoutError::FieldTooLarge { what, value })
}

/// Appends a page header with id 0 and overflow 0 (both set by [`place_page`] later).
fn node_header(out: &mut Vec<u8>, flags: u16, count: usize) -> Result<(), LayoutError> {
    let count = u16::try_from(count)
        .ok()
        .filter(|c| *c < FREELIST_COUNT_OVERFLOW)
        .ok_or(LayoutError::TooManyElements(count))?;
    let header = PageHeader {
        id: 0,
        flags,
        count,
        overflow: 0,
    };
    out.extend_from_slice(&header.encode());
    Ok(())
}

/// Serialized size of a leaf page holding entries of these key and value lengths, as bbolt's
/// `node.size`.
pub fn leaf_size(kv_lens: impl IntoIterator<Item = usize>) -> usize {
    PAGE_HEADER_SIZE + kv_lens.into_iter().map(|n| ELEMENT_SIZE + n).sum::<usize>()
}

/// Appends the leaf page for `entries` (`(flags, key, value)` in key order) to `out`, as bbolt
/// writes it: header (id 0, overflow 0), element array, then each key and value in element order;
/// unpadded.
pub fn encode_leaf<'a, I>(entries: I, out: &mut Vec<u8>) -> Result<(), LayoutError>
where
    I: IntoIterator<Item = (u32, &'a [u8], &'a [u8])>,
    I::IntoIter: ExactSizeIterator + Clone,
{
    let entries = entries.into_iter();
    node_header(out, LEAF_PAGE_FLAG, entries.len())?;
    let mut data = element_offset(entries.len());
    for (i, (flags, key, value)) in entries.clone().enumerate() {
        let elem = LeafElement {
            flags,
            pos: u32_of(data - element_offset(i), "element offset")?,
            ksize: u32_of(key.len(), "key size")?,
            vsize: u32_of(value.len(), "value size")?,
        };
        out.extend_from_slice(&elem.encode());
        data += key.len() + value.len();
    }
    out.reserve(data - element_offset(entries.len()));
    for (_, key, value) in entries {
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }
    Ok(())
}

/// Appends the branch page for `children` (`(first key, child page)` in key order) to `out`:
/// header (id 0, overflow 0), element array, then the keys; unpadded.
pub fn encode_branch<'a, I>(children: I, out: &mut Vec<u8>) -> Result<(), LayoutError>
where
    I: IntoIterator<Item = (&'a [u8], u64)>,
    I::IntoIter: ExactSizeIterator + Clone,
{
    let children = children.into_iter();
    node_header(out, BRANCH_PAGE_FLAG, children.len())?;
    let mut data = element_offset(children.len());
    for (i, (key, pgid)) in children.clone().enumerate() {
        let elem = BranchElement {
            pos: u32_of(data - element_offset(i), "element offset")?,
            ksize: u32_of(key.len(), "key size")?,
            pgid,
        };
        out.extend_from_slice(&elem.encode());
        data += key.len();
    }
    for (key, _) in children {
        out.extend_from_slice(key);
    }
    Ok(())
}

/// Where the ids of a freelist page start (bytes from the page start) and how many the page
/// claims, from its header and its first bytes (`first`: at least the header and, in the
/// count-overflow form, the count word); `None` when `first` is too short for the count word.
pub fn freelist_span(header: &PageHeader, first: &[u8]) -> Option<(usize, u64)> {
    if header.count == FREELIST_COUNT_OVERFLOW {
        let n = read_u64(first, PAGE_HEADER_SIZE)?;
        Some((PAGE_HEADER_SIZE + FREELIST_COUNT_SIZE, n))
    } else {
        Some((PAGE_HEADER_SIZE, u64::from(header.count)))
    }
}

/// Decodes one little-endian page id per 8 bytes.
pub fn pgids(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(PGID_SIZE).filter_map(|c| read_u64(c, 0))
}

/// Encodes a freelist page listing `ids` in the given order (header id 0, overflow 0, unpadded):
/// the array form below 0xFFFF ids, else (or when `count_overflow_form`) the count-overflow form.
pub fn encode_freelist(ids: &[u64], count_overflow_form: bool) -> Vec<u8> {
    let n = ids.len();
    let mut out = Vec::with_capacity(PAGE_HEADER_SIZE + FREELIST_COUNT_SIZE + PGID_SIZE * n);
    let overflow_form = count_overflow_form || n >= usize::from(FREELIST_COUNT_OVERFLOW);
    let count = if overflow_form {
        FREELIST_COUNT_OVERFLOW
    } else {
        // n < 0xFFFF here.
        n as u16
    };
    let header = PageHeader {
        id: 0,
        flags: FREELIST_PAGE_FLAG,
        count,
        overflow: 0,
    };
    out.extend_from_slice(&header.encode());
    if overflow_form {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_placing() {
        let h = PageHeader {
            id: 0x0102_0304_0506_0708,
            flags: LEAF_PAGE_FLAG,
            count: 3,
            overflow: 9,
        };
        let mut b = h.encode().to_vec();
        assert_eq!(&b[PAGE_FLAGS..PAGE_FLAGS + 2], &[2, 0]);
        assert_eq!(PageHeader::parse(&b), Some(h));
        place_page(&mut b, 7, 1).unwrap();
        let p = PageHeader::parse(&b).unwrap();
        assert_eq!((p.id, p.overflow, p.count), (7, 1, 3));
        assert!(PageHeader::parse(&b[..15]).is_none());
        assert!(place_page(&mut b[..15], 1, 1).is_none());
    }

    #[test]
    fn leaf_layout_is_bbolts() {
        let mut out = Vec::new();
        let entries = [
            (0u32, &b"ab"[..], &b"xyz"[..]),
            (BUCKET_LEAF_FLAG, b"c", b""),
        ];
        encode_leaf(entries, &mut out).unwrap();
        assert_eq!(out.len(), leaf_size([5, 1]));
        let h = PageHeader::parse(&out).unwrap();
        assert_eq!((h.flags, h.count), (LEAF_PAGE_FLAG, 2));
        let e0 = LeafElement::read(&out, element_offset(0)).unwrap();
        let e1 = LeafElement::read(&out, element_offset(1)).unwrap();
        // Keys start after both elements; element 1's data follows element 0's.
        assert_eq!((e0.pos, e0.ksize, e0.vsize), (32, 2, 3));
        assert_eq!((e1.flags, e1.pos, e1.ksize, e1.vsize), (1, 16 + 5, 1, 0));
        assert_eq!(&out[48..54], b"abxyzc");
    }

    #[test]
    fn branch_layout() {
        let mut out = Vec::new();
        encode_branch([(&b"a"[..], 5u64), (b"mm", 9)], &mut out).unwrap();
        let e1 = BranchElement::read(&out, element_offset(1)).unwrap();
        assert_eq!((e1.pos, e1.ksize, e1.pgid), (16 + 1, 2, 9));
        assert_eq!(&out[48..], b"amm");
        assert_eq!(
            node_header(&mut Vec::new(), LEAF_PAGE_FLAG, 0xFFFF),
            Err(LayoutError::TooManyElements(0xFFFF))
        );
    }

    #[test]
    fn freelist_both_forms() {
        let array = encode_freelist(&[5, 3], false);
        let h = PageHeader::parse(&array).unwrap();
        assert_eq!(freelist_span(&h, &array), Some((16, 2)));
        assert_eq!(pgids(&array[16..]).collect::<Vec<_>>(), [5, 3]);
        let long = encode_freelist(&[5, 3], true);
        let h = PageHeader::parse(&long).unwrap();
        assert_eq!(h.count, FREELIST_COUNT_OVERFLOW);
        assert_eq!(freelist_span(&h, &long), Some((24, 2)));
        assert_eq!(freelist_span(&h, &long[..20]), None);
        let many: Vec<u64> = (0..0xFFFF).collect();
        let h = PageHeader::parse(&encode_freelist(&many, false)).unwrap();
        assert_eq!(
            h.count, FREELIST_COUNT_OVERFLOW,
            "0xFFFF ids need the overflow form"
        );
    }

    #[test]
    fn bucket_header_roundtrip() {
        let b = BucketHeader {
            root: 12,
            sequence: 3,
        };
        assert_eq!(BucketHeader::parse(&b.encode()), Some(b));
        assert_eq!(BucketHeader::parse(&[0u8; 15]), None);
    }
}
