//! `etcd-snap-get`: parse the command line, read the objects out of the snapshot, exit with its code.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_snap_get::main())
}
