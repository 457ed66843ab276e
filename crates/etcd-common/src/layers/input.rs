//! Opening the snapshot that status and restore read, given as `FILE` or `-`: a regular file holding
//! a raw database is read in place (random access, or a kernel copy); anything else (stdin, zstd,
//! age) is a stream to peel and read front to back.

use super::decode;
use crate::{Error, Result};
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

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

/// Opens `path` (or stdin, which must not be a terminal) and decides how to read it; also returns
/// the name to use in messages (the path, or `stdin`).
pub fn open(path: Option<&Path>) -> Result<(Input, String)> {
    let Some(path) = path else {
        if io::stdin().is_terminal() {
            return Err(Error::usage(
                "no snapshot given: name a FILE or pipe one in (e.g. zstd -dc snap.db.zst | ... -)",
            ));
        }
        return Ok((Input::Stream(decode::stdin()), "stdin".into()));
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
            let len = meta.len();
            return Ok((Input::RawFile { file, len }, shown.to_string()));
        }
    }
    Ok((Input::Stream(Box::new(file)), shown.to_string()))
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

impl Input {
    /// The input as a plain reader (a raw file read front to back).
    pub fn into_reader(self) -> Box<dyn Read> {
        match self {
            Input::RawFile { file, .. } => Box::new(file),
            Input::Stream(reader) => reader,
        }
    }
}
