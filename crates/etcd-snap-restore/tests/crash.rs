//! Crash consistency of etcd-snap-restore against the real binary (issues 14 and 21): SIGKILL
//! injected by strace at every rename, renameat, renameat2, fsync and fdatasync of a run that
//! moves an old data dir (and WAL dir) aside, with and without RENAME_EXCHANGE; a disk that holds
//! the database but not the preallocated WAL; a data dir that is a mount point; staging
//! directories of killed runs (a zombie's included) against live ones.
//!
//! Why byte comparison stands in for booting most states: every run here restores the same
//! snapshot with the same flags, and a restore is deterministic, so each target after a kill is
//! compared byte for byte with the old tree and with the tree of an uninterrupted run; that tree
//! is booted by real etcd, and so are two states right after the commit step (the old tree still
//! parked in the staging directory), which is where a kill leaves the most beside the target.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{run_ok, Cluster, Run, Tool, Version};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{member_args, restore, RESTORE};

/// In every staging directory's name.
const MARK: &str = ".etcd-snap-restore-";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A snapshot of a 3.5 member holding `k=v` and `big` values of 100 kB, saved into `dir`.
fn snapshot(dir: &Path, big: usize) -> PathBuf {
    let cluster = Cluster::builder(Version::V3_5).start();
    cluster.put("k", "v");
    let value = "x".repeat(100_000);
    for i in 0..big {
        cluster.put(&format!("big/{i}"), &value);
    }
    let snap = dir.join("snap.db");
    run_ok(cluster.etcdctl().args(["snapshot", "save", &s(&snap)]));
    snap
}

/// One file-tree entry, compared by content (links are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Everything under `root` by relative path; `None` when `root` does not exist.
fn tree(root: &Path) -> Option<BTreeMap<PathBuf, Node>> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        let node = if meta.file_type().is_symlink() {
            Node::Link(fs::read_link(&path).unwrap())
        } else if meta.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                walk(root, &rel.join(entry.unwrap().file_name()), out);
            }
            Node::Dir
        } else {
            Node::File(fs::read(&path).unwrap())
        };
        out.insert(rel.to_path_buf(), node);
    }
    fs::symlink_metadata(root).ok()?;
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    Some(out)
}

/// What a target holds after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Old,
    New,
    Missing,
    Other,
}

fn classify(path: &Path, old: &BTreeMap<PathBuf, Node>, new: &BTreeMap<PathBuf, Node>) -> State {
    let ours = |rel: &PathBuf| {
        rel.components()
            .next()
            .is_some_and(|c| c.as_os_str().to_string_lossy().contains(MARK))
    };
    match tree(path).map(|mut t| {
        t.retain(|rel, _| !ours(rel));
        t
    }) {
        None => State::Missing,
        Some(t) if &t == old => State::Old,
        Some(t) if &t == new => State::New,
        Some(_) => State::Other,
    }
}

/// Names in `dir` that are staging directories.
fn staged(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(MARK))
        .collect()
}

/// Whether a staging directory in `dir`, or in the targets `data` and `wal` inside it (where a
/// tree is built for an empty target), holds a swap journal.
fn journal_left(dir: &Path) -> bool {
    [dir.to_path_buf(), dir.join("data"), dir.join("wal")]
        .iter()
        .filter(|d| d.is_dir())
        .any(|d| {
            staged(d)
                .iter()
                .any(|n| d.join(n).join("journal").is_file())
        })
}

/// Runs the restore under strace, SIGKILLed at the `when`-th `syscall`; with `no_exchange`,
/// every `renameat2` fails with EINVAL, as on a filesystem without RENAME_EXCHANGE and
/// RENAME_NOREPLACE.
fn killed_run(args: &[String], syscall: &str, when: usize, no_exchange: bool) -> Run {
    // strace is an apt package scripts/setup installs.
    let mut strace = Tool::from_command(Command::new("strace"));
    strace.args(["-f", "-o", "/dev/null", "-qq"]);
    if no_exchange {
        strace.arg("-e").arg(format!("trace={syscall},renameat2"));
        strace.args(["-e", "inject=renameat2:error=EINVAL"]);
    } else {
        strace.arg("-e").arg(format!("trace={syscall}"));
    }
    strace
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL:when={when}"));
    strace.arg(RESTORE).args(args).run()
}

/// An old data dir (and WAL dir) for a restore to move aside.
fn plant_old(data: &Path, wal: Option<&Path>) {
    fs::create_dir_all(data.join("member/snap")).unwrap();
    fs::write(data.join("member/snap/db"), b"old db").unwrap();
    fs::write(data.join("old"), b"old").unwrap();
    if let Some(wal) = wal {
        fs::create_dir_all(wal).unwrap();
        fs::write(
            wal.join("0000000000000000-0000000000000000.wal"),
            b"old wal",
        )
        .unwrap();
    }
}

/// The one `<name>.bak-*` in `dir`.
fn aside(dir: &Path, name: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.bak-"))
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn assert_get_k(cluster: &Cluster) {
    let out = run_ok(cluster.etcdctl().args(["get", "k", "--print-value-only"]));
    assert_eq!(out.trim(), "v");
}

/// Kills a `--move-aside` restore at every rename and fsync, one point per run (each syscall
/// counted on its own, `when` = 1, 2, ... until a run completes without the kill firing), and
/// asserts after each: every target is exactly the old tree or exactly the new one (missing
/// only between the two renames of the fallback); a WAL/data pair that differs happens only
/// with the journal left; the next run (here one that is then refused, exit 5) finishes or undoes
/// the swap first, leaving a consistent pair, the old trees at their `.bak-` names if new, and no
/// staging directory; a full rerun succeeds. The uninterrupted run's tree boots.
fn every_kill_point(with_wal: bool, exchange: bool, empty: bool) {
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let snap = snapshot(work.path(), 0);
    let boot_wal = work.path().join("boot-wal");
    let mut builder = Cluster::builder(Version::V3_5);
    if with_wal {
        builder = builder.arg(&format!("--wal-dir={}", s(&boot_wal)));
    }
    let prepared = builder.prepare();
    let mut base = vec![s(&snap)];
    base.extend(member_args(&prepared));

    // The uninterrupted run, into the member's own dirs: the new trees every state is held to.
    let boot_data = prepared.cluster().data_dir(0);
    let mut args = base.clone();
    args.extend(["--data-dir".into(), s(&boot_data)]);
    if with_wal {
        args.extend(["--wal-dir".into(), s(&boot_wal)]);
    }
    restore(&args).succeeds();
    let new_data = tree(&boot_data).unwrap();
    let new_wal = with_wal.then(|| tree(&boot_wal).unwrap());

    let syscalls: &[&str] = if exchange {
        &["renameat2", "renameat", "rename", "fsync", "fdatasync"]
    } else {
        &["renameat", "rename", "fsync", "fdatasync"]
    };
    let mut kills = BTreeMap::new();
    for syscall in syscalls {
        for when in 1.. {
            let t = tempfile::tempdir_in(work.path()).unwrap();
            let (data, wal) = (t.path().join("data"), t.path().join("wal"));
            if empty {
                // Existing empty targets (mount points, say): built inside, entries renamed in.
                fs::create_dir(&data).unwrap();
                fs::create_dir(&wal).unwrap();
            } else {
                plant_old(&data, with_wal.then_some(wal.as_path()));
            }
            let mut args = base.clone();
            args.extend(["--data-dir".into(), s(&data)]);
            if with_wal {
                args.extend(["--wal-dir".into(), s(&wal)]);
            }
            let kill = Kill {
                case: format!(
                    "--wal-dir {with_wal}, exchange {exchange}, empty {empty}, {syscall} #{when}"
                ),
                dir: t.path().to_path_buf(),
                old_data: tree(&data).unwrap(),
                old_wal: tree(&wal),
                new_data: new_data.clone(),
                new_wal: new_wal.clone(),
                data,
                wal,
                args,
            };
            let out = killed_run(
                &[kill.args.clone(), vec!["--move-aside".into()]].concat(),
                syscall,
                when,
                !exchange,
            );
            if out.success() {
                break; // this syscall happens fewer than `when` times: every point of it is done
            }
            assert_eq!(out.status.signal(), Some(9), "{}: {out:?}", kill.case);
            *kills.entry(*syscall).or_insert(0) += 1;
            kill.assert_old_or_new(exchange);
            if empty {
                kill.assert_next_run_fills_the_empty_targets();
            } else {
                kill.assert_next_run_finishes_or_undoes_the_swap();
            }
        }
    }
    for syscall in ["renameat2", "fsync", "fdatasync"] {
        if exchange || syscall != "renameat2" {
            assert!(kills.get(syscall).copied().unwrap_or(0) > 0, "{kills:?}");
        }
    }
    if !exchange {
        assert!(
            kills.get("renameat").copied().unwrap_or(0) >= 2,
            "{kills:?}"
        );
    }
    let restored = prepared.start();
    assert_get_k(&restored);
    eprintln!(
        "every_kill_point(wal {with_wal}, exchange {exchange}, empty {empty}): kills {kills:?} in {:?}",
        started.elapsed()
    );
}

/// Everything under a directory, as [`tree`] reads it.
type Tree = BTreeMap<PathBuf, Node>;

/// One run of [`every_kill_point`] killed at one point: its targets, and the trees they are held
/// to (as they were, and as the uninterrupted run left them).
struct Kill {
    /// The syscall and its number, for messages.
    case: String,
    /// The temporary directory holding the targets.
    dir: PathBuf,
    data: PathBuf,
    wal: PathBuf,
    /// The restore's arguments without `--move-aside`.
    args: Vec<String>,
    old_data: Tree,
    old_wal: Option<Tree>,
    new_data: Tree,
    new_wal: Option<Tree>,
}

impl Kill {
    /// Right after the kill: every target is exactly the old tree or exactly the new one
    /// (missing only between the two renames of the fallback), and a WAL/data pair that
    /// differs, or a missing data dir, happens only with the journal left.
    fn assert_old_or_new(&self, exchange: bool) {
        let case = &self.case;
        let d = classify(&self.data, &self.old_data, &self.new_data);
        let allowed = if exchange {
            vec![State::Old, State::New]
        } else {
            vec![State::Old, State::New, State::Missing]
        };
        assert!(allowed.contains(&d), "{case}: data dir is {d:?}");
        if d == State::Missing {
            assert!(journal_left(&self.dir), "{case}: missing without a journal");
        }
        if let (Some(old_wal), Some(new_wal)) = (&self.old_wal, &self.new_wal) {
            let w = classify(&self.wal, old_wal, new_wal);
            assert!(allowed.contains(&w), "{case}: WAL dir is {w:?}");
            if w != d {
                assert!(
                    journal_left(&self.dir),
                    "{case}: {d:?}/{w:?} without a journal"
                );
            }
        }
    }

    /// Into empty targets: the next run finishes or undoes the swap, then restores into the
    /// empty targets or refuses the complete ones; either way they hold the new trees and no
    /// staging directory is left.
    fn assert_next_run_fills_the_empty_targets(&self) {
        let case = &self.case;
        let again = restore(&self.args);
        assert!([0, 5].contains(&again.code), "{case}: {again:?}");
        assert_eq!(
            classify(&self.data, &self.old_data, &self.new_data),
            State::New,
            "{case}"
        );
        if let (Some(old_wal), Some(new_wal)) = (&self.old_wal, &self.new_wal) {
            assert_eq!(classify(&self.wal, old_wal, new_wal), State::New, "{case}");
        }
        for dir in [&self.dir, &self.data, &self.wal] {
            assert_eq!(staged(dir), Vec::<String>::new(), "{case}");
        }
    }

    /// Over old targets: the next run (refused, exit 5) finishes or undoes the swap first,
    /// leaving a consistent pair, the old trees at their `.bak-` names if new, and no staging
    /// directory; a full rerun then succeeds.
    fn assert_next_run_finishes_or_undoes_the_swap(&self) {
        let case = &self.case;
        let again = restore(&self.args);
        assert_eq!(again.code, 5, "{case}: {again:?}");
        let d = classify(&self.data, &self.old_data, &self.new_data);
        assert!([State::Old, State::New].contains(&d), "{case}: then {d:?}");
        if let (Some(old_wal), Some(new_wal)) = (&self.old_wal, &self.new_wal) {
            assert_eq!(classify(&self.wal, old_wal, new_wal), d, "{case}: the pair");
            if d == State::New {
                assert_eq!(tree(&aside(&self.dir, "wal")).as_ref(), Some(old_wal));
            }
        }
        if d == State::New {
            assert_eq!(tree(&aside(&self.dir, "data")), Some(self.old_data.clone()));
        }
        assert_eq!(staged(&self.dir), Vec::<String>::new(), "{case}");

        let full = restore(&[&self.args[..], &["--move-aside".to_string()]].concat());
        assert_eq!(full.code, 0, "{case}: {full:?}");
        assert_eq!(tree(&self.data), Some(self.new_data.clone()), "{case}");
        assert_eq!(staged(&self.dir), Vec::<String>::new(), "{case}");
    }
}

#[test]
fn killed_at_every_rename_and_fsync() {
    every_kill_point(false, true, false);
}

#[test]
fn killed_at_every_rename_and_fsync_with_wal_dir() {
    every_kill_point(true, true, false);
}

#[test]
fn killed_at_every_rename_and_fsync_without_rename_exchange() {
    every_kill_point(false, false, false);
    every_kill_point(true, false, false);
}

/// The same into existing empty targets, where the tree is built inside each and its entries are
/// renamed into place (no exchange needed); staging left inside a target does not count.
#[test]
fn killed_at_every_rename_and_fsync_into_empty_targets() {
    every_kill_point(true, true, true);
}

/// Killed right after the commit (the data dir's exchange done, the old trees still in the
/// staging directories): etcd boots the target as it is, and the next run moves the old trees
/// to their `.bak-` names.
#[test]
fn killed_after_the_commit_boots() {
    // renameat2 calls: the probe of each stage, the exchanges (WAL, then data), the moves aside.
    for (with_wal, when) in [(false, 3), (true, 5)] {
        let work = tempfile::tempdir().unwrap();
        let snap = snapshot(work.path(), 0);
        let wal = work.path().join("wal");
        let mut builder = Cluster::builder(Version::V3_5);
        if with_wal {
            builder = builder.arg(&format!("--wal-dir={}", s(&wal)));
        }
        let prepared = builder.prepare();
        let data = prepared.cluster().data_dir(0);
        plant_old(&data, with_wal.then_some(wal.as_path()));
        let old_data = tree(&data).unwrap();
        let mut args = vec![
            s(&snap),
            "--data-dir".into(),
            s(&data),
            "--move-aside".into(),
        ];
        args.extend(member_args(&prepared));
        if with_wal {
            args.extend(["--wal-dir".into(), s(&wal)]);
        }
        let out = killed_run(&args, "renameat2", when, false);
        assert_eq!(out.status.signal(), Some(9), "{out:?}");
        let parent = data.parent().unwrap().to_path_buf();
        assert!(journal_left(&parent), "the old tree waits in a staging dir");
        assert!(data.join("member/snap/db").is_file());
        let restored = prepared.start();
        assert_get_k(&restored);
        // While it runs (dropping the cluster removes its directory):
        let again = restore(&[&args[..3], &args[4..]].concat());
        assert_eq!(again.code, 5, "{again:?}");
        let name = data.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(tree(&aside(&parent, &name)), Some(old_data));
        if with_wal {
            let old_wal = b"old wal".to_vec();
            let kept = tree(&aside(work.path(), "wal")).unwrap();
            assert!(kept.values().any(|n| *n == Node::File(old_wal.clone())));
        }
        assert_eq!(staged(&parent), Vec::<String>::new());
        assert_get_k(&restored);
    }
}

/// Runs `script` as root in a private mount namespace (its mounts vanish with it; the host's
/// are never touched), with `$R` the restore binary; returns its output.
fn in_mount_namespace(script: &str) -> Run {
    let out = Tool::from_command(Command::new("unshare"))
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .env("R", RESTORE)
        .run();
    out.succeeds();
    out
}

/// `key=value` lines printed by a script, as a map.
fn facts(out: &Run) -> BTreeMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Issue 21 item 2: on a tmpfs that holds the database but not the 64 MB WAL, the restore fails
/// (exit 6, one line, the WAL named) and leaves the old target as it was and nothing else; on
/// one big enough it succeeds with every block of the WAL allocated.
#[test]
fn a_disk_too_small_for_the_wal_fails_the_restore() {
    let work = tempfile::tempdir().unwrap();
    let snap = snapshot(work.path(), 30);
    let db = fs::metadata(&snap).unwrap().len();
    assert!(db > 3_000_000 && db < 8_000_000, "db of {db} bytes");
    let m = work.path().join("m");
    fs::create_dir(&m).unwrap();
    let script = format!(
        r#"
for size in 16m 100m; do
  mount -t tmpfs -o size=$size tmpfs {m}
  mkdir {m}/data && echo old > {m}/data/old
  rc=0; "$R" {snap} --data-dir {m}/data --move-aside >/dev/null 2>{work}/err-$size || rc=$?
  echo "rc-$size=$rc"
  echo "err-$size=$(head -c 400 {work}/err-$size | tr '\n' '|')"
  echo "listing-$size=$(cd {m} && find . | sort | grep -v '^./data.bak-' | tr '\n' ' ')"
  echo "old-$size=$(cat {m}/data/old {m}/data.bak-*/old 2>/dev/null | tr '\n' ' ')"
  echo "walbytes-$size=$(stat -c '%b*%B' {m}/data/member/wal/*.wal 2>/dev/null | head -1)"
  umount {m}
done
"#,
        m = s(&m),
        snap = s(&snap),
        work = s(work.path()),
    );
    let f = facts(&in_mount_namespace(&script));
    assert_eq!(f["rc-16m"], "6", "{f:?}");
    let err = &f["err-16m"];
    assert!(
        err.starts_with("Error: writing the WAL") && err.contains("No space left on device"),
        "{f:?}"
    );
    assert_eq!(err.matches('|').count(), 1, "one line: {f:?}");
    assert_eq!(
        f["listing-16m"], ". ./data ./data/old ",
        "nothing half-written: {f:?}"
    );
    assert_eq!(f["old-16m"], "old ", "{f:?}");

    assert_eq!(f["rc-100m"], "0", "{f:?}");
    assert_eq!(f["old-100m"], "old ", "moved aside: {f:?}");
    let (blocks, size) = f["walbytes-100m"].split_once('*').unwrap();
    let allocated: u64 = blocks.parse::<u64>().unwrap() * size.parse::<u64>().unwrap();
    assert!(
        allocated >= 64_000_000,
        "WAL allocated {allocated} bytes: {f:?}"
    );
}

/// Issue 21 item 3: `--move-aside` on a data dir that is a non-empty mount point (a tmpfs, a
/// bind mount of a directory on the same filesystem) is refused up front, exit 5, one line
/// saying what to do, nothing written; an empty mount point is restored into.
#[test]
fn a_mount_point_is_refused_up_front() {
    let work = tempfile::tempdir().unwrap();
    let snap = snapshot(work.path(), 0);
    let w = s(work.path());
    let script = format!(
        r#"
mkdir {w}/t {w}/src {w}/bind {w}/empty
mount -t tmpfs -o size=100m tmpfs {w}/t && echo old > {w}/t/old
echo old > {w}/src/old && mount --bind {w}/src {w}/bind
mount -t tmpfs -o size=100m tmpfs {w}/empty
for d in t bind; do
  rc=0; "$R" {snap} --data-dir {w}/$d --move-aside >/dev/null 2>{w}/err || rc=$?
  echo "rc-$d=$rc"; echo "lines-$d=$(wc -l < {w}/err)"; echo "err-$d=$(cat {w}/err)"
  echo "listing-$d=$(ls -A {w}/$d | tr '\n' ' ')"
done
rc=0; "$R" {snap} --data-dir {w}/empty >/dev/null 2>{w}/err || rc=$?
echo "rc-empty=$rc"; echo "listing-empty=$(ls -A {w}/empty | tr '\n' ' ')"
echo "parent=$(ls -A {w} | tr '\n' ' ')"
"#,
        snap = s(&snap),
    );
    let f = facts(&in_mount_namespace(&script));
    for d in ["t", "bind"] {
        assert_eq!(f[&format!("rc-{d}")], "5", "{f:?}");
        assert_eq!(f[&format!("lines-{d}")], "1", "{f:?}");
        let err = &f[&format!("err-{d}")];
        assert!(
            err.starts_with("Error: data dir ")
                && err.contains("is a mount point")
                && err.contains("without --move-aside"),
            "{f:?}"
        );
        assert_eq!(f[&format!("listing-{d}")], "old ", "{f:?}");
    }
    assert_eq!(f["rc-empty"], "0", "{f:?}");
    assert_eq!(f["listing-empty"], "member ", "{f:?}");
    assert!(!f["parent"].contains(MARK), "nothing staged: {f:?}");
}

/// Issue 21 item 5: the staging directory of a SIGKILLed restore is removed by the next run even
/// while the dead run is a zombie (its PID still taken, `/proc/PID` still there), and one whose
/// restore is alive (waiting on stdin, its lock held) is left alone until that restore is gone.
#[test]
fn staging_of_killed_runs_goes_live_ones_stay() {
    let work = tempfile::tempdir().unwrap();
    let snap = snapshot(work.path(), 0);
    let dir = work.path().join("d");
    fs::create_dir(&dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let spawn_waiting = |target: &str| {
        let running = Tool::new(RESTORE)
            .args(["-", "--data-dir", &s(&dir.join(target))])
            .stdin_piped()
            .spawn();
        let name = format!(".{target}{MARK}{}.tmp", running.child.id());
        while !staged(&dir).contains(&name) {
            assert!(Instant::now() < deadline, "no staging dir {name}");
            std::thread::sleep(Duration::from_millis(20));
        }
        (running, name)
    };
    let (mut zombie, _) = spawn_waiting("a");
    zombie.child.kill().unwrap(); // SIGKILL, and not waited for: a zombie
    let stat = format!("/proc/{}/stat", zombie.child.id());
    while !fs::read_to_string(&stat).unwrap().contains(") Z ") {
        assert!(Instant::now() < deadline, "not a zombie yet");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut live, live_name) = spawn_waiting("b");

    restore(&[s(&snap), "--data-dir".into(), s(&dir.join("c"))]).succeeds();
    assert_eq!(
        staged(&dir),
        [live_name],
        "the killed run's goes, the live one's stays"
    );
    assert!(
        fs::read_to_string(&stat).unwrap().contains(") Z "),
        "still a zombie"
    );

    drop(live.child.stdin.take()); // an empty input: the live run fails (exit 4) and cleans up itself
    live.finish(Some(Duration::from_secs(60))).fails(4);
    let zombie = zombie.finish(None);
    assert_eq!(zombie.status.signal(), Some(9), "{zombie:?}");
    assert_eq!(staged(&dir), Vec::<String>::new());
}
