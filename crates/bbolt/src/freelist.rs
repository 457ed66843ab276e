//! The freelist page: the ids of pages that are allocated below the high-water mark but unused.
//!
//! Why it exists: the consistency check needs the free set to prove every page is either reachable
//! or free. bbolt writes it in one of three ways, all read here or in `check`:
//! * the array form: `count` ids after the page header;
//! * the count-overflow form for 0xFFFF ids or more: `count = 0xFFFF`, the real count in the first
//!   u64, the ids after it (the page uses overflow pages);
//! * no freelist at all (`meta.freelist == u64::MAX`, bbolt's `NoFreelistSync`, what etcd on Linux
//!   writes): the free set is then every page in `[2, pgid)` that the tree walk does not reach, which
//!   is computed by the walk in `check` (`Db::free_pages`).
//!
//! bbolt's "array" and "hashmap" freelist types differ only in memory; both write this same page.

use crate::error::{Error, Result};
pub use crate::layout::FREELIST_COUNT_OVERFLOW;
use crate::layout::{
    freelist_span, pgids, PageHeader, FREELIST_COUNT_SIZE, PAGE_HEADER_SIZE, PGID_SIZE,
};
use crate::page::PageKind;
use crate::store::PageStore;

/// Freelist runs up to this size are read whole and their ids sorted, as bbolt reports them;
/// larger ones (a sound one lists more than half a million free pages) are read in pieces of
/// [`FREELIST_CHUNK`] bytes, so memory stays flat whatever count the page claims.
pub(crate) const FREELIST_IN_MEMORY_MAX: u64 = 4 << 20;
/// Size of the pieces a large freelist run is read in (a multiple of the id size).
pub(crate) const FREELIST_CHUNK: usize = 1 << 20;

/// Where the ids of freelist page `id` start in its run and how many it claims, from its header and
/// the first bytes of the run (`first`, at least the header and the count word when there is one);
/// the run is `run_len` bytes long and must have room for them.
fn layout(id: u64, header: &PageHeader, first: &[u8], run_len: u64) -> Result<(usize, u64)> {
    if header.kind() != Some(PageKind::Freelist) {
        return Err(Error::corrupt(
            id,
            format!(
                "meta names this page as the freelist but its type flags are 0x{:02x}",
                header.flags
            ),
        ));
    }
    let (start, n) = freelist_span(header, first)
        .ok_or_else(|| Error::corrupt(id, "freelist page too short for its count"))?;
    let room = run_len.saturating_sub(start as u64) / PGID_SIZE as u64;
    if n > room {
        return Err(Error::corrupt(
            id,
            format!(
                "freelist holds {n} ids but its {run_len} bytes (1 + {} overflow pages) hold at most {room}",
                header.overflow
            ),
        ));
    }
    Ok((start, n))
}

/// Decodes the freelist page run `buf` (header included) of page `id` into its page ids, sorted
/// ascending (duplicates kept, so a caller can report them).
pub(crate) fn parse(id: u64, header: &PageHeader, buf: &[u8]) -> Result<Vec<u64>> {
    let (start, n) = layout(id, header, buf, buf.len() as u64)?;
    // n fits in the buffer, whose length is a usize.
    let n = n as usize;
    let body = buf.get(start..start + n * PGID_SIZE).unwrap_or(&[]);
    let mut ids: Vec<u64> = pgids(body).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Shows every id of the freelist run at page `id` (`pages` pages, checked by
/// `PageStore::run_header`) to `each`, in file order, reading the run in pieces of
/// [`FREELIST_CHUNK`] bytes.
pub(crate) fn for_each_id(
    store: &PageStore,
    id: u64,
    header: &PageHeader,
    pages: u64,
    each: &mut dyn FnMut(u64),
) -> Result<()> {
    let run_len = store.run_bytes(pages);
    let mut first = [0u8; PAGE_HEADER_SIZE + FREELIST_COUNT_SIZE];
    store.read_in_run(id, 0, &mut first)?;
    let (start, n) = layout(id, header, &first, run_len)?;
    let mut buf = vec![0u8; FREELIST_CHUNK];
    let mut left = n;
    let mut offset = start as u64;
    while left > 0 {
        let take = left.min((FREELIST_CHUNK / PGID_SIZE) as u64);
        // take * 8 <= FREELIST_CHUNK.
        let piece = buf
            .get_mut(..take as usize * PGID_SIZE)
            .ok_or_else(|| Error::corrupt(id, "freelist piece larger than its buffer"))?;
        store.read_in_run(id, offset, piece)?;
        pgids(piece).for_each(&mut *each);
        left -= take;
        offset += take * PGID_SIZE as u64;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::page::FREELIST_PAGE_FLAG;

    fn hdr(count: u16, overflow: u32) -> PageHeader {
        PageHeader {
            id: 2,
            flags: FREELIST_PAGE_FLAG,
            count,
            overflow,
        }
    }

    #[test]
    fn array_form() {
        let mut b = crate::layout::encode_freelist(&[9, 5, 7], false);
        b.resize(64, 0);
        assert_eq!(parse(2, &hdr(3, 0), &b).unwrap(), vec![5, 7, 9]);
        assert_eq!(parse(2, &hdr(0, 0), &b).unwrap(), Vec::<u64>::new());
        assert!(parse(2, &hdr(7, 0), &b).is_err());
    }

    #[test]
    fn count_overflow_form() {
        let mut b = crate::layout::encode_freelist(&[11, 10], true);
        let h = hdr(FREELIST_COUNT_OVERFLOW, 0);
        assert_eq!(parse(2, &h, &b).unwrap(), vec![10, 11]);
        crate::layout::write_u64(&mut b, PAGE_HEADER_SIZE, u64::MAX).unwrap();
        assert!(parse(2, &h, &b).is_err());
    }

    #[test]
    fn wrong_type() {
        let h = PageHeader {
            id: 2,
            flags: 0x02,
            count: 0,
            overflow: 0,
        };
        assert!(parse(2, &h, &[0u8; 32]).is_err());
    }
}
