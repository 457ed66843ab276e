//! A cap on how much of a snapshot stream is written out: the size the database's own meta page
//! declares, plus a little slack.
//!
//! Why it exists: a stream (stdin, zstd, age) has no length until it ends, and a hostile or broken
//! one may never end (nested zstd bombs, a crafted age file, a db followed by endless zeros).
//! Status spools such a stream to a temporary file and restore copies it into its staging
//! directory; without a cap either one fills the disk. The database says how big it is in its
//! first pages, so [`Declared`] reads the meta pages as they pass and refuses to write past that
//! size (+ the SHA-256 trailer, or + bbolt's preallocation for a db copied from a data dir). It
//! costs nothing per byte once the size is known: normal snapshots copy as fast as before.

use super::trailer::TRAILER_LEN;
use crate::{Error, ExitCode};
use std::io::{self, Write};

/// bbolt's `DefaultAllocSize` (`db.go`, v1.3 and v1.4): a database file in a data dir grows in
/// steps of this much beyond the pages its meta counts, so a db copied from a data dir may carry
/// up to this many bytes past `pgid * page_size`.
pub const BBOLT_ALLOC_SIZE: u64 = 16 << 20;

/// How far past the database's declared size a stream may go: the 32-byte SHA-256 trailer of a
/// `snapshot save` stream, or, with `--skip-hash-check` (a db copied from a data dir), bbolt's
/// preallocation.
pub fn slack(skip_hash_check: bool) -> u64 {
    if skip_hash_check {
        BBOLT_ALLOC_SIZE
    } else {
        TRAILER_LEN
    }
}

/// Why a [`Declared`] writer refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The stream went on past `declared + slack` bytes; what fits was written.
    Over {
        /// The size the meta page declares.
        declared: u64,
        /// The slack allowed past it.
        slack: u64,
    },
    /// No valid meta page where bbolt looks for one: only the bytes holding the candidates were
    /// written (opening them says why it is not a database).
    NoMeta,
}

/// The one-line error (exit 4) for a stream that went on past `declared + slack` bytes
/// ([`Refusal::Over`]); `name` names the input (`stdin`, a path).
pub fn too_long(name: &str, declared: u64, slack: u64) -> Error {
    let extra = if slack == TRAILER_LEN {
        format!("the {slack}-byte SHA-256 trailer")
    } else {
        format!("{slack} bytes bbolt may preallocate")
    };
    Error::new(
        ExitCode::Integrity,
        format!(
            "{name}: the data goes on past the {declared} bytes its meta page declares \
             (+ {extra}): not a snapshot; stopped spooling"
        ),
    )
}

/// A writer that learns the database's size from its meta pages as they pass and refuses to write
/// past it (plus `slack`).
///
/// bbolt finds meta 0 at offset 0 and meta 1 one page later, probing page sizes from
/// `MIN_PAGE_SIZE` to `MAX_PAGE_SIZE` when meta 0 is unusable. The size is settled as soon as the
/// metas bbolt would use have passed (one page and a meta in, for a normal snapshot), so even a
/// small database is never written past its size. Once the stream has passed
/// `MAX_PAGE_SIZE + META_PAGE_PREFIX` bytes every candidate has been seen; none usable: nothing
/// past that point is a database.
pub struct Declared<W: Write> {
    inner: W,
    slack: u64,
    pos: u64,
    /// The first bytes of every page where bbolt may look for a meta: (offset, bytes).
    metas: Vec<(u64, Vec<u8>)>,
    /// Bytes allowed in all, once known.
    limit: Option<u64>,
    /// Set when a write was refused.
    refused: Option<Refusal>,
}

/// Offsets where bbolt looks for a meta page: 0, then one page in for every page size it probes.
fn meta_offsets() -> impl Iterator<Item = u64> {
    std::iter::once(0).chain(
        std::iter::successors(Some(bbolt::MIN_PAGE_SIZE), |ps| ps.checked_mul(2))
            .take_while(|ps| *ps <= bbolt::MAX_PAGE_SIZE)
            .map(u64::from),
    )
}

/// Stream offset by which every meta candidate has been seen.
fn decide_at() -> u64 {
    u64::from(bbolt::MAX_PAGE_SIZE) + bbolt::META_PAGE_PREFIX as u64
}

impl<W: Write> Declared<W> {
    /// Wraps `inner`, allowing `slack` bytes past the declared size (see [`slack`]).
    pub fn new(inner: W, slack: u64) -> Self {
        Declared {
            inner,
            slack,
            pos: 0,
            metas: meta_offsets().map(|o| (o, Vec::new())).collect(),
            limit: None,
            refused: None,
        }
    }

    /// Why a write was refused, if one was.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused
    }

    /// Bytes written through so far.
    pub fn written(&self) -> u64 {
        self.pos
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Keeps the bytes of `buf` (at stream offset `self.pos`) that fall in a meta candidate.
    fn capture(&mut self, buf: &[u8]) {
        let prefix = bbolt::META_PAGE_PREFIX as u64;
        let (from, to) = (self.pos, self.pos + buf.len() as u64);
        for (off, got) in &mut self.metas {
            let want_from = *off + got.len() as u64;
            let want_to = *off + prefix;
            if want_from >= want_to || want_to <= from || want_from >= to {
                continue;
            }
            let a = (want_from.max(from) - from) as usize;
            let b = (want_to.min(to) - from) as usize;
            if let Some(bytes) = buf.get(a..b) {
                got.extend_from_slice(bytes);
            }
        }
    }

    /// The meta page at stream offset `at` if it is complete and bbolt could use it: valid, with a
    /// sane page size that (for meta 1) puts it where it was found.
    fn meta_at(&self, at: u64) -> Option<bbolt::Meta> {
        let (_, bytes) = self.metas.iter().find(|(off, _)| *off == at)?;
        if bytes.len() < bbolt::META_PAGE_PREFIX {
            return None;
        }
        let m = bbolt::Meta::parse(u8::from(at != 0), bytes).ok()?;
        m.validate().ok()?;
        let ps = m.page_size;
        let sane =
            ps.is_power_of_two() && (bbolt::MIN_PAGE_SIZE..=bbolt::MAX_PAGE_SIZE).contains(&ps);
        (sane && (at == 0 || u64::from(ps) == at)).then_some(m)
    }

    /// The declared size, once the first `seen` bytes settle it, chosen as bbolt opens a file: the
    /// page size comes from meta 0 if it is usable, else from the first page size whose probe
    /// finds a usable meta 1; the size is the larger `pgid * page_size` of the two metas at 0 and
    /// one page in (both of a snapshot agree; a data-dir copy's newer meta may count more pages).
    /// `None` while undecided or when no usable meta is in `seen`.
    fn settled(&self, seen: u64) -> Option<u64> {
        let prefix = bbolt::META_PAGE_PREFIX as u64;
        if seen < prefix {
            return None;
        }
        let m0 = self.meta_at(0);
        let ps = match &m0 {
            Some(m) => u64::from(m.page_size),
            None => meta_offsets()
                .skip(1)
                .take_while(|off| off + prefix <= seen)
                .find(|off| self.meta_at(*off).is_some())?,
        };
        if seen < ps + prefix {
            return None;
        }
        let m0 = m0.filter(|m| u64::from(m.page_size) == ps);
        [m0, self.meta_at(ps)]
            .into_iter()
            .flatten()
            .map(|m| m.total_size())
            .max()
    }
}

impl<W: Write> Write for Declared<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.limit.is_none() {
            self.capture(buf);
        }
        let end = self.pos + buf.len() as u64;
        if self.limit.is_none() {
            if let Some(size) = self.settled(end) {
                self.limit = Some(size.saturating_add(self.slack));
            } else if end >= decide_at() {
                // Every candidate seen and none usable: keep what holds them, then stop.
                self.refused = Some(Refusal::NoMeta);
                self.limit = Some(decide_at());
            }
        }
        if let Some(limit) = self.limit {
            if end > limit {
                if self.refused.is_none() {
                    let declared = limit.saturating_sub(self.slack);
                    self.refused = Some(Refusal::Over {
                        declared,
                        slack: self.slack,
                    });
                }
                let room = limit.saturating_sub(self.pos) as usize;
                let take = buf.get(..room).unwrap_or(buf);
                self.inner.write_all(take)?;
                self.pos += take.len() as u64;
                return Err(io::Error::other("the stream is longer than its database"));
            }
        }
        self.inner.write_all(buf)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PS: usize = 4096;

    /// A database image of `pages` pages whose two metas are valid and count them all.
    fn db(pages: u64) -> Vec<u8> {
        bbolt::build::metas_only(PS, pages)
    }

    /// Feeds `data` in pieces of `chunk` bytes; returns what was written and why it stopped.
    fn feed(data: &[u8], chunk: usize, slack: u64) -> (Vec<u8>, Option<Refusal>, bool) {
        let mut w = Declared::new(Vec::new(), slack);
        let mut failed = false;
        for piece in data.chunks(chunk) {
            if w.write_all(piece).is_err() {
                failed = true;
                break;
            }
        }
        let refused = w.refusal();
        (w.into_inner(), refused, failed)
    }

    #[test]
    fn spool_stops_at_the_declared_size() {
        // 300 pages (1.2 MiB, past the point where every meta candidate has been seen).
        let img = db(300);
        let declared = img.len() as u64;
        let mut stream = img.clone();
        stream.extend_from_slice(&[7u8; 32]);
        for chunk in [1usize, 4095, 1 << 16, 1 << 20] {
            // The snapshot and its trailer pass whole.
            let (out, refused, failed) = feed(&stream, chunk, TRAILER_LEN);
            assert!(!failed && refused.is_none(), "chunk {chunk}");
            assert_eq!(out, stream);
            // One byte more is refused, and nothing past the limit is written.
            let mut longer = stream.clone();
            longer.extend_from_slice(&vec![0u8; 3 << 20]);
            let (out, refused, failed) = feed(&longer, chunk, TRAILER_LEN);
            assert!(failed, "chunk {chunk}");
            let slack = TRAILER_LEN;
            assert_eq!(refused, Some(Refusal::Over { declared, slack }));
            assert_eq!(out.len() as u64, declared + TRAILER_LEN);
        }
        // A database smaller than the probe range is cut at its own size too.
        let small = db(4);
        let mut longer = small.clone();
        longer.extend_from_slice(&vec![0u8; 3 << 20]);
        for chunk in [1usize, 4095, 1 << 16, 1 << 20] {
            let (out, refused, failed) = feed(&longer, chunk, TRAILER_LEN);
            assert!(failed, "chunk {chunk}");
            let declared = small.len() as u64;
            let slack = TRAILER_LEN;
            assert_eq!(refused, Some(Refusal::Over { declared, slack }));
            assert_eq!(out.len() as u64, declared + TRAILER_LEN, "chunk {chunk}");
        }
        // Meta 0 unusable: the size comes from meta 1, found by probing as bbolt does.
        let mut broken = small.clone();
        broken[16] ^= 0xff;
        broken.extend_from_slice(&vec![0u8; 3 << 20]);
        let (out, refused, _) = feed(&broken, 1 << 16, TRAILER_LEN);
        let declared = small.len() as u64;
        let slack = TRAILER_LEN;
        assert_eq!(refused, Some(Refusal::Over { declared, slack }));
        assert_eq!(out.len() as u64, declared + TRAILER_LEN);
        // A stream with no valid meta is kept only as far as bbolt looks for one.
        let junk = vec![1u8; 3 << 20];
        let mut w = Declared::new(Vec::new(), TRAILER_LEN);
        assert!(w.write_all(&junk).is_err());
        assert_eq!(w.refusal(), Some(Refusal::NoMeta));
        assert_eq!(w.written(), decide_at());
        assert_eq!(w.into_inner().len() as u64, decide_at());
    }

    #[test]
    fn too_long_reads_as_one_line() {
        let e = too_long("stdin", 8192, TRAILER_LEN);
        assert_eq!(e.code, ExitCode::Integrity);
        assert_eq!(
            e.to_string(),
            "stdin: the data goes on past the 8192 bytes its meta page declares (+ the 32-byte \
             SHA-256 trailer): not a snapshot; stopped spooling"
        );
        let e = too_long("x", 8192, BBOLT_ALLOC_SIZE);
        assert!(e
            .to_string()
            .contains("(+ 16777216 bytes bbolt may preallocate)"));
    }
}
