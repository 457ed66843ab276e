//! The editor's file I/O, behind a small trait: read at, write at, sync.
//!
//! Why it exists: the editor's crash safety rests on the order of its writes and syncs. Routing
//! every byte it reads or writes through [`Storage`] lets the crash-consistency tests record a
//! commit and freeze the file at every point a power cut could stop it (`tests/crash_consistency.rs`);
//! the real file, [`LockedFile`], is one implementation.

use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Positioned I/O on the database file, as the editor uses it. `Send + Sync` so the reader can
/// share it while the editor reads the meta pages.
pub trait Storage: Debug + Send + Sync {
    /// Current length of the file in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from byte `offset`; a short file is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at byte `offset`, growing the file if needed. Not durable until
    /// [`Storage::sync`] returns.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every write before it durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
}

impl Storage for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// The database file with the editor's exclusive `flock`, released explicitly when dropped.
///
/// Closing our descriptor is not enough: the lock belongs to the open file description, which a
/// child process forked by another thread (before its `exec` closes the inherited copy) also
/// holds for a moment, so the next `Editor::open` of the same file would find it locked.
#[derive(Debug)]
pub struct LockedFile(pub(super) File);

impl Drop for LockedFile {
    fn drop(&mut self) {
        // Nothing to do on failure: the lock goes with the last descriptor anyway.
        let _ = self.0.unlock();
    }
}

impl Storage for LockedFile {
    fn size(&self) -> io::Result<u64> {
        self.0.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        Storage::read_exact_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        Storage::write_all_at(&self.0, buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync()
    }
}
