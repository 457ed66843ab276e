//! Building and running `etcdctl` (and other helper) commands with a clean environment.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use crate::must::Must;
use crate::tool::describe;
use crate::ServerTls;

/// Removes every inherited `ETCDCTL_*` and `ETCD_*` variable from `cmd`, so a developer's shell
/// (or CI) cannot change what etcd or etcdctl do in a test.
pub(crate) fn clear_etcd_env(cmd: &mut Command) {
    for k in crate::tool::scrubbed_vars() {
        cmd.env_remove(k);
    }
}

/// `etcdctl` at `bin` with `ETCDCTL_API=3`, no inherited etcd variables, stdin closed.
pub(crate) fn base(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    clear_etcd_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3").stdin(Stdio::null());
    cmd
}

/// Adds `--cacert/--cert/--key` for the cluster's own client certificate (`root`'s for a
/// generated PKI).
pub(crate) fn add_tls(cmd: &mut Command, tls: &ServerTls) {
    cmd.arg(flag("--cacert", &tls.client_cacert))
        .arg(flag("--cert", &tls.client_cert))
        .arg(flag("--key", &tls.client_key));
}

/// `--name=value` as one argument.
fn flag(name: &str, value: &Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(format!("{name}="));
    s.push(value.as_os_str());
    s
}

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stderr, lossily decoded.
    pub stderr: String,
}

impl CmdOutput {
    /// The exit code (-1 when a signal ended it).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `cmd` to completion, capturing its output. Panics only if it cannot be started.
pub fn run(cmd: &mut Command) -> CmdOutput {
    let out = cmd
        .output()
        .must(|| format!("cannot run `{}`", describe(cmd)));
    CmdOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` with `input` on its stdin, capturing its output (`etcdctl txn`'s script,
/// `ansible-vault`'s secret). The input is written from a thread, so a child that prints before
/// it has read everything cannot deadlock. Panics only if it cannot be started.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> CmdOutput {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .must(|| format!("cannot run `{}`", describe(cmd)));
    let out = std::thread::scope(|s| {
        if let Some(mut stdin) = child.stdin.take() {
            // A child that exits without reading it all closes the pipe: its status says so.
            s.spawn(move || std::io::Write::write_all(&mut stdin, input));
        }
        child.wait_with_output()
    })
    .must(|| format!("cannot wait for `{}`", describe(cmd)));
    CmdOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` and returns its stdout; panics with the command, status, stdout and stderr when
/// it does not exit 0.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.success() {
        panic!(
            "`{}` failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(cmd),
            out.status,
            out.stdout.trim_end(),
            out.stderr.trim_end()
        );
    }
    out.stdout
}

/// Runs `cmd`; `Err` with a one-paragraph description when it does not exit 0.
pub(crate) fn try_run(cmd: &mut Command) -> Result<String, String> {
    let out = run(cmd);
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            describe(cmd),
            out.status,
            out.stdout.trim_end(),
            out.stderr.trim_end()
        ))
    }
}
