//! Process hardening that every tool applies first thing in `main` (docs/design.md, "Security": core
//! dumps are off).
//!
//! The tools hold decrypted database pages, age identities and passwords in memory. A crash must
//! not write them to a core file, nor hand them to a crash collector (`systemd-coredump`, apport),
//! which keeps them on disk for days.

use rustix::process::{DumpableBehavior, Resource, Rlimit};

/// Turns core dumps off for the rest of the process's life; call it before anything else.
///
/// - `RLIMIT_CORE` soft and hard limit 0: no core file, and nothing in the process can raise it
///   again without `CAP_SYS_RESOURCE`.
/// - `prctl(PR_SET_DUMPABLE, 0)`: the kernel skips the dump altogether, which also covers a
///   `core_pattern` that pipes to a collector (the kernel runs a pipe helper even when the limit
///   is 0, and not every helper honours the limit). It also stops other processes of the same
///   user from attaching with ptrace or reading `/proc/PID/mem` and `environ` (where
///   `ETCDCTL_PASSWORD` lives); root can still. The price: `/proc/PID` entries become owned by
///   root, so a non-root operator cannot `strace -p` or `gdb -p` a stuck run of their own, and
///   must run it again under `strace`. The tools do not read their own `/proc/self` entries
///   that this restricts (a process may always read its own) and never `exec`, so nothing else
///   changes.
///
/// Both calls only lower privileges and cannot fail for an ordinary process; a failure (a
/// seccomp filter, say) is ignored rather than stopping a backup.
pub fn disable_core_dumps() {
    let _ = rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let _ = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_limit_is_zero_and_the_process_not_dumpable() {
        disable_core_dumps();
        let limit = rustix::process::getrlimit(Resource::Core);
        assert_eq!(limit.current, Some(0));
        assert_eq!(limit.maximum, Some(0));
        assert!(matches!(
            rustix::process::dumpable_behavior(),
            Ok(DumpableBehavior::NotDumpable)
        ));
    }
}
