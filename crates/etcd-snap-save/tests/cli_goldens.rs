//! The offline goldens of `etcd-snap-save`: every case in `tests/cmd/*.toml` (usage errors, `--help`)
//! runs against the binary without etcd, and its man page renders without a warning.
//! `TRYCMD=overwrite cargo test -p etcd-snap-save --test
//! cli_goldens` rewrites the expected output after an intended change.

/// Every case file, compared byte for byte (`[VERSION]` stands for the crate's version).
#[test]
fn cli_goldens() {
    etcd_test_support::run_goldens(
        "etcd-snap-save",
        env!("CARGO_BIN_EXE_etcd-snap-save"),
        env!("CARGO_PKG_VERSION"),
        "tests/cmd",
    );
}

/// The man page comes from the same source as `--help` and groff reads it without a warning.
#[test]
fn man_page_renders_without_warnings() {
    let text =
        etcd_test_support::assert_man_renders("etcd-snap-save", &etcd_snap_save::cli::PAGE.man());
    for needle in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "EXIT CODES",
        "EXAMPLES",
        "--compress-threads",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}
