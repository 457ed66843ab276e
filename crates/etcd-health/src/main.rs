//! `etcd-health`: parse the command line, run the check, exit with its code.

fn main() -> std::process::ExitCode {
    etcd_common::hardening::disable_core_dumps();
    etcd_common::output::finish(etcd_health::main())
}
