//! The SHA-256 trailer that `snapshot save` appends to the database: found and checked while the
//! bytes are copied (the last 32 bytes are held back until the end shows they are the trailer), or
//! read back from a file. etcd's rule decides whether there is one: `size % 512 == 32`.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

/// What the trailer check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trailer {
    /// Present, and the SHA-256 (hex) of the data matches it.
    Verified(String),
    /// Present but different.
    Mismatch {
        /// SHA-256 of the data, hex.
        computed: String,
        /// The trailer, hex.
        stored: String,
    },
    /// No trailer (e.g. a db file copied from a data dir).
    Absent,
}

/// Length of the trailer: a SHA-256.
pub const TRAILER_LEN: u64 = 32;
/// etcd's rule: a snapshot with a trailer is `TRAILER_LEN` bytes past a multiple of this
/// (`hasChecksum := (size % 512) == sha256.Size` in etcd's snapshot restore).
const TRAILER_ALIGN: u64 = 512;

/// Whether a stream of `len` bytes ends in a trailer, by etcd's rule.
pub fn has_trailer(len: u64) -> bool {
    len % TRAILER_ALIGN == TRAILER_LEN
}

/// A failed copy: which side failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the input failed.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
    /// The callback asked to stop.
    Stopped,
}

/// Copies `reader` to `writer` whole, hashing all but the last 32 bytes; `progress` sees the byte
/// count after every chunk and stops the copy by returning `false`. Returns bytes copied and the
/// trailer check.
///
/// The hash runs on a second thread while this one reads and writes, so a copy costs about as much
/// wall time as the slower of the two, not their sum (SHA-256 alone is ~0.5 s per GiB).
pub fn copy_hashing(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<(u64, Trailer), CopyError> {
    // A few chunks in flight bound the memory; buffers come back for reuse.
    let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut held = Holdback::default();
            while let Ok(chunk) = chunks.recv() {
                held.update(&chunk);
                let _ = give_back.send(chunk);
            }
            held
        });
        let copied = copy_chunks(reader, writer, progress, &to_hasher, &returned);
        drop(to_hasher);
        let held = hasher.join();
        let total = copied?;
        let held =
            held.map_err(|_| CopyError::Read(io::Error::other("the hashing thread failed")))?;
        writer.flush().map_err(CopyError::Write)?;
        Ok((total, held.finish(total)))
    })
}

/// The read-write loop of [`copy_hashing`]: every chunk read is written, then handed to the hasher.
fn copy_chunks(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &mut dyn FnMut(u64) -> bool,
    to_hasher: &std::sync::mpsc::SyncSender<Vec<u8>>,
    returned: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<u64, CopyError> {
    const CHUNK: usize = 1 << 20;
    let mut total = 0u64;
    loop {
        let mut buf = returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        let n = loop {
            match reader.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            }
        };
        if n == 0 {
            return Ok(total);
        }
        buf.truncate(n);
        writer.write_all(&buf).map_err(CopyError::Write)?;
        total += n as u64;
        if to_hasher.send(buf).is_err() {
            return Err(CopyError::Read(io::Error::other(
                "the hashing thread stopped",
            )));
        }
        if !progress(total) {
            return Err(CopyError::Stopped);
        }
    }
}

/// SHA-256 of everything but the last 32 bytes seen, which are kept as the trailer candidate.
#[derive(Default)]
struct Holdback {
    hasher: Sha256,
    tail: Vec<u8>,
}

impl Holdback {
    fn update(&mut self, chunk: &[u8]) {
        if chunk.len() >= 32 {
            self.hasher.update(&self.tail);
            self.hasher.update(&chunk[..chunk.len() - 32]);
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - 32..]);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > 32 {
                let extra = self.tail.len() - 32;
                self.hasher.update(&self.tail[..extra]);
                self.tail.drain(..extra);
            }
        }
    }

    fn finish(self, total: u64) -> Trailer {
        match <[u8; 32]>::try_from(self.tail.as_slice()) {
            Ok(stored) if has_trailer(total) => compare(self.hasher.finalize().into(), stored),
            _ => Trailer::Absent,
        }
    }
}

/// Checks the trailer of a file of `len` bytes in place.
pub fn file_trailer(file: &File, len: u64) -> io::Result<Trailer> {
    if !has_trailer(len) {
        return Ok(Trailer::Absent);
    }
    let data_len = len - TRAILER_LEN;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < data_len {
        let want = buf.len().min((data_len - offset) as usize);
        file.read_exact_at(&mut buf[..want], offset)?;
        hasher.update(&buf[..want]);
        offset += want as u64;
    }
    let mut stored = [0u8; 32];
    file.read_exact_at(&mut stored, data_len)?;
    Ok(compare(hasher.finalize().into(), stored))
}

fn compare(computed: [u8; 32], stored: [u8; 32]) -> Trailer {
    if computed == stored {
        Trailer::Verified(hex(&computed))
    } else {
        Trailer::Mismatch {
            computed: hex(&computed),
            stored: hex(&stored),
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_trailer(data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        out.extend_from_slice(&Sha256::digest(data));
        out
    }

    #[test]
    fn finds_the_trailer_whatever_the_chunking() {
        let data = vec![5u8; 4096];
        let stream = with_trailer(&data);
        for chunk in [1usize, 7, 31, 32, 33, 4096, 1 << 20] {
            let mut reader = ChunkedReader {
                data: &stream,
                chunk,
            };
            let mut out = Vec::new();
            let (n, trailer) = copy_hashing(&mut reader, &mut out, &mut |_| true)
                .unwrap_or_else(|_| panic!("copy"));
            assert_eq!(n, stream.len() as u64);
            assert_eq!(out, stream);
            assert!(matches!(trailer, Trailer::Verified(_)), "chunk {chunk}");
        }
        let mut bad = stream.clone();
        bad[10] ^= 1;
        let (_, trailer) = copy_hashing(&mut &bad[..], &mut Vec::new(), &mut |_| true)
            .unwrap_or_else(|_| panic!("copy"));
        assert!(matches!(trailer, Trailer::Mismatch { .. }));
        let (_, trailer) = copy_hashing(&mut &data[..], &mut Vec::new(), &mut |_| true)
            .unwrap_or_else(|_| panic!("copy"));
        assert_eq!(trailer, Trailer::Absent);
    }

    struct ChunkedReader<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for ChunkedReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
}
