//! Locating the repository and the etcd binaries that `scripts/setup` installed under `.deps`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Version;

/// The repository root: two levels above this crate's `CARGO_MANIFEST_DIR`.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent().and_then(Path::parent) {
        Some(root) => root.to_path_buf(),
        None => panic!(
            "cannot find the repository root above {}: etcd-test-support must live in <repo>/crates/",
            manifest.display()
        ),
    }
}

/// `<repo>/.deps/etcd-<label>/bin/<tool>`, whether or not it exists.
pub(crate) fn bin_path(v: Version, tool: &str) -> PathBuf {
    repo_root()
        .join(".deps")
        .join(format!("etcd-{}", v.label()))
        .join("bin")
        .join(tool)
}

/// Whether `p` (following symlinks) is a regular file with an execute bit.
pub(crate) fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of `tool` (`"etcd"`, `"etcdctl"` or `"etcdutl"`) of version `v`.
///
/// Panics when it is missing, always (CI or not): run `scripts/setup`. etcd 3.4 has no
/// `etcdutl`; asking for it panics too.
#[track_caller]
pub fn etcd_bin(v: Version, tool: &str) -> PathBuf {
    let p = bin_path(v, tool);
    if !is_executable(&p) {
        if v == Version::V3_4 && tool == "etcdutl" {
            panic!(
                "etcd 3.4 has no etcdutl ({} does not exist): use `etcdctl snapshot ...` for 3.4",
                p.display()
            );
        }
        panic!(
            "etcd {} binary {} is missing: run scripts/setup",
            v.label(),
            p.display()
        );
    }
    p
}

/// Like [`etcd_bin`], but for the optional Debian sid build: `None` when it is missing.
///
/// When `CI` is set a missing binary prints a loud `SKIP(sid not installed)` line to stderr so the
/// skip shows in the CI log; otherwise a one-line note. The required versions (3.4, 3.5) never
/// skip: for them this panics like [`etcd_bin`].
#[track_caller]
pub fn etcd_bin_optional(v: Version, tool: &str) -> Option<PathBuf> {
    if v != Version::V3_5Sid {
        return Some(etcd_bin(v, tool));
    }
    let p = bin_path(v, tool);
    if is_executable(&p) {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        eprintln!(
            "SKIP(sid not installed): ======== {} is missing; the Debian sid etcd tests did not run \
             (scripts/setup could not download it) ========",
            p.display()
        );
    } else {
        eprintln!(
            "SKIP(sid not installed): {} is missing; run scripts/setup to test Debian sid's etcd",
            p.display()
        );
    }
    None
}

/// The `bbolt` command-line tool (Go, `go.etcd.io/bbolt/cmd/bbolt`) that `scripts/setup` builds
/// into `<repo>/.deps/bbolt/bin/bbolt`: a second, independent checker of every database the
/// tools write (`bbolt check FILE` prints `OK`).
///
/// Panics when it is missing, always (CI or not): run `scripts/setup`.
#[track_caller]
pub fn bbolt_cli() -> PathBuf {
    let p = repo_root()
        .join(".deps")
        .join("bbolt")
        .join("bin")
        .join("bbolt");
    if !is_executable(&p) {
        panic!(
            "the bbolt CLI {} is missing: run scripts/setup",
            p.display()
        );
    }
    p
}
