//! Opening a database and looking up buckets and keys.
//!
//! Why it exists: this is the public face of the reader. It opens the file read-only, reads both meta
//! pages with the page-size probing bbolt does, picks the active meta, checks that the file really
//! holds the pages the meta claims, and hands out bucket handles whose trees are read on demand.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::check::{self, CheckError, CheckReport};
use crate::cursor::Entries;
use crate::error::{Error, Result};
use crate::layout::{self, element_offset, BucketHeader};
use crate::meta::{self, Meta, MetaProblem, MAX_PAGE_SIZE, META_PAGE_PREFIX, MIN_PAGE_SIZE};
use crate::page::{Page, BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG};
use crate::source::Source;
pub use crate::source::Written;
use crate::store::{IoStats, PageStore, ReadOptions};

/// Largest number of branch levels followed from a bucket's root before the tree is declared corrupt
/// (a real tree of 2^64 pages is far shallower; this stops cycles and absurd depths).
pub const MAX_TREE_DEPTH: usize = 64;

/// Default number of errors after which [`Db::check`] stops.
pub const DEFAULT_CHECK_LIMIT: usize = 100;

/// An open, read-only bbolt database.
///
/// Pages are read on demand with positioned reads; nothing is memory-mapped. A `Db` may be shared
/// between threads (`Sync`): the page cache is behind a mutex.
#[derive(Debug)]
pub struct Db {
    store: PageStore,
    meta: Meta,
    metas: [std::result::Result<Meta, MetaProblem>; 2],
}

impl Db {
    /// Opens the bbolt file at `path` read-only with default memory limits.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, ReadOptions::default())
    }

    /// Opens the bbolt file at `path` read-only with the given read options.
    pub fn open_with(path: impl AsRef<Path>, opts: ReadOptions) -> Result<Db> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading the size of {}", path.display()), e))?
            .len();
        Db::from_source(Source::File { file, len }, opts)
    }

    /// Opens an already open file read-only (e.g. an unnamed temporary file holding a spooled
    /// snapshot) with default memory limits.
    pub fn from_file(file: std::fs::File) -> Result<Db> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading the size of the database file", e))?
            .len();
        Db::from_source(Source::File { file, len }, ReadOptions::default())
    }

    /// Opens a file that another thread is still writing front to back (a stream being spooled),
    /// so that the checks and scans can run while it arrives: a read of bytes not yet written
    /// waits for them (see [`Written`]). The size is not known until the writer is done, so a
    /// database the stream cuts short fails with an I/O error (`UnexpectedEof`) on the first read
    /// past the end, not [`Error::Truncated`]: open the whole file again with [`Db::from_file`]
    /// for the exact error.
    pub fn from_growing_file(file: std::fs::File, written: Arc<Written>) -> Result<Db> {
        Db::from_source(Source::Growing { file, written }, ReadOptions::default())
    }

    /// Opens the editor's storage read-only, to read its meta pages (as [`Db::from_file`]).
    pub(crate) fn from_storage(io: Arc<dyn crate::write::Storage>) -> Result<Db> {
        let len = io
            .size()
            .map_err(|e| Error::io("reading the size of the database file", e))?;
        Db::from_source(Source::Storage { io, len }, ReadOptions::default())
    }

    /// Opens a database held in memory (for tests and fuzzing).
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Result<Db> {
        Db::from_source(Source::Memory(bytes.into()), ReadOptions::default())
    }

    /// Opens a database held in memory as `head` followed by zeros up to `len` bytes, as a sparse
    /// file of that size would read (for fuzzing and tests: lets a small input claim the page
    /// counts and runs a huge file can, without the memory).
    pub fn from_sparse_bytes(head: impl Into<Arc<[u8]>>, len: u64) -> Result<Db> {
        let head = head.into();
        Db::from_source(Source::Sparse { head, len }, ReadOptions::default())
    }

    fn from_source(src: Source, opts: ReadOptions) -> Result<Db> {
        let len = src.len();
        let read_meta = |index: u8, offset: u64| -> std::result::Result<Meta, MetaProblem> {
            let mut buf = [0u8; META_PAGE_PREFIX];
            let n = src
                .read_at_most(&mut buf, offset)
                .map_err(|e| MetaProblem::Unreadable(format!("at offset {offset}: {e}")))?;
            if n < META_PAGE_PREFIX {
                return Err(MetaProblem::Unreadable(format!(
                    "file ends at {len} bytes, before the meta page at offset {offset} is complete"
                )));
            }
            Meta::parse(index, &buf)
        };
        let raw0 = read_meta(0, 0);
        // Page size: from meta 0 if it validates, else probe for meta 1 as bbolt does.
        let from0 = raw0
            .as_ref()
            .ok()
            .filter(|m| m.validate().is_ok())
            .map(|m| m.page_size)
            .filter(|ps| ps.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(ps));
        let page_size = from0.or_else(|| {
            let mut ps = MIN_PAGE_SIZE;
            while ps <= MAX_PAGE_SIZE {
                if let Ok(m) = read_meta(1, u64::from(ps)) {
                    if m.validate().is_ok() && m.page_size == ps {
                        return Some(ps);
                    }
                }
                ps *= 2;
            }
            None
        });
        let usable = |raw: std::result::Result<Meta, MetaProblem>| {
            let m = raw?;
            m.validate()?;
            if let Some(ps) = page_size {
                if m.page_size != ps {
                    return Err(MetaProblem::Insane(format!(
                        "page size {} differs from the file's page size {ps}",
                        m.page_size
                    )));
                }
            }
            m.check_bounds(len)?;
            Ok(m)
        };
        let m0 = usable(raw0);
        let m1 = match page_size {
            Some(ps) => usable(read_meta(1, u64::from(ps))),
            None => Err(MetaProblem::Unreadable(
                "no valid meta page found at any page size".to_string(),
            )),
        };
        let meta = match meta::choose(m0.clone(), m1.clone()) {
            Ok(m) => m,
            Err((p0, p1)) => {
                for p in [&p0, &p1] {
                    if let MetaProblem::Truncated { needed, actual } = p {
                        return Err(Error::Truncated {
                            needed: *needed,
                            actual: *actual,
                        });
                    }
                }
                return Err(Error::InvalidMeta {
                    meta0: p0.to_string(),
                    meta1: p1.to_string(),
                });
            }
        };
        let store = PageStore::new(src, meta.page_size, meta.pgid, opts);
        Ok(Db {
            store,
            meta,
            metas: [m0, m1],
        })
    }

    /// The active meta (the valid one with the larger txid).
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Both meta pages as decoded at open (index 0 and 1), each the meta or why it is not usable.
    pub fn meta_pages(&self) -> [std::result::Result<&Meta, &MetaProblem>; 2] {
        [self.metas[0].as_ref(), self.metas[1].as_ref()]
    }

    /// Page size in bytes, from the active meta.
    pub fn page_size(&self) -> u32 {
        self.meta.page_size
    }

    /// Size of the database proper, `pgid * page_size` (what `snapshot status` calls total size).
    pub fn total_size(&self) -> u64 {
        self.meta.total_size()
    }

    /// Size of the underlying file or buffer when it was opened (may exceed [`Db::total_size`]).
    pub fn file_size(&self) -> u64 {
        self.store.source().len()
    }

    /// Read counters since open (useful to see the read-ahead at work).
    pub fn io_stats(&self) -> IoStats {
        self.store.io_stats()
    }

    pub(crate) fn store(&self) -> &PageStore {
        &self.store
    }

    /// The root bucket: its entries are the top-level buckets.
    pub fn root(&self) -> Bucket<'_> {
        Bucket {
            db: self,
            root: BucketRoot::Page(self.meta.root),
            sequence: self.meta.sequence,
        }
    }

    /// Names of the top-level buckets, in key order. Non-bucket entries of the root (which bbolt
    /// never writes) are skipped.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        self.root().buckets()
    }

    /// The top-level bucket `name`, if it exists and is a bucket.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'_>>> {
        self.root().bucket(name)
    }

    /// Runs the consistency check and returns up to [`DEFAULT_CHECK_LIMIT`] errors; empty means
    /// consistent.
    ///
    /// As bbolt's `tx.Check()`: no page is freed twice; every page reached from the meta (metas,
    /// freelist run, every bucket's tree with overflow pages, nested buckets included) is reached
    /// once, is not free, is a branch or leaf page and lies below the high-water mark; keys are
    /// strictly increasing in a page and within the bounds set by the parent branch; every page
    /// below the high-water mark is reachable or free. Stricter than bbolt: page headers must name
    /// their own id, elements must lie within their page, freelist ids must lie below the
    /// high-water mark, and both meta pages must be valid (a snapshot always has two; see
    /// [`CheckError::BadMeta`]).
    pub fn check(&self) -> Vec<CheckError> {
        self.check_report(DEFAULT_CHECK_LIMIT).errors
    }

    /// Runs the consistency check, stopping after `limit` errors, and returns the errors with page
    /// statistics gathered on the way.
    pub fn check_report(&self, limit: usize) -> CheckReport {
        check::run(self, limit.max(1), None)
    }

    /// Runs the consistency check and, in the same single pass over the file, shows every bucket
    /// and entry to `visitor` (see [`crate::ScanEvent`] for the order). This is what a tool that both
    /// verifies and reads everything (`snapshot status`) should use: it reads each page once.
    /// The events are only trustworthy if the returned report has no errors.
    pub fn scan(&self, limit: usize, visitor: &mut dyn FnMut(crate::ScanEvent<'_>)) -> CheckReport {
        check::run(self, limit.max(1), Some(visitor))
    }

    /// Ids of the free pages, sorted: read from the freelist page, or, when the file has none
    /// (`NoFreelistSync`), every page in `[2, pgid)` the tree does not reach. Fails if the freelist
    /// cannot be read or (without a freelist) the tree walk finds corruption, as bbolt does.
    pub fn free_pages(&self) -> Result<Vec<u64>> {
        check::free_pages(self)
    }
}

/// Where a bucket's tree starts.
#[derive(Clone, Debug)]
pub(crate) enum BucketRoot {
    /// A page of its own.
    Page(u64),
    /// A leaf page embedded in the bucket's value (inline bucket).
    Inline(Page),
}

/// A read-only handle on one bucket. Cheap to clone; reads pages only when iterated or searched.
#[derive(Clone, Debug)]
pub struct Bucket<'db> {
    db: &'db Db,
    root: BucketRoot,
    sequence: u64,
}

/// Decodes the bucket header in the value of `key` at `value` in `page`.
pub(crate) fn bucket_root(page: &Page, value: &Range<usize>) -> Result<(BucketRoot, u64)> {
    let v = page.slice(value);
    let Some(BucketHeader {
        root,
        sequence: seq,
    }) = BucketHeader::parse(v)
    else {
        return Err(Error::corrupt(
            page.id(),
            format!(
                "bucket value is {} bytes, shorter than a bucket header ({BUCKET_HEADER_SIZE})",
                v.len()
            ),
        ));
    };
    if root != 0 {
        return Ok((BucketRoot::Page(root), seq));
    }
    let inline = Page::new(
        page.buf().clone(),
        value.start + BUCKET_HEADER_SIZE,
        value.end,
        page.id(),
        true,
    )?;
    Ok((BucketRoot::Inline(inline), seq))
}

impl<'db> Bucket<'db> {
    pub(crate) fn db(&self) -> &'db Db {
        self.db
    }

    pub(crate) fn root_ref(&self) -> &BucketRoot {
        &self.root
    }

    /// The page id of the bucket's root, or `None` for an inline bucket.
    pub fn root_page(&self) -> Option<u64> {
        match self.root {
            BucketRoot::Page(id) => Some(id),
            BucketRoot::Inline(_) => None,
        }
    }

    /// Whether the bucket is stored inline in its parent's leaf.
    pub fn is_inline(&self) -> bool {
        matches!(self.root, BucketRoot::Inline(_))
    }

    /// The bucket's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Iterates over the entries in key order. Each item is an [`Entry`] or the first error met,
    /// after which the iterator ends. Nested buckets appear as entries with
    /// [`Entry::is_bucket`] set; open them with [`Bucket::child`].
    pub fn entries(&self) -> Entries<'db> {
        Entries::new(self.clone())
    }

    /// Names of the nested buckets, in key order.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for e in self.entries() {
            let e = e?;
            if e.is_bucket() {
                out.push(e.key().to_vec());
            }
        }
        Ok(out)
    }

    /// The entry with exactly `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        crate::cursor::seek(self, key)
    }

    /// The nested bucket `name`, if it exists and is a bucket (a plain value gives `None`).
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'db>>> {
        match self.get(name)? {
            Some(e) if e.is_bucket() => Ok(Some(self.child(&e)?)),
            _ => Ok(None),
        }
    }

    /// Opens the nested bucket that `entry` (an entry of this bucket with
    /// [`Entry::is_bucket`]) describes.
    pub fn child(&self, entry: &Entry) -> Result<Bucket<'db>> {
        if !entry.is_bucket() {
            return Err(Error::corrupt(entry.page_id, "entry is not a bucket"));
        }
        let (root, sequence) = bucket_root(&entry.page, &entry.value)?;
        Ok(Bucket {
            db: self.db,
            root,
            sequence,
        })
    }
}

/// One key/value pair of a bucket. It shares the page it was read from, so no key or value bytes are
/// copied; holding an entry keeps that page (and, for a value with overflow, its whole run) alive.
#[derive(Clone, Debug)]
pub struct Entry {
    page: Page,
    key: Range<usize>,
    value: Range<usize>,
    flags: u32,
    page_id: u64,
}

impl Entry {
    pub(crate) fn new(page: &Page, key: Range<usize>, value: Range<usize>, flags: u32) -> Entry {
        Entry {
            page_id: page.id(),
            page: page.clone(),
            key,
            value,
            flags,
        }
    }

    /// A copy of this entry that holds only its own key and value (in a one-element leaf page),
    /// not the page it was read from, so that keeping it (a nested bucket queued for a later visit)
    /// does not keep a large page run in memory. Same key, value, flags and page id.
    pub(crate) fn detached(&self) -> Result<Entry> {
        let (key, value) = (self.key(), self.value());
        let data = element_offset(1);
        let mut buf = Vec::with_capacity(data + key.len() + value.len());
        layout::encode_leaf([(self.flags, key, value)], &mut buf).map_err(|e| match e {
            layout::LayoutError::FieldTooLarge {
                what: "value size", ..
            } => Error::corrupt(self.page_id, "value longer than a page can hold"),
            _ => Error::corrupt(self.page_id, "key longer than a page can hold"),
        })?;
        let len = buf.len();
        let page = Page::new(Arc::from(buf), 0, len, self.page_id, false)?;
        let kend = data + key.len();
        Ok(Entry {
            page,
            key: data..kend,
            value: kend..len,
            flags: self.flags,
            page_id: self.page_id,
        })
    }

    /// The page the entry was read from and the range of its value in that page's buffer.
    pub(crate) fn value_in_page(&self) -> (&Page, &Range<usize>) {
        (&self.page, &self.value)
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.page.slice(&self.key)
    }

    /// The raw value: for a nested bucket, its header (and inline page).
    pub fn value(&self) -> &[u8] {
        self.page.slice(&self.value)
    }

    /// The value of a plain entry, `None` for a nested bucket (as bbolt's cursor returns `nil`).
    pub fn plain_value(&self) -> Option<&[u8]> {
        if self.is_bucket() {
            None
        } else {
            Some(self.value())
        }
    }

    /// Whether this entry is a nested bucket (leaf element flag `0x01`).
    pub fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF_FLAG != 0
    }

    /// The leaf element flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The id of the leaf page holding this entry (for an inline bucket: the page that holds the
    /// bucket).
    pub fn page_id(&self) -> u64 {
        self.page_id
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod growing_tests {
    //! A database read while another thread writes it: the same answers as the whole file, and
    //! no wait past the writer's end.

    use super::*;
    use crate::build::{bucket_kv, bucket_value, kv, Builder};
    use crate::meta::PGID_NO_FREELIST;
    use std::io::Write;

    /// A bucket of 3,000 keys with values of one to three pages (overflow runs), over several
    /// levels of branch pages.
    fn sample() -> Vec<u8> {
        let mut b = Builder::new(4096);
        let entries: Vec<_> = (0..3000u32)
            .map(|i| {
                let value = vec![(i % 251) as u8; 100 + (i as usize % 3) * 4096];
                kv(format!("key{i:06}").as_bytes(), &value)
            })
            .collect();
        let inner = b.tree(&entries, 8, 16).unwrap();
        let root = b.leaf(&[bucket_kv(b"b", bucket_value(inner))]).unwrap();
        b.finish(root, PGID_NO_FREELIST, 3)
    }

    /// A fresh read-write file with no name (created under a unique name, unlinked at once).
    fn unnamed(tag: &str) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("bbolt-growing-{}-{tag}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    /// Scans `db`, returning the check's errors and every entry's key and value length.
    fn scanned(db: &Db) -> (Vec<String>, Vec<(Vec<u8>, usize)>) {
        let mut seen = Vec::new();
        let report = db.scan(DEFAULT_CHECK_LIMIT, &mut |event| {
            if let crate::ScanEvent::Entry { entry, .. } = event {
                seen.push((entry.key().to_vec(), entry.value().len()));
            }
        });
        (
            report.errors.iter().map(ToString::to_string).collect(),
            seen,
        )
    }

    /// Writes `img[..upto]` to `file` in uneven pieces, publishing each, then finishes.
    fn write_slowly(mut file: &std::fs::File, img: &[u8], upto: usize, written: &Written) {
        let mut at = 0;
        let mut step = 1000;
        while at < upto {
            let end = (at + step).min(upto);
            file.write_all(&img[at..end]).unwrap();
            written.advance(end as u64);
            at = end;
            step = step * 3 / 2 % 300_000 + 777;
            std::thread::yield_now();
        }
        written.finish();
    }

    #[test]
    fn a_growing_file_reads_as_the_whole_file() {
        let img = sample();
        let want = scanned(&Db::from_bytes(img.clone()).unwrap());
        assert!(want.0.is_empty(), "{:?}", want.0);
        assert!(want.1.len() >= 3000, "{}", want.1.len());
        let file = unnamed("whole");
        let written = Arc::new(Written::new());
        let got = std::thread::scope(|s| {
            let reader = file.try_clone().unwrap();
            let w = Arc::clone(&written);
            let scan = s.spawn(move || scanned(&Db::from_growing_file(reader, w).unwrap()));
            write_slowly(&file, &img, img.len(), &written);
            scan.join().unwrap()
        });
        assert_eq!(got, want);
    }

    #[test]
    fn a_growing_file_cut_short_fails_instead_of_waiting() {
        let img = sample();
        for cut in [100, 4096 + 50, img.len() / 2, img.len() - 4096] {
            let file = unnamed(&format!("cut-{cut}"));
            let written = Arc::new(Written::new());
            let got = std::thread::scope(|s| {
                let reader = file.try_clone().unwrap();
                let w = Arc::clone(&written);
                let scan = s.spawn(move || Db::from_growing_file(reader, w).map(|db| scanned(&db)));
                write_slowly(&file, &img, cut, &written);
                scan.join().unwrap()
            });
            match got {
                Err(e) => assert!(e.to_string().contains("end"), "cut at {cut}: {e}"),
                Ok((errors, _)) => assert!(!errors.is_empty(), "cut at {cut}: no error"),
            }
        }
    }
}
