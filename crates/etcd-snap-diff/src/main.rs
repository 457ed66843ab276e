//! `etcd-snap-diff`: parse the command line, compare the two snapshots, exit with the verdict.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_snap_diff::main())
}
