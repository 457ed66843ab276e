//! In-order iteration over a bucket's B+tree, and point lookups.
//!
//! Why it exists: a full scan (what `snapshot status` does: every key and value of every bucket)
//! must be fast, use little memory and survive any input. The iterator keeps only the path from the
//! root to the current leaf; it marks every page it enters so that a tree whose pages point back into
//! themselves is reported instead of being walked forever, bounds the depth, and checks that keys come
//! out strictly increasing.

use crate::db::{Bucket, BucketRoot, Entry, MAX_TREE_DEPTH};
use crate::error::{Error, Result};
use crate::page::Page;

/// A set of page ids, as a bitmap sized to the high-water mark.
#[derive(Debug, Default)]
pub(crate) struct PageSet {
    bits: Vec<u64>,
}

impl PageSet {
    /// A set for ids `0..n`.
    pub(crate) fn new(n: u64) -> PageSet {
        PageSet {
            bits: vec![0; usize::try_from(n.div_ceil(64)).unwrap_or(0)],
        }
    }

    /// Adds `id`; returns false if it was already there (or is out of range).
    pub(crate) fn insert(&mut self, id: u64) -> bool {
        let Some(w) = usize::try_from(id / 64)
            .ok()
            .and_then(|i| self.bits.get_mut(i))
        else {
            return false;
        };
        let m = 1u64 << (id % 64);
        let fresh = *w & m == 0;
        *w |= m;
        fresh
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: u64) -> bool {
        usize::try_from(id / 64)
            .ok()
            .and_then(|i| self.bits.get(i))
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }
}

#[derive(Debug)]
struct Frame {
    page: Page,
    index: usize,
}

/// Iterator over the entries of a bucket in key order; see [`Bucket::entries`].
///
/// Yields `Ok(Entry)` per key/value pair; on the first defect it yields one `Err` and then ends.
#[derive(Debug)]
pub struct Entries<'db> {
    bucket: Bucket<'db>,
    stack: Vec<Frame>,
    visited: Option<PageSet>,
    prev: Option<Entry>,
    started: bool,
    done: bool,
}

impl<'db> Entries<'db> {
    pub(crate) fn new(bucket: Bucket<'db>) -> Entries<'db> {
        Entries {
            bucket,
            stack: Vec::new(),
            visited: None,
            prev: None,
            started: false,
            done: false,
        }
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        let page = match self.bucket.root_ref() {
            BucketRoot::Inline(p) => p.clone(),
            BucketRoot::Page(id) => {
                let id = *id;
                self.bucket
                    .db()
                    .store()
                    .tree_page(id, &|| "a bucket header".to_string())?
            }
        };
        self.stack.push(Frame { page, index: 0 });
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        if !self.started {
            self.start()?;
        }
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if top.index >= top.page.count() {
                self.stack.pop();
                continue;
            }
            let i = top.index;
            top.index += 1;
            if top.page.is_leaf() {
                let e = top.page.leaf(i)?;
                let entry = Entry::new(&top.page, e.key, e.value, e.flags);
                if let Some(prev) = &self.prev {
                    if prev.key() >= entry.key() {
                        return Err(Error::corrupt(
                            entry.page_id(),
                            format!(
                                "leaf element {i} key is not greater than the key before it \
                                 (keys out of order)"
                            ),
                        ));
                    }
                }
                self.prev = Some(entry.clone());
                return Ok(Some(entry));
            }
            let parent = top.page.id();
            let child = top.page.branch(i)?.pgid;
            if self.stack.len() >= MAX_TREE_DEPTH {
                return Err(Error::corrupt(
                    child,
                    format!("tree deeper than {MAX_TREE_DEPTH} levels (referenced by branch page {parent})"),
                ));
            }
            let store = self.bucket.db().store();
            let visited = self.visited.get_or_insert_with(|| {
                let mut s = PageSet::new(store.pgid());
                s.insert(parent);
                s
            });
            if child < store.pgid() && !visited.insert(child) {
                return Err(Error::corrupt(
                    child,
                    format!("page reached twice in one tree (cycle?) via branch page {parent} element {i}"),
                ));
            }
            let page = store.tree_page(child, &|| format!("branch page {parent} element {i}"))?;
            self.stack.push(Frame { page, index: 0 });
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                self.stack.clear();
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Entries<'_> {}

/// Finds the entry with exactly `key` in `bucket`, descending branch pages as bbolt does (the last
/// element whose key is `<= key`, or the first).
pub(crate) fn seek(bucket: &Bucket<'_>, key: &[u8]) -> Result<Option<Entry>> {
    let store = bucket.db().store();
    let mut page = match bucket.root_ref() {
        BucketRoot::Inline(p) => p.clone(),
        BucketRoot::Page(id) => store.tree_page(*id, &|| "a bucket header".to_string())?,
    };
    for _ in 0..MAX_TREE_DEPTH {
        // First index whose key is >= `key`.
        let (mut lo, mut hi) = (0usize, page.count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = page.key_range(mid)?;
            if page.slice(&r) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if page.is_leaf() {
            if lo >= page.count() {
                return Ok(None);
            }
            let e = page.leaf(lo)?;
            if page.slice(&e.key) != key {
                return Ok(None);
            }
            return Ok(Some(Entry::new(&page, e.key, e.value, e.flags)));
        }
        if page.count() == 0 {
            return Err(Error::corrupt(page.id(), "branch page has no elements"));
        }
        let exact = lo < page.count() && {
            let r = page.key_range(lo)?;
            page.slice(&r) == key
        };
        let idx = if exact { lo } else { lo.saturating_sub(1) };
        let parent = page.id();
        let child = page.branch(idx)?.pgid;
        page = store.tree_page(child, &|| format!("branch page {parent} element {idx}"))?;
    }
    Err(Error::corrupt(
        page.id(),
        format!("tree deeper than {MAX_TREE_DEPTH} levels"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::PageSet;

    #[test]
    fn page_set() {
        let mut s = PageSet::new(130);
        assert!(s.insert(0));
        assert!(!s.insert(0));
        assert!(s.insert(129));
        assert!(s.contains(129));
        assert!(!s.contains(128));
        assert!(!s.insert(200));
        assert!(!s.contains(200));
    }
}
