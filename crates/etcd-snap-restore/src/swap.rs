//! The final swap of a restore as a journal of atomic steps, so that a restore killed at any
//! moment (SIGKILL, power loss) leaves each target either as it was or complete, and the next run
//! finishes or undoes what the killed one started.
//!
//! A step is one `renameat2`: an exchange (`RENAME_EXCHANGE`: the new tree and the old target
//! trade names in one atomic step, so the target path always holds a complete tree) or a rename
//! that never replaces (`RENAME_NOREPLACE`). Each step records the inode of what it moves, so
//! whether it is done is read off the filesystem (`to` holds that inode), never guessed.
//!
//! Before the first step the journal is written into every staging directory of the run and
//! fsynced; after each step the directories it touched are fsynced. One step is the commit point:
//! the one that puts the new data dir in place (with `--wal-dir`, the WAL dir's step comes right
//! before it). A run that finds a journal left by a killed run (its lock free) reads the commit
//! step off the filesystem: done, it does the steps still to do (the old trees go to their
//! `.bak-` names); not done, it undoes the steps done, newest first, and the targets are the old
//! ones again. Only then are the staging directories removed, so an old tree parked in one
//! (between an exchange and its move aside) is never deleted. See README, "Restore one member".

use etcd_common::error::io_reason;
use rustix::fs::{RenameFlags, CWD};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The journal's file name inside a staging directory.
pub const JOURNAL: &str = "journal";
/// The first line of a journal.
const MAGIC: &str = "etcd-snap-restore journal 1";

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `renameat2(RENAME_NOREPLACE)`, or where that is missing, `rename` after checking `to` is free.
    Rename,
    /// `renameat2(RENAME_EXCHANGE)`: its own undo.
    Exchange,
}

/// One atomic step of the swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Rename or exchange.
    pub kind: Kind,
    /// Where the moved tree is before the step.
    pub from: PathBuf,
    /// Where it is after.
    pub to: PathBuf,
    /// Device and inode of the tree that moves from `from` to `to`.
    pub ino: (u64, u64),
    /// What moves, for messages: "the new data dir", "the old WAL dir".
    pub piece: String,
}

/// The swap of one run: its steps, which one commits, and the staging directories to remove
/// once the steps are all done or all undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The steps in order.
    pub steps: Vec<Step>,
    /// The index of the step that commits (puts the new data dir in place).
    pub commit: usize,
    /// The run's staging directories.
    pub wrappers: Vec<PathBuf>,
}

/// Device and inode of `path` itself (a link is not followed).
pub fn inode(path: &Path) -> io::Result<(u64, u64)> {
    let meta = fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// Whether `path` is now the inode `ino`.
fn holds(path: &Path, ino: (u64, u64)) -> io::Result<bool> {
    match inode(path) {
        Ok(found) => Ok(found == ino),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn hex(path: &Path) -> String {
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(text: &str) -> Option<PathBuf> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Whether the filesystem holding `dir` can exchange two names atomically: two empty files made
/// for it trade names (EINVAL or ENOSYS means no: FUSE, older NFS), then go.
pub fn exchange_supported(dir: &Path) -> io::Result<bool> {
    let (a, b) = (dir.join("probe-a"), dir.join("probe-b"));
    for p in [&a, &b] {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)?;
    }
    let result = rustix::fs::renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE);
    fs::remove_file(&a)?;
    fs::remove_file(&b)?;
    match result {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A rename that never replaces what is at `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            // No RENAME_NOREPLACE here: every `to` is a name this run chose fresh or a target
            // it found free or just emptied, so a check then a rename is the documented fallback.
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            Ok(rustix::fs::renameat(CWD, from, CWD, to)?)
        }
        Err(e) => Err(e.into()),
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsyncs the directories holding `a` and `b`.
fn sync_parents(a: &Path, b: &Path) -> io::Result<()> {
    let (pa, pb) = (parent_of(a), parent_of(b));
    fs::File::open(&pa)?.sync_all()?;
    if pb != pa {
        fs::File::open(&pb)?.sync_all()?;
    }
    Ok(())
}

impl Step {
    /// Whether the step is done: `to` holds the moved inode.
    pub fn done(&self) -> io::Result<bool> {
        holds(&self.to, self.ino)
    }

    /// Does the step and makes it durable.
    pub fn apply(&self) -> io::Result<()> {
        match self.kind {
            Kind::Exchange => {
                rustix::fs::renameat_with(CWD, &self.from, CWD, &self.to, RenameFlags::EXCHANGE)?
            }
            Kind::Rename => rename_noreplace(&self.from, &self.to)?,
        }
        sync_parents(&self.from, &self.to)
    }

    /// Undoes the step (done) and makes that durable.
    pub fn undo(&self) -> io::Result<()> {
        match self.kind {
            Kind::Exchange => {
                rustix::fs::renameat_with(CWD, &self.to, CWD, &self.from, RenameFlags::EXCHANGE)?
            }
            Kind::Rename => rename_noreplace(&self.to, &self.from)?,
        }
        sync_parents(&self.from, &self.to)
    }

    /// What doing this step is, for an error line.
    pub fn doing(&self) -> String {
        match self.kind {
            Kind::Exchange => format!(
                "exchanging {} with {}",
                self.from.display(),
                self.to.display()
            ),
            Kind::Rename => format!(
                "renaming {} ({}) to {}",
                self.from.display(),
                self.piece,
                self.to.display()
            ),
        }
    }
}

/// How [`Journal::recover`] left the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// The commit was done: the new trees are in place, the old ones at their `.bak-` names.
    Finished,
    /// It was not: the targets are the old ones again.
    Undone,
}

impl Journal {
    /// The journal as text: paths in hex (any bytes), an end line against a torn write.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{MAGIC}\ncommit {}\n", self.commit);
        for w in &self.wrappers {
            out.push_str(&format!("wrapper {}\n", hex(w)));
        }
        for s in &self.steps {
            let kind = match s.kind {
                Kind::Rename => "rename",
                Kind::Exchange => "exchange",
            };
            out.push_str(&format!(
                "step {kind} {} {} {} {} {}\n",
                s.ino.0,
                s.ino.1,
                hex(&s.from),
                hex(&s.to),
                hex(Path::new(&s.piece))
            ));
        }
        out.push_str("end\n");
        out.into_bytes()
    }

    /// Reads a journal; `None` when it is not a complete one (a run killed while writing it had
    /// done no step yet).
    pub fn decode(bytes: &[u8]) -> Option<Journal> {
        let text = std::str::from_utf8(bytes).ok()?;
        if !text.ends_with("\nend\n") {
            return None;
        }
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let commit = lines.next()?.strip_prefix("commit ")?.parse().ok()?;
        let mut journal = Journal {
            steps: Vec::new(),
            commit,
            wrappers: Vec::new(),
        };
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["end"] => {
                    return (journal.commit < journal.steps.len()).then_some(journal);
                }
                ["wrapper", w] => journal.wrappers.push(unhex(w)?),
                ["step", kind, dev, ino, from, to, piece] => journal.steps.push(Step {
                    kind: match *kind {
                        "rename" => Kind::Rename,
                        "exchange" => Kind::Exchange,
                        _ => return None,
                    },
                    ino: (dev.parse().ok()?, ino.parse().ok()?),
                    from: unhex(from)?,
                    to: unhex(to)?,
                    piece: unhex(piece)?.to_string_lossy().into_owned(),
                }),
                _ => return None,
            }
        }
        None
    }

    /// Writes the journal into `wrapper` (a new file, fsynced, and the directory fsynced).
    pub fn write(&self, wrapper: &Path) -> io::Result<()> {
        let path = wrapper.join(JOURNAL);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        fs::File::open(wrapper)?.sync_all()
    }

    /// Finishes or undoes the steps of a run that was killed (or whose undo failed), as the
    /// commit step says, checking each step against the filesystem. Safe to repeat: a run killed
    /// while recovering is recovered by the next.
    pub fn recover(&self) -> Result<Recovered, String> {
        let fail =
            |s: &Step, what: &str, e: io::Error| format!("{what} {}: {}", s.doing(), io_reason(&e));
        let commit = &self.steps[self.commit];
        let committed = commit.done().map_err(|e| fail(commit, "checking", e))?;
        if committed {
            for step in &self.steps {
                if !step.done().map_err(|e| fail(step, "checking", e))? {
                    self.expect_at_from(step)?;
                    step.apply().map_err(|e| fail(step, "redoing", e))?;
                }
            }
            Ok(Recovered::Finished)
        } else {
            for step in self.steps[..self.commit].iter().rev() {
                if step.done().map_err(|e| fail(step, "checking", e))? {
                    step.undo().map_err(|e| fail(step, "undoing", e))?;
                }
            }
            Ok(Recovered::Undone)
        }
    }

    /// A step not done must find its tree where it starts: anything else means someone moved
    /// things since, and nothing more is touched.
    fn expect_at_from(&self, step: &Step) -> Result<(), String> {
        match holds(&step.from, step.ino) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{} is neither at {} nor at {}: moved by someone else; nothing more is moved",
                step.piece,
                step.from.display(),
                step.to.display()
            )),
            Err(e) => Err(format!(
                "checking {}: {}",
                step.from.display(),
                io_reason(&e)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
    use super::*;

    fn journal(root: &Path) -> Journal {
        let (old, new, aside) = (
            root.join("data"),
            root.join("w/tree"),
            root.join("data.bak"),
        );
        fs::create_dir_all(&new).unwrap();
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join("old"), b"old").unwrap();
        fs::write(new.join("new"), b"new").unwrap();
        Journal {
            steps: vec![
                Step {
                    kind: Kind::Exchange,
                    from: new.clone(),
                    to: old.clone(),
                    ino: inode(&new).unwrap(),
                    piece: "the new data dir".into(),
                },
                Step {
                    kind: Kind::Rename,
                    from: new.clone(),
                    to: aside,
                    ino: inode(&old).unwrap(),
                    piece: "the old data dir".into(),
                },
            ],
            commit: 0,
            wrappers: vec![root.join("w")],
        }
    }

    #[test]
    fn encodes_any_path_and_refuses_a_torn_journal() {
        let root = tempfile::tempdir().unwrap();
        let mut j = journal(root.path());
        j.steps[1].to = PathBuf::from(std::ffi::OsString::from_vec(b"/odd \n\xff name".to_vec()));
        let bytes = j.encode();
        assert_eq!(Journal::decode(&bytes), Some(j));
        for cut in 0..bytes.len() {
            assert_eq!(Journal::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    /// Killed after the exchange (the commit), before the old tree went aside: the next run
    /// moves it aside; killed before: nothing to undo. Repeating recovery changes nothing.
    #[test]
    fn recovery_finishes_after_the_commit_and_undoes_before() {
        let root = tempfile::tempdir().unwrap();
        let j = journal(root.path());
        assert_eq!(j.recover(), Ok(Recovered::Undone));
        assert_eq!(fs::read(root.path().join("data/old")).unwrap(), b"old");
        j.steps[0].apply().unwrap();
        assert_eq!(fs::read(root.path().join("data/new")).unwrap(), b"new");
        assert_eq!(fs::read(root.path().join("w/tree/old")).unwrap(), b"old");
        assert_eq!(j.recover(), Ok(Recovered::Finished));
        assert_eq!(j.recover(), Ok(Recovered::Finished));
        assert_eq!(fs::read(root.path().join("data.bak/old")).unwrap(), b"old");
        assert!(!root.path().join("w/tree").exists());
    }
}
