//! A real OpenSSH server on a loopback port, for tests that ship snapshots over `ssh`.
//!
//! [`Sshd::start`] runs `/usr/sbin/sshd -D -e -f <config>` (installed by `scripts/setup`) as the
//! current user on `127.0.0.1:<free port>`, with a fresh ed25519 host key and a fresh client key
//! pair whose public half is the only authorized key. Nothing outside its temporary directory is
//! touched, except that `/run/sshd` (the privilege separation directory sshd insists on when it
//! runs as root) is created when it is missing. Dropping the [`Sshd`] kills the server and removes
//! the directory; the server also dies with the test process (`PR_SET_PDEATHSIG`).
//!
//! ```no_run
//! use etcd_test_support::Sshd;
//! let sshd = Sshd::start();
//! let status = sshd.ssh_command("true").status().unwrap();
//! assert!(status.success());
//! ```

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::free_port;
use crate::must::Must;
use crate::process::{self, Spawner};

/// The OpenSSH server binary.
const SSHD: &str = "/usr/sbin/sshd";
/// The key generator.
const SSH_KEYGEN: &str = "ssh-keygen";
/// sshd's privilege separation directory on Debian; it must exist when sshd runs as root.
const PRIVSEP_DIR: &str = "/run/sshd";
/// How long [`Sshd::start`] waits for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines shown when the server fails.
const LOG_TAIL: usize = 30;
/// Temp dirs are named like the clusters' (`etcd-snap-test-<pid>-...`), so the cluster harness
/// sweeps those of dead test processes too.
const DIR_PREFIX: &str = "etcd-snap-test-";

/// A running sshd on 127.0.0.1 that accepts exactly one key, [`client_key`](Sshd::client_key),
/// for the current user. Dropping it kills the server and removes its directory.
pub struct Sshd {
    /// The server process; `None` once killed.
    child: Option<Child>,
    /// The port it listens on (127.0.0.1 only).
    port: u16,
    /// The current user's name, which clients log in as.
    user: String,
    /// The private key the server accepts.
    client_key: PathBuf,
    /// Forks the server so that it dies with the test; dropped after the server is killed.
    spawner: Spawner,
    /// Dropped last: removes the keys, config and log.
    dir: TempDir,
}

impl std::fmt::Debug for Sshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sshd")
            .field("port", &self.port)
            .field("user", &self.user)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Sshd {
    /// Generates the keys and config, starts sshd and waits (up to 10 s) until it answers with an
    /// SSH banner. Retries once on a new port when the first one was taken. Panics with the tail
    /// of sshd's log, or with what is missing (run `scripts/setup` for `openssh-server`).
    #[track_caller]
    pub fn start() -> Sshd {
        if !Path::new(SSHD).exists() {
            panic!("{SSHD} is missing: run scripts/setup (it installs openssh-server)");
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-sshd-", std::process::id()))
            .tempdir_in(std::env::temp_dir())
            .must(|| {
                format!(
                    "cannot create a temp dir in {}",
                    std::env::temp_dir().display()
                )
            });
        let user = current_user();
        if is_root() {
            ensure_privsep_dir();
        }
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let client_key = dir.path().join("client_ed25519_key");
        keygen(&host_key, "etcd-snap-test-host");
        keygen(&client_key, "etcd-snap-test-client");
        let authorized = dir.path().join("authorized_keys");
        let public = pub_path(&client_key);
        fs::copy(&public, &authorized).must(|| {
            format!(
                "cannot copy {} to {}",
                public.display(),
                authorized.display()
            )
        });

        let mut sshd = Sshd {
            child: None,
            port: 0,
            user,
            client_key,
            spawner: Spawner::new(),
            dir,
        };
        for attempt in 1..=2 {
            sshd.port = free_port();
            sshd.write_config(&host_key, &authorized);
            sshd.launch();
            match sshd.wait_ready() {
                Ok(()) => return sshd,
                Err(why) => {
                    sshd.kill();
                    let log = sshd.log_tail();
                    if attempt == 1 && log.contains("Address already in use") {
                        eprintln!(
                            "etcd-test-support: sshd port was taken, retrying with a new one"
                        );
                        continue;
                    }
                    panic!(
                        "sshd on 127.0.0.1:{} {why}; log {}:\n{log}",
                        sshd.port,
                        sshd.log_path().display()
                    );
                }
            }
        }
        unreachable!("the loop above returns or panics")
    }

    /// The port sshd listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user clients log in as: the current user (`root` in the CI container).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key (ed25519, no passphrase) the server accepts; its public half is
    /// `<key>.pub`.
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// The server's temporary directory (config, keys, log), removed on drop; tests may put files
    /// in it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The sshd log (`-e`: everything sshd says goes to stderr, which goes here).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// The pid of the listening sshd while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Arguments for `ssh` that log in to this server without any prompt and without reading or
    /// writing the user's ssh files, ending with the destination `USER@127.0.0.1`; append the
    /// remote command. For example `-F none -p PORT -i KEY -o IdentitiesOnly=yes
    /// -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
    /// -o LogLevel=ERROR root@127.0.0.1`.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-F".into(),
            "none".into(),
            "-p".into(),
            self.port.to_string(),
            "-i".into(),
            self.client_key.display().to_string(),
        ];
        for opt in [
            "IdentitiesOnly=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "LogLevel=ERROR",
            "ConnectTimeout=10",
        ] {
            args.push("-o".into());
            args.push(opt.into());
        }
        args.push(format!("{}@127.0.0.1", self.user));
        args
    }

    /// `ssh <ssh_args> <remote_command>`, stdin, stdout and stderr inherited (set them as
    /// needed). The remote command runs in the user's login shell on this machine.
    pub fn ssh_command(&self, remote_command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_args()).arg(remote_command);
        cmd
    }

    /// The last lines of the sshd log.
    pub fn log_tail(&self) -> String {
        let text = fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log_path().display()));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }

    /// Writes `<dir>/sshd_config` for the current port.
    fn write_config(&self, host_key: &Path, authorized: &Path) {
        let path = self.dir.path().join("sshd_config");
        let config = format!(
            "# etcd-test-support: a throw-away sshd for one test\n\
             Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host_key}\n\
             PidFile none\n\
             AuthorizedKeysFile {authorized}\n\
             AuthenticationMethods publickey\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             AllowUsers {user}\n\
             PermitUserEnvironment no\n\
             PrintMotd no\n\
             UseDNS no\n\
             MaxStartups 100\n\
             LogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n",
            port = self.port,
            host_key = host_key.display(),
            authorized = authorized.display(),
            user = self.user,
        );
        fs::write(&path, config).must(|| format!("cannot write {}", path.display()));
    }

    /// Spawns `sshd -D -e -f <config>` with its output in the log.
    fn launch(&mut self) {
        let config = self.dir.path().join("sshd_config");
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .must(|| format!("cannot open the sshd log {}", log_path.display()));
        let log2 = log
            .try_clone()
            .must(|| format!("cannot duplicate {}", log_path.display()));
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = self
            .spawner
            .handle()
            .spawn(cmd)
            .must(|| format!("cannot start {SSHD}"));
        self.child = Some(child);
    }

    /// Waits until the port answers with an SSH banner; `Err` says why not.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited during start ({status})"));
                }
            }
            if banner(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "did not accept connections within {READY_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs and reaps the server.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill(&mut child);
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
        // Then `spawner` stops its thread and `dir` removes the directory (field order).
    }
}

/// Whether 127.0.0.1:`port` accepts a connection and sends an SSH identification line.
fn banner(port: u16) -> bool {
    use std::io::Read;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-")
}

/// `<key>.pub`.
fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `ssh-keygen -q -t ed25519 -N '' -C <comment> -f <path>`; panics with its output on failure.
fn keygen(path: &Path, comment: &str) {
    let out = Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .must(|| format!("cannot run {SSH_KEYGEN}: run scripts/setup (openssh-client)"));
    if !out.status.success() {
        panic!(
            "{SSH_KEYGEN} -f {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

/// The current user's name (`id -un`: `$USER` is often unset in containers).
fn current_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .stdin(Stdio::null())
        .output()
        .must(|| "cannot run `id -un` to find the current user".to_string());
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || name.is_empty() {
        panic!(
            "`id -un` did not name the current user ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    name
}

/// Whether the test runs as root (`id -u` is 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Creates `/run/sshd` (mode 0755) when it is missing; sshd refuses to start as root without it.
fn ensure_privsep_dir() {
    let p = Path::new(PRIVSEP_DIR);
    if p.is_dir() {
        return;
    }
    match fs::create_dir_all(p) {
        Ok(()) => {}
        // Another test may have created it at the same moment.
        Err(_) if p.is_dir() => return,
        Err(e) => panic!("cannot create sshd's privilege separation directory {PRIVSEP_DIR}: {e}"),
    }
    fs::set_permissions(p, fs::Permissions::from_mode(0o755))
        .must(|| format!("cannot chmod 0755 {PRIVSEP_DIR}"));
}
