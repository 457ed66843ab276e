//! A real `kube-apiserver` on loopback, for the tests that check our Kubernetes tools against
//! what the API server itself writes to etcd and serves (`tests/k8s_apiserver.rs`).
//!
//! `scripts/setup` builds `kube-apiserver` and `kubectl` from `k8s.io/kubernetes` into
//! `<repo>/.deps/kubernetes-<VERSION>/bin` (the version is pinned there). [`KubeApiServer`] runs
//! it against the etcd servers a test gives (a [`Cluster`](crate::Cluster) of etcd 3.6, the
//! version this Kubernetes release ships with) on `127.0.0.1`, with a PKI made here (CA, serving
//! certificate for the loopback names, an ECDSA service-account key), a static token file
//! (user `admin` in `system:masters`, the token a random hex string written only to files
//! of mode 0600, never to argv), RBAC authorization and an `EncryptionConfiguration` for secrets
//! that the test writes. No kubelet, no controller manager, no scheduler: what the API server
//! writes by itself (namespaces, RBAC bootstrap roles, flow schemas, leases, the `kubernetes`
//! service) plus what the test creates.
//!
//! [`KubeApiServer::kubectl`] is the built `kubectl` with a kubeconfig in the server's temporary
//! directory and its own discovery cache there. The server process dies with the test
//! (`PR_SET_PDEATHSIG`, as etcd members do) and is killed when the value is dropped; it can be
//! stopped, pointed at other etcd servers (a restored data dir) and started again.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::bins::{is_executable, repo_root};
use crate::must::Must;
use crate::ports::free_port;
use crate::process::{self, Spawner};

/// How long [`KubeApiServer::start`] and [`KubeApiServer::restart`] wait for `/readyz` 200: the
/// first start on CI's two busy cores takes tens of seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long [`KubeApiServer::stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// Log lines shown when the server fails.
const LOG_TAIL: usize = 60;

/// The user of the static token: a member of `system:masters`.
pub const ADMIN_USER: &str = "admin";

/// `<repo>/.deps/kubernetes-<VERSION>`: the one directory `scripts/setup` installed. Panics
/// (always, CI or not) when there is none, or more than one.
#[track_caller]
pub fn kubernetes_dir() -> PathBuf {
    let deps = repo_root().join(".deps");
    let mut found: Vec<PathBuf> = fs::read_dir(&deps)
        .must(|| format!("cannot read {}: run scripts/setup", deps.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kubernetes-"))
                && p.join("VERSION").is_file()
        })
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => one.clone(),
        [] => panic!(
            "no {}/kubernetes-<VERSION> with kube-apiserver and kubectl: run scripts/setup",
            deps.display()
        ),
        many => panic!("several Kubernetes builds under .deps ({many:?}): run scripts/setup"),
    }
}

/// The Kubernetes version `scripts/setup` built (`1.36.3`), from its `VERSION` file.
#[track_caller]
pub fn kubernetes_version() -> String {
    let file = kubernetes_dir().join("VERSION");
    fs::read_to_string(&file)
        .must(|| format!("cannot read {}", file.display()))
        .trim()
        .to_string()
}

/// `kube-apiserver` or `kubectl` as built by `scripts/setup`. Panics when missing.
#[track_caller]
pub fn kubernetes_bin(tool: &str) -> PathBuf {
    let p = kubernetes_dir().join("bin").join(tool);
    if !is_executable(&p) {
        panic!("{} is missing: run scripts/setup", p.display());
    }
    p
}

/// The files of the API server's PKI, all in `<dir>/pki`.
#[derive(Debug, Clone)]
pub struct ApiServerPki {
    /// The CA that signed the serving certificate (`ca.crt`); also `--client-ca-file`.
    pub ca: PathBuf,
    /// The serving certificate (`apiserver.crt`): SANs `127.0.0.1`, `localhost` and the
    /// in-cluster names of the `kubernetes` service.
    pub cert: PathBuf,
    /// Its key (`apiserver.key`, mode 0600).
    pub key: PathBuf,
    /// The service-account signing key (`sa.key`, ECDSA P-256, PKCS#8, mode 0600).
    pub service_account_key: PathBuf,
    /// Its public key (`sa.pub`, SPKI PEM), which verifies the tokens.
    pub service_account_pub: PathBuf,
}

impl ApiServerPki {
    /// Generates the PKI into `dir` (created if missing).
    pub fn generate(dir: &Path) -> ApiServerPki {
        fs::create_dir_all(dir).must(|| format!("cannot create {}", dir.display()));
        let ca_key = KeyPair::generate().must(|| "cannot generate the API server CA key".into());
        let mut ca = CertificateParams::new(Vec::<String>::new())
            .must(|| "bad API server CA parameters".into());
        ca.distinguished_name = dn("etcd-snap test kubernetes CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca
            .self_signed(&ca_key)
            .must(|| "cannot self-sign the API server CA".into());
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().must(|| "cannot generate the API server key".into());
        let sans: Vec<String> = [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
        ]
        .map(String::from)
        .to_vec();
        let mut leaf = CertificateParams::new(sans).must(|| "bad API server SANs".into());
        leaf.distinguished_name = dn("kube-apiserver");
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf
            .signed_by(&key, &issuer)
            .must(|| "cannot sign the API server certificate".into());
        let sa = KeyPair::generate().must(|| "cannot generate the service-account key".into());
        ApiServerPki {
            ca: write(dir, "ca.crt", &ca_cert.pem(), 0o644),
            cert: write(dir, "apiserver.crt", &cert.pem(), 0o644),
            key: write(dir, "apiserver.key", &key.serialize_pem(), 0o600),
            service_account_key: write(dir, "sa.key", &sa.serialize_pem(), 0o600),
            service_account_pub: write(dir, "sa.pub", &sa.public_key_pem(), 0o644),
        }
    }
}

/// A distinguished name with just a CN.
fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Writes `text` to `dir/name` with `mode` (created with it, so a secret is never readable by
/// others, even for a moment) and returns the path.
fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = dir.join(name);
    let _ = fs::remove_file(&p);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&p)
        .must(|| format!("cannot create {}", p.display()));
    f.write_all(text.as_bytes())
        .must(|| format!("cannot write {}", p.display()));
    fs::set_permissions(&p, fs::Permissions::from_mode(mode))
        .must(|| format!("cannot chmod {}", p.display()));
    p
}

/// 16 random bytes as hex, from the kernel.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .must(|| "cannot read /dev/urandom".into());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An identity-only `EncryptionConfiguration` (secrets stored in plaintext).
pub const IDENTITY_ONLY: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
";

/// Configures a [`KubeApiServer`]; made by [`KubeApiServer::builder`].
#[derive(Debug, Clone)]
#[must_use = "a KubeApiServerBuilder does nothing until .start()"]
pub struct KubeApiServerBuilder {
    etcd_servers: Vec<String>,
    encryption_config: String,
    extra_args: Vec<String>,
}

impl KubeApiServerBuilder {
    /// The `EncryptionConfiguration` (YAML) written to the file given as
    /// `--encryption-provider-config` [default: [`IDENTITY_ONLY`]].
    pub fn encryption_config(mut self, yaml: &str) -> Self {
        self.encryption_config = yaml.to_string();
        self
    }

    /// One more `kube-apiserver` flag, e.g. `"--v=2"`.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.to_string());
        self
    }

    /// Writes the PKI, token file, encryption config and kubeconfig, starts the server and
    /// waits (up to 180 s) until `/readyz` answers 200; panics with the log tail otherwise.
    #[track_caller]
    pub fn start(self) -> KubeApiServer {
        let dir = tempfile::Builder::new()
            .prefix("kube-apiserver-")
            .tempdir()
            .must(|| "cannot create a temp dir for kube-apiserver".into());
        let pki = ApiServerPki::generate(&dir.path().join("pki"));
        let token = random_hex();
        let token_file = write(
            dir.path(),
            "tokens.csv",
            &format!("{token},{ADMIN_USER},{ADMIN_USER}-uid,\"system:masters\"\n"),
            0o600,
        );
        let port = free_port();
        let kubeconfig = write(
            dir.path(),
            "kubeconfig",
            &format!(
                "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: {ADMIN_USER}
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: {ADMIN_USER}
current-context: test
",
                ca = pki.ca.display()
            ),
            0o600,
        );
        let encryption_config = write(
            dir.path(),
            "encryption-config.yaml",
            &self.encryption_config,
            0o600,
        );
        let mut server = KubeApiServer {
            bin: kubernetes_bin("kube-apiserver"),
            kubectl: kubernetes_bin("kubectl"),
            port,
            pki,
            token_file,
            kubeconfig,
            encryption_config,
            etcd_servers: self.etcd_servers,
            extra_args: self.extra_args,
            log: dir.path().join("kube-apiserver.log"),
            child: None,
            spawner: Spawner::new(),
            dir,
        };
        server.launch();
        server.wait_ready();
        server
    }
}

/// A running `kube-apiserver` on `https://127.0.0.1:PORT`. Dropping it kills the process and
/// removes its temporary directory (PKI, token, kubeconfig, log).
pub struct KubeApiServer {
    bin: PathBuf,
    kubectl: PathBuf,
    port: u16,
    pki: ApiServerPki,
    token_file: PathBuf,
    kubeconfig: PathBuf,
    encryption_config: PathBuf,
    etcd_servers: Vec<String>,
    extra_args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// Forks the server; see [`crate::process`]. Dropped after the child is killed.
    spawner: Spawner,
    /// Dropped last: removes the directory.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for KubeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApiServer")
            .field("url", &self.url())
            .field("etcd_servers", &self.etcd_servers)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl KubeApiServer {
    /// A builder for a server that stores its objects in `etcd_servers` (client URLs, plain
    /// `http://`).
    pub fn builder(etcd_servers: &[String]) -> KubeApiServerBuilder {
        KubeApiServerBuilder {
            etcd_servers: etcd_servers.to_vec(),
            encryption_config: IDENTITY_ONLY.to_string(),
            extra_args: Vec::new(),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The secure port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary directory (removed on drop); tests may put files in it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated PKI.
    pub fn pki(&self) -> &ApiServerPki {
        &self.pki
    }

    /// The kubeconfig `kubectl` uses (mode 0600: it holds the admin token).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The `--encryption-provider-config` file (mode 0600: it holds the keys).
    pub fn encryption_config_path(&self) -> &Path {
        &self.encryption_config
    }

    /// The etcd client URLs the server uses.
    pub fn etcd_servers(&self) -> &[String] {
        &self.etcd_servers
    }

    /// The server's log (stdout and stderr of every start, with a marker line per start).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The built `kubectl` with `--kubeconfig` (admin token), `--cache-dir` in the server's
    /// directory, `KUBECONFIG` removed and stdin closed. Add the subcommand with `.args()`.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("kubectl-cache").display()
            ))
            .stdin(Stdio::null());
        cmd
    }

    /// The HTTP status of `GET /readyz` (`None` when the server does not answer at all).
    pub fn readyz(&self) -> Option<u16> {
        let out = self
            .kubectl()
            .args(["get", "--raw=/readyz", "--request-timeout=5s"])
            .output()
            .ok()?;
        if out.status.success() {
            return Some(200);
        }
        // kubectl says `... (get readyz)` with the server's status when it answered.
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("connection refused") || err.contains("dial tcp") {
            return None;
        }
        Some(500)
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Waits (up to 180 s) until `/readyz` answers 200; panics with the log tail when the
    /// process exits or the time is up.
    #[track_caller]
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "kube-apiserver exited ({status}); log {}:\n{}",
                    self.log.display(),
                    self.log_tail(LOG_TAIL)
                );
            }
            if self.readyz() == Some(200) {
                eprintln!(
                    "etcd-test-support: kube-apiserver ready on {} after {:.1} s",
                    self.url(),
                    start.elapsed().as_secs_f64()
                );
                return;
            }
            if start.elapsed() > READY_TIMEOUT {
                panic!(
                    "kube-apiserver did not answer /readyz 200 within {READY_TIMEOUT:?}; log {}:\n{}",
                    self.log.display(),
                    self.log_tail(LOG_TAIL)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM, then SIGKILL after 20 s; a no-op when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }

    /// Replaces the `EncryptionConfiguration`; it takes effect at the next
    /// [`restart`](Self::restart).
    pub fn set_encryption_config(&mut self, yaml: &str) {
        self.encryption_config = write(self.dir.path(), "encryption-config.yaml", yaml, 0o600);
    }

    /// Points the server at other etcd servers (e.g. a cluster booted from a restored data
    /// dir); takes effect at the next [`restart`](Self::restart).
    pub fn set_etcd_servers(&mut self, etcd_servers: &[String]) {
        self.etcd_servers = etcd_servers.to_vec();
    }

    /// Stops the server if it runs, starts it again with the same port, PKI and token, and
    /// waits until `/readyz` answers 200.
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
        self.wait_ready();
    }

    /// The command line (every file it names lives in the server's directory).
    fn args(&self) -> Vec<String> {
        let dir = self.dir.path();
        let mut args = vec![
            format!("--etcd-servers={}", self.etcd_servers.join(",")),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={}", self.port),
            format!("--tls-cert-file={}", self.pki.cert.display()),
            format!("--tls-private-key-file={}", self.pki.key.display()),
            format!("--client-ca-file={}", self.pki.ca.display()),
            format!("--token-auth-file={}", self.token_file.display()),
            "--authorization-mode=RBAC".to_string(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!(
                "--service-account-key-file={}",
                self.pki.service_account_pub.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                self.pki.service_account_key.display()
            ),
            "--service-cluster-ip-range=10.96.0.0/12".to_string(),
            format!(
                "--encryption-provider-config={}",
                self.encryption_config.display()
            ),
            format!("--cert-dir={}", dir.join("cert-dir").display()),
            "--profiling=false".to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Starts the process (not waiting for it), appending its output to the log.
    #[track_caller]
    fn launch(&mut self) {
        use std::io::Write;
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .must(|| format!("cannot open {}", self.log.display()));
        let _ = writeln!(
            log,
            "==== etcd-test-support: starting kube-apiserver on {} (etcd {})",
            self.url(),
            self.etcd_servers.join(",")
        );
        let err = log
            .try_clone()
            .must(|| format!("cannot reopen {}", self.log.display()));
        let mut cmd = Command::new(&self.bin);
        cmd.args(self.args())
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = self
            .spawner
            .handle()
            .spawn(cmd)
            .must(|| format!("cannot start {}", self.bin.display()));
        self.child = Some(child);
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill(&mut child);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- kube-apiserver log {} (last {LOG_TAIL} lines)\n{}",
                self.log.display(),
                self.log_tail(LOG_TAIL)
            );
        }
    }
}
