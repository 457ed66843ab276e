//! Spawning etcd so that it cannot outlive the test, and stopping it.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. So
//! each cluster owns a [`Spawner`]: a helper thread that does every fork for that cluster and
//! lives until the cluster is dropped. Members are therefore killed by the kernel when the test
//! process dies, or when the cluster is dropped, whichever thread created the cluster (a test
//! thread, a `spawn_blocking` thread, the `start_late` timer thread).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::wait::wait_until;

/// A fork request: the command, and where to send the result.
type Job = (Command, Sender<io::Result<Child>>);

/// A helper thread that spawns commands with [`die_with_parent`] and lives until dropped.
pub(crate) struct Spawner {
    /// Sends jobs to the thread; `None` once dropped.
    tx: Option<Sender<Job>>,
    /// The thread, joined on drop.
    thread: Option<JoinHandle<()>>,
}

/// A cloneable handle that asks a [`Spawner`] thread to spawn a command.
#[derive(Clone)]
pub(crate) struct SpawnHandle(Sender<Job>);

impl Spawner {
    /// Starts the helper thread.
    pub(crate) fn new() -> Spawner {
        let (tx, rx) = channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("etcd-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    die_with_parent(&mut cmd);
                    // The requester may have given up; nothing to do then (the child is dropped
                    // unreaped but dies with this thread).
                    let _ = reply.send(cmd.spawn());
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the etcd spawner thread: {e}"));
        Spawner {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// A handle for sending spawn requests from any thread.
    pub(crate) fn handle(&self) -> SpawnHandle {
        match &self.tx {
            Some(tx) => SpawnHandle(tx.clone()),
            None => panic!("the etcd spawner was already shut down"),
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SpawnHandle {
    /// Spawns `cmd` on the spawner thread.
    pub(crate) fn spawn(&self, cmd: Command) -> io::Result<Child> {
        let (tx, rx) = channel();
        self.0
            .send((cmd, tx))
            .map_err(|_| io::Error::other("the etcd spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the etcd spawner thread died while spawning"))?
    }
}

/// Makes the child get SIGKILL when the thread that spawns it exits (or the process dies).
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only the async-signal-
    // safe syscalls prctl(2) and getppid(2); it allocates nothing (io::Error::last_os_error and
    // from_raw_os_error do not allocate).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Sends SIGTERM to a child that has not been reaped yet.
#[allow(unsafe_code)]
fn sigterm(child: &Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our unreaped child, so it
    // cannot have been reused by another process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL; always reaps the child.
pub(crate) fn terminate(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    sigterm(child);
    let exited = wait_until(grace, Duration::from_millis(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        kill(child);
    }
}

/// SIGKILL and reap.
pub(crate) fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a process with this pid exists (any state but reaped). Used by tests.
pub(crate) fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
