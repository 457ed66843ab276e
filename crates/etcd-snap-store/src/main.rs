//! `etcd-snap-store`: parse the command line, run the command against the object store, exit
//! with its code.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_snap_store::main())
}
