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

/// Whether a stream of `len` bytes ends in a trailer, by etcd's rule.
pub fn has_trailer(len: u64) -> bool {
    len % 512 == 32
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
pub fn copy_hashing(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<(u64, Trailer), CopyError> {
    let mut hasher = Sha256::new();
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let chunk = &buf[..n];
        writer.write_all(chunk).map_err(CopyError::Write)?;
        total += n as u64;
        if chunk.len() >= 32 {
            hasher.update(&tail);
            hasher.update(&chunk[..chunk.len() - 32]);
            tail.clear();
            tail.extend_from_slice(&chunk[chunk.len() - 32..]);
        } else {
            tail.extend_from_slice(chunk);
            if tail.len() > 32 {
                let extra = tail.len() - 32;
                hasher.update(&tail[..extra]);
                tail.drain(..extra);
            }
        }
        if !progress(total) {
            return Err(CopyError::Stopped);
        }
    }
    writer.flush().map_err(CopyError::Write)?;
    let trailer = match <[u8; 32]>::try_from(tail.as_slice()) {
        Ok(stored) if has_trailer(total) => compare(hasher.finalize().into(), stored),
        _ => Trailer::Absent,
    };
    Ok((total, trailer))
}

/// Checks the trailer of a file of `len` bytes in place.
pub fn file_trailer(file: &File, len: u64) -> io::Result<Trailer> {
    if !has_trailer(len) {
        return Ok(Trailer::Absent);
    }
    let data_len = len - 32;
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
