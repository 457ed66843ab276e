//! Files in a directory that others may write to (docs/design.md, "Security"): never follow a link,
//! never write into a name this run did not create, never replace what the caller did not ask to.
//!
//! A [`Dir`] holds its directory open, and every name is looked up in it with the `*at` calls, so
//! each step sees the same directory. A new file is created with `O_CREAT|O_EXCL|O_NOFOLLOW`
//! (never a symlink's target, a FIFO or a file someone planted) and given its mode with `fchmod`,
//! whatever the umask. [`Dir::claim`] adds an exclusive `flock`, and removes (never reuses) a
//! leftover of a killed run of the same tool: a regular file of this user with one link, unlocked,
//! still at its name. [`Dir::install`] renames without ever replacing unless asked, atomically.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat};
use std::ffi::{OsStr, OsString};
use std::fs::{File, TryLockError};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A directory held open: names are resolved in it even if its path is renamed meanwhile.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What [`Dir::claim`] found at the name.
#[derive(Debug)]
pub enum Claim {
    /// The name is ours: a new, empty regular file, locked, still at that name.
    Created(File),
    /// Another process holds the lock on the file at that name: it is writing it now.
    Busy,
    /// Something this tool did not leave is at the name; the text says what (e.g. "a symbolic link").
    Foreign(String),
}

/// How many times [`Dir::claim`] retries when the name changes under it (a concurrent run).
const CLAIM_ATTEMPTS: usize = 4;

/// Whether two `stat` results are the same inode.
pub fn same_inode(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Whether a `stat` describes a directory (not a link to one).
pub fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// What kind of file a `stat` describes, as a user would name it in a message.
pub fn kind(st: &Stat) -> &'static str {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "an unknown kind of file",
    }
}

impl Dir {
    /// Opens the directory `path` (`""` means the current directory). Links in `path` itself are
    /// followed: the path comes from the caller's flags, which the tools trust.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory `path` of a file `file`, and the file's name in it; `None` when `file` names
    /// no file (`/`, `..`, or ends in `..`).
    pub fn open_parent(file: &Path) -> io::Result<Option<(Dir, OsString)>> {
        let Some(name) = file.file_name() else {
            return Ok(None);
        };
        let parent = file.parent().unwrap_or(Path::new("."));
        Ok(Some((Dir::open(parent)?, name.to_os_string())))
    }

    /// The path the directory was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages.
    pub fn display(&self, name: &OsStr) -> String {
        self.path.join(name).display().to_string()
    }

    /// `lstat` of `name`: a link is described, not followed.
    pub fn lstat(&self, name: &OsStr) -> io::Result<Stat> {
        Ok(rustix::fs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Creates `name` as a new, empty regular file open for writing, with exactly `mode`
    /// whatever the umask. Fails with `AlreadyExists` if anything is at the name, a dangling
    /// symlink included: nothing that exists is ever opened or followed.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o7777),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))?;
        Ok(File::from(fd))
    }

    /// Whether `name` is (not a link to) the very inode `file` is open on.
    pub fn holds(&self, name: &OsStr, file: &File) -> io::Result<bool> {
        let at_name = match self.lstat(name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(same_inode(&at_name, &rustix::fs::fstat(file.as_fd())?))
    }

    /// Removes `name` if it is still the inode `file` is open on (a name someone else put there
    /// meanwhile is left alone). Returns whether it removed it.
    pub fn remove_if_holds(&self, name: &OsStr, file: &File) -> io::Result<bool> {
        if !self.holds(name, file)? {
            return Ok(false);
        }
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `name` with [`Dir::create_new`] and takes an exclusive `flock` on it, so that two
    /// runs never share it. A file already at the name is never reused: if it is a leftover of a
    /// killed run (a regular file owned by this user, one link, no lock held) it is removed and
    /// a new file created; if a live run holds its lock the answer is [`Claim::Busy`]; anything
    /// else (a link, a FIFO, a directory, another user's file, a hard link) is [`Claim::Foreign`]
    /// and left alone. The name is checked to still hold the locked file before it is returned.
    pub fn claim(&self, name: &OsStr, mode: u32) -> io::Result<Claim> {
        for _ in 0..CLAIM_ATTEMPTS {
            match self.create_new(name, mode) {
                Ok(file) => match file.try_lock() {
                    Ok(()) if self.holds(name, &file)? => return Ok(Claim::Created(file)),
                    // Removed as a leftover by a run that saw it before we locked it: again.
                    Ok(()) => continue,
                    Err(TryLockError::WouldBlock) => return Ok(Claim::Busy),
                    Err(TryLockError::Error(e)) => return Err(e),
                },
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if let Some(claim) = self.remove_leftover(name)? {
                        return Ok(claim);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Claim::Busy)
    }

    /// Removes the file at `name` if it is a leftover of a killed run; `None` when the name is
    /// free now (removed, or gone meanwhile), otherwise why it stays.
    fn remove_leftover(&self, name: &OsStr) -> io::Result<Option<Claim>> {
        let st = match self.lstat(name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(Some(Claim::Foreign(kind(&st).to_string())));
        }
        if st.st_uid != rustix::process::geteuid().as_raw() {
            return Ok(Some(Claim::Foreign(format!(
                "a file of another user (uid {})",
                st.st_uid
            ))));
        }
        if st.st_nlink != 1 {
            return Ok(Some(Claim::Foreign(format!(
                "a file with {} hard links",
                st.st_nlink
            ))));
        }
        // Read-only and non-blocking: opening has no effect even if the name was swapped for a
        // FIFO or a device since the lstat, and a link there now fails (O_NOFOLLOW).
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => {
                return Ok(Some(Claim::Foreign("a symbolic link".into())))
            }
            Err(e) => return Err(e.into()),
        };
        if !same_inode(&st, &rustix::fs::fstat(&fd)?) {
            // Replaced since the lstat: look again.
            return Ok(None);
        }
        let file = File::from(fd);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(Some(Claim::Busy)),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // Locked and still at the name: no live run is writing it. Remove the name only; the
        // file is never written.
        self.remove_if_holds(name, &file)?;
        Ok(None)
    }

    /// Renames `from` to `to` in this directory. With `replace`, whatever is at `to` is replaced
    /// (a symlink there is replaced itself, never followed). Without it an existing `to` of any
    /// kind (a dangling symlink too) fails with `AlreadyExists`, atomically: `renameat2` with
    /// `RENAME_NOREPLACE`, or where the filesystem lacks it, `link` then `unlink`.
    pub fn install(&self, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
        if replace {
            return Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?);
        }
        match rustix::fs::renameat_with(&self.fd, from, &self.fd, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                rustix::fs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())?;
                // The snapshot is in place; a `from` that stays behind is only a second name.
                let _ = rustix::fs::unlinkat(&self.fd, from, AtFlags::empty());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Fsyncs the directory, so that its new and renamed entries survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn scratch() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        (tmp, dir)
    }

    #[test]
    fn create_new_never_follows_or_opens_what_exists() {
        let (tmp, dir) = scratch();
        let target = tmp.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", tmp.path().join("dangling")).unwrap();
        for name in ["link", "dangling", "target"] {
            let err = dir.create_new(OsStr::new(name), 0o600).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{name}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(!Path::new("/nonexistent").exists());
    }

    #[test]
    fn create_new_sets_the_mode_whatever_the_umask() {
        let (tmp, dir) = scratch();
        let mut f = dir.create_new(OsStr::new("f"), 0o600).unwrap();
        f.write_all(b"x").unwrap();
        let mode = std::fs::metadata(tmp.path().join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn claim_removes_our_leftover_and_refuses_the_rest() {
        let (tmp, dir) = scratch();
        let name = OsStr::new("x.part");
        let path = tmp.path().join("x.part");

        // A leftover of a killed run: removed, and a new inode created in its place.
        std::fs::write(&path, b"leftover").unwrap();
        let old = std::fs::metadata(&path).unwrap().ino();
        let _pinned = File::open(&path).unwrap(); // keeps the inode number from being reused
        let Claim::Created(file) = dir.claim(name, 0o600).unwrap() else {
            panic!("a leftover is replaced");
        };
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), old);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);

        // Held by a live run: busy, and left alone.
        assert!(matches!(dir.claim(name, 0o600).unwrap(), Claim::Busy));
        assert!(dir.holds(name, &file).unwrap());
        drop(file);
        std::fs::remove_file(&path).unwrap();

        // A link, a dangling link, a FIFO, a directory, a second hard link: foreign, untouched.
        let target = tmp.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(
            matches!(dir.claim(name, 0o600).unwrap(), Claim::Foreign(k) if k == "a symbolic link")
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/nonexistent", &path).unwrap();
        assert!(matches!(dir.claim(name, 0o600).unwrap(), Claim::Foreign(_)));
        std::fs::remove_file(&path).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
        assert!(matches!(dir.claim(name, 0o600).unwrap(), Claim::Foreign(k) if k == "a FIFO"));
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(dir.claim(name, 0o600).unwrap(), Claim::Foreign(_)));
        std::fs::remove_dir(&path).unwrap();
        std::fs::hard_link(&target, &path).unwrap();
        assert!(matches!(dir.claim(name, 0o600).unwrap(), Claim::Foreign(_)));
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn install_without_replace_refuses_anything_at_the_name() {
        let (tmp, dir) = scratch();
        let (from, to) = (OsStr::new("from"), OsStr::new("to"));
        std::fs::write(tmp.path().join("from"), b"new").unwrap();
        std::os::unix::fs::symlink("/nonexistent", tmp.path().join("to")).unwrap();
        let err = dir.install(from, to, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        // With replace, the link itself is replaced, its target never created.
        dir.install(from, to, true).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("to")).unwrap(), b"new");
        assert!(!Path::new("/nonexistent").exists());
        assert!(!tmp.path().join("from").exists());
    }
}
