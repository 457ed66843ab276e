//! The unnamed temporary file a stream is spooled to (stdin, zstd, age: anything that cannot be
//! read at random).
//!
//! Why it exists: the spool holds the decrypted database, so it must never be visible by name nor
//! readable by anyone else: it is opened with `O_TMPFILE` (no name at any moment) and mode 0600,
//! whatever the umask; where the file system lacks `O_TMPFILE` it is created exclusively under a
//! fresh random name (never following a link) with mode 0600 and unlinked at once. Either way it
//! is gone when the process ends, even if killed.

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::path::Path;

/// Mode of the spool file: owner read and write only.
const SPOOL_MODE: u32 = 0o600;
/// Names tried before giving up, on file systems without `O_TMPFILE`.
const NAME_ATTEMPTS: u32 = 64;

/// Opens an unnamed, private (0600) temporary file in `TMPDIR` (or `/tmp`).
pub fn unnamed_file() -> io::Result<File> {
    unnamed_file_in(&std::env::temp_dir())
}

/// Opens an unnamed, private (0600) temporary file in `dir`.
pub fn unnamed_file_in(dir: &Path) -> io::Result<File> {
    let mode = Mode::from_raw_mode(SPOOL_MODE);
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::open(dir, flags | OFlags::TMPFILE, mode) {
        Ok(fd) => return private(File::from(fd)),
        // No O_TMPFILE here (old kernel, or a file system without it): fall back to a name.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOSYS) => {}
        Err(e) => return Err(e.into()),
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for attempt in 0..NAME_ATTEMPTS {
        let name = dir.join(format!(
            ".etcd-snap-spool-{}-{seed:x}-{attempt}",
            std::process::id()
        ));
        let create = flags | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        match rustix::fs::open(&name, create, mode) {
            Ok(fd) => {
                let file = File::from(fd);
                rustix::fs::unlink(&name)?;
                return private(file);
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for a temporary file",
    ))
}

/// Sets the mode to exactly 0600 (the umask may have taken bits away; nothing can have added any).
fn private(file: File) -> io::Result<File> {
    rustix::fs::fchmod(&file, Mode::from_raw_mode(SPOOL_MODE))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn spool_file_is_unnamed_and_0600_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for umask in [0o000, 0o022, 0o077, 0o277] {
            let old = rustix::process::umask(Mode::from_raw_mode(umask));
            let made = unnamed_file_in(dir.path());
            rustix::process::umask(old);
            let mut file = made.unwrap_or_else(|e| panic!("umask {umask:o}: {e}"));
            let meta = file.metadata().unwrap_or_else(|e| panic!("stat: {e}"));
            assert_eq!(meta.mode() & 0o777, SPOOL_MODE, "umask {umask:o}");
            assert_eq!(meta.nlink(), 0, "umask {umask:o}: the file has a name");
            assert!(file.write_all(b"spooled").is_ok());
            assert!(file.rewind().is_ok());
            let mut back = String::new();
            assert!(file.read_to_string(&mut back).is_ok());
            assert_eq!(back, "spooled");
        }
        let left = std::fs::read_dir(dir.path()).map_or(0, Iterator::count);
        assert_eq!(left, 0, "nothing may be left in the directory");
    }
}
