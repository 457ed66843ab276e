//! Where the bytes come from: a file read with positioned reads, or a buffer in memory.
//!
//! Why it exists: the reader must not `mmap` (a file truncated under a mapping kills the process with
//! SIGBUS, and a mapping of a 1 GiB file counts toward resident memory as it is touched). Positioned
//! reads turn a shrunken file into an ordinary I/O error. The in-memory forms serve fuzzing and
//! tests; the sparse one stands for a huge sparse file (a few real bytes, then zeros), so a fuzzer
//! can reach the lengths a hostile file on disk can claim without holding them in memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A read-only byte source of known length.
#[derive(Debug)]
pub(crate) enum Source {
    /// A file opened read-only; `len` is its size when opened.
    File { file: File, len: u64 },
    /// The editor's storage (a file or a test's recording of one); `len` is its size when opened.
    Storage {
        /// Where the bytes are.
        io: Arc<dyn crate::write::Storage>,
        /// Its length when opened.
        len: u64,
    },
    /// A file another thread is still writing front to back (a snapshot being spooled): a read
    /// waits until the bytes it wants are written, or fails once the writer is done without them.
    Growing {
        /// The file, open for reading.
        file: File,
        /// How far the writer has got.
        written: Arc<Written>,
    },
    /// Bytes held in memory.
    Memory(Arc<[u8]>),
    /// Bytes held in memory followed by zeros up to `len`, like a sparse file.
    Sparse {
        /// The leading bytes.
        head: Arc<[u8]>,
        /// Total length (at least `head.len()`).
        len: u64,
    },
}

impl Source {
    /// Length in bytes (for a file: at open time).
    pub(crate) fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } | Source::Storage { len, .. } => *len,
            // Not known until the writer is done; reads past the end fail then.
            Source::Growing { .. } => u64::MAX,
            Source::Memory(b) => b.len() as u64,
            Source::Sparse { head, len } => (*len).max(head.len() as u64),
        }
    }

    /// Fills `buf` from byte `offset`; a short source is an `UnexpectedEof` error.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Source::File { file, .. } => file.read_exact_at(buf, offset),
            Source::Growing { file, written } => {
                let end = offset.checked_add(buf.len() as u64).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of data")
                })?;
                written.wait_for(end)?;
                file.read_exact_at(buf, offset)
            }
            Source::Storage { io, .. } => io.read_exact_at(buf, offset),
            Source::Memory(b) => {
                let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of data");
                let start = usize::try_from(offset).map_err(|_| eof())?;
                let end = start.checked_add(buf.len()).ok_or_else(eof)?;
                let src = b.get(start..end).ok_or_else(eof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
            Source::Sparse { head, .. } => {
                let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of data");
                let end = offset.checked_add(buf.len() as u64).ok_or_else(eof)?;
                if end > self.len() {
                    return Err(eof());
                }
                buf.fill(0);
                let from = usize::try_from(offset).unwrap_or(usize::MAX);
                if let Some(src) = head.get(from..) {
                    let n = src.len().min(buf.len());
                    buf[..n].copy_from_slice(&src[..n]);
                }
                Ok(())
            }
        }
    }

    /// Reads up to `buf.len()` bytes from `offset`, stopping early only at the end of the source.
    /// Returns the number of bytes read.
    pub(crate) fn read_at_most(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let avail = self.len().saturating_sub(offset);
        let n = buf.len().min(usize::try_from(avail).unwrap_or(usize::MAX));
        let Some(head) = buf.get_mut(..n) else {
            return Ok(0);
        };
        self.read_exact_at(head, offset)?;
        Ok(n)
    }
}

/// How many bytes of a [`Source::Growing`] file are written, and whether the writer is done: the
/// writer calls [`Written::advance`] after each write that reached the file and [`Written::finish`]
/// once (also when it fails: readers must never wait forever).
#[derive(Debug, Default)]
pub struct Written {
    state: Mutex<(u64, bool)>,
    more: Condvar,
}

impl Written {
    /// Nothing written yet.
    pub fn new() -> Written {
        Written::default()
    }

    fn lock(&self) -> MutexGuard<'_, (u64, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file now holds `bytes` bytes.
    pub fn advance(&self, bytes: u64) {
        let mut st = self.lock();
        st.0 = st.0.max(bytes);
        self.more.notify_all();
    }

    /// The writer is done: nothing more will be written.
    pub fn finish(&self) {
        let mut st = self.lock();
        st.1 = true;
        self.more.notify_all();
    }

    /// Waits until `end` bytes are written; an `UnexpectedEof` error when the writer finished
    /// short of that.
    fn wait_for(&self, end: u64) -> io::Result<()> {
        let mut st = self.lock();
        loop {
            if st.0 >= end {
                return Ok(());
            }
            if st.1 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the spooled stream",
                ));
            }
            st = self.more.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}
