//! Starting a real etcd 3.5.1 for the snapshot tests, with std only.
//!
//! Why it exists: the reader is verified against files written by real etcd and numbers printed by
//! the real `etcdutl`. The binaries come from `scripts/setup` (into `.deps/etcd-3.5.1/bin`); when they
//! are missing the tests fail and say so, they never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Directory holding `etcd`, `etcdctl` (and for 3.5, `etcdutl`) of `version` ("3.5.1" or
/// "3.4.23"), as installed by `scripts/setup`.
pub fn bin_dir_of(version: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../.deps/etcd-{version}/bin"));
    let needed: &[&str] = if version.starts_with("3.4") {
        &["etcd", "etcdctl"]
    } else {
        &["etcd", "etcdctl", "etcdutl"]
    };
    for b in needed {
        assert!(
            dir.join(b).is_file(),
            "{} is missing: run scripts/setup (it installs etcd {version} into .deps/etcd-{version}/bin)",
            dir.join(b).display()
        );
    }
    dir
}

/// Directory holding `etcd`, `etcdctl`, `etcdutl` 3.5.1.
pub fn bin_dir() -> PathBuf {
    bin_dir_of("3.5.1")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "bbolt-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running single-member etcd on loopback, killed on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    pub bin: PathBuf,
    pub dir: TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::start_version("3.5.1")
    }

    pub fn start_version(version: &str) -> Etcd {
        let bin = bin_dir_of(version);
        let dir = TempDir::new("etcd");
        let (client, peer) = (free_port(), free_port());
        let curl = format!("http://127.0.0.1:{client}");
        let purl = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.0.join("etcd.log")).unwrap();
        let child = Command::new(bin.join("etcd"))
            .args(["--name", "default", "--data-dir"])
            .arg(dir.0.join("data"))
            .args([
                "--listen-client-urls",
                &curl,
                "--advertise-client-urls",
                &curl,
            ])
            .args([
                "--listen-peer-urls",
                &purl,
                "--initial-advertise-peer-urls",
                &purl,
            ])
            .args(["--initial-cluster", &format!("default={purl}")])
            .args(["--max-txn-ops", "100000", "--max-request-bytes", "33554432"])
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let etcd = Etcd {
            child,
            endpoint: curl,
            bin,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = etcd
                .ctl_cmd(&["endpoint", "health"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy in 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("etcdctl"));
        c.env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .args(args);
        c
    }

    /// Runs etcdctl, panicking with its stderr on failure; returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let o = self.ctl_cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Puts many keys in one transaction (values must not contain spaces or newlines).
    pub fn put_many(&self, kvs: &[(String, String)]) {
        let mut script = String::from("\n");
        for (k, v) in kvs {
            script.push_str(&format!("put {k} {v}\n"));
        }
        script.push_str("\n\n");
        let out = etcd_test_support::run_with_stdin(&mut self.ctl_cmd(&["txn"]), script.as_bytes());
        assert!(out.success(), "etcdctl txn failed: {}", out.stderr);
    }

    /// Saves a snapshot to `path`.
    pub fn snapshot(&self, path: &Path) {
        let p = path.to_str().unwrap();
        let o = self.ctl_cmd(&["snapshot", "save", p]).output().unwrap();
        assert!(
            o.status.success(),
            "snapshot save: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `etcdutl snapshot status -w json FILE` as (hash, revision, totalKey, totalSize), or its stderr.
pub fn etcdutl_status(path: &Path) -> Result<(u32, i64, u64, u64), String> {
    status_json(Command::new(bin_dir().join("etcdutl")), path)
}

/// etcd 3.4's `etcdctl snapshot status -w json FILE`.
pub fn etcdctl34_status(path: &Path) -> Result<(u32, i64, u64, u64), String> {
    let mut c = Command::new(bin_dir_of("3.4.23").join("etcdctl"));
    c.env("ETCDCTL_API", "3");
    status_json(c, path)
}

fn status_json(mut cmd: Command, path: &Path) -> Result<(u32, i64, u64, u64), String> {
    let o = cmd
        .args(["snapshot", "status", "-w", "json"])
        .arg(path)
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let s = String::from_utf8_lossy(&o.stdout);
    let field = |name: &str| -> u64 {
        let i = s
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("no {name} in {s}"));
        s[i + name.len() + 3..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    };
    Ok((
        field("hash") as u32,
        field("revision") as i64,
        field("totalKey"),
        field("totalSize"),
    ))
}
