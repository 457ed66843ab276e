//! A copy-on-write editor for bbolt files: one write transaction that rewrites only the pages on
//! the paths it changes.
//!
//! Why it exists: `snapshot restore` turns a snapshot into a member's database by replacing a few
//! small buckets (`members`, `members_removed`, `meta`, ...) and, with `--bump-revision`, appending
//! one key to the possibly huge `key` bucket. Rewriting a multi-gigabyte file for that would cost
//! far more than copying it; instead this module does what one bbolt write transaction does:
//!
//! * new pages are only ever written **after the high-water mark** (`meta.pgid`); nothing below it is
//!   overwritten except, last, one meta page;
//! * the pages the edit replaced (the old root-bucket tree, the old trees of replaced buckets, the
//!   old pages on an appended bucket's rightmost path, the old freelist pages) become free;
//! * the new freelist is written in bbolt's array form (count-overflow form from 0xFFFF ids on), or,
//!   when the source has no freelist (`meta.freelist == u64::MAX`, what etcd on Linux writes), the
//!   file keeps having none and the freed pages are free by being unreachable;
//! * then `fsync`, then the new meta (`txid + 1`, in meta page `txid % 2`, FNV-1a checksum), then
//!   `fsync`. A crash at any point leaves a file whose newest valid meta describes either the old
//!   or the new tree.
//!
//! ```no_run
//! # fn main() -> Result<(), bbolt::write::Error> {
//! use bbolt::write::Editor;
//! let mut ed = Editor::open(std::path::Path::new("member/snap/db"))?;
//! ed.replace_bucket(b"members", vec![(b"8e9e05c52164694d".to_vec(), b"{...}".to_vec())])?;
//! ed.replace_bucket(b"members_removed", vec![])?;
//! ed.ensure_bucket(b"cluster")?;
//! ed.upsert(b"meta", vec![(b"term".to_vec(), 1u64.to_be_bytes().to_vec())])?;
//! let stats = ed.commit()?;
//! println!("wrote {} pages", stats.pages_written);
//! # Ok(())
//! # }
//! ```
//!
//! Scope: top-level buckets only (etcd never nests buckets). Entries of nested buckets that a file
//! may hold are carried over untouched, but replacing a bucket that contains nested buckets is
//! refused. The root bucket (the list of top-level buckets) is read whole and always rewritten;
//! it holds one entry per bucket, so it is small.
//!
//! Memory: the editor holds the root bucket, the buckets it reads whole (those given to
//! [`Editor::replace_bucket`] and [`Editor::upsert`], and inline or single-leaf buckets given to
//! [`Editor::append`]), the pages on the rightmost path of a paged bucket it appends to, and the
//! free-page list. It never reads the rest of the file.
//!
//! Layout: a bucket written whole becomes an inline bucket when bbolt would inline it (a single
//! leaf, no nested buckets, `16 + Σ(16 + key + value) <= pageSize / 4`), else a tree of leaves and
//! branches split as bbolt's `node.split` does with [`Editor::set_fill_percent`] (default 0.5, bbolt's
//! default). A node larger than a page is written as a run of pages (`overflow` in its header).

mod error;
mod io;
mod node;

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

pub use error::{Error, Result};
pub use io::{LockedFile, Storage};
use node::{BranchItem, Item, Node};

use crate::db::MAX_TREE_DEPTH;
use crate::layout::{
    encode_freelist, freelist_span, pgids, BucketHeader, PageHeader, BUCKET_HEADER_SIZE,
    BUCKET_LEAF_FLAG, FREELIST_PAGE_FLAG, META_PAGE_FLAG, PGID_SIZE,
};
use crate::meta::{Meta, PGID_NO_FREELIST};
use crate::page::max_run_pages;

pub use crate::page::MAX_KEY_SIZE;
/// Largest value bbolt accepts (`MaxValueSize`).
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;
/// bbolt's default fill percent for splits.
pub const DEFAULT_FILL_PERCENT: f64 = 0.5;
/// Bytes of new pages buffered before they are written out.
const FLUSH_BYTES: usize = 1 << 20;

/// What [`Editor::commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    /// Page size of the file.
    pub page_size: u32,
    /// Transaction id of the new meta.
    pub txid: u64,
    /// Meta page (0 or 1) the new meta was written to last.
    pub meta_page: u8,
    /// High-water mark before the edit.
    pub old_pgid: u64,
    /// High-water mark after the edit (`new_pgid - old_pgid` pages were appended).
    pub new_pgid: u64,
    /// Pages written after the old high-water mark (tree pages and freelist pages).
    pub pages_written: u64,
    /// Pages that were in use before and are free now.
    pub pages_freed: u64,
    /// Number of ids in the new freelist page, or `None` when the file keeps having no freelist.
    pub freelist_ids: Option<u64>,
    /// Root page of the new root-bucket tree.
    pub root: u64,
}

/// A loaded rightmost path: branch levels (root first), the last leaf, the pages read.
type LoadedPath = (Vec<Vec<BranchItem>>, Vec<Item>, Vec<u64>);

/// The state of one top-level entry.
#[derive(Debug)]
enum State {
    /// Untouched: the raw value is written back as it was.
    Raw(Vec<u8>),
    /// Held whole in memory; written inline or as a fresh tree.
    Full { sequence: u64, items: Vec<Item> },
    /// A paged bucket with its rightmost path loaded: the branch pages from the root down and the
    /// last leaf. The last element of each branch level points at the (old) next level.
    /// `written` are leaves already written by [`Editor::write_appended`] (after the old last leaf's
    /// place, in key order); they come before `leaf`.
    Path {
        sequence: u64,
        branches: Vec<Vec<BranchItem>>,
        written: Vec<BranchItem>,
        leaf: Vec<Item>,
    },
}

/// One entry of the root bucket.
#[derive(Debug)]
struct Top {
    name: Vec<u8>,
    flags: u32,
    state: State,
}

impl Top {
    fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF_FLAG != 0
    }
}

/// A copy-on-write editor of one bbolt file (one write transaction). See the module documentation.
///
/// `S` is where the file's bytes are: the locked file [`Editor::open`] opens, or any [`Storage`]
/// given to [`Editor::with_storage`] (the crash-consistency tests record one).
#[derive(Debug)]
pub struct Editor<S: Storage = LockedFile> {
    io: Arc<S>,
    ps: usize,
    meta: Meta,
    /// The root bucket's entries, sorted by name.
    tops: Vec<Top>,
    /// Pages of the old root-bucket tree (freed at commit).
    root_pages: Vec<u64>,
    /// Pages freed by the edits so far.
    freed: Vec<u64>,
    /// Ids in the old freelist, and the old freelist's own pages (`None` without a freelist).
    old_free: Option<(Vec<u64>, Vec<u64>)>,
    fill_percent: f64,
    /// Pages written before commit by [`Editor::write_appended`]: next id, first id not yet in
    /// the file, and the buffered bytes from there.
    early: (u64, u64, Vec<u8>),
}

/// The validated bucket header at the start of a bucket value.
fn bucket_header(value: &[u8], holder: u64) -> Result<(u64, u64)> {
    match BucketHeader::parse(value) {
        Some(h) => Ok((h.root, h.sequence)),
        None => Err(Error::corrupt(
            holder,
            format!(
                "bucket value is {} bytes, shorter than a bucket header",
                value.len()
            ),
        )),
    }
}

fn bucket_value(root: u64, sequence: u64) -> Vec<u8> {
    BucketHeader { root, sequence }.encode()
}

fn check_key(key: &[u8], what: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::invalid(format!(
            "{what} is {} bytes, more than {MAX_KEY_SIZE}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::invalid(format!(
            "value is {} bytes, more than {MAX_VALUE_SIZE}",
            value.len()
        )));
    }
    Ok(())
}

/// Validates, sorts and checks for duplicates.
fn sorted_items(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<Item>> {
    let mut items = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        check_key(&key, "key")?;
        check_value(&value)?;
        items.push(Item {
            flags: 0,
            key,
            value,
        });
    }
    items.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = items.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(Error::invalid(format!("duplicate key {:?}", w[0].key)));
    }
    Ok(items)
}

/// Bytes of the inline value of a bucket holding `items`, if bbolt would inline it.
fn inline_size(items: &[Item], page_size: usize) -> Option<usize> {
    if items.iter().any(Item::is_bucket) {
        return None;
    }
    let size = node::leaf_size(items);
    (size <= page_size / 4).then_some(size)
}

/// Page ids of every page in the run starting at `id` that is `pages` long.
fn run(id: u64, pages: u64) -> impl Iterator<Item = u64> {
    id..id.saturating_add(pages)
}

impl Editor<LockedFile> {
    /// Opens the bbolt file at `path` read-write for one edit. The file must not be in use: like
    /// bbolt, the editor takes an exclusive `flock` and fails if another process holds one (a
    /// running etcd does).
    ///
    /// For a snapshot, the caller has already copied it to `path` and stripped its 32-byte SHA-256
    /// trailer. Reads the meta pages, the root bucket and (if present) the freelist.
    pub fn open(path: &Path) -> Result<Editor> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {} read-write", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::invalid(format!(
                    "{} is locked by another process (is etcd running on it?)",
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
        Editor::with_storage(LockedFile(file))
    }
}

impl<S: Storage + 'static> Editor<S> {
    /// Starts an edit of the bbolt file held by `storage` (already locked against other writers,
    /// if that matters): reads the meta pages, the root bucket and (if present) the freelist.
    pub fn with_storage(storage: S) -> Result<Editor<S>> {
        let io = Arc::new(storage);
        let meta = *crate::Db::from_storage(io.clone())?.meta();
        let ps = meta.page_size as usize;
        let mut ed = Editor {
            io,
            ps,
            meta,
            tops: Vec::new(),
            root_pages: Vec::new(),
            freed: Vec::new(),
            old_free: None,
            fill_percent: DEFAULT_FILL_PERCENT,
            early: (meta.pgid, meta.pgid, Vec::new()),
        };
        let (pages, items) = ed.walk(meta.root, true)?;
        ed.root_pages = pages;
        ed.tops = items
            .into_iter()
            .map(|it| Top {
                name: it.key,
                flags: it.flags,
                state: State::Raw(it.value),
            })
            .collect();
        if meta.has_freelist() {
            ed.old_free = Some(ed.read_freelist(meta.freelist)?);
        }
        Ok(ed)
    }

    /// Sets the fill percent used when splitting nodes (clamped to bbolt's `[0.1, 1.0]`).
    pub fn set_fill_percent(&mut self, fill_percent: f64) {
        self.fill_percent = fill_percent.clamp(0.1, 1.0);
    }

    /// Page size of the file.
    pub fn page_size(&self) -> u32 {
        self.meta.page_size
    }

    /// The meta the edit started from.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Names of the top-level buckets as they will be after commit.
    pub fn buckets(&self) -> Vec<Vec<u8>> {
        self.tops
            .iter()
            .filter(|t| t.is_bucket())
            .map(|t| t.name.clone())
            .collect()
    }

    // ----- reading --------------------------------------------------------------------------

    /// Reads the page run starting at `id` (header checked: own id, in bounds).
    fn read_page(&self, id: u64) -> Result<Vec<u8>> {
        let hwm = self.meta.pgid;
        if id < 2 || id >= hwm {
            return Err(Error::corrupt(
                id,
                format!("page id is outside the database [2, {hwm})"),
            ));
        }
        let ps = self.ps as u64;
        let mut buf = vec![0u8; self.ps];
        self.io
            .read_exact_at(&mut buf, id * ps)
            .map_err(|e| Error::io(format!("reading page {id}"), e))?;
        let h = PageHeader::parse(&buf)
            .ok_or_else(|| Error::corrupt(id, "page shorter than its header"))?;
        if h.id != id {
            return Err(Error::corrupt(
                id,
                format!("page header names page {}", h.id),
            ));
        }
        let pages = 1 + u64::from(h.overflow);
        if id + pages > hwm {
            return Err(Error::corrupt(
                id,
                format!(
                    "{} overflow pages reach past the high-water mark {hwm}",
                    h.overflow
                ),
            ));
        }
        let max = max_run_pages(h.kind(), ps, hwm);
        if pages > max {
            return Err(Error::corrupt(
                id,
                format!(
                    "{} overflow pages are more than a page of flags 0x{:02x} can span ({max} pages)",
                    h.overflow, h.flags
                ),
            ));
        }
        if pages > 1 {
            let total = usize::try_from(pages * ps)
                .map_err(|_| Error::corrupt(id, "page run too large"))?;
            buf.resize(total, 0);
            self.io
                .read_exact_at(&mut buf[self.ps..], (id + 1) * ps)
                .map_err(|e| Error::io(format!("reading the overflow pages of page {id}"), e))?;
        }
        Ok(buf)
    }

    fn pages_of(&self, buf: &[u8]) -> u64 {
        (buf.len() / self.ps) as u64
    }

    /// Walks the tree rooted at `root`: returns every page id it occupies (overflow included) and,
    /// when `keep_items`, its leaf elements in key order (checked strictly increasing). Does not
    /// descend into nested buckets.
    fn walk(&self, root: u64, keep_items: bool) -> Result<(Vec<u64>, Vec<Item>)> {
        let mut pages = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        let mut seen = HashSet::new();
        // (page, depth)
        let mut stack = vec![(root, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            if depth > MAX_TREE_DEPTH {
                return Err(too_deep(id));
            }
            if !seen.insert(id) {
                return Err(Error::corrupt(id, "page is referenced twice in one tree"));
            }
            let buf = self.read_page(id)?;
            pages.extend(run(id, self.pages_of(&buf)));
            match node::decode(&buf, id, false)? {
                Node::Branch(children) => {
                    if children.is_empty() {
                        return Err(Error::corrupt(id, "empty branch page"));
                    }
                    for c in children.iter().rev() {
                        stack.push((c.child, depth + 1));
                    }
                }
                Node::Leaf(leaf) => {
                    if keep_items {
                        if let (Some(last), Some(first)) = (items.last(), leaf.first()) {
                            if first.key <= last.key {
                                return Err(Error::corrupt(
                                    id,
                                    "leaf keys are not above those of the leaf before it",
                                ));
                            }
                        }
                        items.extend(leaf);
                    }
                }
            }
        }
        Ok((pages, items))
    }

    /// Reads the freelist run at `id`: its ids and its own pages.
    fn read_freelist(&self, id: u64) -> Result<(Vec<u64>, Vec<u64>)> {
        let buf = self.read_page(id)?;
        let h = PageHeader::parse(&buf).ok_or_else(|| Error::corrupt(id, "short page"))?;
        if h.flags != FREELIST_PAGE_FLAG {
            return Err(Error::corrupt(
                id,
                format!(
                    "meta names this page as the freelist but its flags are 0x{:02x}",
                    h.flags
                ),
            ));
        }
        let (start, n) = freelist_span(&h, &buf)
            .ok_or_else(|| Error::corrupt(id, "freelist too short for its count"))?;
        let room = (buf.len().saturating_sub(start) / PGID_SIZE) as u64;
        if n > room {
            return Err(Error::corrupt(
                id,
                format!("freelist claims {n} ids but has room for {room}"),
            ));
        }
        // n ids fit in the buffer (checked above), whose length is a usize.
        let body = buf
            .get(start..start + n as usize * PGID_SIZE)
            .unwrap_or(&[]);
        let mut ids = Vec::with_capacity(n as usize);
        for v in pgids(body) {
            if v < 2 || v >= self.meta.pgid {
                return Err(Error::corrupt(
                    id,
                    format!("freelist holds page {v}, outside [2, {})", self.meta.pgid),
                ));
            }
            ids.push(v);
        }
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::corrupt(id, format!("page {} is free twice", w[0])));
        }
        let own = run(id, self.pages_of(&buf)).collect();
        Ok((ids, own))
    }

    /// The decoded inline bucket page in `value`.
    fn inline_items(value: &[u8], holder: u64) -> Result<Vec<Item>> {
        let page = value.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]);
        match node::decode(page, holder, true)? {
            Node::Leaf(items) => Ok(items),
            Node::Branch(_) => Err(Error::corrupt(holder, "inline bucket page is not a leaf")),
        }
    }

    // ----- bucket states --------------------------------------------------------------------

    fn find(&self, name: &[u8]) -> std::result::Result<usize, usize> {
        self.tops.binary_search_by(|t| t.name.as_slice().cmp(name))
    }

    /// Index of the top-level bucket `name`, creating an empty one if missing; errors if `name`
    /// holds a plain value.
    fn bucket_index(&mut self, name: &[u8]) -> Result<usize> {
        check_key(name, "bucket name")?;
        match self.find(name) {
            Ok(i) if self.tops[i].is_bucket() => Ok(i),
            Ok(_) => Err(Error::invalid(format!(
                "top-level key {:?} holds a plain value, not a bucket",
                String::from_utf8_lossy(name)
            ))),
            Err(i) => {
                self.tops.insert(
                    i,
                    Top {
                        name: name.to_vec(),
                        flags: BUCKET_LEAF_FLAG,
                        state: State::Full {
                            sequence: 0,
                            items: Vec::new(),
                        },
                    },
                );
                Ok(i)
            }
        }
    }

    /// Turns bucket `i` into a `Full` state (reading it whole), freeing its pages.
    fn load_full(&mut self, i: usize) -> Result<()> {
        let (sequence, items, freed) = match &self.tops[i].state {
            State::Full { .. } => return Ok(()),
            State::Path { .. } => {
                return Err(Error::invalid(format!(
                    "bucket {:?} is being appended to; it cannot also be read whole",
                    String::from_utf8_lossy(&self.tops[i].name)
                )))
            }
            State::Raw(value) => {
                let (root, seq) = bucket_header(value, self.meta.root)?;
                if root == 0 {
                    (seq, Self::inline_items(value, self.meta.root)?, Vec::new())
                } else {
                    let (pages, items) = self.walk(root, true)?;
                    (seq, items, pages)
                }
            }
        };
        self.freed.extend(freed);
        self.tops[i].state = State::Full { sequence, items };
        Ok(())
    }

    /// Frees everything bucket `i` holds and returns its sequence; refuses nested buckets.
    fn clear(&mut self, i: usize) -> Result<u64> {
        let name = String::from_utf8_lossy(&self.tops[i].name).into_owned();
        let nested = || Error::invalid(format!("bucket {name:?} holds nested buckets"));
        let (sequence, freed) = match &self.tops[i].state {
            State::Raw(value) => {
                let (root, seq) = bucket_header(value, self.meta.root)?;
                if root == 0 {
                    if Self::inline_items(value, self.meta.root)?
                        .iter()
                        .any(Item::is_bucket)
                    {
                        return Err(nested());
                    }
                    (seq, Vec::new())
                } else {
                    let (pages, items) = self.walk(root, true)?;
                    if items.iter().any(Item::is_bucket) {
                        return Err(nested());
                    }
                    (seq, pages)
                }
            }
            State::Full { sequence, items } => {
                if items.iter().any(Item::is_bucket) {
                    return Err(nested());
                }
                (*sequence, Vec::new())
            }
            State::Path {
                sequence,
                branches,
                written,
                leaf,
            } => {
                if leaf.iter().any(Item::is_bucket) {
                    return Err(nested());
                }
                if !written.is_empty() {
                    return Err(Error::invalid(format!(
                        "bucket {name:?} has leaves written by write_appended; it cannot be replaced"
                    )));
                }
                // The path pages are freed already; free the subtrees off the path.
                let mut freed = Vec::new();
                for level in branches {
                    for c in level.iter().take(level.len().saturating_sub(1)) {
                        let (pages, items) = self.walk(c.child, true)?;
                        if items.iter().any(Item::is_bucket) {
                            return Err(nested());
                        }
                        freed.extend(pages);
                    }
                }
                (*sequence, freed)
            }
        };
        self.freed.extend(freed);
        Ok(sequence)
    }

    // ----- edits ----------------------------------------------------------------------------

    /// Replaces the whole contents of the top-level bucket `name` (creating it if missing) with
    /// `entries`, given in any order. Duplicate keys, empty keys and keys over 32 KiB are errors.
    /// The bucket keeps its sequence. Its old pages become free.
    pub fn replace_bucket(&mut self, name: &[u8], entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let items = sorted_items(entries)?;
        let i = self.bucket_index(name)?;
        let sequence = self.clear(i)?;
        self.tops[i].state = State::Full { sequence, items };
        Ok(())
    }

    /// Creates an empty top-level bucket `name` if it does not exist (an inline bucket, as bbolt's
    /// `CreateBucketIfNotExists`). An existing bucket is left untouched.
    pub fn ensure_bucket(&mut self, name: &[u8]) -> Result<()> {
        self.bucket_index(name).map(|_| ())
    }

    /// Sets `entries` (insert or overwrite) in the top-level bucket `name`, creating it if missing.
    /// The bucket is read whole, so this is for small buckets such as etcd's `meta`.
    pub fn upsert(&mut self, name: &[u8], entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let new = sorted_items(entries)?;
        let i = self.bucket_index(name)?;
        self.load_full(i)?;
        let State::Full { items, .. } = &mut self.tops[i].state else {
            return Err(Error::invalid("internal: bucket not loaded"));
        };
        for it in new {
            match items.binary_search_by(|e| e.key.cmp(&it.key)) {
                Ok(j) if items[j].is_bucket() => {
                    return Err(Error::invalid(format!(
                        "key {:?} is a nested bucket",
                        String::from_utf8_lossy(&it.key)
                    )))
                }
                Ok(j) => items[j] = it,
                Err(j) => items.insert(j, it),
            }
        }
        Ok(())
    }

    /// Appends `key` → `value` to the top-level bucket `name` (creating it if missing); `key` must
    /// sort after every key already there. For a paged bucket only the rightmost path is read and
    /// rewritten (split when full, with a new root when the root splits); inline and single-leaf
    /// buckets are read whole.
    pub fn append(&mut self, name: &[u8], key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        check_key(&key, "key")?;
        check_value(&value)?;
        let i = self.bucket_index(name)?;
        if let State::Raw(v) = &self.tops[i].state {
            let (root, sequence) = bucket_header(v, self.meta.root)?;
            if root == 0 {
                self.load_full(i)?;
            } else {
                let (branches, leaf, freed) = self.load_path(root)?;
                self.freed.extend(freed);
                self.tops[i].state = if branches.is_empty() {
                    State::Full {
                        sequence,
                        items: leaf,
                    }
                } else {
                    State::Path {
                        sequence,
                        branches,
                        written: Vec::new(),
                        leaf,
                    }
                };
            }
        }
        let items = match &mut self.tops[i].state {
            State::Full { items, .. } => items,
            State::Path { leaf, .. } => leaf,
            State::Raw(_) => return Err(Error::invalid("internal: bucket not loaded")),
        };
        if let Some(last) = items.last() {
            if key.as_slice() <= last.key.as_slice() {
                return Err(Error::invalid(format!(
                    "appended key {:?} does not sort after the last key {:?} of bucket {:?}",
                    String::from_utf8_lossy(&key),
                    String::from_utf8_lossy(&last.key),
                    String::from_utf8_lossy(name)
                )));
            }
        }
        items.push(Item {
            flags: 0,
            key,
            value,
        });
        Ok(())
    }

    /// Writes the complete leaves of what was appended to bucket `name` so far, keeping only the
    /// last, partial, leaf (and one branch element per written leaf) in memory: for bulk appends
    /// (a restore appending a revision log), call it every megabyte or so to keep memory flat.
    /// The pages go after the old high-water mark, as at commit; until commit the file's meta
    /// still describes the old tree, so a crash leaves the old database. A bucket still small
    /// enough to be inline, or holding nested buckets, is left as it is. After an error the
    /// editor must be dropped.
    pub fn write_appended(&mut self, name: &[u8]) -> Result<()> {
        let Ok(i) = self.find(name) else {
            return Ok(());
        };
        let ps = self.ps;
        let placeholder = State::Raw(Vec::new());
        let (sequence, branches, mut written, mut leaf) =
            match std::mem::replace(&mut self.tops[i].state, placeholder) {
                State::Full { sequence, items }
                    if inline_size(&items, ps).is_none() && !items.iter().any(Item::is_bucket) =>
                {
                    (sequence, Vec::new(), Vec::new(), items)
                }
                State::Path {
                    sequence,
                    branches,
                    written,
                    leaf,
                } => (sequence, branches, written, leaf),
                other => {
                    self.tops[i].state = other;
                    return Ok(());
                }
            };
        let parts = node::split_ranges(&node::leaf_sizes(&leaf), ps, self.fill_percent);
        if let Some(keep) = parts.last().map(|r| r.start).filter(|&k| k > 0) {
            let rest = leaf.split_off(keep);
            let (next, flushed, buf) = std::mem::take(&mut self.early);
            let mut sink = Sink {
                io: &*self.io,
                ps,
                next,
                flushed,
                buf,
                fill_percent: self.fill_percent,
            };
            written.extend(sink.leaves(&leaf)?);
            self.early = (sink.next, sink.flushed, sink.buf);
            leaf = rest;
        }
        self.tops[i].state = State::Path {
            sequence,
            branches,
            written,
            leaf,
        };
        Ok(())
    }

    /// Reads the rightmost path of the tree at `root`: branch levels (root first), the last leaf,
    /// and the pages read. A non-root leaf on the path must not be empty.
    fn load_path(&self, root: u64) -> Result<LoadedPath> {
        let mut branches = Vec::new();
        let mut freed = Vec::new();
        let mut id = root;
        loop {
            if branches.len() > MAX_TREE_DEPTH {
                return Err(too_deep(id));
            }
            let buf = self.read_page(id)?;
            freed.extend(run(id, self.pages_of(&buf)));
            match node::decode(&buf, id, false)? {
                Node::Branch(children) => {
                    let next = children
                        .last()
                        .ok_or_else(|| Error::corrupt(id, "empty branch page"))?
                        .child;
                    branches.push(children);
                    id = next;
                }
                Node::Leaf(leaf) => {
                    if leaf.is_empty() && !branches.is_empty() {
                        return Err(Error::corrupt(id, "empty leaf below a branch page"));
                    }
                    return Ok((branches, leaf, freed));
                }
            }
        }
    }

    /// The last key of the top-level bucket `name` (`None` if the bucket is empty or missing),
    /// found by walking the rightmost path; reflects edits made so far.
    pub fn last_key(&self, name: &[u8]) -> Result<Option<Vec<u8>>> {
        let Ok(i) = self.find(name) else {
            return Ok(None);
        };
        let top = &self.tops[i];
        if !top.is_bucket() {
            return Err(Error::invalid(format!(
                "top-level key {:?} holds a plain value, not a bucket",
                String::from_utf8_lossy(name)
            )));
        }
        match &top.state {
            State::Full { items, .. } => Ok(items.last().map(|it| it.key.clone())),
            State::Path { leaf, .. } => Ok(leaf.last().map(|it| it.key.clone())),
            State::Raw(value) => {
                let (root, _) = bucket_header(value, self.meta.root)?;
                if root == 0 {
                    let items = Self::inline_items(value, self.meta.root)?;
                    return Ok(items.last().map(|it| it.key.clone()));
                }
                let (_, leaf, _) = self.load_path(root)?;
                Ok(leaf.last().map(|it| it.key.clone()))
            }
        }
    }

    // ----- commit ---------------------------------------------------------------------------

    /// Writes the transaction: every new page after the old high-water mark, the new freelist (if
    /// the file has one), `fsync`, then the new meta (`txid + 1`) into meta page `txid % 2`,
    /// `fsync`. If that meta page holds the meta the edit started from (a snapshot written by
    /// `Tx.WriteTo` with an odd txid keeps its newest meta in page 0), the new meta is first written
    /// to the other page and synced, so a valid meta survives a crash at every point; both pages
    /// then hold the new meta, which is also what bbolt expects of its next commit.
    pub fn commit(self) -> Result<CommitStats> {
        let Editor {
            io,
            ps,
            meta,
            tops,
            root_pages,
            mut freed,
            old_free,
            fill_percent,
            early: (next, flushed, buf),
        } = self;
        let mut sink = Sink {
            io: &*io,
            ps,
            next,
            flushed,
            buf,
            fill_percent,
        };
        let root = sink.root_bucket(tops)?;
        freed.extend(root_pages);
        let pages_freed = freed.len() as u64;
        let (freelist, freelist_ids) = match old_free {
            Some(old) => {
                let (id, n) = sink.freelist(old, freed)?;
                (id, Some(n))
            }
            None => (PGID_NO_FREELIST, None),
        };
        let new_pgid = sink.finish()?;
        let new_meta = next_meta(&meta, root, freelist, new_pgid)?;
        publish_meta(&*io, ps, meta.index, &new_meta)?;
        Ok(CommitStats {
            page_size: meta.page_size,
            txid: new_meta.txid,
            meta_page: new_meta.index,
            old_pgid: meta.pgid,
            new_pgid,
            pages_written: new_pgid - meta.pgid,
            pages_freed,
            freelist_ids,
            root,
        })
    }
}

/// The corruption a tree deeper than [`MAX_TREE_DEPTH`] levels is.
fn too_deep(id: u64) -> Error {
    Error::corrupt(id, format!("tree is deeper than {MAX_TREE_DEPTH} levels"))
}

/// The meta of the transaction after `meta` (`txid + 1`, in meta page `txid % 2`), describing the
/// tree at `root`, the freelist page `freelist` and `pgid` pages.
fn next_meta(meta: &Meta, root: u64, freelist: u64, pgid: u64) -> Result<Meta> {
    let txid = meta
        .txid
        .checked_add(1)
        .ok_or_else(|| Error::corrupt(meta.index.into(), "txid overflows"))?;
    let index = (txid % 2) as u8;
    let mut next = Meta {
        index,
        header: PageHeader {
            id: u64::from(index),
            flags: META_PAGE_FLAG,
            count: 0,
            overflow: 0,
        },
        root,
        freelist,
        pgid,
        txid,
        checksum: 0,
        ..*meta
    };
    next.checksum = next.compute_checksum();
    Ok(next)
}

/// Writes `new` into its meta page and syncs, so that it is in force. If that page holds the meta
/// the edit started from (`old_index`), `new` is first written to the other page and synced: a
/// valid meta then survives a crash at every point, and both pages end up holding `new`.
fn publish_meta(io: &dyn Storage, ps: usize, old_index: u8, new: &Meta) -> Result<()> {
    let write_meta = |index: u8| -> Result<()> {
        io.write_all_at(&new.page_bytes(index, ps), u64::from(index) * ps as u64)
            .map_err(|e| Error::io(format!("writing meta page {index}"), e))?;
        io.sync()
            .map_err(|e| Error::io(format!("syncing meta page {index}"), e))
    };
    if old_index == new.index {
        write_meta(1 - new.index)?;
    }
    write_meta(new.index)
}

/// Allocates page ids after the high-water mark and writes pages there, buffered.
struct Sink<'f> {
    io: &'f dyn Storage,
    ps: usize,
    /// Next page id to allocate.
    next: u64,
    /// First page id not yet written to the file (the start of `buf`).
    flushed: u64,
    buf: Vec<u8>,
    fill_percent: f64,
}

impl Sink<'_> {
    /// Writes `body` (a page with id 0 and overflow 0 in its header) at fresh ids, padded to whole
    /// pages; returns its id.
    fn put(&mut self, body: Vec<u8>) -> Result<u64> {
        let pages = body.len().div_ceil(self.ps).max(1);
        let overflow = u32::try_from(pages - 1)
            .map_err(|_| Error::invalid(format!("a node of {} bytes is too large", body.len())))?;
        let id = self.next;
        self.next += pages as u64;
        let start = self.buf.len();
        self.buf.extend_from_slice(&body);
        self.buf.resize(start + pages * self.ps, 0);
        crate::layout::place_page(&mut self.buf[start..], id, overflow)
            .ok_or_else(|| Error::invalid("internal: page shorter than its header"))?;
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(id)
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let off = self.flushed * self.ps as u64;
        self.io
            .write_all_at(&self.buf, off)
            .map_err(|e| Error::io(format!("writing pages from {}", self.flushed), e))?;
        self.flushed = self.next;
        self.buf.clear();
        Ok(())
    }

    /// Writes every remaining page, syncs, and returns the new high-water mark.
    fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.io
            .sync()
            .map_err(|e| Error::io("syncing the new pages", e))?;
        Ok(self.next)
    }

    /// Writes each top-level bucket that changed (inline, as a fresh tree, or along its edited
    /// rightmost path) and then the root bucket listing them all; returns the root bucket's root.
    fn root_bucket(&mut self, tops: Vec<Top>) -> Result<u64> {
        let mut root_items = Vec::with_capacity(tops.len());
        for top in tops {
            let value = match top.state {
                State::Raw(v) => v,
                State::Full { sequence, items } => match inline_size(&items, self.ps) {
                    Some(size) => {
                        let mut v = bucket_value(0, sequence);
                        v.reserve(size);
                        node::encode_leaf(&items, &mut v)?;
                        v
                    }
                    None => bucket_value(self.tree(&items)?, sequence),
                },
                State::Path {
                    sequence,
                    branches,
                    written,
                    leaf,
                } => bucket_value(self.path(branches, written, &leaf)?, sequence),
            };
            root_items.push(Item {
                flags: top.flags,
                key: top.name,
                value,
            });
        }
        self.tree(&root_items)
    }

    /// Writes the new freelist: the old free ids, the old freelist's own pages and `freed`, sorted
    /// in bbolt's array form (count-overflow form from 0xFFFF ids on). Returns its page and count.
    fn freelist(&mut self, old: (Vec<u64>, Vec<u64>), freed: Vec<u64>) -> Result<(u64, u64)> {
        let (mut ids, own) = old;
        ids.extend(own);
        ids.extend(freed);
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::corrupt(
                w[0],
                "page would be freed twice (it is in the freelist but also in use)",
            ));
        }
        let id = self.put(encode_freelist(&ids, false))?;
        Ok((id, ids.len() as u64))
    }

    /// Writes `items` as leaves split the bbolt way; returns one branch element per leaf.
    fn leaves(&mut self, items: &[Item]) -> Result<Vec<BranchItem>> {
        let parts = node::split_ranges(&node::leaf_sizes(items), self.ps, self.fill_percent);
        let mut out = Vec::with_capacity(parts.len());
        for r in parts {
            let part = &items[r];
            let mut body = Vec::with_capacity(node::leaf_size(part));
            node::encode_leaf(part, &mut body)?;
            let child = self.put(body)?;
            let key = part.first().map(|it| it.key.clone()).unwrap_or_default();
            out.push(BranchItem { key, child });
        }
        Ok(out)
    }

    /// Writes `items` as branch pages split the bbolt way; returns one element per page.
    fn branches(&mut self, items: &[BranchItem]) -> Result<Vec<BranchItem>> {
        let parts = node::split_ranges(&node::branch_sizes(items), self.ps, self.fill_percent);
        let mut out = Vec::with_capacity(parts.len());
        for r in parts {
            let part = &items[r];
            let mut body = Vec::new();
            node::encode_branch(part, &mut body)?;
            let child = self.put(body)?;
            let key = part.first().map(|it| it.key.clone()).unwrap_or_default();
            out.push(BranchItem { key, child });
        }
        Ok(out)
    }

    /// Grows branch levels over `level` until one root remains; returns the root's id.
    fn root_of(&mut self, mut level: Vec<BranchItem>) -> Result<u64> {
        while level.len() > 1 {
            level = self.branches(&level)?;
        }
        level
            .first()
            .map(|b| b.child)
            .ok_or_else(|| Error::invalid("internal: no root page written"))
    }

    /// Writes a fresh tree holding `items`; returns its root page.
    fn tree(&mut self, items: &[Item]) -> Result<u64> {
        let level = self.leaves(items)?;
        self.root_of(level)
    }

    /// Writes a bucket whose rightmost path was edited: the leaf, then each branch level upwards
    /// with its last element replaced by the new pages below it; returns the new root.
    /// `written` are the leaves [`Editor::write_appended`] wrote, which come before `leaf`.
    fn path(
        &mut self,
        branches: Vec<Vec<BranchItem>>,
        mut written: Vec<BranchItem>,
        leaf: &[Item],
    ) -> Result<u64> {
        if written.is_empty() || !leaf.is_empty() {
            written.extend(self.leaves(leaf)?);
        }
        let mut below = written;
        for mut level in branches.into_iter().rev() {
            let old = level
                .pop()
                .ok_or_else(|| Error::invalid("internal: empty branch level"))?;
            if let Some(first) = below.first_mut() {
                if first.key.is_empty() {
                    first.key = old.key;
                }
            }
            level.extend(below);
            below = self.branches(&level)?;
        }
        self.root_of(below)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::build::empty_db;
    use std::process::{Command, Stdio};

    /// Bulk appends with leaves written early (twice into the same file, so the second run
    /// appends below branch pages): every key is there in order, nothing is leaked, and memory
    /// holds at most one partial leaf.
    #[test]
    fn write_appended_keeps_every_key_and_a_clean_file() {
        let dir = std::env::temp_dir().join(format!("bbolt-bulk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db");
        std::fs::write(&path, empty_db(4096)).unwrap();
        let key = |i: u64| i.to_be_bytes().to_vec();
        let mut n = 0u64;
        for round in 0..2 {
            let mut ed = Editor::open(&path).unwrap();
            ed.set_fill_percent(0.9);
            ed.ensure_bucket(b"other").unwrap();
            for _ in 0..20_000 {
                // Mostly small values, now and then one over a page (an overflow leaf).
                let len = if n.is_multiple_of(997) {
                    5000
                } else {
                    (n % 50) as usize
                };
                ed.append(b"key", key(n), vec![round as u8; len]).unwrap();
                n += 1;
                if n.is_multiple_of(100) {
                    ed.write_appended(b"key").unwrap();
                    let i = ed.find(b"key").unwrap();
                    if let State::Path { leaf, .. } = &ed.tops[i].state {
                        assert!(node::leaf_size(leaf) < 3 * 4096 + 5000);
                    }
                }
            }
            assert_eq!(ed.last_key(b"key").unwrap(), Some(key(n - 1)));
            ed.commit().unwrap();
        }
        let db = crate::Db::open(&path).unwrap();
        assert!(db.check().is_empty(), "{:?}", db.check());
        let bucket = db.bucket(b"key").unwrap().unwrap();
        let mut want = 0u64;
        for entry in bucket.entries() {
            let entry = entry.unwrap();
            assert_eq!(entry.key(), key(want).as_slice());
            want += 1;
        }
        assert_eq!(want, 40_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A child process that still holds the editor's open file description (as one forked by
    /// another thread does until its `exec`) must not keep the file locked after the editor is
    /// gone: the next edit of the same file would fail as "locked by another process".
    #[test]
    fn the_lock_goes_with_the_editor_even_while_a_child_holds_the_file() {
        let dir = std::env::temp_dir().join(format!("bbolt-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db");
        std::fs::write(&path, empty_db(4096)).unwrap();
        let ed = Editor::open(&path).unwrap();
        let shared = ed.io.0.try_clone().unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::from(shared))
            .spawn()
            .unwrap();
        ed.commit().unwrap();
        let again = Editor::open(&path).map(drop);
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        again.unwrap();
    }
}
