//! One etcd member of a test cluster: its ports, URLs, files, command line and health probe.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::etcdctl;
use crate::must::Must;
use crate::{etcd_bin, free_port, ServerTls, TlsFiles, Version};

/// Name, ports and files of one member.
#[derive(Debug, Clone)]
pub(crate) struct MemberSpec {
    /// `m0`, `m1`, ...
    pub(crate) name: String,
    /// The client port on 127.0.0.1.
    pub(crate) client_port: u16,
    /// The peer port on 127.0.0.1.
    pub(crate) peer_port: u16,
    /// Added by [`Cluster::add_learner`](crate::Cluster::add_learner): a non-voting member.
    pub(crate) learner: bool,
}

impl MemberSpec {
    /// Member `i` with two fresh ports.
    pub(crate) fn new(i: usize) -> MemberSpec {
        MemberSpec {
            name: format!("m{i}"),
            client_port: free_port(),
            peer_port: free_port(),
            learner: false,
        }
    }

    /// `127.0.0.1:<client port>`.
    pub(crate) fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `<scheme>://127.0.0.1:<client port>`.
    pub(crate) fn client_url(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port())
    }

    /// `http://127.0.0.1:<peer port>`.
    pub(crate) fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// Everything needed to start, probe and talk to the members of one cluster. Cloneable so the
/// `start_late` thread can have its own copy.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The etcd version of every member.
    pub(crate) version: Version,
    /// The cluster's temporary directory.
    pub(crate) dir: PathBuf,
    /// The members, in order.
    pub(crate) members: Vec<MemberSpec>,
    /// The generated PKI of [`ClusterBuilder::tls`](crate::ClusterBuilder::tls).
    pub(crate) tls: Option<TlsFiles>,
    /// The files of mutual TLS on the client URLs (from `tls`, or a test's own), when it is on.
    pub(crate) server_tls: Option<ServerTls>,
    /// Whether users are created and auth is enabled after start.
    pub(crate) auth: bool,
    /// Extra etcd flags for every member.
    pub(crate) extra_args: Vec<String>,
    /// The `--initial-cluster-token`.
    pub(crate) token: String,
}

/// `new` for a first start, `existing` for a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterState {
    /// `--initial-cluster-state new`.
    New,
    /// `--initial-cluster-state existing`.
    Existing,
}

impl Layout {
    /// `<dir>/mN`.
    pub(crate) fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.members[i].name)
    }

    /// `<dir>/mN.log`.
    pub(crate) fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.members[i].name))
    }

    /// Member `i`'s client URL with scheme.
    pub(crate) fn client_url(&self, i: usize) -> String {
        self.members[i].client_url(self.server_tls.is_some())
    }

    /// The `--initial-cluster` value.
    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The etcd command line of member `i`, logging (stdout and stderr) to its log file.
    pub(crate) fn etcd_command(&self, i: usize, state: ClusterState) -> Command {
        let m = &self.members[i];
        let url = self.client_url(i);
        let mut cmd = Command::new(etcd_bin(self.version, "etcd"));
        etcdctl::clear_etcd_env(&mut cmd);
        cmd.arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", self.data_dir(i).display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-advertise-peer-urls={}", m.peer_url()))
            .arg(format!("--initial-cluster={}", self.initial_cluster()))
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg(format!(
                "--initial-cluster-state={}",
                match state {
                    ClusterState::New => "new",
                    ClusterState::Existing => "existing",
                }
            ))
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .arg("--heartbeat-interval=100")
            .arg("--election-timeout=1000");
        if let Some(tls) = &self.server_tls {
            cmd.arg("--client-cert-auth")
                .arg(format!("--trusted-ca-file={}", tls.trusted_ca.display()))
                .arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()));
        }
        cmd.args(&self.extra_args);
        let log_path = self.log_path(i);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .must(|| format!("cannot open etcd log {}", log_path.display()));
        let log2 = log
            .try_clone()
            .must(|| format!("cannot duplicate {}", log_path.display()));
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        cmd
    }

    /// Writes a marker line into member `i`'s log (e.g. before a restart).
    pub(crate) fn log_marker(&self, i: usize, text: &str) {
        if let Ok(mut f) = OpenOptions::new().append(true).open(self.log_path(i)) {
            let _ = writeln!(f, "===== etcd-test-support: {text} =====");
        }
    }

    /// The last `n` lines of member `i`'s log.
    pub(crate) fn log_tail(&self, i: usize, n: usize) -> String {
        let text = fs::read(self.log_path(i))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log_path(i).display()));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// etcdctl of this version against the given members, with the client TLS files of
    /// [`ServerTls`] when TLS is on and
    /// `--user=<user>:<password>` when `user` is given.
    pub(crate) fn etcdctl(&self, members: &[usize], user: Option<&str>) -> Command {
        let mut cmd = etcdctl::base(&etcd_bin(self.version, "etcdctl"));
        let eps: Vec<String> = members.iter().map(|&i| self.client_url(i)).collect();
        cmd.arg(format!("--endpoints={}", eps.join(",")));
        if let Some(tls) = &self.server_tls {
            etcdctl::add_tls(&mut cmd, tls);
        }
        if let Some(user) = user {
            let cred = match user {
                "root" => format!("root:{}", crate::ROOT_PASSWORD),
                "reader" => format!("reader:{}", crate::READER_PASSWORD),
                other => other.to_string(),
            };
            cmd.arg(format!("--user={cred}"));
        }
        cmd
    }

    /// Whether member `i` reports itself healthy: `GET /health` for plain HTTP, or
    /// `etcdctl endpoint health` against it for TLS (`endpoint status` for a learner, which
    /// refuses the linearizable read of `endpoint health`).
    pub(crate) fn probe(&self, i: usize) -> bool {
        if self.server_tls.is_some() {
            let learner = self.members[i].learner;
            // A learner refuses `Authenticate` too: it is probed without `--user`.
            let user = (self.auth && !learner).then_some("root");
            let mut cmd = self.etcdctl(&[i], user);
            let check = if learner { "status" } else { "health" };
            cmd.args([
                "endpoint",
                check,
                "--dial-timeout=1s",
                "--command-timeout=2s",
            ]);
            return etcdctl::try_run(&mut cmd).is_ok();
        }
        http_health(self.members[i].client_port)
    }

    /// Whether the log of member `i` says a port was taken.
    pub(crate) fn address_in_use(&self, i: usize) -> bool {
        fs::read(self.log_path(i))
            .map(|b| String::from_utf8_lossy(&b).contains("address already in use"))
            .unwrap_or(false)
    }

    /// Creates the users and roles of [`ClusterBuilder::auth`](crate::ClusterBuilder::auth) and
    /// enables auth.
    pub(crate) fn setup_auth(&self) -> Result<(), String> {
        let all: Vec<usize> = (0..self.members.len()).collect();
        let steps: [&[&str]; 7] = [
            &["user", "add", &format!("root:{}", crate::ROOT_PASSWORD)],
            &["role", "add", "root"],
            &["user", "grant-role", "root", "root"],
            &["role", "add", "app-reader"],
            &[
                "role",
                "grant-permission",
                "app-reader",
                "--prefix=true",
                "read",
                crate::READER_PREFIX,
            ],
            &["user", "add", &format!("reader:{}", crate::READER_PASSWORD)],
            &["user", "grant-role", "reader", "app-reader"],
        ];
        for step in steps {
            etcdctl::try_run(self.etcdctl(&all, None).args(step))?;
        }
        etcdctl::try_run(self.etcdctl(&all, None).args(["auth", "enable"]))?;
        Ok(())
    }
}

/// `GET /health` on 127.0.0.1:`port` answers `"health":"true"`.
fn http_health(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

/// Removes a directory tree if it exists.
pub(crate) fn remove_dir(p: &Path) {
    if p.exists() {
        fs::remove_dir_all(p).must(|| format!("cannot remove {}", p.display()));
    }
}
