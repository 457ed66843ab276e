//! The offline goldens of `etcd-snap-log`: every case in `tests/cmd/*.toml` (usage errors,
//! `--help`, `--version`) runs against the binary without etcd, and its man page renders
//! without a warning. `TRYCMD=overwrite cargo test -p etcd-snap-log --test cli_goldens`
//! rewrites the expected output after an intended change.

etcd_test_support::cli_goldens!(etcd_snap_log, "etcd-snap-log", ["--segment-time"]);
