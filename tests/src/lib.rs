//! Shared helpers for the end-to-end tests in this directory.
//!
//! These tests run the release-shaped pieces the way users do: the four binaries from the
//! workspace's target directory, the scripts under `scripts/`, the playbooks and units under
//! `examples/`, all against real etcd servers started by `etcd-test-support`. The binaries are built
//! by the same `cargo nextest run --workspace` / `cargo test --workspace` that runs these tests.

use std::path::{Path, PathBuf};

pub use etcd_test_support as support;

/// The directory holding the workspace binaries this test was built with (`target/<profile>`).
///
/// Panics with what to run when the binaries are not there (e.g. `cargo test -p etcd-snap-e2e`
/// alone, which does not build the other packages' binaries).
#[track_caller]
pub fn bin_dir() -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => panic!("cannot find the test executable: {e}"),
    };
    // target/<profile>/deps/<test>-<hash>
    let dir = match exe.parent().and_then(Path::parent) {
        Some(d) => d.to_path_buf(),
        None => panic!("unexpected test executable path {}", exe.display()),
    };
    for tool in TOOLS {
        if !dir.join(tool).is_file() {
            panic!(
                "{} is missing: run `cargo build --workspace --bins` (or the whole suite, scripts/test) first",
                dir.join(tool).display()
            );
        }
    }
    dir
}

/// The workspace's binaries, as the scripts call them through `PATH`.
pub const TOOLS: [&str; 4] = [
    "etcd-health",
    "etcd-snap-save",
    "etcd-snap-status",
    "etcd-snap-restore",
];

/// The path of one workspace binary.
#[track_caller]
pub fn tool(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// `<repo>/scripts/<name>`.
pub fn script(name: &str) -> PathBuf {
    support::repo_root().join("scripts").join(name)
}

/// `<repo>/examples/<rel>`.
pub fn example(rel: &str) -> PathBuf {
    support::repo_root().join("examples").join(rel)
}

/// A `PATH` with the workspace binaries and the etcd 3.5 tools first, then the inherited one.
#[track_caller]
pub fn path_with_tools() -> String {
    let etcd = support::etcd_bin(support::Version::V3_5, "etcd");
    let etcd_dir = etcd.parent().map(Path::to_path_buf).unwrap_or_default();
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!(
        "{}:{}:{}",
        bin_dir().display(),
        etcd_dir.display(),
        inherited
    )
}
