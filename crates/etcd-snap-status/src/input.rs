//! Getting a snapshot into a readable form: a raw file is read in place; anything else (stdin,
//! zstd, age) is peeled and spooled to an unnamed temporary file (gone even if the process is
//! killed), hashing it on the way, so memory stays flat whatever the size.

use etcd_common::codec::decode::{self, Identity, Layer};
use etcd_common::codec::trailer::{self, CopyError};
use etcd_common::{Error, ExitCode, Result};
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use etcd_common::codec::trailer::Trailer;

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
        return Ok(Input::Stream(decode::stdin()));
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
        if decode::is_raw_database(&head[..n]) {
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
    let mut decoded = decode::peel(stream, identities, name)?;
    let file = tempfile::tempfile().map_err(|e| {
        Error::io(
            "creating a temporary file to spool the snapshot (set TMPDIR?)",
            &e,
        )
    })?;
    let mut out = io::BufWriter::with_capacity(1 << 20, &file);
    let (_, trailer) = match trailer::copy_hashing(&mut decoded.reader, &mut out, &mut |_| true) {
        Ok(done) => done,
        Err(CopyError::Read(e)) => return Err(decode::read_error(name, &decoded.layers, &e)),
        Err(CopyError::Write(e)) => return Err(Error::io("writing the temporary spool file", &e)),
        Err(CopyError::Stopped) => return Err(Error::new(ExitCode::Interrupted, "interrupted")),
    };
    drop(out);
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
