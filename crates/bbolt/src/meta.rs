//! Meta pages: decoding, the FNV-1a checksum, and choosing the active meta.
//!
//! Why it exists: the two meta pages at the start of the file are the only entry point into a bbolt
//! database. Which one is in force, what page size the file uses and how many pages it claims all come
//! from here, and every later bound (page ids, file length) is checked against the chosen meta.

use std::fmt;

pub use crate::layout::META_SIZE;
use crate::layout::{
    read_u32, read_u64, write_u32, write_u64, PageHeader, META_CHECKSUM, META_FLAGS, META_FREELIST,
    META_MAGIC, META_PAGE_FLAG, META_PAGE_SIZE, META_PGID, META_ROOT, META_SEQUENCE, META_TXID,
    META_VERSION, PAGE_HEADER_SIZE,
};

/// The bbolt magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only data-file version bbolt writes and reads.
pub const VERSION: u32 = 2;
/// `meta.freelist` value meaning "no freelist page was written" (`NoFreelistSync`).
pub const PGID_NO_FREELIST: u64 = u64::MAX;
/// Bytes a reader needs from the start of a meta page: header plus meta struct.
pub const META_PAGE_PREFIX: usize = PAGE_HEADER_SIZE + META_SIZE;
/// Smallest page size accepted.
pub const MIN_PAGE_SIZE: u32 = 512;
/// Largest page size accepted.
pub const MAX_PAGE_SIZE: u32 = 1 << 20;

/// One decoded meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Which meta page this is (0 or 1).
    pub index: u8,
    /// The page header of the meta page.
    pub header: PageHeader,
    /// Magic number (`MAGIC` in a valid meta).
    pub magic: u32,
    /// Format version (`VERSION` in a valid meta).
    pub version: u32,
    /// Page size of the file in bytes.
    pub page_size: u32,
    /// Unused flags (0).
    pub flags: u32,
    /// Page id of the root bucket's root page.
    pub root: u64,
    /// The root bucket's sequence.
    pub sequence: u64,
    /// Page id of the freelist page, or [`PGID_NO_FREELIST`].
    pub freelist: u64,
    /// High-water mark: the number of pages in use.
    pub pgid: u64,
    /// Transaction id that wrote this meta.
    pub txid: u64,
    /// Stored checksum.
    pub checksum: u64,
}

/// Why a meta page was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaProblem {
    /// The bytes could not be read or are too few.
    Unreadable(String),
    /// Wrong magic number.
    Magic(u32),
    /// Wrong version.
    Version(u32),
    /// Stored and computed checksums differ.
    Checksum {
        /// Stored in the page.
        stored: u64,
        /// Computed over the page.
        computed: u64,
    },
    /// The fields are inconsistent (page size, root, freelist or pgid out of range).
    Insane(String),
    /// The file is shorter than `pgid * page_size`.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        actual: u64,
    },
}

impl fmt::Display for MetaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaProblem::Unreadable(s) => write!(f, "unreadable: {s}"),
            MetaProblem::Magic(m) => write!(f, "invalid magic 0x{m:08x} (want 0x{MAGIC:08x})"),
            MetaProblem::Version(v) => write!(f, "unsupported version {v} (want {VERSION})"),
            MetaProblem::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch (stored 0x{stored:016x}, computed 0x{computed:016x})"
                )
            }
            MetaProblem::Insane(s) => f.write_str(s),
            MetaProblem::Truncated { needed, actual } => {
                write!(f, "file is truncated: needs {needed} bytes, has {actual}")
            }
        }
    }
}

/// FNV-1a, 64 bit, as Go's `hash/fnv.New64a`.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Meta {
    /// Decodes the meta of page `index` from the first 80 bytes of the page (header and
    /// meta struct).
    /// Does not validate anything.
    pub fn parse(index: u8, page: &[u8]) -> Result<Meta, MetaProblem> {
        let short = || {
            MetaProblem::Unreadable(format!(
                "{} bytes, need {META_PAGE_PREFIX}",
                page.len().min(META_PAGE_PREFIX)
            ))
        };
        let header = PageHeader::parse(page).ok_or_else(short)?;
        let u32at = |o| read_u32(page, PAGE_HEADER_SIZE + o).ok_or_else(short);
        let u64at = |o| read_u64(page, PAGE_HEADER_SIZE + o).ok_or_else(short);
        Ok(Meta {
            index,
            header,
            magic: u32at(META_MAGIC)?,
            version: u32at(META_VERSION)?,
            page_size: u32at(META_PAGE_SIZE)?,
            flags: u32at(META_FLAGS)?,
            root: u64at(META_ROOT)?,
            sequence: u64at(META_SEQUENCE)?,
            freelist: u64at(META_FREELIST)?,
            pgid: u64at(META_PGID)?,
            txid: u64at(META_TXID)?,
            checksum: u64at(META_CHECKSUM)?,
        })
    }

    /// Serializes the meta struct (without page header) as bbolt lays it out; the checksum is
    /// computed over the bytes before [`META_CHECKSUM`].
    pub fn to_bytes(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        let fields32 = [
            (META_MAGIC, self.magic),
            (META_VERSION, self.version),
            (META_PAGE_SIZE, self.page_size),
            (META_FLAGS, self.flags),
        ];
        let fields64 = [
            (META_ROOT, self.root),
            (META_SEQUENCE, self.sequence),
            (META_FREELIST, self.freelist),
            (META_PGID, self.pgid),
            (META_TXID, self.txid),
            (META_CHECKSUM, self.checksum),
        ];
        // Every offset is inside the 64-byte struct.
        for (off, v) in fields32 {
            let _ = write_u32(&mut b, off, v);
        }
        for (off, v) in fields64 {
            let _ = write_u64(&mut b, off, v);
        }
        b
    }

    /// A whole meta page of `page_size` bytes (at least [`META_PAGE_PREFIX`]) as bbolt writes it
    /// into page `index`: header (id `index`, meta flag), the meta struct, zeros.
    pub fn page_bytes(&self, index: u8, page_size: usize) -> Vec<u8> {
        let mut page = vec![0u8; page_size.max(META_PAGE_PREFIX)];
        let header = PageHeader {
            id: u64::from(index),
            flags: META_PAGE_FLAG,
            count: 0,
            overflow: 0,
        };
        page[..PAGE_HEADER_SIZE].copy_from_slice(&header.encode());
        page[PAGE_HEADER_SIZE..META_PAGE_PREFIX].copy_from_slice(&self.to_bytes());
        page
    }

    /// The checksum bbolt would store for this meta: FNV-1a 64 over magic..txid.
    pub fn compute_checksum(&self) -> u64 {
        fnv1a64(&self.to_bytes()[..META_CHECKSUM])
    }

    /// bbolt's `validate()`: magic, version, checksum.
    pub fn validate(&self) -> Result<(), MetaProblem> {
        if self.magic != MAGIC {
            return Err(MetaProblem::Magic(self.magic));
        }
        if self.version != VERSION {
            return Err(MetaProblem::Version(self.version));
        }
        let computed = self.compute_checksum();
        if computed != self.checksum {
            return Err(MetaProblem::Checksum {
                stored: self.checksum,
                computed,
            });
        }
        Ok(())
    }

    /// Checks what a reader needs beyond bbolt's `validate()` before trusting the meta: a power-of-two
    /// page size in range, `2 <= root < pgid`, a freelist id in `[2, pgid)` or absent, and a file at
    /// least `pgid * page_size` bytes long.
    pub fn check_bounds(&self, file_len: u64) -> Result<(), MetaProblem> {
        let ps = self.page_size;
        if !ps.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps) {
            return Err(MetaProblem::Insane(format!(
                "page size {ps} is not a power of two in [{MIN_PAGE_SIZE}, {MAX_PAGE_SIZE}]"
            )));
        }
        if self.pgid < 3 {
            return Err(MetaProblem::Insane(format!(
                "high-water mark {} leaves no room for a root page",
                self.pgid
            )));
        }
        if self.root < 2 || self.root >= self.pgid {
            return Err(MetaProblem::Insane(format!(
                "root page {} is outside [2, {})",
                self.root, self.pgid
            )));
        }
        if self.freelist != PGID_NO_FREELIST && (self.freelist < 2 || self.freelist >= self.pgid) {
            return Err(MetaProblem::Insane(format!(
                "freelist page {} is outside [2, {})",
                self.freelist, self.pgid
            )));
        }
        let needed = self.pgid.saturating_mul(u64::from(ps));
        if needed > file_len {
            return Err(MetaProblem::Truncated {
                needed,
                actual: file_len,
            });
        }
        Ok(())
    }

    /// Whether the meta page's own header is what bbolt writes (id = page index, meta flag, no
    /// overflow). bbolt does not look at it; the consistency check does.
    pub fn header_ok(&self) -> bool {
        self.header.id == u64::from(self.index)
            && self.header.flags == META_PAGE_FLAG
            && self.header.overflow == 0
    }

    /// Total bytes the database occupies: `pgid * page_size`.
    pub fn total_size(&self) -> u64 {
        self.pgid.saturating_mul(u64::from(self.page_size))
    }

    /// Whether a freelist page was written.
    pub fn has_freelist(&self) -> bool {
        self.freelist != PGID_NO_FREELIST
    }
}

/// Picks the active meta as bbolt does: the one with the larger txid if it is usable, else the other.
/// Returns the chosen meta, or both problems.
pub(crate) fn choose(
    m0: Result<Meta, MetaProblem>,
    m1: Result<Meta, MetaProblem>,
) -> Result<Meta, (MetaProblem, MetaProblem)> {
    match (m0, m1) {
        (Ok(a), Ok(b)) => Ok(if b.txid > a.txid { b } else { a }),
        (Ok(a), Err(_)) => Ok(a),
        (Err(_), Ok(b)) => Ok(b),
        (Err(a), Err(b)) => Err((a, b)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A sealed meta page for a 4 KiB-page file: root 3, freelist 2, high water 4.
    fn sample(index: u8, txid: u64) -> Meta {
        crate::build::meta(index, 4096, 3, 2, 4, txid)
    }

    #[test]
    fn fnv_matches_go() {
        // Known FNV-1a 64 vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn roundtrip_and_validate() {
        let m = sample(0, 5);
        let mut page = m.page_bytes(0, 4096);
        assert_eq!(page.len(), 4096);
        let p = Meta::parse(0, &page).unwrap();
        assert_eq!(p, m);
        p.validate().unwrap();
        p.check_bounds(4 * 4096).unwrap();
        assert!(matches!(
            p.check_bounds(4 * 4096 - 1),
            Err(MetaProblem::Truncated { .. })
        ));
        assert!(p.header_ok());
        page[70] ^= 1;
        let q = Meta::parse(0, &page).unwrap();
        assert!(matches!(q.validate(), Err(MetaProblem::Checksum { .. })));
        assert!(Meta::parse(0, &page[..79]).is_err());
    }

    #[test]
    fn chooses_larger_valid_txid() {
        let a = sample(0, 5);
        let b = sample(1, 4);
        assert_eq!(choose(Ok(a), Ok(b)).unwrap().txid, 5);
        assert_eq!(choose(Ok(b), Ok(a)).unwrap().txid, 5);
        assert_eq!(choose(Err(MetaProblem::Magic(0)), Ok(b)).unwrap().txid, 4);
        assert!(choose(Err(MetaProblem::Magic(0)), Err(MetaProblem::Version(1))).is_err());
    }

    #[test]
    fn bounds() {
        let mut m = sample(0, 1);
        m.page_size = 3000;
        assert!(m.check_bounds(1 << 30).is_err());
        let mut m = sample(0, 1);
        m.root = 4;
        assert!(m.check_bounds(1 << 30).is_err());
        let mut m = sample(0, 1);
        m.freelist = 9;
        assert!(m.check_bounds(1 << 30).is_err());
        m.freelist = PGID_NO_FREELIST;
        assert!(m.check_bounds(1 << 30).is_ok());
        m.pgid = u64::MAX;
        assert!(m.check_bounds(1 << 30).is_err());
    }
}
