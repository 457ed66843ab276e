//! Getting a snapshot into a readable form: a raw file is read in place; anything else (stdin,
//! zstd, age) is peeled and spooled to an unnamed temporary file (gone even if the process is
//! killed), hashing it on the way, so memory stays flat whatever the size.

use etcd_common::codec::decode::{self, Identity, Layer};
use etcd_common::{Error, ExitCode, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The SHA-256 trailer `snapshot save` appends, and what we found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trailer {
    /// Present and equal to the SHA-256 of the data.
    Verified(String),
    /// Present but different.
    Mismatch {
        /// SHA-256 of the data, hex.
        computed: String,
        /// The trailer, hex.
        stored: String,
    },
    /// No trailer: the size is not a database plus 32 bytes (etcd's rule: `size % 512 == 32`).
    Absent,
}

/// The input, ready to read.
pub enum Input {
    /// A regular file holding a raw database: read in place.
    RawFile {
        /// The open file.
        file: File,
        /// Its size.
        len: u64,
    },
    /// Anything else: read once, front to back.
    Stream(Box<dyn Read>),
}

/// Opens `path` (or stdin) and decides how to read it.
pub fn open(path: Option<&Path>) -> Result<Input> {
    let Some(path) = path else {
        if io::stdin().is_terminal() {
            return Err(Error::usage(
                "no snapshot given: name a FILE or pipe one in (e.g. zstd -dc snap.db.zst | etcd-snap-status)",
            ));
        }
        return Ok(Input::Stream(Box::new(io::stdin())));
    };
    let shown = path.display();
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::usage(format!("{shown}: no such file")),
        _ => Error::io(format!("opening {shown}"), &e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {shown}"), &e))?;
    if meta.is_dir() {
        return Err(Error::usage(format!(
            "{shown} is a directory, not a snapshot"
        )));
    }
    if meta.is_file() {
        let mut head = [0u8; 64];
        let n = read_at_most(&file, &mut head, 0)
            .map_err(|e| Error::io(format!("reading {shown}"), &e))?;
        // A zstd frame can carry the meta page's first bytes verbatim, magic included: zstd first.
        if n >= 20
            && head[..4] != [0x28, 0xb5, 0x2f, 0xfd]
            && head[16..20] == [0xed, 0xda, 0x0c, 0xed]
        {
            return Ok(Input::RawFile {
                file,
                len: meta.len(),
            });
        }
    }
    Ok(Input::Stream(Box::new(file)))
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks the trailer of a raw file: SHA-256 of all but the last 32 bytes against those bytes.
pub fn file_trailer(file: &File, len: u64) -> io::Result<Trailer> {
    if len % 512 != 32 {
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

/// A stream spooled to a temporary file.
pub struct Spooled {
    /// The temporary file holding the raw database (and trailer).
    pub file: File,
    /// The trailer check.
    pub trailer: Trailer,
    /// Layers peeled off, outermost first.
    pub layers: Vec<Layer>,
}

/// Peels `stream`'s layers and copies the raw snapshot into an unnamed temporary file, hashing all
/// but the last 32 bytes as they pass.
pub fn spool(stream: Box<dyn Read>, identities: &[Identity], name: &str) -> Result<Spooled> {
    let decoded = decode::peel(stream, identities, name)?;
    let layers = decoded.layers;
    let mut reader = decoded.reader;
    let file = tempfile::tempfile().map_err(|e| {
        Error::io(
            "creating a temporary file to spool the snapshot (set TMPDIR?)",
            &e,
        )
    })?;
    let mut out = io::BufWriter::with_capacity(1 << 20, &file);
    let mut hasher = Sha256::new();
    // The last 32 bytes seen: the trailer, if this is the end.
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(decode::read_error(name, &layers, &e)),
        };
        let chunk = &buf[..n];
        out.write_all(chunk)
            .map_err(|e| Error::io("writing the temporary spool file", &e))?;
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
    }
    out.flush()
        .map_err(|e| Error::io("writing the temporary spool file", &e))?;
    drop(out);
    let trailer = match <[u8; 32]>::try_from(tail.as_slice()) {
        Ok(stored) if total % 512 == 32 => compare(hasher.finalize().into(), stored),
        _ => Trailer::Absent,
    };
    Ok(Spooled {
        file,
        trailer,
        layers,
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
