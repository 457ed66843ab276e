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
    let mut total = 0u64;
    loop {
        let mut buf = returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        // A whole chunk for the hasher (fewer hand-offs: a pipe gives at most its buffer per
        // read), but each piece is written as soon as it is read, while it is still in the CPU's
        // cache: writing a whole cold MiB costs the kernel's copy into the page cache twice as
        // much (measured: `cat F | dd bs=1M iflag=fullblock` 2.1 s of system time per GiB, 0.9 s
        // with 128 KiB blocks).
        let mut n = 0;
        while n < CHUNK {
            let end = (n + PIECE).min(CHUNK);
            match reader.read(&mut buf[n..end]) {
                Ok(0) => break,
                Ok(k) => {
                    writer.write_all(&buf[n..n + k]).map_err(CopyError::Write)?;
                    n += k;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            }
        }
        if n == 0 {
            return Ok(total);
        }
        buf.truncate(n);
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
///
/// A second thread reads the file ahead while this one hashes, so the copy out of the page cache
/// (about a fifth of the hash's time) is not on the hash's path: on a warm file this runs at the
/// speed of SHA-256 alone. A few chunks of [`CHUNK`] bytes are in memory (see [`AHEAD`]).
pub fn file_trailer(file: &File, len: u64) -> io::Result<Trailer> {
    if !has_trailer(len) {
        return Ok(Trailer::Absent);
    }
    let data_len = len - TRAILER_LEN;
    let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(AHEAD);
    let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut hasher = Sha256::new();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut offset = 0u64;
            while offset < data_len {
                let want = CHUNK.min(usize::try_from(data_len - offset).unwrap_or(CHUNK));
                let mut buf = returned.try_recv().unwrap_or_default();
                buf.resize(want, 0);
                let read = file.read_exact_at(&mut buf, offset).map(|()| buf);
                let failed = read.is_err();
                // The hasher hung up (it failed): nothing left to do.
                if to_hasher.send(read).is_err() || failed {
                    return;
                }
                offset += want as u64;
            }
        });
        // `chunks` is moved in, so that an early return hangs up on the reader before the join.
        let hash_all = move |hasher: &mut Sha256| {
            let mut hashed = 0u64;
            while hashed < data_len {
                let chunk = chunks
                    .recv()
                    .map_err(|_| io::Error::other("the reading thread stopped"))??;
                hasher.update(&chunk);
                hashed += chunk.len() as u64;
                let _ = give_back.send(chunk);
            }
            Ok::<_, io::Error>(())
        };
        hash_all(&mut hasher)
    })?;
    let mut stored = [0u8; 32];
    file.read_exact_at(&mut stored, data_len)?;
    Ok(compare(hasher.finalize().into(), stored))
}

/// The size of the chunks [`file_trailer`] reads and [`copy_hashing`] hands to its hasher.
const CHUNK: usize = 1 << 20;
/// The most [`copy_hashing`] reads (and then writes) at once: small enough to stay in the CPU's
/// cache between the read and the write.
const PIECE: usize = 128 << 10;
/// How many chunks [`file_trailer`] reads ahead of the hash (one more is being read and one
/// hashed).
const AHEAD: usize = 4;

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

    #[test]
    fn file_trailer_checks_files_of_many_chunks() {
        // Several chunks and a partial one, so the read-ahead thread hands over more than it holds.
        let data: Vec<u8> = (0..(3 * CHUNK + 4096) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        let file_of = |bytes: &[u8]| {
            let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
            std::io::Write::write_all(&mut f, bytes).unwrap_or_else(|e| panic!("write: {e}"));
            f
        };
        let good = with_trailer(&data);
        assert!(has_trailer(good.len() as u64));
        let f = file_of(&good);
        let want = hex(&Sha256::digest(&data));
        assert_eq!(
            file_trailer(&f, good.len() as u64).unwrap_or_else(|e| panic!("{e}")),
            Trailer::Verified(want)
        );
        let mut bad = good.clone();
        bad[2 * CHUNK + 7] ^= 1;
        let f = file_of(&bad);
        assert!(matches!(
            file_trailer(&f, bad.len() as u64),
            Ok(Trailer::Mismatch { .. })
        ));
        // The file is shorter than the length given: an error, not a hang.
        let f = file_of(&good[..CHUNK]);
        assert!(file_trailer(&f, good.len() as u64).is_err());
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
