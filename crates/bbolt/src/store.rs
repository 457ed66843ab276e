//! Fetching pages: bounds checks, read-ahead windows and a bounded cache of branch pages.
//!
//! Why it exists: pages are read with positioned reads instead of a memory map, so something must
//! keep that fast and small. A full scan reads leaves mostly in file order, so a read-ahead window
//! that grows while requests move forward turns thousands of small reads into a few large ones.
//! Branch pages are read again on every descent, so they are kept in a cache with a byte budget.
//! Memory stays bounded by the windows, the cache budget and the pages the caller holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::page::{max_run_pages, Page, PageHeader, PageKind, PAGE_HEADER_SIZE};
use crate::source::Source;

/// Tuning of the page reader's memory use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Byte budget of the branch-page cache.
    pub cache_bytes: usize,
    /// Smallest read-ahead, in bytes (used after a jump).
    pub min_readahead: usize,
    /// Largest read-ahead, in bytes (reached after a run of forward reads).
    pub max_readahead: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            cache_bytes: 8 << 20,
            min_readahead: 16 << 10,
            max_readahead: 2 << 20,
        }
    }
}

/// Number of read-ahead windows kept, so that a scan that steps back a little (leaves are only
/// mostly in file order) finds its page in a recent window instead of reading it again.
const WINDOWS: usize = 4;

/// One read-ahead buffer: a copy of the bytes at `[start, start + len)`. `buf` only grows, so a
/// refill does not zero memory.
#[derive(Debug, Default)]
struct Window {
    start: u64,
    len: usize,
    buf: Vec<u8>,
    used: u64,
}

impl Window {
    fn get(&self, off: u64, len: u64) -> Option<&[u8]> {
        if off < self.start || off + len > self.start + self.len as u64 {
            return None;
        }
        let from = (off - self.start) as usize;
        self.buf.get(from..from + len as usize)
    }
}

/// The read-ahead windows and the state of the current forward run.
#[derive(Debug, Default)]
struct Windows {
    ws: Vec<Window>,
    /// Start and end of the most recent fill.
    last: (u64, u64),
    /// Size of the next fill.
    next_fill: usize,
    tick: u64,
}

/// Bounded LRU of branch pages.
#[derive(Debug, Default)]
struct Cache {
    map: HashMap<u64, (Page, u64)>,
    bytes: usize,
    tick: u64,
}

impl Cache {
    fn get(&mut self, id: u64) -> Option<Page> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&id).map(|(p, t)| {
            *t = tick;
            p.clone()
        })
    }

    fn insert(&mut self, id: u64, page: Page, size: usize, budget: usize) {
        if size > budget / 4 {
            return;
        }
        self.tick += 1;
        if let Some((old, _)) = self.map.insert(id, (page, self.tick)) {
            self.bytes -= old.buf().len();
        }
        self.bytes += size;
        if self.bytes > budget {
            // Evict the least recently used quarter in one pass, so eviction is amortized.
            let mut ages: Vec<(u64, u64)> = self.map.iter().map(|(k, (_, t))| (*t, *k)).collect();
            ages.sort_unstable();
            for (_, k) in ages {
                if self.bytes <= budget - budget / 4 {
                    break;
                }
                if let Some((p, _)) = self.map.remove(&k) {
                    self.bytes -= p.buf().len();
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    windows: Windows,
    cache: Cache,
    reads: u64,
    bytes_read: u64,
    /// Buffers of large runs, reused once their readers have dropped them (see [`RUN_POOL`]).
    runs: Vec<Arc<[u8]>>,
}

/// Large runs (values spanning many overflow pages) kept for reuse. Reading each into a fresh
/// allocation would make the kernel zero-fill every page of it: on a snapshot of 1 MiB values that
/// is two page faults per 4 KiB read, more system time than the reads themselves.
const RUN_POOL: usize = 4;
/// Runs above this size are not pooled, so the pool holds at most `RUN_POOL` times this much.
const RUN_POOL_MAX: usize = 4 << 20;

/// Counters of the reader's I/O since open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Positioned reads issued.
    pub reads: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
}

/// Reads pages of one database, within the high-water mark of its active meta.
#[derive(Debug)]
pub(crate) struct PageStore {
    src: Source,
    page_size: u64,
    pgid: u64,
    opts: ReadOptions,
    state: Mutex<State>,
}

impl PageStore {
    /// A store for `pgid` pages of `page_size` bytes; the caller has checked that the source holds
    /// `pgid * page_size` bytes.
    pub(crate) fn new(src: Source, page_size: u32, pgid: u64, opts: ReadOptions) -> PageStore {
        PageStore {
            src,
            page_size: u64::from(page_size),
            pgid,
            opts,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The high-water mark.
    pub(crate) fn pgid(&self) -> u64 {
        self.pgid
    }

    /// I/O counters.
    pub(crate) fn io_stats(&self) -> IoStats {
        let st = self.lock();
        IoStats {
            reads: st.reads,
            bytes_read: st.bytes_read,
        }
    }

    /// Reads `npages` pages from `id`, which the caller has checked lie below the high-water mark.
    fn read_pages(&self, id: u64, npages: u64) -> Result<Arc<[u8]>> {
        let off = id * self.page_size;
        let len = npages * self.page_size;
        let hwm = self.pgid * self.page_size;
        let ctx = || format!("reading page {id} ({len} bytes at offset {off})");
        let mut guard = self.lock();
        let st = &mut *guard;
        let ws = &mut st.windows;
        ws.tick += 1;
        let tick = ws.tick;
        for w in ws.ws.iter_mut() {
            if let Some(b) = w.get(off, len) {
                let page = Arc::from(b);
                w.used = tick;
                return Ok(page);
            }
        }
        let ulen = usize::try_from(len).map_err(|_| Error::corrupt(id, "page run too large"))?;
        if ulen >= self.opts.max_readahead / 2 {
            st.reads += 1;
            st.bytes_read += len;
            // A pooled buffer of this size that no reader holds any more, else a new one.
            let reusable = st.runs.iter().position(|b| {
                b.len() == ulen && Arc::strong_count(b) == 1 && Arc::weak_count(b) == 0
            });
            if reusable.is_none() && ulen > RUN_POOL_MAX {
                // A run too large to pool: let the pooled ones go first, so the pool and the run
                // are never both held (memory stays within the largest run the format allows).
                st.runs.retain(|b| Arc::strong_count(b) > 1);
            }
            let mut buf: Arc<[u8]> = match reusable {
                Some(i) => st.runs.swap_remove(i),
                // Allocated once, in place (`Arc::from(vec)` would hold the run twice).
                None => std::iter::repeat_n(0u8, ulen).collect(),
            };
            let dst = Arc::get_mut(&mut buf)
                .ok_or_else(|| Error::corrupt(id, "run buffer still shared"))?;
            self.src
                .read_exact_at(dst, off)
                .map_err(|e| Error::io(ctx(), e))?;
            if ulen <= RUN_POOL_MAX {
                if st.runs.len() >= RUN_POOL {
                    st.runs.remove(0);
                }
                st.runs.push(buf.clone());
            }
            return Ok(buf);
        }
        // Forward and near the previous fill: a scan, so read further ahead each time.
        let (last_start, last_end) = ws.last;
        let forward =
            ws.next_fill > 0 && off >= last_start && off <= last_end + ws.next_fill as u64;
        ws.next_fill = if forward {
            ws.next_fill
                .saturating_mul(2)
                .clamp(self.opts.min_readahead, self.opts.max_readahead)
        } else {
            self.opts.min_readahead
        };
        let fill = (ws.next_fill as u64).max(len).min(hwm - off);
        // Refill the least recently used window (or a new one while there are fewer than WINDOWS).
        if ws.ws.len() < WINDOWS {
            ws.ws.push(Window::default());
        }
        let Some(w) = ws.ws.iter_mut().min_by_key(|w| w.used) else {
            return Err(Error::corrupt(id, "no read-ahead window"));
        };
        let fill_us = fill as usize;
        if w.buf.len() < fill_us {
            w.buf.resize(fill_us, 0);
        }
        w.start = off;
        w.len = 0;
        w.used = tick;
        st.reads += 1;
        st.bytes_read += fill;
        let dst = w
            .buf
            .get_mut(..fill_us)
            .ok_or_else(|| Error::corrupt(id, "window too small"))?;
        self.src
            .read_exact_at(dst, off)
            .map_err(|e| Error::io(ctx(), e))?;
        w.len = fill_us;
        ws.last = (off, off + fill);
        let s = w
            .buf
            .get(..ulen)
            .ok_or_else(|| Error::corrupt(id, "read-ahead too short"))?;
        Ok(Arc::from(s))
    }

    /// The 16-byte header of page `id`: from a read-ahead window when one holds it, else read on its
    /// own, so that learning a run's length never fills a window the run then bypasses (a value
    /// spanning many overflow pages would otherwise be read twice).
    fn read_header(&self, id: u64) -> Result<[u8; PAGE_HEADER_SIZE]> {
        let off = id * self.page_size;
        let mut head = [0u8; PAGE_HEADER_SIZE];
        {
            let guard = self.lock();
            if let Some(b) = guard
                .windows
                .ws
                .iter()
                .find_map(|w| w.get(off, PAGE_HEADER_SIZE as u64))
            {
                head.copy_from_slice(b);
                return Ok(head);
            }
        }
        self.src.read_exact_at(&mut head, off).map_err(|e| {
            Error::io(
                format!("reading page {id} (its header, at offset {off})"),
                e,
            )
        })?;
        Ok(head)
    }

    /// Checks `id` is a page id below the high-water mark.
    fn check_id(&self, id: u64, referrer: &dyn Fn() -> String) -> Result<()> {
        if id >= self.pgid {
            return Err(Error::corrupt(
                id,
                format!(
                    "page id beyond the high-water mark {} (referenced by {})",
                    self.pgid,
                    referrer()
                ),
            ));
        }
        Ok(())
    }

    /// Reads the header of page `id` and checks it without reading the rest of the run: the header
    /// names the page itself, the run stays below the high-water mark, and it spans no more pages
    /// than a page of its kind can ([`max_run_pages`]). Returns the header and the number of pages
    /// to read: the whole run, or only the first page for a meta page or a page of no known kind
    /// (which no caller reads as a run; the caller reports the type).
    pub(crate) fn run_header(
        &self,
        id: u64,
        referrer: &dyn Fn() -> String,
    ) -> Result<(PageHeader, u64)> {
        self.check_id(id, referrer)?;
        let head = self.read_header(id)?;
        let header = PageHeader::parse(&head)
            .ok_or_else(|| Error::corrupt(id, "page shorter than its header"))?;
        if header.id != id {
            return Err(Error::corrupt(
                id,
                format!(
                    "page header says it is page {} (referenced by {})",
                    header.id,
                    referrer()
                ),
            ));
        }
        if header.overflow == 0 {
            return Ok((header, 1));
        }
        let n = 1 + u64::from(header.overflow);
        if id + n > self.pgid {
            return Err(Error::corrupt(
                id,
                format!(
                    "{} overflow pages run past the high-water mark {}",
                    header.overflow, self.pgid
                ),
            ));
        }
        let kind = header.kind();
        if matches!(kind, Some(PageKind::Meta) | None) {
            return Ok((header, 1));
        }
        let max = max_run_pages(kind, self.page_size, self.pgid);
        if n > max {
            let name = kind.map_or("unknown", PageKind::name);
            return Err(Error::corrupt(
                id,
                format!(
                    "{name} page claims {} overflow pages ({} bytes), more than a {name} page can \
                     span ({max} pages; referenced by {})",
                    header.overflow,
                    n.saturating_mul(self.page_size),
                    referrer()
                ),
            ));
        }
        Ok((header, n))
    }

    /// Reads the header of page `id` and the whole run of pages it occupies, checked as
    /// [`PageStore::run_header`] checks it.
    pub(crate) fn read_run(
        &self,
        id: u64,
        referrer: &dyn Fn() -> String,
    ) -> Result<(PageHeader, Arc<[u8]>)> {
        let (header, n) = self.run_header(id, referrer)?;
        Ok((header, self.read_pages(id, n)?))
    }

    /// Size in bytes of `pages` pages.
    pub(crate) fn run_bytes(&self, pages: u64) -> u64 {
        pages.saturating_mul(self.page_size)
    }

    /// Fills `buf` from byte `offset` of the run starting at page `id`, bypassing the read-ahead
    /// windows (for runs read in pieces); the caller has checked the run with
    /// [`PageStore::run_header`] and keeps `offset + buf.len()` within it.
    pub(crate) fn read_in_run(&self, id: u64, offset: u64, buf: &mut [u8]) -> Result<()> {
        let at = id.saturating_mul(self.page_size).saturating_add(offset);
        {
            let mut st = self.lock();
            st.reads += 1;
            st.bytes_read += buf.len() as u64;
        }
        self.src.read_exact_at(buf, at).map_err(|e| {
            Error::io(
                format!("reading page {id} ({} bytes at offset {at})", buf.len()),
                e,
            )
        })
    }

    /// Reads branch or leaf page `id` (with its overflow), through the branch cache.
    pub(crate) fn tree_page(&self, id: u64, referrer: &dyn Fn() -> String) -> Result<Page> {
        if let Some(p) = self.lock().cache.get(id) {
            return Ok(p);
        }
        let (header, buf) = self.read_run(id, referrer)?;
        match header.kind() {
            Some(PageKind::Branch | PageKind::Leaf) => {}
            Some(k) => {
                return Err(Error::corrupt(
                    id,
                    format!(
                        "{} page where a branch or leaf page was expected (referenced by {})",
                        k.name(),
                        referrer()
                    ),
                ))
            }
            None => {
                return Err(Error::corrupt(
                    id,
                    format!(
                        "invalid page type flags 0x{:02x} (referenced by {})",
                        header.flags,
                        referrer()
                    ),
                ))
            }
        }
        let len = buf.len();
        let page = Page::new(buf, 0, len, id, false)?;
        if page.kind() == PageKind::Branch {
            self.lock()
                .cache
                .insert(id, page.clone(), len, self.opts.cache_bytes);
        }
        Ok(page)
    }

    /// The underlying byte source.
    pub(crate) fn source(&self) -> &Source {
        &self.src
    }
}
