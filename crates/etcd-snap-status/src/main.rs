//! `etcd-snap-status`: parse the command line, verify and describe the snapshot, exit with its code.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_snap_status::main())
}
