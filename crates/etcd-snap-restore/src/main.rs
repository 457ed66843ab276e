//! `etcd-snap-restore`: parse the command line, restore, exit with its code.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_snap_restore::main())
}
