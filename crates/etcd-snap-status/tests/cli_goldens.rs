//! The offline goldens of `etcd-snap-status`: every case in `tests/cmd/*.toml` (usage errors, `--help`,
//! refusals, damaged inputs from etcd-test-support's fixtures) runs against the binary without
//! etcd, and its man page renders without a warning. `TRYCMD=overwrite cargo test -p etcd-snap-status
//! --test cli_goldens` rewrites the expected output after an intended change.

etcd_test_support::cli_goldens!(etcd_snap_status, "etcd-snap-status");
