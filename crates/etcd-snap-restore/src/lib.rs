//! `etcd-snap-restore`: turn a snapshot (file or stdin; raw, zstd or age) into a data dir that real
//! etcd 3.4, 3.5, 3.6 and 3.7 boot, for one member or each member of a new cluster; with
//! `--target-version`, for an older etcd than the one that wrote it.
//!
//! The database is streamed into place once while its SHA-256 trailer is checked, then edited
//! copy-on-write (membership, consistent index, term, and the optional revision bump) so that only
//! the pages that change are written; the WAL and v2 snapshot carry the new membership. Everything is
//! built in a staging directory and renamed into place when complete and fsynced.

pub mod cli;
pub mod log;
pub mod manifest;
pub mod report;
pub mod rewrite;
pub mod staging;
pub mod swap;

use cli::Options;
use etcd_common::layers::declared::{self, Declared, Refusal};
use etcd_common::layers::decode::{self, Layer};
use etcd_common::layers::input::{self, Input};
use etcd_common::layers::trailer::{self, CopyError, Trailer};
use etcd_common::progress::{self, Progress};
use etcd_common::{Error, ExitCode, Result};
use staging::{MovedAside, Staging};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Runs the tool on the process's arguments and environment.
pub fn main() -> Result<ExitCode> {
    etcd_common::args::dispatch(cli::parse, |options| {
        let summary = restore(options)?;
        report::print(&summary, options)?;
        Ok(ExitCode::Success)
    })
}

/// What a restore produced.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The plan: members and IDs.
    pub plan: etcd_wal::RestorePlan,
    /// This member's name.
    pub name: String,
    /// The data dir.
    pub data_dir: PathBuf,
    /// The WAL dir.
    pub wal_dir: PathBuf,
    /// Latest revision in the snapshot.
    pub revision: i64,
    /// Latest revision after the bump (equal to `revision` without one).
    pub revision_after: i64,
    /// Whether older revisions are marked compacted.
    pub compacted: bool,
    /// The version edits made for `--target-version` (empty without it).
    pub retarget: etcd_db::schema::Retarget,
    /// Bytes of the database.
    pub db_size: u64,
    /// SHA-256 of the database when its trailer was verified.
    pub sha256: Option<String>,
    /// Layers peeled off the input.
    pub layers: Vec<Layer>,
    /// Targets renamed aside.
    pub moved_aside: Vec<MovedAside>,
    /// Seconds from start to the tree in place.
    pub elapsed_seconds: f64,
    /// What `--log` applied.
    pub log: Option<log::LogSummary>,
}

/// Stops the restore cleanly on SIGINT/SIGTERM: the flag is checked between chunks and steps.
struct Signals {
    interrupted: Arc<AtomicBool>,
    terminated: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals> {
        let interrupted = Arc::new(AtomicBool::new(false));
        let terminated = Arc::new(AtomicBool::new(false));
        let fail = |e: io::Error| Error::io("installing signal handlers", &e);
        signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())
            .map_err(fail)?;
        signal_hook::flag::register(signal_hook::consts::SIGTERM, terminated.clone())
            .map_err(fail)?;
        Ok(Signals {
            interrupted,
            terminated,
        })
    }

    fn check(&self) -> Result<()> {
        if self.interrupted.load(Ordering::Relaxed) {
            return Err(Error::new(
                ExitCode::Interrupted,
                "interrupted: the target was not touched",
            ));
        }
        if self.terminated.load(Ordering::Relaxed) {
            return Err(Error::new(
                ExitCode::Terminated,
                "terminated: the target was not touched",
            ));
        }
        Ok(())
    }
}

/// Restores the snapshot named by `options`.
pub fn restore(options: &Options) -> Result<Summary> {
    let started = Instant::now();
    let signals = Signals::install()?;
    let plan = etcd_wal::plan(
        &options.name,
        &options.initial_cluster,
        &options.initial_cluster_token,
        &options.initial_advertise_peer_urls,
    )
    .map_err(|e| Error::usage(e.to_string()))?;
    let identities = decode::load_identities(&options.identities)?;
    let (input, name) = input::open(options.input.as_deref())?;
    // The whole log is verified before anything is written.
    let scan = match &options.log {
        Some(source) => Some(log::scan(source, &identities, options.target)?),
        None => None,
    };
    let staging = Staging::create(
        &options.data_dir,
        options.wal_dir.as_deref(),
        options.move_aside,
    )?;
    let snap_dir = staging.snap_dir();
    staging::mkdir_all(&snap_dir)?;

    // 1. The database, streamed once, its trailer checked on the way.
    let db_path = snap_dir.join("db");
    let (total, trailer, layers) = match input {
        Input::RawFile { file, len } => {
            let (total, trailer) = copy_raw_file(&file, len, &db_path, &name, options, &signals)?;
            (total, trailer, Vec::new())
        }
        input => {
            let decoded = decode::peel(input.into_reader(), &identities, &name)?;
            let layers = decoded.layers.clone();
            let (total, trailer) = copy_db(decoded, &db_path, &name, options, &signals)?;
            (total, trailer, layers)
        }
    };
    let db_size = match &trailer {
        Trailer::Absent if !options.skip_hash_check => {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("{name}: snapshot missing hash but --skip-hash-check=false (a db copied from a data dir needs --skip-hash-check; otherwise the snapshot is truncated)"),
            ))
        }
        Trailer::Mismatch { computed, stored } if !options.skip_hash_check => {
            return Err(Error::new(
                ExitCode::Integrity,
                format!("{name}: SHA-256 mismatch: the data hashes to {computed} but the trailer says {stored}"),
            ))
        }
        Trailer::Absent => total,
        _ => total - 32,
    };
    if db_size != total {
        let file = OpenOptions::new()
            .write(true)
            .open(&db_path)
            .map_err(|e| Error::io(format!("opening {}", db_path.display()), &e))?;
        file.set_len(db_size).map_err(|e| {
            Error::io(
                format!("stripping the trailer of {}", db_path.display()),
                &e,
            )
        })?;
    }
    signals.check()?;

    // 2. What etcd would refuse to boot is refused before anything is in place.
    let versions = bbolt::Db::open(&db_path)
        .and_then(|db| etcd_db::schema::VersionState::read(&db))
        .map_err(|e| Error::new(ExitCode::Integrity, format!("{name}: {e}")))?;
    let retarget = etcd_db::schema::retarget(&versions, options.target_version)
        .map_err(|e| Error::new(ExitCode::Refused, format!("{name}: {e}")))?;

    // 2b. The log: checked against the snapshot, then its revisions through the target appended.
    let log_summary = match scan {
        Some(scan) => {
            let integrity = |e: String| Error::new(ExitCode::Integrity, format!("{name}: {e}"));
            let snap_rev = bbolt::write::Editor::open(&db_path)
                .and_then(|ed| ed.last_key(etcd_db::buckets::KEY))
                .map_err(|e| integrity(e.to_string()))?
                .map(|k| etcd_db::Revision::parse(&k).map(|r| r.main))
                .transpose()
                .map_err(|e| integrity(e.to_string()))?
                .unwrap_or(0);
            let db = bbolt::Db::open(&db_path).map_err(|e| integrity(e.to_string()))?;
            let plan = log::plan(scan, &db, snap_rev, options.log_cluster_id)?;
            drop(db);
            Some(log::apply(&plan, &db_path, &|| signals.check())?)
        }
        None => None,
    };
    // The log grew the database: the summary gives its size as written.
    let db_size = match &log_summary {
        Some(_) => fs::metadata(&db_path)
            .map_err(|e| Error::io(format!("reading {}", db_path.display()), &e))?
            .len(),
        None => db_size,
    };
    signals.check()?;

    // 3. Membership, consistent index, term, the bump and the version edits, copy-on-write.
    let revisions = rewrite::rewrite(&db_path, &plan, options.bump_revision, &retarget)
        .map_err(|e| Error::new(ExitCode::Integrity, format!("{name}: {e}")))?;
    signals.check()?;

    // 4. The v2 snapshot and the WAL with the new membership.
    etcd_wal::write_snap(&snap_dir, &plan)
        .map_err(|e| Error::new(ExitCode::LocalIo, format!("writing the v2 snapshot: {e}")))?;
    let wal_dir = staging.wal_dir();
    staging::mkdir_all(&wal_dir)?;
    etcd_wal::write_wal(&wal_dir, &plan)
        .map_err(|e| Error::new(ExitCode::LocalIo, format!("writing the WAL: {e}")))?;
    if let Some(owner) = &options.owner {
        staging::chown_tree(&staging.roots(), owner)?;
    }
    signals.check()?;

    // 5. Into place.
    let moved_aside = staging.moved_aside();
    let final_wal = options
        .wal_dir
        .clone()
        .unwrap_or_else(|| options.data_dir.join("member").join("wal"));
    staging.finish()?;
    if let Some(owner) = &options.owner {
        // An existing empty target (built inside) keeps its own inode: hand it over too.
        staging::chown_one(&options.data_dir, owner)?;
    }
    Ok(Summary {
        plan,
        name: options.name.clone(),
        data_dir: options.data_dir.clone(),
        wal_dir: final_wal,
        revision: revisions.before,
        revision_after: revisions.after,
        compacted: options.mark_compacted,
        retarget,
        db_size,
        sha256: match trailer {
            Trailer::Verified(h) => Some(h),
            _ => None,
        },
        layers,
        moved_aside,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        log: log_summary,
    })
}

/// Copies a raw snapshot file into `db_path` (mode 0600) with `copy_file_range` (no copy through
/// this process) while a second thread checks its trailer, with progress.
fn copy_raw_file(
    file: &fs::File,
    len: u64,
    db_path: &std::path::Path,
    name: &str,
    options: &Options,
    signals: &Signals,
) -> Result<(u64, Trailer)> {
    const STEP: u64 = 64 << 20;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db_path)
        .map_err(|e| Error::io(format!("creating {}", db_path.display()), &e))?;
    let mut progress = Progress::new(progress::wanted(options.progress, options.quiet), "restore");
    progress.set_total(len);
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| trailer::file_trailer(file, len));
        let mut copied = 0u64;
        let mut source = file;
        while copied < len {
            let n = io::copy(&mut io::Read::take(&mut source, STEP), &mut out)
                .map_err(|e| Error::io(format!("copying {name} to {}", db_path.display()), &e))?;
            if n == 0 {
                return Err(Error::new(
                    ExitCode::Integrity,
                    format!("{name}: the file shrank while it was read"),
                ));
            }
            copied += n;
            progress.update(copied);
            signals.check()?;
        }
        progress.finish(copied);
        // Flush while the hash is still being computed: the later fsync of the tree is then quick.
        out.sync_data()
            .map_err(|e| Error::io(format!("fsync {}", db_path.display()), &e))?;
        let trailer = hashing
            .join()
            .map_err(|_| Error::new(ExitCode::LocalIo, format!("{name}: hashing failed")))?
            .map_err(|e| Error::io(format!("reading {name}"), &e))?;
        Ok((copied, trailer))
    })
}

/// Streams the decoded input into `db_path` (mode 0600), hashing it, with progress.
fn copy_db(
    mut decoded: decode::Decoded,
    db_path: &std::path::Path,
    name: &str,
    options: &Options,
    signals: &Signals,
) -> Result<(u64, Trailer)> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db_path)
        .map_err(|e| Error::io(format!("creating {}", db_path.display()), &e))?;
    // Never more than the database's meta page declares (+ trailer): a stream that never ends
    // must not fill the target's disk.
    let slack = declared::slack(options.skip_hash_check);
    // Unbuffered: copy_hashing writes 128 KiB pieces while they are hot in the cache.
    let mut out = Declared::new(&file, slack);
    let mut progress = Progress::new(progress::wanted(options.progress, options.quiet), "restore");
    let result = trailer::copy_hashing(&mut decoded.reader, &mut out, &mut |n| {
        progress.update(n);
        signals.check().is_ok()
    });
    let refused = out.refusal();
    let written = out.written();
    let (total, trailer) = match result {
        Ok(done) => done,
        Err(CopyError::Read(e)) => return Err(decode::read_error(name, &decoded.layers, &e)),
        Err(CopyError::Write(e)) => match refused {
            Some(Refusal::Over { declared, slack }) => {
                return Err(declared::too_long(name, declared, slack))
            }
            // Not a database: what was written holds the meta candidates; the checks that follow
            // (the trailer, then opening the db) say why.
            Some(Refusal::NoMeta) => {
                out.flush()
                    .map_err(|e| Error::io(format!("writing {}", db_path.display()), &e))?;
                (written, Trailer::Absent)
            }
            None => return Err(Error::io(format!("writing {}", db_path.display()), &e)),
        },
        Err(CopyError::Stopped) => {
            signals.check()?;
            return Err(Error::new(ExitCode::Interrupted, "interrupted"));
        }
    };
    drop(out);
    progress.finish(total);
    if total == 0 {
        return Err(Error::new(
            ExitCode::Integrity,
            format!("{name}: the input is empty"),
        ));
    }
    Ok((total, trailer))
}
