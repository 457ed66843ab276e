//! The offline goldens of `etcd-snap-store`: every case in `tests/cmd/*.toml` (`--help`,
//! `--version`, usage errors and refused secret flags) runs against the binary without any
//! server, and its man page renders without a warning. `TRYCMD=overwrite cargo test -p
//! etcd-snap-store --test cli_goldens` rewrites the expected output after an intended change.

etcd_test_support::cli_goldens!(etcd_snap_store, "etcd-snap-store", ["RETENTION", "URLS"]);
