//! Building the restored tree out of sight and moving it into place in one rename.
//!
//! The tree is built in a staging directory beside the target (same filesystem, so the final
//! rename is atomic) — or, when the target is an existing empty directory such as a mount point,
//! inside it, with only `member/` renamed at the end. A crash or signal at any moment leaves the
//! target as it was; the staging directory of a process that no longer exists is recognised by its
//! name and removed by the next run.

use etcd_common::error::io_reason;
use etcd_common::{Error, ExitCode, Result};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The marker in every staging directory's name.
const MARK: &str = ".etcd-snap-restore-";

/// One directory to produce: where it is built and where it goes.
#[derive(Debug)]
pub struct Stage {
    /// The final path.
    pub target: PathBuf,
    /// Where it is built.
    pub build: PathBuf,
    /// Built inside the (empty) target: only its children are moved at the end.
    pub inside: bool,
    /// The occupied target to rename aside right before the built tree takes its place.
    pub aside: Option<PathBuf>,
}

/// What happened to an existing target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// The old path.
    pub from: PathBuf,
    /// Where it went.
    pub to: PathBuf,
}

/// The staging area for the data dir and, if separate, the WAL dir; removed on drop unless finished.
#[derive(Debug)]
pub struct Staging {
    /// The data dir's stage.
    pub data: Stage,
    /// The separate WAL dir's stage.
    pub wal: Option<Stage>,
    finished: bool,
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

/// Removes staging directories of restores whose process is gone, in `dir`.
fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.find(MARK).map(|at| &name[at + MARK.len()..]) else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
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
    fn prepare(target: &Path, what: &str, move_aside: bool) -> Result<Stage> {
        let target = &resolve_target(target, what)?;
        let state = target_state(target)?;
        let aside = match state {
            TargetState::Occupied(_) if move_aside => Some(aside_name(target)),
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
        let stage = match state {
            TargetState::EmptyDir => {
                remove_stale(target);
                let build = target.join(format!("{MARK}{}.tmp", std::process::id()));
                Stage {
                    target: target.to_path_buf(),
                    build,
                    inside: true,
                    aside,
                }
            }
            _ => {
                let parent = parent_of(target);
                mkdir_all(&parent)?;
                remove_stale(&parent);
                let build = parent.join(format!(".{leaf}{MARK}{}.tmp", std::process::id()));
                Stage {
                    target: target.to_path_buf(),
                    build,
                    inside: false,
                    aside,
                }
            }
        };
        let _ = fs::remove_dir_all(&stage.build);
        mkdir_all(&stage.build)?;
        Ok(stage)
    }

    fn install(&self) -> Result<()> {
        if self.inside {
            for entry in fs::read_dir(&self.build)
                .map_err(|e| Error::io(format!("reading {}", self.build.display()), &e))?
            {
                let entry = entry
                    .map_err(|e| Error::io(format!("reading {}", self.build.display()), &e))?;
                let to = self.target.join(entry.file_name());
                fs::rename(entry.path(), &to)
                    .map_err(|e| Error::io(format!("moving {} into place", to.display()), &e))?;
            }
            fs::remove_dir(&self.build)
                .map_err(|e| Error::io(format!("removing {}", self.build.display()), &e))?;
            fs::set_permissions(&self.target, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("chmod {}", self.target.display()), &e))?;
            sync_dir(&self.target)
        } else {
            if let Some(to) = &self.aside {
                fs::rename(&self.target, to).map_err(|e| {
                    Error::io(
                        format!("moving {} aside to {}", self.target.display(), to.display()),
                        &e,
                    )
                })?;
            }
            fs::rename(&self.build, &self.target).map_err(|e| {
                Error::io(
                    format!(
                        "renaming {} to {}",
                        self.build.display(),
                        self.target.display()
                    ),
                    &e,
                )
            })?;
            sync_dir(&parent_of(&self.target))
        }
    }
}

impl Staging {
    /// Checks the targets and creates the staging directories. A non-empty target is refused
    /// (exit 5) unless `move_aside`, which renames it to `<target>.bak-<UTC time>`.
    pub fn create(data_dir: &Path, wal_dir: Option<&Path>, move_aside: bool) -> Result<Staging> {
        let data = Stage::prepare(data_dir, "data dir", move_aside)?;
        let mut staging = Staging {
            data,
            wal: None,
            finished: false,
        };
        if let Some(wal) = wal_dir {
            staging.wal = Some(Stage::prepare(wal, "wal dir", move_aside)?);
        }
        Ok(staging)
    }

    /// The targets that will be (or were) renamed aside.
    pub fn moved_aside(&self) -> Vec<MovedAside> {
        std::iter::once(&self.data)
            .chain(self.wal.iter())
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
        let mut roots = vec![self.data.build.clone()];
        roots.extend(self.wal.iter().map(|s| s.build.clone()));
        roots
    }

    /// Moves the built tree into place: the WAL dir first, the data dir last.
    pub fn finish(mut self) -> Result<()> {
        for root in self.roots() {
            sync_tree(&root)?;
        }
        if let Some(wal) = &self.wal {
            wal.install()?;
        }
        self.data.install()?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.finished {
            for root in self.roots() {
                let _ = fs::remove_dir_all(root);
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

/// A compact ISO-8601 UTC timestamp, computed without a time zone database.
pub fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
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

    #[test]
    fn owners_resolve() {
        assert_eq!(resolve_owner("0:0").ok(), Some((0, Some(0))));
        assert_eq!(resolve_owner("root").ok(), Some((0, Some(0))));
        assert!(resolve_owner("no-such-user-here").is_err());
    }
}
