//! Offline checks of a tool's command line that need no etcd: its trycmd golden cases and its
//! man page.
//!
//! Why: usage errors, `--help`, refusals and damaged inputs used to be asserted by hand in tests
//! that also started etcd clusters; as case files they run in milliseconds, one test per crate,
//! and a reviewer sees the exact output in the diff. The man page is rendered from the same
//! source as `--help` (`etcd_common::help`), so checking that groff reads it without a warning
//! is what keeps it installable.

use std::path::Path;
use std::process::Command;

use crate::must::Must;
use crate::tool::scrubbed_vars;

/// Runs the offline golden cases of one tool: every `DIR/*.toml` trycmd case (with its
/// `.stdout`/`.stderr`/`.stdin` files) against `bin`, no etcd needed.
///
/// `name` is the binary's name in the cases (`bin.name`), `path` its executable
/// (`env!("CARGO_BIN_EXE_NAME")`), `version` the crate's version, written `[VERSION]` in the
/// goldens so that a release does not rewrite them. Inherited `ETCDCTL_*`/`ETCD_*` variables
/// are set empty, which the tools treat as unset (trycmd can add variables, not remove them).
/// `TRYCMD=overwrite cargo test -p CRATE --test cli_goldens` rewrites the expected output.
#[track_caller]
pub fn run_goldens(name: &str, path: &str, version: &'static str, dir: &str) {
    let cases = trycmd::TestCases::new();
    cases
        .register_bin(name.to_string(), Path::new(path))
        .default_bin_name(name)
        .insert_var("[VERSION]", version)
        .must(|| "cannot register [VERSION]".to_string());
    for k in scrubbed_vars() {
        cases.env(k.to_string_lossy().into_owned(), "");
    }
    cases.case(format!("{dir}/*.toml"));
    cases.run();
}

/// Renders the roff man page `page` of `name` with `groff -ww -man -Tutf8` (plain text: no bold, no underline) and panics when groff
/// fails or warns; returns the rendered text. groff comes with `groff-base` (Debian), which
/// `man-db` depends on.
#[track_caller]
pub fn assert_man_renders(name: &str, page: &str) -> String {
    let dir = tempfile::tempdir().must(|| "cannot make a temporary directory".to_string());
    let file = dir.path().join(format!("{name}.1"));
    std::fs::write(&file, page).must(|| format!("cannot write {}", file.display()));
    let out = Command::new("groff")
        .args(["-ww", "-man", "-Tutf8", "-P-cbou"])
        .arg(&file)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .must(|| "cannot run groff: install groff-base (scripts/setup)".to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "groff -ww on the man page of {name} ({}):\n{stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sections every tool's man page has; [`assert_man_page`] checks them all.
pub const MAN_SECTIONS: &[&str] = &[
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "EXIT CODES",
    "EXAMPLES",
];

/// Renders the man page `page` of `name` like [`assert_man_renders`] and panics unless the text
/// contains every one of [`MAN_SECTIONS`] and of `extra` (options or sections only this tool has).
#[track_caller]
pub fn assert_man_page(name: &str, page: &str, extra: &[&str]) {
    let text = assert_man_renders(name, page);
    for needle in MAN_SECTIONS.iter().chain(extra) {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

/// The offline golden tests of one tool crate, as its `tests/cli_goldens.rs`:
/// `etcd_test_support::cli_goldens!(etcd_health, "etcd-health");` makes two tests,
/// `cli_goldens` ([`run_goldens`] over the crate's `tests/cmd/*.toml`) and
/// `man_page_renders_without_warnings` ([`assert_man_page`] on `CRATE::cli::PAGE`, which must
/// contain [`MAN_SECTIONS`] and the strings of an optional third argument, `["--flag", …]`).
#[macro_export]
macro_rules! cli_goldens {
    ($krate:ident, $bin:literal $(, [$($extra:expr),* $(,)?])? $(,)?) => {
        /// Every case file, compared byte for byte (`[VERSION]` stands for the crate's version).
        #[test]
        fn cli_goldens() {
            $crate::run_goldens(
                $bin,
                env!(concat!("CARGO_BIN_EXE_", $bin)),
                env!("CARGO_PKG_VERSION"),
                "tests/cmd",
            );
        }

        /// The man page comes from the same source as `--help`, groff reads it without a warning,
        /// and it has every section (and the tool's own extra strings).
        #[test]
        fn man_page_renders_without_warnings() {
            $crate::assert_man_page($bin, &$krate::cli::PAGE.man(), &[$($($extra),*)?]);
        }
    };
}
