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
    flusher: Flusher,
}

/// How much written data may wait in the page cache before the background flush starts.
const FLUSH_EVERY: u64 = 64 * 1024 * 1024;

/// Flushes the `.part` to disk in the background while the snapshot keeps streaming, so that the
/// final fsync has little left to do (without it the whole database waits in the page cache and the
/// final fsync adds seconds per GiB to the wall time).
struct Flusher {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(file: &File) -> Flusher {
        let Ok(clone) = file.try_clone() else {
            return Flusher {
                wake: None,
                thread: None,
            };
        };
        // A slot of one: a wake-up while a flush runs is merged into the next one.
        let (wake, asleep) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                while asleep.recv().is_ok() {
                    // An error here shows again, and is reported, at the final fsync.
                    let _ = clone.sync_data();
                }
            })
            .ok();
        Flusher {
            wake: Some(wake),
            thread,
        }
    }

    fn poke(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }

    fn stop(&mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `.part` as a writer that wakes the flusher every [`FLUSH_EVERY`] bytes.
struct FlushingWriter<'a> {
    part: &'a PartFile,
    pending: u64,
}

impl Write for FlushingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&self.part.file).write(buf)?;
        self.pending += n as u64;
        if self.pending >= FLUSH_EVERY {
            self.pending = 0;
            self.part.flusher.poke();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&self.part.file).flush()
    }
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
            Destination::File(part) => Box::new(FlushingWriter { part, pending: 0 }),
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
        let flusher = Flusher::start(&file);
        Ok(PartFile {
            file,
            part,
            path: path.to_path_buf(),
            force,
            committed: false,
            flusher,
        })
    }

    fn commit(mut self) -> Result<()> {
        self.flusher.stop();
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
        self.flusher.stop();
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
