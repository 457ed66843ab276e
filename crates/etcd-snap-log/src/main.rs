//! `etcd-snap-log`: parse the command line, follow the cluster, exit with its code.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_snap_log::main())
}
