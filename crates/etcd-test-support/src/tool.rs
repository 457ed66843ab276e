//! One way to run a tool under test and check what it did, in the spirit of uutils'
//! `tests/common/util.rs`.
//!
//! Why: every test file used to write its own runner (six copies, three output types) and to
//! assert docs/design.md's one-line-error contract in its own way (four of them). Here a test
//! says what it runs and what it expects, and a failure shows the command line and both streams:
//!
//! ```no_run
//! use etcd_test_support::Tool;
//! // In a crate's tests: Tool::new(env!("CARGO_BIN_EXE_etcd-snap-status")).
//! Tool::new("etcd-snap-status")
//!     .args(["/tmp/damaged.db"])
//!     .run()
//!     .fails(4)
//!     .one_line_error("SHA-256");
//! ```
//!
//! The caller's environment cannot leak in: every variable the tools read (`ETCDCTL_*`) and
//! every etcd one (`ETCD_*`, which also covers any `ETCD_SNAP_*`) is removed unless the test
//! sets it with [`Tool::env`]. stdin is closed unless the test gives one.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::must::Must;

/// Prefixes of the variables no test inherits: etcdctl's (which the tools read) and etcd's.
pub const SCRUBBED_PREFIXES: &[&str] = &["ETCDCTL_", "ETCD_"];

/// The names of the variables of this process that [`SCRUBBED_PREFIXES`] remove from a child.
pub fn scrubbed_vars() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .collect()
}

/// What the child reads on stdin.
#[derive(Debug)]
enum Input {
    /// Closed (`/dev/null`).
    Null,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// This file.
    File(PathBuf),
    /// A pipe the test holds in [`Running::child`].
    Pipe,
}

/// A command about to run: the tool, its arguments, environment and stdin.
#[derive(Debug)]
pub struct Tool {
    cmd: Command,
    stdin: Input,
    timeout: Option<Duration>,
}

impl Tool {
    /// The binary at `bin` (e.g. `env!("CARGO_BIN_EXE_etcd-health")`), or a bare name such as
    /// `"etcd-snap-status"` looked up beside the test executable (`target/debug/NAME`), with no
    /// inherited `ETCDCTL_*`/`ETCD_*` variable and stdin closed.
    #[track_caller]
    pub fn new(bin: impl AsRef<OsStr>) -> Tool {
        let bin = bin.as_ref();
        let path = if Path::new(bin).components().count() > 1 {
            PathBuf::from(bin)
        } else {
            workspace_bin(bin)
        };
        let mut cmd = Command::new(path);
        for k in scrubbed_vars() {
            cmd.env_remove(k);
        }
        Tool::from_command(cmd)
    }

    /// Runs a command built elsewhere (e.g. `Cluster::etcdctl_raw`) as it is: its environment
    /// is left alone, stdin is closed unless set here.
    pub fn from_command(cmd: Command) -> Tool {
        Tool {
            cmd,
            stdin: Input::Null,
            timeout: None,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets a variable for the child (the only way an `ETCDCTL_*` reaches it).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// Sets several variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(key);
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Feeds the contents of `file` to stdin.
    pub fn stdin_file(&mut self, file: impl AsRef<Path>) -> &mut Self {
        self.stdin = Input::File(file.as_ref().to_path_buf());
        self
    }

    /// Feeds `bytes` to stdin, then end of file.
    pub fn stdin_bytes(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Makes stdin a pipe that the test writes or closes itself (`Running::child.stdin`), for
    /// a child started with [`spawn`](Self::spawn) that must wait on its input.
    pub fn stdin_piped(&mut self) -> &mut Self {
        self.stdin = Input::Pipe;
        self
    }

    /// Fails the test (after killing the child) when the run takes longer than `limit`: for
    /// runs that must end on their own.
    pub fn timeout(&mut self, limit: Duration) -> &mut Self {
        self.timeout = Some(limit);
        self
    }

    /// Runs to completion and captures both streams. Panics only when the child cannot be
    /// started or outlives [`timeout`](Self::timeout).
    #[track_caller]
    pub fn run(&mut self) -> Run {
        let limit = self.timeout;
        self.spawn().finish(limit)
    }

    /// Starts the child with stdout and stderr piped (stdin as set), for a test that acts on it
    /// while it runs (signals, partial reads, a zombie): take what it needs from
    /// [`Running::child`], then [`Running::finish`] captures the rest.
    #[track_caller]
    pub fn spawn(&mut self) -> Running {
        let command = describe(&self.cmd);
        let stdin = match &self.stdin {
            Input::Null => Stdio::null(),
            Input::Bytes(_) | Input::Pipe => Stdio::piped(),
            Input::File(p) => Stdio::from(
                std::fs::File::open(p)
                    .must(|| format!("{command}: cannot open stdin file {}", p.display())),
            ),
        };
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .must(|| format!("cannot run `{command}`"));
        let feeder = match (&self.stdin, &child.stdin) {
            (Input::Bytes(bytes), Some(_)) => {
                let mut pipe = child
                    .stdin
                    .take()
                    .must(|| format!("{command}: no stdin pipe"));
                let bytes = bytes.clone();
                // A child that exits without reading makes this fail with EPIPE: not our business.
                Some(std::thread::spawn(move || drop(pipe.write_all(&bytes))))
            }
            _ => None,
        };
        Running {
            child,
            command,
            feeder,
        }
    }
}

/// A child started by [`Tool::spawn`].
#[derive(Debug)]
pub struct Running {
    /// The process: its PID, and the pipes the test takes (those left are captured by
    /// [`finish`](Self::finish)).
    pub child: Child,
    /// The command line, for messages.
    pub command: String,
    /// Writes the bytes of [`Tool::stdin_bytes`].
    feeder: Option<JoinHandle<()>>,
}

impl Running {
    /// Sends signal `sig` (`"TERM"`, `"INT"`, ...) to the child with kill(1); panics if it cannot.
    #[track_caller]
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -{sig} {pid} ({}) failed", self.command);
    }

    /// Waits for the child (killing it and failing the test after `limit`, when given) and
    /// captures what is left on the pipes the test did not take.
    #[track_caller]
    pub fn finish(mut self, limit: Option<Duration>) -> Run {
        let command = self.command;
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out_reader = reader(self.child.stdout.take().map(|p| Box::new(p) as _));
        let err_reader = reader(self.child.stderr.take().map(|p| Box::new(p) as _));
        let child = &mut self.child;
        if let Some(limit) = limit {
            let start = Instant::now();
            while child
                .try_wait()
                .must(|| format!("{command}: wait"))
                .is_none()
            {
                if start.elapsed() > limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("`{command}` still running after {limit:?}: killed");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let status = child.wait().must(|| format!("{command}: wait"));
        if let Some(f) = self.feeder {
            let _ = f.join();
        }
        let stdout_bytes = out_reader.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        Run {
            command,
            name: String::new(),
            status,
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stdout_bytes,
            stderr,
        }
    }
}

/// `NAME` in the directory cargo builds the workspace's binaries into: the parent of the
/// `deps/` directory that holds the running test executable.
#[track_caller]
fn workspace_bin(name: &OsStr) -> PathBuf {
    let exe = std::env::current_exe().must(|| "cannot find the test executable".to_string());
    let dir = exe
        .parent()
        .filter(|d| d.ends_with("deps"))
        .and_then(Path::parent)
        .must(|| format!("{} is not in a cargo deps/ directory", exe.display()));
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "{} is missing: pass env!(\"CARGO_BIN_EXE_{}\") so that cargo builds it",
            path.display(),
            name.to_string_lossy()
        );
    }
    path
}

/// Shows a command the way a shell user would type it (for failure messages).
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// What a finished run printed and how it ended, with the assertions the tests make on it.
/// Each assertion panics with the command line and both streams, and returns `self` so that
/// they chain.
#[derive(Clone)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// What the test calls this case (see [`named`](Self::named)), for messages.
    pub name: String,
    /// How it ended.
    pub status: ExitStatus,
    /// The exit code, -1 when a signal ended it.
    pub code: i32,
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stdout exactly (a snapshot stream, `-o raw`).
    pub stdout_bytes: Vec<u8>,
    /// stderr, lossily decoded.
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: String = self.stdout.chars().take(4000).collect();
        if !self.name.is_empty() {
            write!(f, "{}: ", self.name)?;
        }
        write!(
            f,
            "`{}` exited {}\n--- stdout ---\n{shown}\n--- stderr ---\n{}",
            self.command, self.code, self.stderr
        )
    }
}

impl Run {
    /// This run, named `what` in every failure message: the case a loop is checking (a flipped
    /// bit, a truncation offset) when the command line alone does not say it.
    pub fn named(mut self, what: impl std::fmt::Display) -> Run {
        self.name = what.to_string();
        self
    }

    /// (exit code, stdout bytes, stderr), for a test that takes the run apart.
    pub fn into_parts(self) -> (i32, Vec<u8>, String) {
        (self.code, self.stdout_bytes, self.stderr)
    }

    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout and stderr together (for tools that say the same thing on either).
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts that it did not panic (exit 101, or a panic message on stderr).
    #[track_caller]
    pub fn no_panic(&self) -> &Self {
        assert!(
            self.code != 101
                && !self.stderr.contains("panicked")
                && !self.stderr.contains("stack backtrace"),
            "panicked: {self:?}"
        );
        self
    }

    /// Asserts exit 0 (and no panic).
    #[track_caller]
    pub fn succeeds(&self) -> &Self {
        self.no_panic();
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }

    /// Asserts exit `code` (and no panic).
    #[track_caller]
    pub fn fails(&self, code: i32) -> &Self {
        self.no_panic();
        assert_eq!(self.code, code, "expected exit {code}: {self:?}");
        self
    }

    /// Asserts the failure contract of docs/design.md: nothing on stdout, exactly one line on
    /// stderr, `Error: ...` containing `text`, ended by a newline, no panic. Chain it after
    /// [`fails`](Self::fails) to check the code too.
    #[track_caller]
    pub fn one_line_error(&self, text: &str) -> &Self {
        self.no_panic();
        assert!(
            self.stdout_bytes.is_empty(),
            "stdout must be empty: {self:?}"
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "stderr must be one line: {self:?}"
        );
        assert!(
            self.stderr.starts_with("Error: "),
            "stderr must start `Error: `: {self:?}"
        );
        assert!(
            self.stderr.ends_with('\n'),
            "the error line must end with a newline: {self:?}"
        );
        assert!(
            self.stderr.contains(text),
            "the error must mention {text:?}: {self:?}"
        );
        self
    }

    /// Panics with `what` and this run unless `ok`; `self` otherwise.
    #[track_caller]
    fn holds(&self, ok: bool, what: impl FnOnce() -> String) -> &Self {
        assert!(ok, "{}: {self:?}", what());
        self
    }

    /// Asserts stdout is exactly `want`.
    #[track_caller]
    pub fn stdout_is(&self, want: impl AsRef<str>) -> &Self {
        assert_eq!(self.stdout, want.as_ref(), "stdout: {self:?}");
        self
    }

    /// Asserts stdout contains `text`.
    #[track_caller]
    pub fn stdout_contains(&self, text: impl AsRef<str>) -> &Self {
        let text = text.as_ref();
        self.holds(self.stdout.contains(text), || {
            format!("stdout lacks {text:?}")
        })
    }

    /// Asserts stderr is exactly `want`.
    #[track_caller]
    pub fn stderr_is(&self, want: impl AsRef<str>) -> &Self {
        assert_eq!(self.stderr, want.as_ref(), "stderr: {self:?}");
        self
    }

    /// Asserts stderr contains `text`.
    #[track_caller]
    pub fn stderr_contains(&self, text: impl AsRef<str>) -> &Self {
        let text = text.as_ref();
        self.holds(self.stderr.contains(text), || {
            format!("stderr lacks {text:?}")
        })
    }

    /// Asserts nothing was printed on stderr.
    #[track_caller]
    pub fn no_stderr(&self) -> &Self {
        assert_eq!(self.stderr, "", "stderr must be empty: {self:?}");
        self
    }

    /// stdout parsed as one JSON document; panics when it is not one.
    #[track_caller]
    pub fn stdout_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}
