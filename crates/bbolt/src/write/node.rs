//! In-memory nodes: decoding branch/leaf pages into owned elements, encoding them back, and
//! splitting an oversized node the way bbolt's `node.split` does.
//!
//! Why it exists: the editor rewrites only the pages on the paths it changes; those pages are
//! decoded into owned elements, edited, and encoded again. Every offset read from the file is
//! checked against the bytes held, so a damaged page gives an error, never a panic.

use std::ops::Range;

use super::error::{Error, Result};
use crate::layout::{
    self, element_offset, BranchElement, LayoutError, LeafElement, PageHeader, BRANCH_PAGE_FLAG,
    BUCKET_LEAF_FLAG, ELEMENT_SIZE, LEAF_PAGE_FLAG, PAGE_HEADER_SIZE,
};
use crate::page::MIN_KEYS_PER_PAGE;

/// A leaf element, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Item {
    pub flags: u32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Item {
    pub(super) fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF_FLAG != 0
    }

    fn size(&self) -> usize {
        ELEMENT_SIZE + self.key.len() + self.value.len()
    }
}

/// A branch element, owned: the smallest key of the child subtree and the child's page id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BranchItem {
    pub key: Vec<u8>,
    pub child: u64,
}

impl BranchItem {
    fn size(&self) -> usize {
        ELEMENT_SIZE + self.key.len()
    }
}

/// A decoded page.
#[derive(Debug)]
pub(super) enum Node {
    Leaf(Vec<Item>),
    Branch(Vec<BranchItem>),
}

/// Decodes the branch or leaf page in `buf` (a whole page run, or an inline bucket's page).
/// `id` names the page in messages. Keys must be strictly increasing.
pub(super) fn decode(buf: &[u8], id: u64, inline: bool) -> Result<Node> {
    let what = if inline { "inline bucket page" } else { "page" };
    let h = PageHeader::parse(buf)
        .ok_or_else(|| Error::corrupt(id, format!("{what} is shorter than a page header")))?;
    let count = usize::from(h.count);
    if element_offset(count) > buf.len() {
        return Err(Error::corrupt(
            id,
            format!("{what}: {count} elements do not fit in {} bytes", buf.len()),
        ));
    }
    let past = |i: usize| Error::corrupt(id, format!("{what} element {i} extends past the page"));
    let range = |i: usize, from: usize, len: u32| -> Result<Range<usize>> {
        match from.checked_add(len as usize) {
            Some(end) if end <= buf.len() => Ok(from..end),
            _ => Err(past(i)),
        }
    };
    let node = match h.flags {
        LEAF_PAGE_FLAG => {
            let mut items = Vec::with_capacity(count);
            for i in 0..count {
                let off = element_offset(i);
                let e = LeafElement::read(buf, off).ok_or_else(|| past(i))?;
                let k = range(i, off.saturating_add(e.pos as usize), e.ksize)?;
                let v = range(i, k.end, e.vsize)?;
                items.push(Item {
                    flags: e.flags,
                    key: buf[k].to_vec(),
                    value: buf[v].to_vec(),
                });
            }
            Node::Leaf(items)
        }
        BRANCH_PAGE_FLAG if !inline => {
            let mut items = Vec::with_capacity(count);
            for i in 0..count {
                let off = element_offset(i);
                let e = BranchElement::read(buf, off).ok_or_else(|| past(i))?;
                let k = range(i, off.saturating_add(e.pos as usize), e.ksize)?;
                items.push(BranchItem {
                    key: buf[k].to_vec(),
                    child: e.pgid,
                });
            }
            Node::Branch(items)
        }
        f => {
            return Err(Error::corrupt(
                id,
                format!("{what} has type flags 0x{f:02x} where a branch or leaf page was expected"),
            ))
        }
    };
    let ordered = match &node {
        Node::Leaf(items) => items.windows(2).all(|w| w[0].key < w[1].key),
        Node::Branch(items) => items.windows(2).all(|w| w[0].key < w[1].key),
    };
    if !ordered {
        return Err(Error::corrupt(id, format!("{what} keys are out of order")));
    }
    Ok(node)
}

/// Serialized size of a leaf node (header included), as bbolt's `node.size`.
pub(super) fn leaf_size(items: &[Item]) -> usize {
    layout::leaf_size(items.iter().map(|it| it.key.len() + it.value.len()))
}

fn invalid(e: LayoutError) -> Error {
    Error::invalid(e.to_string())
}

/// Appends the leaf page for `items` to `out` (id 0, overflow 0, unpadded): header, element array,
/// then keys and values in element order, as bbolt writes it.
pub(super) fn encode_leaf(items: &[Item], out: &mut Vec<u8>) -> Result<()> {
    let entries = items
        .iter()
        .map(|it| (it.flags, it.key.as_slice(), it.value.as_slice()));
    layout::encode_leaf(entries, out).map_err(invalid)
}

/// Appends the branch page for `items` to `out` (id 0, overflow 0, unpadded).
pub(super) fn encode_branch(items: &[BranchItem], out: &mut Vec<u8>) -> Result<()> {
    let children = items.iter().map(|it| (it.key.as_slice(), it.child));
    layout::encode_branch(children, out).map_err(invalid)
}

/// Splits a node whose elements have the given sizes into consecutive ranges, exactly as bbolt's
/// `node.split`/`splitTwo`/`splitIndex` do: a node is left whole when it has at most
/// `2 * MinKeysPerPage` elements or serializes to less than a page; otherwise the first part takes
/// elements until adding one would pass `page_size * fill_percent` (keeping at least two elements
/// on each side), and the rest is split again.
pub(super) fn split_ranges(
    sizes: &[usize],
    page_size: usize,
    fill_percent: f64,
) -> Vec<Range<usize>> {
    let threshold = (page_size as f64 * fill_percent.clamp(0.1, 1.0)) as usize;
    let mut rest_size = PAGE_HEADER_SIZE + sizes.iter().sum::<usize>();
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let rest = &sizes[start..];
        if rest.len() <= MIN_KEYS_PER_PAGE * 2 || rest_size < page_size {
            out.push(start..sizes.len());
            return out;
        }
        let mut sz = PAGE_HEADER_SIZE;
        let mut index = 0;
        for (i, &el) in rest.iter().enumerate().take(rest.len() - MIN_KEYS_PER_PAGE) {
            index = i;
            if i >= MIN_KEYS_PER_PAGE && sz + el > threshold {
                break;
            }
            sz += el;
        }
        // Note: when the loop runs out, `sz` also counts element `index`, which stays in the
        // second part (as in bbolt); so the moved bytes are summed again.
        rest_size -= sizes[start..start + index].iter().sum::<usize>();
        out.push(start..start + index);
        start += index;
    }
}

/// Element sizes of a leaf node.
pub(super) fn leaf_sizes(items: &[Item]) -> Vec<usize> {
    items.iter().map(Item::size).collect()
}

/// Element sizes of a branch node.
pub(super) fn branch_sizes(items: &[BranchItem]) -> Vec<usize> {
    items.iter().map(BranchItem::size).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn item(k: &str, v: &str) -> Item {
        Item {
            flags: 0,
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn leaf_roundtrip() {
        let items = vec![item("a", "1"), item("bb", ""), item("c", "333")];
        let mut out = Vec::new();
        encode_leaf(&items, &mut out).unwrap();
        assert_eq!(out.len(), leaf_size(&items));
        match decode(&out, 0, true).unwrap() {
            Node::Leaf(got) => assert_eq!(got, items),
            Node::Branch(_) => panic!("not a leaf"),
        }
    }

    #[test]
    fn branch_roundtrip() {
        let items = vec![
            BranchItem {
                key: b"a".to_vec(),
                child: 7,
            },
            BranchItem {
                key: b"m".to_vec(),
                child: 9,
            },
        ];
        let mut out = Vec::new();
        encode_branch(&items, &mut out).unwrap();
        match decode(&out, 3, false).unwrap() {
            Node::Branch(got) => assert_eq!(got, items),
            Node::Leaf(_) => panic!("not a branch"),
        }
        assert!(decode(&out, 3, true).is_err(), "inline pages are leaves");
    }

    #[test]
    fn rejects_out_of_order_and_out_of_bounds() {
        let mut out = Vec::new();
        encode_leaf(&[item("b", ""), item("a", "")], &mut out).unwrap();
        assert!(decode(&out, 5, false).is_err());
        let mut out = Vec::new();
        encode_leaf(&[item("a", "xyz")], &mut out).unwrap();
        out.truncate(out.len() - 1);
        assert!(decode(&out, 5, false).is_err());
        assert!(decode(&out[..10], 5, false).is_err());
    }

    #[test]
    fn split_like_bbolt() {
        // Fits: one part.
        assert_eq!(split_ranges(&[100; 10], 4096, 0.5), vec![0..10]);
        // Few elements never split, even when oversized.
        assert_eq!(split_ranges(&[5000; 4], 4096, 0.5), vec![0..4]);
        // 100 elements of 100 bytes at fill 0.5: parts of 20 (16 + 20*100 = 2016 <= 2048).
        let parts = split_ranges(&[100; 100], 4096, 0.5);
        assert_eq!(parts[0], 0..20);
        assert_eq!(parts.iter().map(|r| r.len()).sum::<usize>(), 100);
        for w in parts.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        // The last part fits in a page.
        let last = parts.last().unwrap();
        assert!(PAGE_HEADER_SIZE + last.len() * 100 < 4096);
    }
}
