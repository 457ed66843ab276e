//! Opening a snapshot the way every offline tool does: a raw file is read in place (its SHA-256
//! trailer hashed while the consistency check walks the trees); anything else (stdin, zstd, age) is
//! peeled and spooled to an unnamed temporary file (`O_TMPFILE` or unlinked at once, mode 0600: gone
//! even if the process is killed), hashing it on the way, so memory stays flat whatever the size.
//! The spool never grows past the size the database's own meta page declares (plus the trailer),
//! so a stream that keeps going (nested zstd bombs, a crafted age file) cannot fill the temporary
//! directory. Then bbolt's check, etcd-db's analysis, and what the caller reads from the database;
//! for a stream, the check and the analysis run while it is spooled (a read waits for its bytes).

use crate::layers::declared::{self, Declared, Refusal};
use crate::layers::decode::{self, Identity, Layer};
use crate::layers::input::{self, Input};
use crate::layers::trailer::{self, CopyError, Trailer};
use crate::{Error, ExitCode, Result};
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

/// Where a snapshot comes from and how to read it: what `open_verified` needs.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The file, or `None` for stdin.
    pub input: Option<&'a std::path::Path>,
    /// age identity files.
    pub identities: &'a [String],
    /// Accept a database without the SHA-256 trailer.
    pub skip_hash_check: bool,
}

/// A verified snapshot, and what the caller read from its database.
#[derive(Debug)]
pub struct Opened<T> {
    /// What etcd-db found in it.
    pub analysis: etcd_db::Analysis,
    /// The trailer check (never a mismatch: that is an error).
    pub trailer: Trailer,
    /// Layers peeled off the input, outermost first.
    pub layers: Vec<Layer>,
    /// What `then` returned.
    pub read: T,
}

/// Opens the snapshot (file or stdin; raw, zstd or age), runs the consistency check and the
/// analysis, then `then` on the database (`name` names the input for errors), and checks the
/// SHA-256 trailer; a raw file is hashed while the rest runs. Shared by `etcd-snap-get`, so that
/// every offline tool reads and verifies its input the same way.
pub fn open_verified<T>(
    source: Source<'_>,
    then: impl FnOnce(&bbolt::Db, &str) -> Result<T>,
) -> Result<Opened<T>> {
    let identities = decode::load_identities(source.identities)?;
    let (input, name) = input::open(source.input)?;
    let skip = source.skip_hash_check;
    let (analysis, read, trailer, layers) = match input {
        Input::RawFile { file, len } => std::thread::scope(|scope| {
            // The trailer hash reads the file front to back while the check walks its trees.
            // --skip-hash-check skips the hash too: that is most of the time on a large file.
            let to_hash = &file;
            let hashing = scope.spawn(move || match skip {
                true => Ok(Trailer::Absent),
                false => trailer::file_trailer(to_hash, len),
            });
            let analysed = file
                .try_clone()
                .map_err(|e| read_failure(&name, &e))
                .and_then(|f| analyze(bbolt::Db::from_file(f), &name, then));
            let trailer = match hashing.join() {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err(read_failure(&name, &e)),
                Err(_) => Err(Error::new(
                    ExitCode::LocalIo,
                    format!("{name}: hashing failed"),
                )),
            };
            let (analysis, read) = analysed?;
            Ok::<_, Error>((analysis, read, trailer?, Vec::new()))
        })?,
        Input::Stream(stream) => {
            let mut decoded = decode::peel(stream, &identities, &name)?;
            let file = spool_file()?;
            // The analysis runs while the stream is spooled, reading each page as soon as it is
            // written (a snapshot's pages are mostly in file order), so that little is left to
            // read once the stream ends. Its result counts only if the spooled file then opens as
            // a database; on any failure the whole file is analysed again, the way a file is, so
            // that every error is the one a file gets.
            let written = Arc::new(bbolt::Written::new());
            let early_file = file.try_clone().map_err(|e| read_failure(&name, &e))?;
            let early_written = Arc::clone(&written);
            let (copied, early) = std::thread::scope(|scope| {
                let early = scope.spawn(move || {
                    let db = bbolt::Db::from_growing_file(early_file, early_written).ok()?;
                    etcd_db::analyze(&db).ok()
                });
                let copied = {
                    // Also on an error or a panic: the analysis must never wait for more.
                    let _finish = FinishOnDrop(&written);
                    copy_to_spool(
                        &mut decoded.reader,
                        &decoded.layers,
                        &file,
                        &name,
                        spool_slack(skip),
                        &|n| written.advance(n),
                    )
                };
                (copied, early.join().ok().flatten())
            });
            let trailer = copied?;
            let db = bbolt::Db::from_file(file);
            let (analysis, read) = match early {
                Some(analysis) => {
                    let db = open_error(db, &name)?;
                    let read = then(&db, &name)?;
                    (analysis, read)
                }
                None => analyze(db, &name, then)?,
            };
            (analysis, read, trailer, decoded.layers)
        }
    };
    match &trailer {
        Trailer::Mismatch { computed, stored } => {
            return Err(mismatch_error(&name, computed, stored))
        }
        Trailer::Absent if !skip => {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("{name}: no SHA-256 trailer: not a whole `snapshot save` output (truncated?); a db file copied from a data dir needs --skip-hash-check"),
            ))
        }
        _ => {}
    }
    Ok(Opened {
        analysis,
        trailer,
        layers,
        read,
    })
}

/// Marks a spool's [`bbolt::Written`] finished when dropped.
struct FinishOnDrop<'a>(&'a bbolt::Written);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The database, or the error for a file that does not open as one.
fn open_error(db: bbolt::Result<bbolt::Db>, name: &str) -> Result<bbolt::Db> {
    db.map_err(|e| match e {
        bbolt::Error::Io { .. } => Error::new(ExitCode::LocalIo, format!("{name}: {e}")),
        other => Error::new(
            ExitCode::Integrity,
            format!("{name}: not a valid snapshot: {other}"),
        ),
    })
}

fn analyze<T>(
    db: bbolt::Result<bbolt::Db>,
    name: &str,
    then: impl FnOnce(&bbolt::Db, &str) -> Result<T>,
) -> Result<(etcd_db::Analysis, T)> {
    let db = open_error(db, name)?;
    let analysis = etcd_db::analyze(&db).map_err(|e| db_error(name, e))?;
    let read = then(&db, name)?;
    Ok((analysis, read))
}

/// Maps an error of reading the database: I/O (and the sort spill) is exit 6, a revision
/// outside what the database holds is a usage error (2), anything else is damage (exit 4).
pub fn db_error(name: &str, e: etcd_db::Error) -> Error {
    match e {
        etcd_db::Error::Bbolt(bbolt::Error::Io { .. }) => {
            Error::new(ExitCode::LocalIo, format!("{name}: {e}"))
        }
        etcd_db::Error::Spill(_) => Error::new(ExitCode::LocalIo, format!("{name}: {e}")),
        etcd_db::Error::Compacted { .. } | etcd_db::Error::FutureRevision { .. } => {
            Error::usage(format!("{name}: {e}"))
        }
        other => Error::new(ExitCode::Integrity, format!("{name}: {other}")),
    }
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
    let file = spool_file()?;
    let trailer = copy_to_spool(
        &mut decoded.reader,
        &decoded.layers,
        &file,
        name,
        slack,
        &|_| {},
    )?;
    Ok(Spooled {
        file,
        trailer,
        layers: decoded.layers,
    })
}

/// An unnamed (`O_TMPFILE`, or created and unlinked at once) temporary file, 0600 whatever the
/// umask.
fn spool_file() -> Result<File> {
    crate::layers::spool::unnamed_file().map_err(|e| {
        Error::io(
            "creating a temporary file to spool the snapshot (set TMPDIR?)",
            &e,
        )
    })
}

/// Copies the peeled stream into `file`, hashing it; `written` sees how many bytes the file holds
/// after each write (the chunks are 1 MiB, so they go to the file unbuffered).
fn copy_to_spool(
    reader: &mut dyn Read,
    layers: &[Layer],
    file: &File,
    name: &str,
    slack: u64,
    written: &dyn Fn(u64),
) -> Result<Trailer> {
    let mut out = Declared::new(file, slack);
    let copied = trailer::copy_hashing(reader, &mut out, &mut |n| {
        written(n);
        true
    });
    let refused = out.refusal();
    drop(out);
    match copied {
        Ok((_, trailer)) => Ok(trailer),
        Err(CopyError::Read(e)) => Err(decode::read_error(name, layers, &e)),
        Err(CopyError::Write(e)) => match refused {
            // Not a database: what was spooled holds the meta pages, and opening it says why.
            Some(Refusal::NoMeta) => Ok(Trailer::Absent),
            Some(Refusal::Over { declared, slack }) => {
                Err(declared::too_long(name, declared, slack))
            }
            None => Err(Error::io("writing the temporary spool file", &e)),
        },
        Err(CopyError::Stopped) => Err(Error::new(ExitCode::Interrupted, "interrupted")),
    }
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
        bbolt::build::metas_only(PS, pages)
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
