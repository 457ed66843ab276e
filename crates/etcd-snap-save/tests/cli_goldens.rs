//! The offline goldens of `etcd-snap-save`: every case in `tests/cmd/*.toml` (usage errors, `--help`)
//! runs against the binary without etcd, and its man page renders without a warning.
//! `TRYCMD=overwrite cargo test -p etcd-snap-save --test
//! cli_goldens` rewrites the expected output after an intended change.

etcd_test_support::cli_goldens!(etcd_snap_save, "etcd-snap-save", ["--compress-threads"]);
