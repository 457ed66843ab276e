//! Getting a snapshot into a readable form: a raw file is read in place; anything else (stdin,
//! zstd, age) is peeled and spooled to an unnamed temporary file (`O_TMPFILE` or unlinked at once,
//! mode 0600: gone even if the process is killed), hashing it on the way, so memory stays flat
//! whatever the size. The spool never grows past the size the database's own meta page declares
//! (plus the trailer), so a stream that keeps going (nested zstd bombs, a crafted age file) cannot
//! fill the temporary directory.

use etcd_common::codec::declared::{self, Declared, Refusal};
use etcd_common::codec::decode::{self, Identity, Layer};
use etcd_common::codec::trailer::{self, CopyError};
use etcd_common::{Error, ExitCode, Result};
use std::fs::File;
use std::io::{self, Read};

pub use etcd_common::codec::trailer::Trailer;

pub use etcd_common::codec::input::{open, Input};

/// A stream spooled to a temporary file.
pub struct Spooled {
    /// The temporary file holding the raw database (and trailer).
    pub file: File,
    /// The trailer check.
    pub trailer: Trailer,
    /// Layers peeled off, outermost first.
    pub layers: Vec<Layer>,
}

pub use etcd_common::codec::declared::BBOLT_ALLOC_SIZE;

/// How far past the database's declared size a spooled stream may go: the 32-byte SHA-256 trailer
/// of a `snapshot save` stream, or, with `--skip-hash-check` (a db copied from a data dir), bbolt's
/// preallocation.
pub fn spool_slack(skip_hash_check: bool) -> u64 {
    declared::slack(skip_hash_check)
}

/// Peels `stream`'s layers and copies the raw snapshot into an unnamed temporary file, hashing all
/// but the last 32 bytes as they pass. The copy stops with an integrity error (exit 4) as soon as
/// the stream goes `slack` bytes past the size its meta page declares (see [`spool_slack`]).
pub fn spool(
    stream: Box<dyn Read>,
    identities: &[Identity],
    name: &str,
    slack: u64,
) -> Result<Spooled> {
    let mut decoded = decode::peel(stream, identities, name)?;
    // Unnamed (O_TMPFILE, or created and unlinked at once) and 0600 whatever the umask.
    let file = etcd_common::codec::spool::unnamed_file().map_err(|e| {
        Error::io(
            "creating a temporary file to spool the snapshot (set TMPDIR?)",
            &e,
        )
    })?;
    let mut out = Declared::new(io::BufWriter::with_capacity(1 << 20, &file), slack);
    let copied = trailer::copy_hashing(&mut decoded.reader, &mut out, &mut |_| true);
    let refused = out.refusal();
    drop(out);
    let trailer = match copied {
        Ok((_, trailer)) => trailer,
        Err(CopyError::Read(e)) => return Err(decode::read_error(name, &decoded.layers, &e)),
        Err(CopyError::Write(e)) => match refused {
            // Not a database: what was spooled holds the meta pages, and opening it says why.
            Some(Refusal::NoMeta) => Trailer::Absent,
            Some(Refusal::Over { declared, slack }) => {
                return Err(declared::too_long(name, declared, slack))
            }
            None => return Err(Error::io("writing the temporary spool file", &e)),
        },
        Err(CopyError::Stopped) => return Err(Error::new(ExitCode::Interrupted, "interrupted")),
    };
    Ok(Spooled {
        file,
        trailer,
        layers: decoded.layers,
    })
}

/// The error for a snapshot whose trailer does not match.
pub fn mismatch_error(name: &str, computed: &str, stored: &str) -> Error {
    Error::new(
        ExitCode::Integrity,
        format!(
            "{name}: SHA-256 mismatch: the data hashes to {computed} but the trailer says {stored}"
        ),
    )
}

/// Maps an I/O error of reading a raw file.
pub fn read_failure(name: &str, e: &io::Error) -> Error {
    Error::io(format!("reading {name}"), e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const PS: usize = 4096;

    /// A database image of `pages` pages whose two metas are valid and count them all.
    fn db(pages: u64) -> Vec<u8> {
        let mut img = vec![0u8; pages as usize * PS];
        for (m, txid) in [(0usize, 2u64), (1, 1)] {
            let off = m * PS;
            img[off..off + 8].copy_from_slice(&(m as u64).to_le_bytes());
            img[off + 8..off + 10].copy_from_slice(&bbolt::META_PAGE_FLAG.to_le_bytes());
            let fields: [(usize, u64); 5] =
                [(32, 2), (40, 0), (48, u64::MAX), (56, pages), (64, txid)];
            img[off + 16..off + 20].copy_from_slice(&bbolt::MAGIC.to_le_bytes());
            img[off + 20..off + 24].copy_from_slice(&bbolt::VERSION.to_le_bytes());
            img[off + 24..off + 28].copy_from_slice(&(PS as u32).to_le_bytes());
            for (at, v) in fields {
                img[off + at..off + at + 8].copy_from_slice(&v.to_le_bytes());
            }
            let sum = bbolt::fnv1a64(&img[off + 16..off + 72]);
            img[off + 72..off + 80].copy_from_slice(&sum.to_le_bytes());
        }
        img
    }

    #[test]
    fn spool_file_is_unnamed_and_private() {
        let img = db(4);
        let spooled = spool(Box::new(io::Cursor::new(img.clone())), &[], "test", 32).unwrap();
        let meta = spooled.file.metadata().unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 0, "the spool file must have no name");
        assert_eq!(meta.len(), img.len() as u64);
    }
}
