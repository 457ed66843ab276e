//! The live keys of a database at a revision, in user-key order, in bounded memory.
//!
//! Why it exists: the `key` bucket is ordered by revision, not by user key, so comparing two
//! keyspaces (a diff of two snapshots) needs each keyspace sorted by key first, and a 1 GiB
//! snapshot's keys may not fit in the memory a backup host can spare. This is an external merge
//! sort: one pass over the bucket collects `(user key, revision)` records into runs of at most
//! `run_bytes`; each full run is sorted, reduced to the latest record per key, and spilled to an
//! unnamed temporary file (`tempfile::tempfile`: `O_TMPFILE`, mode 0600, gone when closed); the
//! runs are then merged, and a key whose latest revision at or below the requested one is a
//! deletion is skipped. Memory: one run, plus a 64 KiB read buffer per spilled run. Values are not
//! copied: [`SortedLive::value`] looks them up by revision when the caller wants them.

use crate::buckets;
use crate::error::{Error, Result};
use crate::live::{decode, parse_revision};
use crate::proto::KeyValue;
use crate::revision::Revision;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

/// The default run size: what one walk may hold in memory before it spills.
pub const DEFAULT_RUN_BYTES: usize = 32 << 20;

/// Bytes a record costs in a run besides its key (box, revision, vector slot).
const RECORD_OVERHEAD: usize = 48;

/// The spill read buffer per run.
const READ_BUF: usize = 64 << 10;

/// A record of a spilled run cannot be longer than this (a user key is a slice of a bbolt value,
/// which etcd caps far lower): a longer length field is damage.
const MAX_SPILLED_KEY: usize = 64 << 20;

/// One record: a user key and one of its revisions.
type Record = (Box<[u8]>, Revision);

/// The head record of spilled run `.2`, ordered by key then revision for the merge heap.
type Headed = (Box<[u8]>, Revision, usize);

/// A spilled run being read back: `[pos, end)` of the spill file.
struct Run {
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
}

/// The live keys of a database at a revision, in key order: see the module documentation.
pub struct SortedLive<'db> {
    bucket: Option<bbolt::Bucket<'db>>,
    memory: std::vec::IntoIter<Record>,
    spill: Option<File>,
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<Headed>>,
    from_memory: Option<Record>,
}

impl<'db> SortedLive<'db> {
    /// Sorts the keys of `db` live at `upto` (checked by the caller against the store's bounds)
    /// that satisfy `matches`, holding at most about `run_bytes` of keys in memory at once.
    pub fn build(
        db: &'db bbolt::Db,
        upto: i64,
        run_bytes: usize,
        matches: impl Fn(&[u8]) -> bool,
    ) -> Result<SortedLive<'db>> {
        let bucket = db.bucket(buckets::KEY)?;
        let mut run: Vec<Record> = Vec::new();
        let mut used = 0usize;
        let mut spill: Option<BufWriter<File>> = None;
        let mut bounds: Vec<(u64, u64)> = Vec::new();
        let mut written = 0u64;
        if let Some(bucket) = &bucket {
            for entry in bucket.entries() {
                let entry = entry?;
                let revision = parse_revision(entry.key())?;
                if revision.main > upto {
                    break;
                }
                let Some(value) = entry.plain_value() else {
                    continue;
                };
                let kv = decode(value, revision)?;
                if !matches(kv.key) {
                    continue;
                }
                used += kv.key.len() + RECORD_OVERHEAD;
                run.push((kv.key.into(), revision));
                if used >= run_bytes {
                    let out = match &mut spill {
                        Some(out) => out,
                        None => spill
                            .insert(BufWriter::new(tempfile::tempfile().map_err(Error::Spill)?)),
                    };
                    let start = written;
                    for (key, rev) in reduce(std::mem::take(&mut run)) {
                        written += write_record(out, &key, rev)?;
                    }
                    bounds.push((start, written));
                    used = 0;
                }
            }
        }
        let memory = reduce(run).into_iter();
        let spill = match spill {
            Some(out) => Some(out.into_inner().map_err(|e| Error::Spill(e.into_error()))?),
            None => None,
        };
        let mut walk = SortedLive {
            bucket,
            memory,
            spill,
            runs: bounds
                .into_iter()
                .map(|(pos, end)| Run {
                    pos,
                    end,
                    buf: Vec::new(),
                    at: 0,
                })
                .collect(),
            heap: BinaryHeap::new(),
            from_memory: None,
        };
        for i in 0..walk.runs.len() {
            if let Some((key, rev)) = walk.read_run(i)? {
                walk.heap.push(Reverse((key, rev, i)));
            }
        }
        walk.from_memory = walk.memory.next();
        Ok(walk)
    }

    /// The next live key and its revision at `upto`, in key order; `None` at the end.
    pub fn next_live(&mut self) -> Result<Option<(Box<[u8]>, Revision)>> {
        loop {
            let Some((key, mut rev)) = self.pop()? else {
                return Ok(None);
            };
            // Every other record of this key (other runs) is older or newer: keep the newest.
            while self.peek_key() == Some(&*key) {
                if let Some((_, other)) = self.pop()? {
                    rev = rev.max(other);
                }
            }
            if !rev.tombstone {
                return Ok(Some((key, rev)));
            }
        }
    }

    /// The stored value of a key at `revision` (as [`SortedLive::next_live`] gave it).
    pub fn value(&self, revision: Revision) -> Result<Option<bbolt::Entry>> {
        match &self.bucket {
            Some(bucket) => Ok(bucket.get(&revision.encode())?),
            None => Ok(None),
        }
    }

    /// Decodes a value fetched with [`SortedLive::value`].
    pub fn decode<'e>(entry: &'e bbolt::Entry, revision: Revision) -> Result<KeyValue<'e>> {
        decode(entry.value(), revision)
    }

    fn peek_key(&self) -> Option<&[u8]> {
        let heap = self.heap.peek().map(|Reverse((k, _, _))| &**k);
        let memory = self.from_memory.as_ref().map(|(k, _)| &**k);
        match (heap, memory) {
            (Some(h), Some(m)) => Some(h.min(m)),
            (h, m) => h.or(m),
        }
    }

    fn pop(&mut self) -> Result<Option<Record>> {
        let take_memory = match (self.heap.peek(), &self.from_memory) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(Reverse((hk, hr, _))), Some((mk, mr))) => (mk, mr) <= (hk, hr),
        };
        if take_memory {
            let record = self.from_memory.take();
            self.from_memory = self.memory.next();
            return Ok(record);
        }
        let Some(Reverse((key, rev, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some((k, r)) = self.read_run(i)? {
            self.heap.push(Reverse((k, r, i)));
        }
        Ok(Some((key, rev)))
    }

    /// The next record of spilled run `i`.
    fn read_run(&mut self, i: usize) -> Result<Option<Record>> {
        let Some(file) = &self.spill else {
            return Ok(None);
        };
        let run = &mut self.runs[i];
        let header = fill(file, run, 4)?;
        let Some(header) = header else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        run.at += 4;
        if len > MAX_SPILLED_KEY {
            return Err(spill_damage("key length out of bounds"));
        }
        let body = fill(file, run, len + 17)?.ok_or_else(|| spill_damage("truncated record"))?;
        let key: Box<[u8]> = body[..len].into();
        let mut rev_bytes = [0u8; 17];
        rev_bytes[..8].copy_from_slice(&body[len..len + 8]);
        rev_bytes[8] = b'_';
        rev_bytes[9..].copy_from_slice(&body[len + 8..len + 16]);
        let tombstone = body[len + 16] == 1;
        let mut revision = Revision::parse(&rev_bytes).map_err(|e| spill_damage(&e.0))?;
        revision.tombstone = tombstone;
        run.at += len + 17;
        Ok(Some((key, revision)))
    }
}

fn spill_damage(why: &str) -> Error {
    Error::Spill(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        why.to_string(),
    ))
}

/// Makes `n` bytes available at `run.at`, reading more of the run when needed; `None` at the
/// run's end.
fn fill<'r>(file: &File, run: &'r mut Run, n: usize) -> Result<Option<&'r [u8]>> {
    if run.at + n > run.buf.len() {
        run.buf.drain(..run.at);
        run.at = 0;
        while run.buf.len() < n && run.pos < run.end {
            let want = (READ_BUF.max(n - run.buf.len()) as u64).min(run.end - run.pos) as usize;
            let old = run.buf.len();
            run.buf.resize(old + want, 0);
            file.read_exact_at(&mut run.buf[old..], run.pos)
                .map_err(Error::Spill)?;
            run.pos += want as u64;
        }
        if run.buf.len() < n {
            if run.buf.is_empty() {
                return Ok(None);
            }
            return Err(spill_damage("truncated run"));
        }
    }
    Ok(Some(&run.buf[run.at..run.at + n]))
}

/// Sorts a run by key (stably: revisions stay in order) and keeps the latest record per key.
fn reduce(mut run: Vec<Record>) -> Vec<Record> {
    run.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<Record> = Vec::with_capacity(run.len());
    for record in run {
        match out.last_mut() {
            Some(last) if last.0 == record.0 => *last = record,
            _ => out.push(record),
        }
    }
    out
}

/// Appends one record (`len u32 LE | key | main i64 BE | sub i64 BE | tombstone u8`).
fn write_record(out: &mut impl Write, key: &[u8], rev: Revision) -> Result<u64> {
    let len = u32::try_from(key.len()).map_err(|_| spill_damage("key too long"))?;
    out.write_all(&len.to_le_bytes())
        .and_then(|()| out.write_all(key))
        .and_then(|()| out.write_all(&rev.main.to_be_bytes()))
        .and_then(|()| out.write_all(&rev.sub.to_be_bytes()))
        .and_then(|()| out.write_all(&[u8::from(rev.tombstone)]))
        .map_err(Error::Spill)?;
    Ok(4 + key.len() as u64 + 17)
}
