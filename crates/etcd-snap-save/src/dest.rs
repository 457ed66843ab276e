//! Where the snapshot goes: stdout, or `FILE` written as `FILE.part` (mode 0600, locked against a
//! concurrent save), fsynced, and renamed into place only when complete. Until then, dropping the
//! destination removes the `.part`, so a final-named file is always a whole, verified snapshot.
//!
//! The directory may be writable by others (docs/design.md, "Security"): the `.part` is always a new
//! file this run created (`O_CREAT|O_EXCL|O_NOFOLLOW`, see [`etcd_common::safe_fs`]), never a link,
//! a FIFO or a file someone planted; a leftover `.part` of a killed run is removed, not reused.
//! Before the rename the `.part` must still be the file we wrote, and without `--force` the rename
//! never replaces anything at `FILE`, atomically. A signal may end the process at any moment from
//! another thread: [`abandon`] then removes the `.part` (see `exit_on_signal` in the library).

use etcd_common::error::io_reason;
use etcd_common::safe_fs::{self, Claim, Dir};
use etcd_common::{Error, ExitCode, Result};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// The open `.part`, its directory and its name, shared with the signal path.
    pending: Arc<Pending>,
    /// `FILE`'s name in that directory.
    name: OsString,
    /// `FILE` as given, for messages.
    path: PathBuf,
    force: bool,
    committed: bool,
    flusher: Flusher,
}

/// The `.part` this run created: enough for the signal thread to remove it.
struct Pending {
    dir: Dir,
    /// `FILE.part`'s name in `dir`.
    name: OsString,
    /// `FILE.part` as given, for messages.
    display: String,
    file: File,
}

impl Pending {
    /// Removes the `.part` if its name still holds our file; a warning line if that fails.
    fn remove(&self) -> Option<String> {
        match self.dir.remove_if_holds(&self.name, &self.file) {
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => Some(format!(
                "Warning: could not remove {}: {}",
                self.display,
                io_reason(&e)
            )),
        }
    }
}

/// What the signal thread finds when a signal comes.
enum Slot {
    /// No `.part` (stdout, or not opened yet, or already cleaned up).
    Empty,
    /// A `.part` is being written.
    Writing(Arc<Pending>),
    /// The snapshot was renamed into place at this path.
    Installed(String),
    /// A signal came: the `.part` is gone and the process is ending; nothing may be installed.
    Abandoned,
}

static SLOT: Mutex<Slot> = Mutex::new(Slot::Empty);

fn slot() -> MutexGuard<'static, Slot> {
    SLOT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What [`abandon`] did.
pub struct Abandoned {
    /// The snapshot had already been installed at this path when the signal came.
    pub saved: Option<String>,
    /// A warning line if the `.part` could not be removed.
    pub warning: Option<String>,
}

/// For the signal path: removes the `.part` being written (if any) and makes sure no later
/// commit installs it. Returns where the snapshot was installed if that had already happened.
pub fn abandon() -> Abandoned {
    let mut slot = slot();
    match std::mem::replace(&mut *slot, Slot::Abandoned) {
        Slot::Writing(pending) => Abandoned {
            saved: None,
            warning: pending.remove(),
        },
        Slot::Installed(path) => Abandoned {
            saved: Some(path),
            warning: None,
        },
        Slot::Empty | Slot::Abandoned => Abandoned {
            saved: None,
            warning: None,
        },
    }
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
        let n = (&self.part.pending.file).write(buf)?;
        self.pending += n as u64;
        if self.pending >= FLUSH_EVERY {
            self.pending = 0;
            self.part.flusher.poke();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&self.part.pending.file).flush()
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
            // Straight to the descriptor (a duplicate of it): stdout's line buffer would search
            // every chunk of binary data for newlines and split the writes there.
            Destination::Stdout(out) => match out.as_fd().try_clone_to_owned() {
                Ok(fd) => Box::new(File::from(fd)),
                Err(_) => Box::new(out.lock()),
            },
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
                        "stdout was closed by its reader before the snapshot was complete: the snapshot was not saved",
                    )
                } else {
                    Error::io("writing the snapshot to stdout", &e)
                }
            }),
            Destination::File(part) => part.commit(),
        }
    }
}

/// Stdout's reader went away after `written` bytes: the snapshot was not saved (exit 6). Unlike
/// a report cut short by `| head`, this is never a quiet success: a backup job must see it failed.
pub fn stdout_closed(written: u64) -> Error {
    Error::new(
        ExitCode::LocalIo,
        format!(
            "stdout was closed by its reader after {written} bytes, before the snapshot was complete: the snapshot was not saved"
        ),
    )
}

impl PartFile {
    fn create(path: &Path, force: bool) -> Result<PartFile> {
        let mut part_name = path.as_os_str().to_owned();
        part_name.push(".part");
        let part = PathBuf::from(part_name).display().to_string();
        let is_a_directory = || {
            Error::new(
                ExitCode::Refused,
                format!("{} is a directory", path.display()),
            )
        };
        let (dir, name) = Dir::open_parent(path)
            .map_err(|e| Error::io(format!("creating {part}"), &e))?
            .ok_or_else(is_a_directory)?;
        match dir.lstat(&name) {
            Ok(st) if safe_fs::is_dir(&st) => return Err(is_a_directory()),
            Ok(_) if !force => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "{} already exists: choose another name or add --force to replace it",
                        path.display()
                    ),
                ))
            }
            _ => {}
        }
        let mut part_name = name.clone();
        part_name.push(".part");
        // Held from creation to registration, so that a signal either finds the .part to remove
        // or has already stopped it from being created.
        let mut slot = slot();
        if matches!(&*slot, Slot::Abandoned) {
            return Err(Error::new(
                ExitCode::Terminated,
                "terminated: nothing was saved",
            ));
        }
        let file = match dir
            .claim(&part_name, 0o600)
            .map_err(|e| Error::io(format!("creating {part}"), &e))?
        {
            Claim::Created(file) => file,
            Claim::Busy => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!("{part} is being written by another etcd-snap-save"),
                ))
            }
            Claim::Foreign(kind) => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "creating {part}: it exists and is {kind}, which etcd-snap-save did not leave: remove it and retry"
                    ),
                ))
            }
        };
        let flusher = Flusher::start(&file);
        let pending = Arc::new(Pending {
            dir,
            name: part_name,
            display: part,
            file,
        });
        *slot = Slot::Writing(pending.clone());
        drop(slot);
        Ok(PartFile {
            pending,
            name,
            path: path.to_path_buf(),
            force,
            committed: false,
            flusher,
        })
    }

    fn commit(mut self) -> Result<()> {
        self.flusher.stop();
        let pending = self.pending.clone();
        let part = &pending.display;
        let path = self.path.display().to_string();
        pending
            .file
            .sync_all()
            .map_err(|e| Error::io(format!("fsync {part}"), &e))?;
        {
            let mut slot = slot();
            if !matches!(&*slot, Slot::Writing(p) if Arc::ptr_eq(p, &pending)) {
                // A signal came: its thread removed the .part and is ending the process.
                return Err(Error::new(
                    ExitCode::Terminated,
                    "terminated: nothing was saved",
                ));
            }
            let ours = pending
                .dir
                .holds(&pending.name, &pending.file)
                .map_err(|e| Error::io(format!("checking {part}"), &e))?;
            if !ours {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!("{part} was replaced while saving: the snapshot was not installed"),
                ));
            }
            match pending.dir.install(&pending.name, &self.name, self.force) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !self.force => {
                    return Err(Error::new(
                        ExitCode::Refused,
                        format!("{path} appeared while saving: add --force to replace it"),
                    ))
                }
                Err(e) => return Err(Error::io(format!("renaming {part} to {path}"), &e)),
            }
            self.committed = true;
            *slot = Slot::Installed(path.clone());
        }
        let installed = pending
            .dir
            .holds(&self.name, &pending.file)
            .map_err(|e| Error::io(format!("checking {path}"), &e))?;
        if !installed {
            return Err(Error::new(
                ExitCode::Refused,
                format!("{path} was replaced by another file as it was saved"),
            ));
        }
        pending.dir.sync().map_err(|e| {
            Error::io(
                format!("fsync directory {}", pending.dir.path().display()),
                &e,
            )
        })
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        self.flusher.stop();
        if self.committed {
            return;
        }
        let warning = {
            let mut slot = slot();
            if matches!(&*slot, Slot::Writing(p) if Arc::ptr_eq(p, &self.pending)) {
                *slot = Slot::Empty;
                self.pending.remove()
            } else {
                // A signal's thread removed it already.
                None
            }
        };
        if let Some(warning) = warning {
            eprintln!("{warning}");
        }
    }
}
