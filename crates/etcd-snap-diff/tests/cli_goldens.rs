//! The offline goldens of `etcd-snap-diff`: every case in `tests/cmd/*.toml` (`--help`, usage
//! errors, a damaged input from etcd-test-support's fixtures) runs against the binary without
//! etcd, and its man page renders without a warning. `TRYCMD=overwrite cargo test -p
//! etcd-snap-diff --test cli_goldens` rewrites the expected output after an intended change.

etcd_test_support::cli_goldens!(etcd_snap_diff, "etcd-snap-diff", ["OUTPUT"]);
