//! The offline goldens of `etcd-snap-restore`: every case in `tests/cmd/*.toml` (usage errors,
//! `--help`) runs against the binary without etcd, and its man page renders without a warning.
//! `TRYCMD=overwrite cargo test -p etcd-snap-restore --test cli_goldens` rewrites the expected
//! output after an intended change.

etcd_test_support::cli_goldens!(
    etcd_snap_restore,
    "etcd-snap-restore",
    ["--initial-memory-map-size", "mount point"]
);

/// The `--k8s` preset that `--help` documents is the one the code applies.
#[test]
fn k8s_preset_is_k8s_bump() {
    use etcd_snap_restore::cli::{K8S_BUMP, PAGE};
    assert!(
        PAGE.help()
            .contains(&format!("--bump-revision {K8S_BUMP} --mark-compacted")),
        "--help's --k8s preset is not K8S_BUMP"
    );
}
