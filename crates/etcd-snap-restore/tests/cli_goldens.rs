//! The offline goldens of `etcd-snap-restore`: every case in `tests/cmd/*.toml` (usage errors, `--help`)
//! runs against the binary without etcd. `TRYCMD=overwrite cargo test -p etcd-snap-restore --test
//! cli_goldens` rewrites the expected output after an intended change.

/// Every case file, compared byte for byte (`[VERSION]` stands for the crate's version).
#[test]
fn cli_goldens() {
    etcd_test_support::run_goldens(
        "etcd-snap-restore",
        env!("CARGO_BIN_EXE_etcd-snap-restore"),
        env!("CARGO_PKG_VERSION"),
        "tests/cmd",
    );
}

/// The man page comes from the same source as `--help` and groff reads it without a warning;
/// the `--k8s` preset it documents is the one the code applies.
#[test]
fn man_page_renders_without_warnings() {
    use etcd_snap_restore::cli::{K8S_BUMP, PAGE};
    let text = etcd_test_support::assert_man_renders("etcd-snap-restore", &PAGE.man());
    for needle in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "EXIT CODES",
        "EXAMPLES",
        "--initial-memory-map-size",
        "mount point",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(
        PAGE.help()
            .contains(&format!("--bump-revision {K8S_BUMP} --mark-compacted")),
        "--help's --k8s preset is not K8S_BUMP"
    );
}
