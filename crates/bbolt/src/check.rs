//! The consistency check, equivalent to (and a little stricter than) bbolt's `tx.Check()`.
//!
//! Why it exists: `snapshot status` refuses a file whose `tx.Check()` reports errors, so a reader
//! meant to replace it must find the same defects. One walk over every bucket tree (nested and inline
//! buckets included) verifies, as bbolt does:
//! * no page id appears twice in the freelist ("already freed");
//! * every page reached from the meta (meta pages, freelist run, tree pages with their overflow) is
//!   reached once ("multiple references"), is not free ("reachable freed"), is a branch or leaf page
//!   ("invalid type"), and lies below the high-water mark ("out of bounds");
//! * keys are strictly increasing within a page, a child's keys are `>=` its branch key and `<` the
//!   next branch key of its parent;
//! * every page below the high-water mark is reachable or free ("unreachable unfreed"); without a
//!   freelist page the free set *is* the unreachable pages, so this cannot fail.
//!
//! Stricter than bbolt (each is a real defect that bbolt reports only by panicking, or not at all):
//! a page header whose id differs from its position, elements pointing outside their page, freelist
//! ids beyond the high-water mark, a freed meta page, and an unusable inactive meta page (a snapshot
//! always carries two valid metas). The walk uses an explicit stack and a visited bitmap, so it
//! terminates on any input, and stops after a bounded number of errors.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use crate::cursor::PageSet;
use crate::db::{bucket_root, BucketRoot, Db, Entry, MAX_TREE_DEPTH};
use crate::error::{Error, Result};
use crate::freelist;
use crate::page::{Page, PageKind, BUCKET_LEAF_FLAG, ELEMENT_SIZE};

/// One defect found by [`Db::check`].
#[derive(Debug)]
pub enum CheckError {
    /// A page id appears more than once in the freelist.
    AlreadyFreed {
        /// The page.
        page: u64,
    },
    /// A page is reached from two places.
    MultipleReferences {
        /// The page.
        page: u64,
    },
    /// A page reached from the tree is also in the freelist.
    ReachableFreed {
        /// The page.
        page: u64,
    },
    /// A tree page is not a branch or leaf page.
    InvalidType {
        /// The page.
        page: u64,
        /// Its type flags.
        flags: u16,
    },
    /// A page id (or a freelist entry) at or beyond the high-water mark.
    OutOfBounds {
        /// The page.
        page: u64,
        /// The high-water mark (`meta.pgid`).
        hwm: u64,
    },
    /// A page below the high-water mark is neither reachable nor free.
    UnreachableUnfreed {
        /// The page.
        page: u64,
    },
    /// Keys out of order within a page or relative to the parent branch.
    KeyOrder {
        /// The page holding the key.
        page: u64,
        /// Element index in that page.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// A meta page that bbolt would not use (the active one is always usable).
    BadMeta {
        /// 0 or 1.
        index: u8,
        /// What is wrong.
        detail: String,
    },
    /// A page could not be read or decoded.
    Corrupt(Error),
}

impl CheckError {
    /// The page the error is about, if any.
    pub fn page(&self) -> Option<u64> {
        match self {
            CheckError::AlreadyFreed { page }
            | CheckError::MultipleReferences { page }
            | CheckError::ReachableFreed { page }
            | CheckError::InvalidType { page, .. }
            | CheckError::OutOfBounds { page, .. }
            | CheckError::UnreachableUnfreed { page }
            | CheckError::KeyOrder { page, .. } => Some(*page),
            CheckError::BadMeta { index, .. } => Some(u64::from(*index)),
            CheckError::Corrupt(e) => e.page(),
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::AlreadyFreed { page } => write!(f, "page {page}: already freed"),
            CheckError::MultipleReferences { page } => {
                write!(f, "page {page}: multiple references")
            }
            CheckError::ReachableFreed { page } => write!(f, "page {page}: reachable freed"),
            CheckError::InvalidType { page, flags } => {
                write!(f, "page {page}: invalid type: flags 0x{flags:02x}")
            }
            CheckError::OutOfBounds { page, hwm } => {
                write!(f, "page {page}: out of bounds: {hwm}")
            }
            CheckError::UnreachableUnfreed { page } => {
                write!(f, "page {page}: unreachable unfreed")
            }
            CheckError::KeyOrder {
                page,
                index,
                detail,
            } => {
                write!(f, "page {page}: key[{index}] {detail}")
            }
            CheckError::BadMeta { index, detail } => write!(f, "meta page {index}: {detail}"),
            CheckError::Corrupt(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CheckError {}

impl From<CheckError> for Error {
    fn from(e: CheckError) -> Error {
        match e {
            CheckError::Corrupt(e) => e,
            other => Error::corrupt(other.page().unwrap_or(0), other.to_string()),
        }
    }
}

/// Page and entry counts gathered by the check walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Branch pages reached.
    pub branch_pages: u64,
    /// Leaf pages reached (inline bucket pages not included).
    pub leaf_pages: u64,
    /// Overflow continuation pages of branch and leaf pages.
    pub overflow_pages: u64,
    /// Pages of the freelist run (0 without a freelist page).
    pub freelist_pages: u64,
    /// Free pages (from the freelist, or unreachable pages without one).
    pub free_pages: u64,
    /// Nested buckets, the top-level ones included (the root bucket is not counted).
    pub buckets: u64,
    /// Of those, inline buckets.
    pub inline_buckets: u64,
    /// Plain key/value entries in all buckets.
    pub keys: u64,
    /// Deepest branch level seen (1 = a lone leaf).
    pub max_depth: u64,
}

/// What [`Db::check_report`] returns.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Errors found, at most the limit given.
    pub errors: Vec<CheckError>,
    /// Whether the walk stopped early because the limit was reached.
    pub limit_reached: bool,
    /// Counts gathered on the way (partial when there are errors).
    pub stats: Stats,
}

/// A key bound carried down the tree: a range in a shared page buffer.
type KeyRef = Option<(Arc<[u8]>, Range<usize>)>;

fn key_of(k: &KeyRef) -> Option<&[u8]> {
    k.as_ref().map(|(b, r)| b.get(r.clone()).unwrap_or(&[]))
}

/// What the walk still has to visit.
enum Work {
    /// A tree page, with the bounds its keys must respect.
    Tree {
        id: u64,
        min: KeyRef,
        max: KeyRef,
        /// Tree level (1 = the bucket's root page).
        depth: usize,
        /// Bucket nesting depth of the bucket this page belongs to (0 = the root bucket).
        bucket_depth: usize,
        from: String,
    },
    /// A nested bucket: announce it to the visitor, then visit its root.
    Bucket {
        name: Entry,
        bucket_depth: usize,
        root: BucketRoot,
        budget: Rc<Cell<usize>>,
    },
}

/// What [`Db::scan`] shows its visitor, in this order: for each bucket, a `Bucket` event, then its
/// entries in key order. Events of nested buckets may come between the entries of their parent
/// (after the parent's entry naming them); `depth` tells them apart.
#[derive(Debug)]
pub enum ScanEvent<'a> {
    /// A bucket is about to be visited: its entry in the parent bucket and its nesting depth
    /// (1 = a top-level bucket).
    Bucket {
        /// Nesting depth (1 = top-level).
        depth: usize,
        /// The parent's entry naming the bucket (`entry.key()` is the bucket name).
        entry: &'a Entry,
    },
    /// An entry (plain or nested bucket) of a bucket at `depth` (0 = the root bucket, whose
    /// entries are the top-level buckets; 1 = an entry of a top-level bucket).
    Entry {
        /// Nesting depth of the bucket holding the entry.
        depth: usize,
        /// The entry.
        entry: &'a Entry,
    },
}

/// The visitor type of [`Db::scan`].
type Visitor<'v> = dyn FnMut(ScanEvent<'_>) + 'v;

struct Walker<'a> {
    db: &'a Db,
    limit: usize,
    pgid: u64,
    reachable: PageSet,
    freed: PageSet,
    /// Whether a synced freelist was read, so `freed` is meaningful during the walk.
    have_freelist: bool,
    report: CheckReport,
    visitor: Option<&'a mut Visitor<'a>>,
}

impl Walker<'_> {
    fn full(&self) -> bool {
        self.report.errors.len() >= self.limit
    }

    fn err(&mut self, e: CheckError) {
        if self.full() {
            self.report.limit_reached = true;
        } else {
            self.report.errors.push(e);
        }
    }

    /// Marks `id` reachable, reporting double references and freed pages.
    fn reach(&mut self, id: u64) {
        if !self.reachable.insert(id) {
            self.err(CheckError::MultipleReferences { page: id });
        } else if self.have_freelist && self.freed.contains(id) {
            self.err(CheckError::ReachableFreed { page: id });
        }
    }

    fn read_freelist(&mut self) -> bool {
        let meta = *self.db.meta();
        if !meta.has_freelist() {
            return true;
        }
        let id = meta.freelist;
        let db = self.db;
        let referrer = || "the meta page's freelist field".to_string();
        let (header, pages) = match db.store().run_header(id, &referrer) {
            Ok(x) => x,
            Err(e) => {
                self.reach(id);
                self.err(CheckError::Corrupt(e));
                return false;
            }
        };
        for p in id..=id + u64::from(header.overflow) {
            self.reach(p);
        }
        self.report.stats.freelist_pages = 1 + u64::from(header.overflow);
        if db.store().run_bytes(pages) > freelist::FREELIST_IN_MEMORY_MAX {
            // Large: read in pieces, ids checked in file order (a sound freelist is sorted, so
            // the errors come in the same order as below).
            let pgid = self.pgid;
            let mut free = 0u64;
            let streamed = freelist::for_each_id(db.store(), id, &header, pages, &mut |p| {
                if p >= pgid {
                    self.err(CheckError::OutOfBounds { page: p, hwm: pgid });
                } else if !self.freed.insert(p) {
                    self.err(CheckError::AlreadyFreed { page: p });
                } else {
                    free += 1;
                }
            });
            if let Err(e) = streamed {
                self.err(CheckError::Corrupt(e));
                return false;
            }
            self.freelist_done(id, &header, free);
            return true;
        }
        let ids = match db
            .store()
            .read_run(id, &referrer)
            .and_then(|(header, buf)| freelist::parse(id, &header, &buf))
        {
            Ok(ids) => ids,
            Err(e) => {
                self.err(CheckError::Corrupt(e));
                return false;
            }
        };
        let mut prev = None;
        for &p in &ids {
            if p >= self.pgid {
                self.err(CheckError::OutOfBounds {
                    page: p,
                    hwm: self.pgid,
                });
            } else if prev == Some(p) {
                self.err(CheckError::AlreadyFreed { page: p });
            } else {
                self.freed.insert(p);
            }
            prev = Some(p);
        }
        let free = self.freed_count(&ids);
        self.freelist_done(id, &header, free);
        true
    }

    /// After the freelist at `id` is read: the pages reached so far (metas, the freelist run) must
    /// not be free; records the count of `free` pages.
    fn freelist_done(&mut self, id: u64, header: &crate::page::PageHeader, free: u64) {
        for p in 0..2 {
            if self.freed.contains(p) {
                self.err(CheckError::ReachableFreed { page: p });
            }
        }
        for p in id..=id + u64::from(header.overflow) {
            if self.freed.contains(p) {
                self.err(CheckError::ReachableFreed { page: p });
            }
        }
        self.report.stats.free_pages = free;
        self.have_freelist = true;
    }

    fn freed_count(&self, ids: &[u64]) -> u64 {
        let mut n = 0;
        let mut prev = None;
        for &p in ids {
            if p < self.pgid && prev != Some(p) {
                n += 1;
            }
            prev = Some(p);
        }
        n
    }

    fn check_metas(&mut self) {
        for (i, m) in self.db.meta_pages().into_iter().enumerate() {
            let index = i as u8;
            match m {
                Err(p) => self.err(CheckError::BadMeta { index, detail: p.to_string() }),
                Ok(m) if !m.header_ok() => self.err(CheckError::BadMeta {
                    index,
                    detail: format!(
                        "page header is id {} flags 0x{:02x} overflow {}, want id {index} flags 0x04 overflow 0",
                        m.header.id, m.header.flags, m.header.overflow
                    ),
                }),
                Ok(_) => {}
            }
        }
    }

    /// Visits the elements of a branch or leaf page (tree or inline), checking key order, showing
    /// leaf entries to the visitor and queuing children and nested buckets on `stack`.
    /// `budget` limits the elements of inline buckets nested in the page holding this one.
    #[allow(clippy::too_many_arguments)]
    fn elements(
        &mut self,
        page: &Page,
        (min, max): (&KeyRef, &KeyRef),
        depth: usize,
        bucket_depth: usize,
        budget: &Rc<Cell<usize>>,
        stack: &mut Vec<Work>,
    ) {
        let count = page.count();
        let mut keys: Vec<Range<usize>> = Vec::with_capacity(count);
        for i in 0..count {
            let r = match page.key_range(i) {
                Ok(r) => r,
                Err(e) => {
                    self.err(CheckError::Corrupt(e));
                    return;
                }
            };
            let key = page.slice(&r);
            let id = page.id();
            if let Some(prev) = keys.last() {
                let prev = page.slice(prev);
                if prev >= key {
                    let how = if prev == key { "=" } else { "<" };
                    self.err(CheckError::KeyOrder {
                        page: id,
                        index: i,
                        detail: format!(
                            "needs to be > (found {how}) than previous element on {} page",
                            page.kind().name()
                        ),
                    });
                }
            } else if let Some(min) = key_of(min) {
                if key < min {
                    self.err(CheckError::KeyOrder {
                        page: id,
                        index: i,
                        detail: "the first key needs to be >= the key in the parent branch".into(),
                    });
                }
            }
            if let Some(max) = key_of(max) {
                if key >= max {
                    self.err(CheckError::KeyOrder {
                        page: id,
                        index: i,
                        detail: "needs to be < the next key in the parent branch".into(),
                    });
                }
            }
            keys.push(r);
        }
        if page.kind() == PageKind::Branch {
            // Push children in reverse so they are visited in key order.
            for i in (0..count).rev() {
                let child = match page.branch(i) {
                    Ok(e) => e.pgid,
                    Err(e) => {
                        self.err(CheckError::Corrupt(e));
                        continue;
                    }
                };
                let bound = |r: Option<&Range<usize>>| r.map(|r| (page.buf().clone(), r.clone()));
                let cmin = bound(keys.get(i));
                let cmax = if i + 1 < count {
                    bound(keys.get(i + 1))
                } else {
                    max.clone()
                };
                stack.push(Work::Tree {
                    id: child,
                    min: cmin,
                    max: cmax,
                    depth: depth + 1,
                    bucket_depth,
                    from: format!("branch page {} element {i}", page.id()),
                });
            }
            return;
        }
        let mut nested = Vec::new();
        for i in 0..count {
            let e = match page.leaf(i) {
                Ok(e) => e,
                Err(e) => {
                    self.err(CheckError::Corrupt(e));
                    return;
                }
            };
            let is_bucket = e.flags & BUCKET_LEAF_FLAG != 0;
            if let Some(v) = self.visitor.as_mut() {
                let entry = Entry::new(page, e.key.clone(), e.value.clone(), e.flags);
                v(ScanEvent::Entry {
                    depth: bucket_depth,
                    entry: &entry,
                });
            }
            if !is_bucket {
                self.report.stats.keys += 1;
                continue;
            }
            self.report.stats.buckets += 1;
            // Queued work keeps its own copy of the bucket's entry, not this page: a page run
            // may be tens of MiB, and nested buckets would otherwise hold one per level.
            let queued = bucket_root(page, &e.value).and_then(|_| {
                let name = Entry::new(page, e.key, e.value, e.flags).detached()?;
                let (holder, value) = name.value_in_page();
                let (root, _) = bucket_root(holder, value)?;
                Ok((name, root))
            });
            match queued {
                Ok((name, root)) => {
                    if matches!(root, BucketRoot::Inline(_)) {
                        self.report.stats.inline_buckets += 1;
                    }
                    nested.push(Work::Bucket {
                        name,
                        bucket_depth: bucket_depth + 1,
                        root,
                        budget: budget.clone(),
                    });
                }
                Err(e) => self.err(CheckError::Corrupt(e)),
            }
        }
        stack.extend(nested.into_iter().rev());
    }

    #[allow(clippy::too_many_arguments)]
    fn tree(
        &mut self,
        id: u64,
        (min, max): (KeyRef, KeyRef),
        depth: usize,
        bucket_depth: usize,
        from: &str,
        stack: &mut Vec<Work>,
    ) {
        if depth > MAX_TREE_DEPTH {
            self.err(CheckError::Corrupt(Error::corrupt(
                id,
                format!("tree deeper than {MAX_TREE_DEPTH} levels (referenced by {from})"),
            )));
            return;
        }
        if id >= self.pgid {
            self.err(CheckError::OutOfBounds {
                page: id,
                hwm: self.pgid,
            });
            return;
        }
        if self.reachable.contains(id) {
            // Reached before: report, and do not walk it again (this also breaks cycles).
            self.reach(id);
            return;
        }
        let (header, buf) = match self.db.store().read_run(id, &|| from.to_string()) {
            Ok(x) => x,
            Err(e) => {
                self.reach(id);
                self.err(CheckError::Corrupt(e));
                return;
            }
        };
        for p in id..=id + u64::from(header.overflow) {
            self.reach(p);
        }
        let kind = header.kind();
        if !matches!(kind, Some(PageKind::Branch | PageKind::Leaf)) {
            self.err(CheckError::InvalidType {
                page: id,
                flags: header.flags,
            });
            return;
        }
        let len = buf.len();
        let page = match Page::new(buf, 0, len, id, false) {
            Ok(p) => p,
            Err(e) => {
                self.err(CheckError::Corrupt(e));
                return;
            }
        };
        let st = &mut self.report.stats;
        st.overflow_pages += u64::from(header.overflow);
        if kind == Some(PageKind::Branch) {
            st.branch_pages += 1;
        } else {
            st.leaf_pages += 1;
        }
        st.max_depth = st.max_depth.max(depth as u64);
        // Inline buckets live inside this page's values. A sound page holds at most len/16
        // elements in all, nested inline pages included; more means values overlap, which could
        // otherwise make the walk exponential.
        let budget = Rc::new(Cell::new(len / ELEMENT_SIZE));
        self.elements(&page, (&min, &max), depth, bucket_depth, &budget, stack);
    }

    fn walk(&mut self) {
        let mut stack = vec![Work::Tree {
            id: self.db.meta().root,
            min: None,
            max: None,
            depth: 1,
            bucket_depth: 0,
            from: "the meta page's root field".to_string(),
        }];
        while let Some(w) = stack.pop() {
            if self.full() {
                self.report.limit_reached = true;
                return;
            }
            match w {
                Work::Tree {
                    id,
                    min,
                    max,
                    depth,
                    bucket_depth,
                    from,
                } => self.tree(id, (min, max), depth, bucket_depth, &from, &mut stack),
                Work::Bucket {
                    name,
                    bucket_depth,
                    root,
                    budget,
                } => {
                    if let Some(v) = self.visitor.as_mut() {
                        v(ScanEvent::Bucket {
                            depth: bucket_depth,
                            entry: &name,
                        });
                    }
                    match root {
                        BucketRoot::Page(id) => self.tree(
                            id,
                            (None, None),
                            1,
                            bucket_depth,
                            &format!("bucket in page {} ", name.page_id()),
                            &mut stack,
                        ),
                        BucketRoot::Inline(p) => {
                            if p.count() > budget.get() {
                                self.err(CheckError::Corrupt(Error::corrupt(
                                    p.id(),
                                    "inline buckets hold more elements than the page has room \
                                     for (overlapping values)",
                                )));
                                continue;
                            }
                            budget.set(budget.get() - p.count());
                            let none = (&None, &None);
                            self.elements(&p, none, 0, bucket_depth, &budget, &mut stack);
                        }
                    }
                }
            }
        }
    }
}

fn walker<'a>(db: &'a Db, limit: usize, visitor: Option<&'a mut Visitor<'a>>) -> Walker<'a> {
    let pgid = db.meta().pgid;
    Walker {
        db,
        limit,
        pgid,
        reachable: PageSet::new(pgid),
        freed: PageSet::new(pgid),
        have_freelist: false,
        report: CheckReport::default(),
        visitor,
    }
}

/// Runs the whole check; see the module documentation.
pub(crate) fn run<'a>(
    db: &'a Db,
    limit: usize,
    visitor: Option<&'a mut Visitor<'a>>,
) -> CheckReport {
    let mut w = walker(db, limit, visitor);
    w.check_metas();
    w.reach(0);
    w.reach(1);
    let freelist_ok = w.read_freelist();
    w.walk();
    if !w.full() {
        let synced = db.meta().has_freelist();
        let mut free = 0;
        for p in 0..w.pgid {
            if w.reachable.contains(p) {
                continue;
            }
            if !synced {
                free += 1;
            } else if freelist_ok && !w.freed.contains(p) {
                w.err(CheckError::UnreachableUnfreed { page: p });
                if w.full() {
                    w.report.limit_reached = true;
                    break;
                }
            }
        }
        if !synced {
            w.report.stats.free_pages = free;
        }
    }
    w.report
}

/// Free page ids: the freelist's, or without one the unreachable pages in `[2, pgid)`.
pub(crate) fn free_pages(db: &Db) -> Result<Vec<u64>> {
    let meta = *db.meta();
    if meta.has_freelist() {
        let (header, buf) = db.store().read_run(meta.freelist, &|| {
            "the meta page's freelist field".to_string()
        })?;
        let mut ids = freelist::parse(meta.freelist, &header, &buf)?;
        ids.dedup();
        return Ok(ids);
    }
    let mut w = walker(db, 1, None);
    w.reach(0);
    w.reach(1);
    w.walk();
    if let Some(e) = w.report.errors.pop() {
        return Err(e.into());
    }
    Ok((2..w.pgid).filter(|&p| !w.reachable.contains(p)).collect())
}
