//! Getting a snapshot into a readable form: a raw file is read in place; anything else (stdin,
//! zstd, age) is peeled and spooled to an unnamed temporary file (gone even if the process is
//! killed), hashing it on the way, so memory stays flat whatever the size.

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
