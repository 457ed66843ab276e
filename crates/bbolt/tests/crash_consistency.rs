//! Crash consistency of the copy-on-write editor, and random edits against a model.
//!
//! Why it exists: `snapshot restore` edits a user's database in place; a power cut at any moment
//! of a commit must leave a file whose reader sees either the old tree or the new one, never a
//! third state. The editor does all its I/O through `bbolt::write::Storage`; here a recording
//! storage logs every write and sync of a commit, and the file is frozen at every point a crash
//! could leave it (in the way redb's crash tests do):
//! * after every sync, and after every prefix of the writes since the last sync;
//! * with the unsynced writes of an epoch reordered (any subset of them durable);
//! * with one write torn (only its first sector, or its first page, or all but its last sector);
//!
//! and every frozen image is opened and checked by our reader (no error except an unusable
//! *inactive* meta page, which bbolt ignores and a torn meta write leaves), its buckets compared
//! with the old and new contents, and a sample of them checked by the Go `bbolt check` CLI.
//! A property test then runs random edits (append, upsert, replace_bucket, ensure_bucket) across
//! commits against a `BTreeMap` model.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use bbolt::build::{self, set_meta_u64};
use bbolt::layout::META_TXID;
use bbolt::write::{Editor, Storage};
use bbolt::{CheckError, Db, Meta, PGID_NO_FREELIST};
use proptest::prelude::*;

/// One I/O the editor did.
#[derive(Clone, Debug)]
enum Op {
    Write { off: u64, data: Vec<u8> },
    Sync,
}

#[derive(Debug, Default)]
struct Inner {
    image: Vec<u8>,
    ops: Vec<Op>,
}

/// An in-memory file that records every write and sync. Clones share the same file.
#[derive(Clone, Debug, Default)]
struct Recording(Arc<Mutex<Inner>>);

impl Recording {
    fn new(image: Vec<u8>) -> Recording {
        Recording(Arc::new(Mutex::new(Inner {
            image,
            ops: Vec::new(),
        })))
    }

    fn image(&self) -> Vec<u8> {
        self.0.lock().unwrap().image.clone()
    }

    fn take_ops(&self) -> Vec<Op> {
        std::mem::take(&mut self.0.lock().unwrap().ops)
    }
}

fn apply(image: &mut Vec<u8>, off: u64, data: &[u8]) {
    let off = off as usize;
    if image.len() < off + data.len() {
        image.resize(off + data.len(), 0);
    }
    image[off..off + data.len()].copy_from_slice(data);
}

impl Storage for Recording {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap().image.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let inner = self.0.lock().unwrap();
        let src = (offset as usize)
            .checked_add(buf.len())
            .and_then(|end| inner.image.get(offset as usize..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut inner = self.0.lock().unwrap();
        apply(&mut inner.image, offset, buf);
        inner.ops.push(Op::Write {
            off: offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.0.lock().unwrap().ops.push(Op::Sync);
        Ok(())
    }
}

/// Every bucket's entries: (key, value, is a nested bucket).
type Contents = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>, bool)>>;

/// Opens and checks `image`; returns its contents, or why it is not a sound database. An unusable
/// inactive meta page is allowed (a torn meta write leaves one) when bbolt would not use it either.
fn open_checked(image: &[u8]) -> Result<Contents, String> {
    let db = Db::from_bytes(image.to_vec()).map_err(|e| format!("open: {e}"))?;
    let active = db.meta().index;
    // bbolt picks the meta with the larger txid among those passing its `validate()` (magic,
    // version, checksum) and trusts it; our reader must have picked the same one.
    let ps = db.meta().page_size as usize;
    let valid: Vec<Option<Meta>> = (0..2u8)
        .map(|i| {
            let page = image.get(usize::from(i) * ps..).unwrap_or(&[]);
            Meta::parse(i, page).ok().filter(|m| m.validate().is_ok())
        })
        .collect();
    let bbolt_choice = match (valid[0], valid[1]) {
        (Some(a), Some(b)) => Some(if b.txid > a.txid { 1 } else { 0 }),
        (Some(_), None) => Some(0),
        (None, Some(_)) => Some(1),
        (None, None) => None,
    };
    if bbolt_choice != Some(active) {
        return Err(format!(
            "the reader uses meta {active} but bbolt would use {bbolt_choice:?}"
        ));
    }
    let errors: Vec<String> = db
        .check()
        .iter()
        .filter(|e| !matches!(e, CheckError::BadMeta { index, .. } if *index != active))
        .map(|e| e.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(format!("check: {errors:?}"));
    }
    let mut out = BTreeMap::new();
    for name in db.buckets().map_err(|e| e.to_string())? {
        let b = db
            .bucket(&name)
            .map_err(|e| e.to_string())?
            .ok_or("bucket vanished")?;
        let mut entries = Vec::new();
        for e in b.entries() {
            let e = e.map_err(|e| e.to_string())?;
            entries.push((e.key().to_vec(), e.value().to_vec(), e.is_bucket()));
        }
        out.insert(name, entries);
    }
    Ok(out)
}

/// The images a crash during `ops` (applied to `base`) can leave, each with a label.
fn crash_images(base: &[u8], ops: &[Op]) -> Vec<(String, Vec<u8>)> {
    const SECTOR: usize = 512;
    const PAGE: usize = 4096;
    let mut out = Vec::new();
    let mut durable = base.to_vec();
    let mut epochs: Vec<Vec<(u64, Vec<u8>)>> = vec![Vec::new()];
    // The disk persists an unsynced write page by page, in any order: split writes into pages.
    for op in ops {
        match op {
            Op::Write { off, data } => {
                let mut at = 0;
                while at < data.len() {
                    let o = *off as usize + at;
                    let take = (PAGE - o % PAGE).min(data.len() - at);
                    let piece = (o as u64, data[at..at + take].to_vec());
                    epochs.last_mut().unwrap().push(piece);
                    at += take;
                }
            }
            Op::Sync => epochs.push(Vec::new()),
        }
    }
    for (e, writes) in epochs.iter().enumerate() {
        let n = writes.len();
        out.push((format!("epoch {e}: synced before it"), durable.clone()));
        // Any subset of the unsynced writes may be durable (all of them when there are few).
        let subsets: Vec<Vec<usize>> = if n <= 6 {
            (1..1u32 << n)
                .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
                .collect()
        } else {
            // Prefixes, single pages and all-but-one-page, at most ~24 of each, plus pseudo-random
            // subsets.
            let step = n.div_ceil(24);
            let picks: Vec<usize> = (0..n).step_by(step).chain([n - 1]).collect();
            let mut s: Vec<Vec<usize>> = picks.iter().map(|&j| (0..=j).collect()).collect();
            s.extend(picks.iter().map(|&i| vec![i]));
            s.extend(picks.iter().map(|&i| (0..n).filter(|j| *j != i).collect()));
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
            for _ in 0..16 {
                let set = (0..n)
                    .filter(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed & 1 == 1
                    })
                    .collect();
                s.push(set);
            }
            s
        };
        for set in subsets {
            let mut img = durable.clone();
            for &i in &set {
                apply(&mut img, writes[i].0, &writes[i].1);
            }
            out.push((format!("epoch {e}: writes {set:?} of {n}"), img));
        }
        // One page torn (its first sector, or its last only), the pages before it done; at most
        // ~24 pages of an epoch.
        for (j, (off, data)) in writes.iter().enumerate().step_by(n.div_ceil(24).max(1)) {
            let mut before = durable.clone();
            for (o, d) in &writes[..j] {
                apply(&mut before, *o, d);
            }
            if data.len() > SECTOR {
                let mut img = before.clone();
                apply(&mut img, *off, &data[..SECTOR]);
                out.push((format!("epoch {e}: page {j} torn after a sector"), img));
                let from = data.len() - SECTOR;
                apply(&mut before, *off + from as u64, &data[from..]);
                out.push((format!("epoch {e}: page {j} tail only"), before));
            }
        }
        for (off, data) in writes {
            apply(&mut durable, *off, data);
        }
    }
    out.push(("after the commit".into(), durable));
    out
}

/// Runs `edit` and a commit on `base` through a recording storage, freezes every crash image, and
/// asserts each holds the old or the new contents; returns (images, old seen, new seen).
fn crash_test(name: &str, base: Vec<u8>, edit: impl FnOnce(&mut Editor<Recording>)) {
    let old = open_checked(&base).unwrap();
    let rec = Recording::new(base.clone());
    let mut ed = Editor::with_storage(rec.clone()).unwrap();
    edit(&mut ed);
    ed.commit().unwrap();
    let ops = rec.take_ops();
    let new = open_checked(&rec.image()).unwrap();
    assert_ne!(old, new, "{name}: the edit must change something");
    let syncs = ops.iter().filter(|o| matches!(o, Op::Sync)).count();
    assert!(syncs >= 2, "{name}: pages and meta are synced separately");
    let images = crash_images(&base, &ops);
    let (mut saw_old, mut saw_new, mut go_checked) = (0, 0, 0);
    let cli = etcd_test_support::bbolt_cli();
    let dir = common::etcd::TempDir::new("crash");
    for (i, (label, img)) in images.iter().enumerate() {
        let got = open_checked(img).unwrap_or_else(|e| panic!("{name}, {label}: {e}"));
        if got == old {
            saw_old += 1;
        } else if got == new {
            saw_new += 1;
        } else {
            panic!("{name}, {label}: a third state");
        }
        // The Go checker on a sample: every meta-epoch image and every 5th other one.
        if i % 5 == 0 || label.contains("after") || img[..8192] != base[..8192] {
            let path = dir.0.join(format!("crash-{i}.db"));
            std::fs::write(&path, img).unwrap();
            go_checked += 1;
            let run = std::process::Command::new(&cli)
                .arg("check")
                .arg(&path)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success() && stdout.trim_end().ends_with("OK"),
                "{name}, {label}: bbolt check: {stdout}{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    assert!(
        saw_old > 0 && saw_new > 0,
        "{name}: {saw_old} old, {saw_new} new"
    );
    eprintln!(
        "{name}: {} writes, {syncs} syncs, {} crash images ({saw_old} old, {saw_new} new), \
         {go_checked} checked by bbolt",
        ops.len() - syncs,
        images.len()
    );
    // After the last sync only the new tree may be seen.
    let last = images.last().unwrap();
    assert_eq!(open_checked(&last.1).unwrap(), new, "{name}");
}

/// The edits `snapshot restore` makes, on the shared sample.
fn restore_like(ed: &mut Editor<Recording>) {
    ed.replace_bucket(b"b", vec![(b"m1".to_vec(), vec![1u8; 300])])
        .unwrap();
    ed.append(b"c", b"key-999999".to_vec(), b"appended".to_vec())
        .unwrap();
    ed.ensure_bucket(b"e").unwrap();
    ed.upsert(b"d", vec![(b"term".to_vec(), 7u64.to_be_bytes().to_vec())])
        .unwrap();
}

#[test]
fn crash_during_a_commit_with_a_freelist() {
    crash_test("freelist", common::sample(true).image, restore_like);
}

#[test]
fn crash_during_a_commit_without_a_freelist() {
    crash_test("no freelist", common::sample(false).image, restore_like);
}

/// The newest meta in page 0 with an odd txid (as `Tx.WriteTo` leaves some snapshots): the new
/// meta goes to page 0 too, so the editor writes page 1 first; a crash between must still work.
#[test]
fn crash_when_the_new_meta_overwrites_the_active_one() {
    let mut img = common::sample(false).image;
    set_meta_u64(&mut img, 4096, 0, META_TXID, 11);
    set_meta_u64(&mut img, 4096, 1, META_TXID, 10);
    assert_eq!(Db::from_bytes(img.clone()).unwrap().meta().index, 0);
    crash_test("meta twice", img, restore_like);
}

/// A bucket of more than the editor's 1 MiB write buffer: several writes of many pages each.
#[test]
fn crash_while_writing_a_large_bucket() {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..9000u32)
        .map(|i| (common::key(i as usize), vec![(i % 251) as u8; 100]))
        .collect();
    crash_test("large bucket", common::sample(true).image, |ed| {
        ed.replace_bucket(b"a2", entries).unwrap()
    });
}

// ----- random edits against a model ------------------------------------------------------------

/// One edit of the property test. Keys of upserts and replacements are `k` + one byte; appended
/// keys are `z` + a counter, so they sort after every other key.
#[derive(Clone, Debug)]
enum Edit {
    Append {
        bucket: u8,
        len: usize,
    },
    Upsert {
        bucket: u8,
        entries: Vec<(u8, usize)>,
    },
    Replace {
        bucket: u8,
        entries: Vec<(u8, usize)>,
    },
    Ensure {
        bucket: u8,
    },
    Commit,
}

fn edit() -> impl Strategy<Value = Edit> {
    let bucket = 0u8..3;
    let entries = prop::collection::vec((any::<u8>(), 0usize..700), 0..40);
    prop_oneof![
        4 => (bucket.clone(), 0usize..900).prop_map(|(bucket, len)| Edit::Append { bucket, len }),
        2 => (bucket.clone(), entries.clone())
            .prop_map(|(bucket, entries)| Edit::Upsert { bucket, entries }),
        1 => (bucket.clone(), entries).prop_map(|(bucket, entries)| Edit::Replace { bucket, entries }),
        1 => bucket.prop_map(|bucket| Edit::Ensure { bucket }),
        1 => Just(Edit::Commit),
    ]
}

type Model = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

fn model_contents(m: &Model) -> Contents {
    m.iter()
        .map(|(name, b)| {
            let entries = b
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), false))
                .collect();
            (name.clone(), entries)
        })
        .collect()
}

fn value(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed + i) as u8).collect()
}

/// A small page size (more splits, deeper trees) with or without a freelist page.
fn start_image(with_freelist: bool) -> Vec<u8> {
    let mut b = build::Builder::new(1024);
    let root = b.leaf(&[]).unwrap();
    let freelist = if with_freelist {
        b.freelist(&[], false)
    } else {
        PGID_NO_FREELIST
    };
    b.finish(root, freelist, 3)
}

fn run_edits(with_freelist: bool, edits: &[Edit]) -> Result<(), TestCaseError> {
    let storage = Recording::new(start_image(with_freelist));
    let mut model = Model::new();
    let mut counter = 0u64;
    // Buckets appended to since the last commit.
    let mut appended = std::collections::BTreeSet::new();
    let mut ed = Editor::with_storage(storage.clone()).unwrap();
    let names: Vec<Vec<u8>> = ["alpha", "key", "meta"]
        .iter()
        .map(|n| n.as_bytes().to_vec())
        .collect();
    for (step, e) in edits.iter().chain([&Edit::Commit]).enumerate() {
        match e {
            Edit::Append { bucket, len } => {
                counter += 1;
                let mut key = b"z".to_vec();
                key.extend_from_slice(&counter.to_be_bytes());
                let v = value(step, *len);
                let name = &names[*bucket as usize];
                appended.insert(*bucket);
                ed.append(name, key.clone(), v.clone()).unwrap();
                model.entry(name.clone()).or_default().insert(key, v);
            }
            Edit::Upsert { bucket, entries } | Edit::Replace { bucket, entries } => {
                let mut kvs = BTreeMap::new();
                for (k, len) in entries {
                    kvs.insert(vec![b'k', *k], value(step + usize::from(*k), *len));
                }
                let name = &names[*bucket as usize];
                let list: Vec<_> = kvs.clone().into_iter().collect();
                let b = model.entry(name.clone()).or_default();
                if matches!(e, Edit::Upsert { .. }) {
                    match ed.upsert(name, list) {
                        Ok(()) => b.extend(kvs),
                        // Documented: a paged bucket appended to in this transaction holds only
                        // its rightmost path and cannot also be read whole.
                        Err(e) if appended.contains(bucket) => {
                            prop_assert!(e.to_string().contains("is being appended to"), "{}", e)
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("step {step}: {e}"))),
                    }
                } else {
                    ed.replace_bucket(name, list).unwrap();
                    *b = kvs;
                }
            }
            Edit::Ensure { bucket } => {
                let name = &names[*bucket as usize];
                ed.ensure_bucket(name).unwrap();
                model.entry(name.clone()).or_default();
            }
            Edit::Commit => {
                ed.commit().unwrap();
                let got = open_checked(&storage.image()).map_err(TestCaseError::fail)?;
                prop_assert_eq!(got, model_contents(&model), "after step {}", step);
                ed = Editor::with_storage(storage.clone()).unwrap();
                appended.clear();
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_match_a_model(
        with_freelist in any::<bool>(),
        edits in prop::collection::vec(edit(), 1..30),
    ) {
        run_edits(with_freelist, &edits)?;
    }
}
