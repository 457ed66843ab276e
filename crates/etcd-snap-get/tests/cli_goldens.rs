//! The offline goldens of `etcd-snap-get`: every case in `tests/cmd/*.toml` (usage errors, `--help`,
//! refusals, damaged inputs from etcd-test-support's fixtures) runs against the binary without
//! etcd, and its man page renders without a warning. `TRYCMD=overwrite cargo test -p etcd-snap-get
//! --test cli_goldens` rewrites the expected output after an intended change.

etcd_test_support::cli_goldens!(etcd_snap_get, "etcd-snap-get");
