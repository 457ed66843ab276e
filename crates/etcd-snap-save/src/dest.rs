//! Where the snapshot goes: stdout, or `FILE` written as `FILE.part` (mode 0600, locked against a
//! concurrent save), fsynced, and renamed into place only when complete. Until then, dropping the
//! destination removes the `.part`, so a final-named file is always a whole, verified snapshot.

use etcd_common::error::io_reason;
use etcd_common::{Error, ExitCode, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The destination as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: the snapshot goes to stdout.
    Stdout,
    /// A file path.
    File(PathBuf),
}

/// An open destination.
pub enum Destination {
    /// Standard output.
    Stdout(io::Stdout),
    /// A `.part` file on its way to its final name.
    File(PartFile),
}

/// `FILE.part` while it is being written.
pub struct PartFile {
    file: File,
    part: PathBuf,
    path: PathBuf,
    force: bool,
    committed: bool,
}

impl Destination {
    /// Opens the destination, refusing a terminal on stdout and an existing file without `--force`.
    pub fn open(target: &Target, force: bool) -> Result<Destination> {
        match target {
            Target::Stdout => {
                let stdout = io::stdout();
                if stdout.is_terminal() {
                    return Err(Error::new(
                        ExitCode::Refused,
                        "refusing to write a binary snapshot to a terminal: redirect stdout (> FILE, | zstd ...) or give a FILE",
                    ));
                }
                Ok(Destination::Stdout(stdout))
            }
            Target::File(path) => PartFile::create(path, force).map(Destination::File),
        }
    }

    /// A writer for the snapshot bytes.
    pub fn writer(&self) -> Box<dyn Write + '_> {
        match self {
            Destination::Stdout(out) => Box::new(out.lock()),
            Destination::File(part) => Box::new(&part.file),
        }
    }

    /// Makes the snapshot durable and visible: for a file, fsync, rename, fsync the directory.
    pub fn commit(self) -> Result<()> {
        match self {
            Destination::Stdout(out) => out.lock().flush().map_err(|e| {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Error::new(
                        ExitCode::LocalIo,
                        "stdout was closed before the snapshot was complete",
                    )
                } else {
                    Error::io("writing the snapshot to stdout", &e)
                }
            }),
            Destination::File(part) => part.commit(),
        }
    }
}

impl PartFile {
    fn create(path: &Path, force: bool) -> Result<PartFile> {
        if !force && path.symlink_metadata().is_ok() {
            return Err(Error::new(
                ExitCode::Refused,
                format!(
                    "{} already exists: choose another name or add --force to replace it",
                    path.display()
                ),
            ));
        }
        if path.is_dir() {
            return Err(Error::new(
                ExitCode::Refused,
                format!("{} is a directory", path.display()),
            ));
        }
        let mut part_name = path.as_os_str().to_owned();
        part_name.push(".part");
        let part = PathBuf::from(part_name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&part)
            .map_err(|e| Error::io(format!("creating {}", part.display()), &e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "{} is being written by another etcd-snap-save",
                        part.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", part.display()), &e))
            }
        }
        // A leftover of a killed run is ours to reuse now that we hold the lock.
        file.set_len(0)
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| Error::io(format!("preparing {}", part.display()), &e))?;
        Ok(PartFile {
            file,
            part,
            path: path.to_path_buf(),
            force,
            committed: false,
        })
    }

    fn commit(mut self) -> Result<()> {
        let part = self.part.display().to_string();
        self.file
            .sync_all()
            .map_err(|e| Error::io(format!("fsync {part}"), &e))?;
        if self.force {
            std::fs::rename(&self.part, &self.path).map_err(|e| {
                Error::io(format!("renaming {part} to {}", self.path.display()), &e)
            })?;
        } else {
            // A hard link never replaces: a file that appeared meanwhile is not clobbered.
            match std::fs::hard_link(&self.part, &self.path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.part);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::new(
                        ExitCode::Refused,
                        format!(
                            "{} appeared while saving: add --force to replace it",
                            self.path.display()
                        ),
                    ))
                }
                Err(_) => std::fs::rename(&self.part, &self.path).map_err(|e| {
                    Error::io(format!("renaming {part} to {}", self.path.display()), &e)
                })?,
            }
        }
        self.committed = true;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("fsync directory {}", dir.display()), &e))
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = std::fs::remove_file(&self.part) {
                if e.kind() != io::ErrorKind::NotFound {
                    eprintln!(
                        "Warning: could not remove {}: {}",
                        self.part.display(),
                        io_reason(&e)
                    );
                }
            }
        }
    }
}
