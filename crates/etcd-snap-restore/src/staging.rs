//! Building the restored tree out of sight and moving it into place.
//!
//! The tree is built in a staging directory beside the target (same filesystem, so each final
//! rename is atomic) — or, when the target is an existing empty directory such as a mount point,
//! inside it, with only its entries renamed at the end.
//!
//! A staging directory is always one this run created: a plain `mkdir` of a fresh name (an
//! existing name, a planted symlink included, is never reused), then `flock` on the directory
//! itself, held until the process ends. The next run removes a staging directory left by a killed
//! run only when it gets that lock without waiting, so a running restore's tree is never touched
//! whatever PID namespace or `/proc` mount options the runs have; removal never follows a symlink.
//!
//! The staging directory holds the tree (`tree`) and, during the swap, the journal of
//! [`crate::swap`]: an occupied target (`--move-aside`) trades places with the new tree in one
//! `renameat2(RENAME_EXCHANGE)`, then the old tree goes to `<target>.bak-<UTC time>`; where the
//! filesystem has no exchange, two renames. A step that fails is undone with the ones before it;
//! a run killed anywhere is finished or undone by the next (the data dir's step commits). A
//! non-empty mount point cannot be renamed, so `--move-aside` refuses it before writing anything.

use crate::swap::{self, Journal, Kind, Step, JOURNAL};
use etcd_common::error::io_reason;
use etcd_common::{Error, ExitCode, Result};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The marker in every staging directory's name.
const MARK: &str = ".etcd-snap-restore-";
/// The end of every staging directory's name.
const SUFFIX: &str = ".tmp";
/// How many fresh names a run tries before it gives up on a directory.
const NAME_TRIES: u32 = 64;

/// One directory to produce: where it is built and where it goes.
#[derive(Debug)]
pub struct Stage {
    /// The final path.
    pub target: PathBuf,
    /// Where it is built: `tree` in the staging directory.
    pub build: PathBuf,
    /// The staging directory (locked; holds the tree and, during the swap, the journal).
    pub wrapper: PathBuf,
    /// Built inside the (empty) target: only its children are moved at the end.
    pub inside: bool,
    /// The occupied target to rename aside right before the built tree takes its place.
    pub aside: Option<PathBuf>,
    /// "data dir" or "WAL dir", for messages.
    what: &'static str,
    /// The staging directory, open and locked (`flock`) for as long as this run lives.
    _lock: fs::File,
}

/// What happened to an existing target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// The old path.
    pub from: PathBuf,
    /// Where it went.
    pub to: PathBuf,
}

/// The staging area for the data dir and, if separate, the WAL dir; removed on drop unless finished
/// (or kept because the new trees are needed to finish by hand).
#[derive(Debug)]
pub struct Staging {
    /// The data dir's stage.
    pub data: Stage,
    /// The separate WAL dir's stage.
    pub wal: Option<Stage>,
    finished: bool,
    keep: bool,
}

/// State of a target path before the restore.
enum TargetState {
    Missing,
    EmptyDir,
    Occupied(&'static str),
}

fn target_state(path: &Path) -> Result<TargetState> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(TargetState::Missing),
        Err(e) => Err(Error::io(format!("checking {}", path.display()), &e)),
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), &e))?;
            // Our own leftovers inside an empty target do not make it occupied.
            let occupied = entries.any(|e| {
                e.map(|e| !e.file_name().to_string_lossy().starts_with(MARK))
                    .unwrap_or(true)
            });
            Ok(if occupied {
                TargetState::Occupied("is not empty")
            } else {
                TargetState::EmptyDir
            })
        }
        Ok(_) => Ok(TargetState::Occupied("exists and is not a directory")),
    }
}

/// Makes a directory (and missing parents) with mode 0700.
pub fn mkdir_all(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), &e))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Opens a directory for locking without following a symlink at `path`.
fn open_dir_nofollow(path: &Path) -> io::Result<fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fs::File::from(fd))
}

/// Whether `file` (open, locked) is still the directory named `path`: not removed, not swapped.
fn still_named(file: &fs::File, path: &Path) -> io::Result<bool> {
    let held = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// What locking a directory this run just made gave.
enum NewDir {
    /// Locked, and still the directory at that name, owned by this process's user.
    Locked(fs::File),
    /// No longer ours: another run's cleanup removed it before the lock was taken (or holds
    /// the lock to remove it), or the name is something else now.
    Gone,
    /// At that name, but owned by another user (this uid).
    Foreign(u32),
}

/// Locks the directory this run just made at `path`.
fn lock_new_dir(path: &Path) -> io::Result<NewDir> {
    let dir = match open_dir_nofollow(path) {
        Ok(dir) => dir,
        // Removed, or a symlink (ELOOP under O_NOFOLLOW) or a file there now.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
        {
            return Ok(NewDir::Gone)
        }
        Err(e) => return Err(e),
    };
    match dir.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(NewDir::Gone),
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    if !still_named(&dir, path)? {
        return Ok(NewDir::Gone);
    }
    let uid = dir.metadata()?.uid();
    Ok(if uid == rustix::process::geteuid().as_raw() {
        NewDir::Locked(dir)
    } else {
        NewDir::Foreign(uid)
    })
}

/// Creates and locks a fresh staging directory `<prefix>.etcd-snap-restore-<pid>[.<n>].tmp` in
/// `parent` (which must exist): each name is made with one non-recursive `mkdir`, and a name that
/// exists, whatever it is, is left alone for the next.
fn create_locked(parent: &Path, prefix: &str) -> Result<(PathBuf, fs::File)> {
    let pid = std::process::id();
    for n in 0..NAME_TRIES {
        let name = match n {
            0 => format!("{prefix}{MARK}{pid}{SUFFIX}"),
            n => format!("{prefix}{MARK}{pid}.{n}{SUFFIX}"),
        };
        let path = parent.join(name);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("creating {}", path.display()), &e)),
        }
        match lock_new_dir(&path) {
            Ok(NewDir::Locked(lock)) => return Ok((path, lock)),
            Ok(NewDir::Gone) => continue,
            Ok(NewDir::Foreign(uid)) => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "{} is owned by uid {uid} right after this run created it: the filesystem maps owners (NFS root_squash?) or someone replaced it; restore onto a local filesystem",
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(Error::io(format!("locking {}", path.display()), &e)),
        }
    }
    Err(Error::new(
        ExitCode::Refused,
        format!(
            "creating a staging directory in {}: {NAME_TRIES} fresh names ({prefix}{MARK}{pid}*{SUFFIX}) are all taken; remove what is not yours there",
            parent.display()
        ),
    ))
}

/// The staging directory at `path`, locked, if it is a leftover of a restore that is gone: a
/// directory (not a link) with a staging name, owned by this user, still at that name, whose
/// lock this run gets without waiting (a running restore holds its lock whatever its PID or
/// PID namespace; a zombie or a reused PID holds nothing).
fn lock_stale(path: &Path) -> Option<fs::File> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if !(name.contains(MARK) && name.ends_with(SUFFIX)) {
        return None;
    }
    let stale = open_dir_nofollow(path).ok()?;
    stale.try_lock().ok()?;
    let ours = stale.metadata().ok()?.uid() == rustix::process::geteuid().as_raw();
    (ours && still_named(&stale, path).unwrap_or(false)).then_some(stale)
}

/// The journal in a staging directory, if a complete one is there (never through a link).
fn read_journal(wrapper: &Path) -> Option<Journal> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        wrapper.join(JOURNAL),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(fs::File::from(fd), 1 << 20), &mut bytes).ok()?;
    Journal::decode(&bytes)
}

/// Clears, in `dir`, what restores that are gone left (see [`lock_stale`]). A staging directory
/// with a journal is first recovered ([`Journal::recover`]: the swap it started is finished or
/// undone, so an old tree parked in it goes to its `.bak-` name, never away); then it and the
/// run's other staging directories are removed. Removal never follows symlinks
/// (`std::fs::remove_dir_all` removes a link, never what it points to).
fn clear_stale(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(lock) = lock_stale(&path) else {
            continue;
        };
        if let Some(journal) = read_journal(&path) {
            journal.recover().map_err(|why| {
                Error::new(
                    ExitCode::LocalIo,
                    format!(
                        "finishing the swap of an interrupted restore (journal {}): {why}",
                        path.join(JOURNAL).display()
                    ),
                )
            })?;
            for other in journal.wrappers.iter().filter(|w| **w != path) {
                if let Some(other_lock) = lock_stale(other) {
                    let _ = fs::remove_dir_all(other);
                    drop(other_lock);
                }
            }
        }
        let _ = fs::remove_dir_all(&path);
        // The lock goes with `lock`, after the tree is gone.
        drop(lock);
    }
    Ok(())
}

/// Whether `path` is the root of a mount (a bind mount too): `statx`'s `STATX_ATTR_MOUNT_ROOT`
/// where the kernel reports it (5.8+), else a device that differs from its parent's.
fn is_mount_point(path: &Path) -> io::Result<bool> {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    if let Ok(st) = rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) {
        if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
            return Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
        }
    }
    let here = fs::symlink_metadata(path)?;
    let up = fs::metadata(path.join(".."))?;
    Ok(here.dev() != up.dev() || here.ino() == up.ino())
}

/// The directory a target stands for: a symlink to a directory (a data dir kept on another disk,
/// `/var/lib/etcd -> /data/etcd`) is followed, so that the tree is built, and the old one moved
/// aside, on that disk, and the symlink itself stays as it was. A dangling symlink is refused.
fn resolve_target(target: &Path, what: &str) -> Result<PathBuf> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::metadata(target) {
            Ok(followed) if followed.is_dir() => fs::canonicalize(target)
                .map_err(|e| Error::io(format!("resolving {}", target.display()), &e)),
            Ok(_) => Ok(target.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::new(
                ExitCode::Refused,
                format!(
                    "{what} {} is a symlink to nothing: create the directory it points to, or remove the link",
                    target.display()
                ),
            )),
            Err(e) => Err(Error::io(format!("checking {}", target.display()), &e)),
        },
        _ => Ok(target.to_path_buf()),
    }
}

impl Stage {
    fn prepare(target: &Path, what: &'static str, move_aside: bool) -> Result<Stage> {
        let target = &resolve_target(target, what)?;
        let state = target_state(target)?;
        let aside = match state {
            TargetState::Occupied(_) if move_aside => {
                let mount = is_mount_point(target)
                    .map_err(|e| Error::io(format!("checking {}", target.display()), &e))?;
                if mount {
                    return Err(Error::new(
                        ExitCode::Refused,
                        format!(
                            "{what} {} is a mount point and not empty: --move-aside swaps directories by renaming, which a mount point refuses; move its contents into a directory on that file system (or elsewhere) and restore into the empty mount point without --move-aside",
                            target.display()
                        ),
                    ));
                }
                Some(aside_name(target))
            }
            TargetState::Occupied(why) => {
                return Err(Error::new(
                    ExitCode::Refused,
                    format!(
                        "{what} {} {why}: choose another, or add --move-aside to rename it out of the way",
                        target.display()
                    ),
                ))
            }
            _ => None,
        };
        let leaf = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into());
        let inside = matches!(state, TargetState::EmptyDir);
        let (dir, prefix) = if inside {
            (target.to_path_buf(), String::new())
        } else {
            let parent = parent_of(target);
            mkdir_all(&parent)?;
            (parent, format!(".{leaf}"))
        };
        let (wrapper, lock) = create_locked(&dir, &prefix)?;
        let build = wrapper.join("tree");
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&build) {
            let _ = fs::remove_dir(&wrapper);
            return Err(Error::io(format!("creating {}", build.display()), &e));
        }
        Ok(Stage {
            target: target.to_path_buf(),
            build,
            wrapper,
            inside,
            aside,
            what,
            _lock: lock,
        })
    }

    /// The steps that put this stage's tree in place: those up to the new tree in place
    /// (`pre`), and moving the old tree aside after the exchange (`post`).
    fn steps(&self) -> Result<(Vec<Step>, Vec<Step>)> {
        let ino = |p: &Path| {
            swap::inode(p).map_err(|e| Error::io(format!("checking {}", p.display()), &e))
        };
        let new = format!("the new {}", self.what);
        let old = format!("the old {}", self.what);
        let rename = |from: &Path, to: &Path, piece: &str| -> Result<Step> {
            Ok(Step {
                kind: Kind::Rename,
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                ino: ino(from)?,
                piece: piece.to_string(),
            })
        };
        let (mut pre, mut post) = (Vec::new(), Vec::new());
        if self.inside {
            let mut names: Vec<_> = fs::read_dir(&self.build)
                .map_err(|e| Error::io(format!("reading {}", self.build.display()), &e))?
                .map(|entry| entry.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .map_err(|e| Error::io(format!("reading {}", self.build.display()), &e))?;
            names.sort();
            for name in names {
                let piece = format!("{new} {}", name.to_string_lossy());
                pre.push(rename(
                    &self.build.join(&name),
                    &self.target.join(&name),
                    &piece,
                )?);
            }
        } else if let Some(aside) = &self.aside {
            let exchange = swap::exchange_supported(&self.wrapper)
                .map_err(|e| Error::io(format!("renaming in {}", self.wrapper.display()), &e))?;
            if exchange {
                // One atomic step: the target always holds a complete tree; then the old one,
                // now at the staging name, goes aside.
                pre.push(Step {
                    kind: Kind::Exchange,
                    from: self.build.clone(),
                    to: self.target.clone(),
                    ino: ino(&self.build)?,
                    piece: new,
                });
                post.push(Step {
                    kind: Kind::Rename,
                    from: self.build.clone(),
                    to: aside.clone(),
                    ino: ino(&self.target)?,
                    piece: old,
                });
            } else {
                // No RENAME_EXCHANGE on this filesystem: two renames, the target absent between
                // them; the journal has the next run put it back or finish.
                pre.push(rename(&self.target, aside, &old)?);
                pre.push(rename(&self.build, &self.target, &new)?);
            }
        } else {
            pre.push(rename(&self.build, &self.target, &new)?);
        }
        Ok((pre, post))
    }

    /// Makes this stage's renames durable (and an existing target 0700).
    fn settle(&self) -> Result<()> {
        if self.inside {
            fs::set_permissions(&self.target, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("chmod {}", self.target.display()), &e))?;
            sync_dir(&self.target)
        } else {
            sync_dir(&parent_of(&self.target))
        }
    }
}

impl Staging {
    /// Checks the targets and creates the staging directories. A non-empty target is refused
    /// (exit 5) unless `move_aside`, which renames it to `<target>.bak-<UTC time>`.
    pub fn create(data_dir: &Path, wal_dir: Option<&Path>, move_aside: bool) -> Result<Staging> {
        // What killed runs left is finished or undone first, so that the targets are judged
        // as they are after that.
        for (target, what) in [(Some(data_dir), "data dir"), (wal_dir, "wal dir")] {
            let Some(target) = target else { continue };
            let target = resolve_target(target, what)?;
            clear_stale(&parent_of(&target))?;
            if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                clear_stale(&target)?;
            }
        }
        let data = Stage::prepare(data_dir, "data dir", move_aside)?;
        let mut staging = Staging {
            data,
            wal: None,
            finished: false,
            keep: false,
        };
        if let Some(wal) = wal_dir {
            staging.wal = Some(Stage::prepare(wal, "wal dir", move_aside)?);
        }
        Ok(staging)
    }

    /// The targets that will be (or were) renamed aside.
    pub fn moved_aside(&self) -> Vec<MovedAside> {
        self.stages()
            .filter_map(|s| {
                s.aside.as_ref().map(|to| MovedAside {
                    from: s.target.clone(),
                    to: to.clone(),
                })
            })
            .collect()
    }

    /// Where the database goes.
    pub fn snap_dir(&self) -> PathBuf {
        self.data.build.join("member").join("snap")
    }

    /// Where the WAL goes.
    pub fn wal_dir(&self) -> PathBuf {
        match &self.wal {
            Some(stage) => stage.build.clone(),
            None => self.data.build.join("member").join("wal"),
        }
    }

    /// Every directory built, for fsync and ownership.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.stages().map(|s| s.build.clone()).collect()
    }

    /// The stages in the order they are installed: the WAL dir first, the data dir last.
    fn stages(&self) -> impl Iterator<Item = &Stage> {
        self.wal.iter().chain(std::iter::once(&self.data))
    }

    /// Moves the built trees into place (see [`crate::swap`]). On failure before the commit
    /// every target is as it was (the steps done are undone); when undoing fails too, or a
    /// step after the commit fails, the error says where each piece is, and the journal kept in
    /// the staging directories has the next run finish or undo it.
    pub fn finish(mut self) -> Result<()> {
        for root in self.roots() {
            sync_tree(&root)?;
        }
        let (mut pre, mut post) = (Vec::new(), Vec::new());
        for stage in self.stages() {
            let (p, q) = stage.steps()?;
            pre.extend(p);
            post.extend(q);
        }
        let Some(commit) = pre.len().checked_sub(1) else {
            return Err(Error::new(
                ExitCode::LocalIo,
                format!("{}: the restored tree is empty", self.data.build.display()),
            ));
        };
        pre.extend(post);
        let journal = Journal {
            steps: pre,
            commit,
            wrappers: self.stages().map(|s| s.wrapper.clone()).collect(),
        };
        for wrapper in &journal.wrappers {
            journal.write(wrapper).map_err(|e| {
                Error::io(format!("writing the journal in {}", wrapper.display()), &e)
            })?;
        }
        for (done, step) in journal.steps.iter().enumerate() {
            if let Err(e) = step.apply() {
                return Err(self.failed(&journal, done, Error::io(step.doing(), &e)));
            }
        }
        self.finished = true;
        for stage in self.stages() {
            stage.settle()?;
        }
        // Every step done: the staging directories hold only the journal (and an emptied tree).
        for stage in self.stages() {
            let _ = fs::remove_dir_all(&stage.wrapper);
            let _ = sync_dir(&parent_of(&stage.wrapper));
        }
        Ok(())
    }

    /// Says how a swap that failed at step `done` with `err` ended: undone before the commit,
    /// or kept for the next run.
    fn failed(&mut self, journal: &Journal, done: usize, err: Error) -> Error {
        let targets: Vec<String> = self
            .stages()
            .map(|s| format!("{} {}", s.what, s.target.display()))
            .collect();
        if done <= journal.commit {
            let mut left = done;
            while left > 0 {
                let step = &journal.steps[left - 1];
                if let Err(why) = step.undo() {
                    self.keep = true;
                    return Error::new(
                        err.code,
                        format!(
                            "{err}; undoing it failed too ({}: {}): {}; the next etcd-snap-restore with the same targets puts them back (journal in {})",
                            step.doing(),
                            io_reason(&why),
                            where_pieces(journal),
                            journal.wrappers.iter().map(|w| w.display().to_string()).collect::<Vec<_>>().join(" and ")
                        ),
                    );
                }
                left -= 1;
            }
            if done == 0 {
                return err;
            }
            return Error::new(
                err.code,
                format!(
                    "{err}; undone: {} before the restore",
                    join_and(&targets, "is as it was", "are as they were")
                ),
            );
        }
        // After the commit: the new trees are in place; an old one waits in its staging dir.
        self.keep = true;
        Error::new(
            err.code,
            format!(
                "{err}; the restore is in place ({}), but {}; the next etcd-snap-restore with the same targets moves it aside",
                targets.join(", "),
                where_pieces(journal)
            ),
        )
    }
}

/// Where each piece of `journal` (the new and old trees) is now, read off the filesystem.
fn where_pieces(journal: &Journal) -> String {
    let mut paths: Vec<&Path> = journal
        .steps
        .iter()
        .flat_map(|s| [s.from.as_path(), s.to.as_path()])
        .collect();
    paths.dedup();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for step in &journal.steps {
        if seen.contains(&step.ino) {
            continue;
        }
        seen.push(step.ino);
        if let Some(at) = paths.iter().find(|p| swap::inode(p).ok() == Some(step.ino)) {
            out.push(format!("{} is at {}", step.piece, at.display()));
        }
    }
    out.join(", ")
}

/// "a", "a and b", "a, b and c", with the verb for one or many.
fn join_and(items: &[String], one: &str, many: &str) -> String {
    match items {
        [] => String::new(),
        [only] => format!("{only} {one}"),
        [init @ .., last] => format!("{} and {last} {many}", init.join(", ")),
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.finished && !self.keep {
            for stage in self.stages() {
                let _ = fs::remove_dir_all(&stage.wrapper);
            }
        }
    }
}

/// fsyncs a directory so that renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("fsync {}", dir.display()), &e))
}

/// fsyncs every file and directory under `root` (files first, then their directory).
pub fn sync_tree(root: &Path) -> Result<()> {
    let entries =
        fs::read_dir(root).map_err(|e| Error::io(format!("reading {}", root.display()), &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", root.display()), &e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| Error::io(format!("reading {}", path.display()), &e))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(format!("fsync {}", path.display()), &e))?;
        }
    }
    sync_dir(root)
}

/// `<target>.bak-20261126T120304Z` (with a counter if that exists too).
fn aside_name(target: &Path) -> PathBuf {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let base = format!("{}.bak-{stamp}", target.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.symlink_metadata().is_ok() {
        candidate = PathBuf::from(format!("{base}.{n}"));
        n += 1;
    }
    candidate
}

/// A compact ISO-8601 UTC timestamp (`20261204T093000Z`), for names.
pub fn utc_stamp(now: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(now)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Hands every file and directory under `roots`, the roots included, to `owner`.
pub fn chown_tree(roots: &[PathBuf], owner: &str) -> Result<()> {
    let (uid, gid) = resolve_owner(owner)?;
    fn walk(path: &Path, uid: u32, gid: Option<u32>) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), gid)
            .map_err(|e| Error::io(format!("chown {}", path.display()), &e))?;
        if path.is_dir() && !path.is_symlink() {
            for entry in fs::read_dir(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), &e))?
            {
                let entry =
                    entry.map_err(|e| Error::io(format!("reading {}", path.display()), &e))?;
                walk(&entry.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    for root in roots {
        walk(root, uid, gid)?;
    }
    Ok(())
}

/// Hands one path (not what is below it) to `owner`.
pub fn chown_one(path: &Path, owner: &str) -> Result<()> {
    let (uid, gid) = resolve_owner(owner)?;
    std::os::unix::fs::lchown(path, Some(uid), gid)
        .map_err(|e| Error::io(format!("chown {}", path.display()), &e))
}

/// `USER[:GROUP]` by name (from /etc/passwd and /etc/group) or number; a user alone gets its
/// primary group.
pub fn resolve_owner(owner: &str) -> Result<(u32, Option<u32>)> {
    let (user, group) = match owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (owner, None),
    };
    let lookup = |file: &str, name: &str, field: usize| -> Result<Option<(u32, Option<u32>)>> {
        let text = fs::read_to_string(file)
            .map_err(|e| Error::usage(format!("--owner: cannot read {file}: {}", io_reason(&e))))?;
        Ok(text.lines().find_map(|line| {
            let parts: Vec<&str> = line.split(':').collect();
            (parts.first() == Some(&name)).then(|| {
                let id = parts.get(field).and_then(|v| v.parse().ok())?;
                Some((id, parts.get(3).and_then(|g| g.parse().ok())))
            })?
        }))
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => lookup("/etc/passwd", user, 2)?
            .ok_or_else(|| Error::usage(format!("--owner: no user {user:?} on this machine")))?,
    };
    let gid = match group {
        None => primary,
        Some(g) => Some(match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup("/etc/group", g, 2)?
                .map(|(gid, _)| gid)
                .ok_or_else(|| Error::usage(format!("--owner: no group {g:?} on this machine")))?,
        }),
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps_are_utc_civil_time() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_694_584);
        assert_eq!(utc_stamp(t), "20261126T120304Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
    }

    /// `/var/lib/etcd -> /data/etcd`: the old tree is moved aside and the new one built on
    /// /data, and the symlink still points where it did.
    #[test]
    fn a_symlinked_target_is_restored_where_it_points() {
        let root = tempfile::tempdir().unwrap();
        let disk = root.path().join("disk");
        let real = disk.join("etcd");
        fs::create_dir_all(real.join("member")).unwrap();
        fs::write(real.join("member/old"), b"old").unwrap();
        let link = root.path().join("etcd");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        assert!(Staging::create(&link, None, false).is_err(), "occupied");
        let staging = Staging::create(&link, None, true).unwrap();
        assert!(staging
            .data
            .build
            .starts_with(fs::canonicalize(&disk).unwrap()));
        mkdir_all(&staging.data.build.join("member")).unwrap();
        fs::write(staging.data.build.join("member/new"), b"new").unwrap();
        let aside = staging.moved_aside();
        staging.finish().unwrap();

        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(link.join("member/new")).unwrap(), b"new");
        assert_eq!(aside.len(), 1);
        assert!(aside[0].to.starts_with(fs::canonicalize(&disk).unwrap()));
        assert_eq!(fs::read(aside[0].to.join("member/old")).unwrap(), b"old");

        let dangling = root.path().join("dangling");
        std::os::unix::fs::symlink(root.path().join("nowhere"), &dangling).unwrap();
        let err = Staging::create(&dangling, None, true).unwrap_err();
        assert_eq!(err.code, ExitCode::Refused, "{err:?}");
    }

    /// Every entry name in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Liveness is the lock, not `/proc/PID`: a locked staging dir whose PID does not exist here
    /// (another PID namespace) is left alone; an unlocked one whose PID is alive (reused) is
    /// removed; a symlink with a staging name is neither followed nor removed.
    #[test]
    fn stale_staging_dirs_are_judged_by_their_lock() {
        let root = tempfile::tempdir().unwrap();
        let parent = root.path();
        let running = parent.join(".data.etcd-snap-restore-999999999.tmp");
        fs::create_dir_all(running.join("member/snap")).unwrap();
        fs::write(running.join("member/snap/db"), b"in progress").unwrap();
        let holder = open_dir_nofollow(&running).unwrap();
        holder.try_lock().unwrap();
        // PID 1 always exists: /proc says alive, but nobody holds the lock.
        let stale = parent.join(".data.etcd-snap-restore-1.tmp");
        fs::create_dir_all(stale.join("member")).unwrap();
        let victim = parent.join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("precious"), b"keep").unwrap();
        let planted = parent.join(".data.etcd-snap-restore-999999998.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        let staging = Staging::create(&parent.join("data"), None, false).unwrap();
        let left = names(parent);
        assert!(
            left.contains(&".data.etcd-snap-restore-999999999.tmp".to_string()),
            "{left:?}"
        );
        assert_eq!(
            fs::read(running.join("member/snap/db")).unwrap(),
            b"in progress"
        );
        assert!(!stale.exists(), "unlocked leftover removed: {left:?}");
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(victim.join("precious")).unwrap(), b"keep");
        drop(staging);

        // Once its holder is gone, the next run clears it.
        drop(holder);
        let staging = Staging::create(&parent.join("data"), None, false).unwrap();
        assert!(!running.exists(), "{:?}", names(parent));
        assert!(fs::symlink_metadata(&planted).is_ok(), "a link is not ours");
        drop(staging);
        assert_eq!(
            names(parent),
            [".data.etcd-snap-restore-999999998.tmp", "victim"],
            "a failed run leaves nothing of its own"
        );
    }

    /// A name that exists where this run's staging dir would go — a planted symlink, a file, a
    /// directory — is never reused: the run makes a fresh one, locked, owned by it, mode 0700.
    #[test]
    fn staging_dirs_are_fresh_and_locked() {
        let root = tempfile::tempdir().unwrap();
        let parent = root.path();
        let pid = std::process::id();
        let victim = parent.join("victim");
        fs::create_dir(&victim).unwrap();
        let planted = parent.join(format!(".data.etcd-snap-restore-{pid}.tmp"));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        fs::write(
            parent.join(format!(".data.etcd-snap-restore-{pid}.1.tmp")),
            b"x",
        )
        .unwrap();

        let staging = Staging::create(&parent.join("data"), None, false).unwrap();
        let build = staging.data.wrapper.clone();
        assert_eq!(
            build,
            parent.join(format!(".data.etcd-snap-restore-{pid}.2.tmp"))
        );
        assert_eq!(staging.data.build, build.join("tree"));
        let meta = fs::symlink_metadata(&build).unwrap();
        assert!(meta.is_dir() && meta.permissions().mode() & 0o777 == 0o700);
        assert!(fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            names(&victim),
            Vec::<String>::new(),
            "nothing written through the link"
        );
        // Held for the whole run: nobody else gets the lock.
        let other = open_dir_nofollow(&build).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        // A second run beside it neither reuses nor removes it.
        let second = Staging::create(&parent.join("data"), None, false).unwrap();
        assert_ne!(second.data.wrapper, build);
        assert!(build.is_dir());
        drop(second);
        drop(staging);
        assert!(!build.exists());
        assert!(fs::symlink_metadata(&planted).is_ok());
    }

    #[test]
    fn owners_resolve() {
        assert_eq!(resolve_owner("0:0").ok(), Some((0, Some(0))));
        assert_eq!(resolve_owner("root").ok(), Some((0, Some(0))));
        assert!(resolve_owner("no-such-user-here").is_err());
    }
}
