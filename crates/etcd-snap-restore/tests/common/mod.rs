//! What `restore.rs` and `crash.rs` both need: the binary through the test runner, and the
//! member flags of a prepared cluster. A module, not a test target (cargo builds only the files
//! directly under `tests/` as tests).

use etcd_test_support::{Prepared, Run, Tool};

/// The binary under test.
pub const RESTORE: &str = env!("CARGO_BIN_EXE_etcd-snap-restore");

/// `etcd-snap-restore ARGS`, run to the end (no inherited `ETCDCTL_*`, stdin closed).
pub fn restore<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    Tool::new(RESTORE).args(args).run()
}

/// `--name ... --initial-cluster ... --initial-cluster-token ... --initial-advertise-peer-urls
/// ...` for member 0 of `cluster`.
pub fn member_args(cluster: &Prepared) -> Vec<String> {
    vec![
        "--name".into(),
        cluster.cluster().member_name(0),
        "--initial-cluster".into(),
        cluster.initial_cluster(),
        "--initial-cluster-token".into(),
        cluster.token().into(),
        "--initial-advertise-peer-urls".into(),
        cluster.cluster().peer_urls()[0].clone(),
    ]
}
