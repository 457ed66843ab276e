//! Shared helpers for the end-to-end tests in this directory.
//!
//! These tests run the release-shaped pieces the way users do: the four binaries from the
//! workspace's target directory, the scripts under `scripts/`, the playbooks and units under
//! `examples/`, all against real etcd servers started by `etcd-test-support`. The binaries are built
//! by the same `cargo nextest run --workspace` / `cargo test --workspace` that runs these tests.
//! They run through the harness's one runner ([`Tool`]: [`ours`], [`program`]), and share here
//! what more than one scenario file needs (an age key, a kubeadm PKI, a mount namespace).

use std::path::{Path, PathBuf};
use std::process::Command;

pub use etcd_test_support as support;
use support::{TlsFiles, Tool};

mod node;
pub use node::{clean_env, Node};

/// The directory holding the workspace binaries this test was built with (`target/<profile>`).
///
/// Panics with what to run when the binaries are not there (e.g. `cargo test -p etcd-snap-e2e`
/// alone, which does not build the other packages' binaries).
#[track_caller]
pub fn bin_dir() -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => panic!("cannot find the test executable: {e}"),
    };
    // target/<profile>/deps/<test>-<hash>
    let dir = match exe.parent().and_then(Path::parent) {
        Some(d) => d.to_path_buf(),
        None => panic!("unexpected test executable path {}", exe.display()),
    };
    for tool in TOOLS {
        if !dir.join(tool).is_file() {
            panic!(
                "{} is missing: run `cargo build --workspace --bins` (or the whole suite, scripts/test) first",
                dir.join(tool).display()
            );
        }
    }
    dir
}

/// The workspace's binaries, as the scripts call them through `PATH` (etcd-backup's retention
/// and object storage, and restores from a URL, call etcd-snap-store; its `--follow` mode calls
/// etcd-snap-log).
pub const TOOLS: [&str; 6] = [
    "etcd-health",
    "etcd-snap-save",
    "etcd-snap-status",
    "etcd-snap-restore",
    "etcd-snap-store",
    "etcd-snap-log",
];

/// The path of one workspace binary.
#[track_caller]
pub fn tool(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// One workspace binary through the test runner (no inherited `ETCDCTL_*`/`ETCD_*`, stdin
/// closed).
#[track_caller]
pub fn ours(name: &str) -> Tool {
    Tool::new(tool(name))
}

/// A program that is not ours (`age-keygen`, `unshare`, `curl`) through the runner: its
/// environment left as it is, stdin closed.
pub fn program(name: impl AsRef<std::ffi::OsStr>) -> Tool {
    Tool::from_command(Command::new(name))
}

/// A new age identity written to `key`; returns its recipient (`age1...`).
#[track_caller]
pub fn age_keygen(key: &Path) -> String {
    program("age-keygen").arg("-o").arg(key).run().succeeds();
    program("age-keygen")
        .arg("-y")
        .arg(key)
        .run()
        .succeeds()
        .stdout
        .trim()
        .to_string()
}

/// Whether `unshare -rm` (a user and mount namespace of this test's own, where it can mount
/// what nobody else sees) works here. When it does not, a test under CI (`CI` set) fails, and
/// elsewhere the test says it is skipped: `if !user_mount_namespace("cannot mount X") { return; }`.
#[track_caller]
pub fn user_mount_namespace(needed_for: &str) -> bool {
    if program("unshare").args(["-rm", "true"]).run().success() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "unshare -rm does not work here: {needed_for}"
    );
    eprintln!("skipped: unshare -rm does not work here");
    false
}

/// kubeadm's certificate layout under `pki` (`/etc/kubernetes/pki`: `ca.crt`, `apiserver*`,
/// `etcd/ca.crt`, `etcd/server.*`, `etcd/peer.*`, `etcd/healthcheck-client.*`), every file
/// copied from one harness PKI (its server certificate is valid for 127.0.0.1 and has both
/// server and client usages). `pki/etcd` must exist.
#[track_caller]
pub fn write_kubeadm_pki(tls: &TlsFiles, pki: &Path) {
    let copies: [(&Path, &str); 15] = [
        (&tls.ca, "ca.crt"),
        (&tls.ca_key, "ca.key"),
        (&tls.server_cert, "apiserver.crt"),
        (&tls.server_key, "apiserver.key"),
        (&tls.client_cert, "apiserver-etcd-client.crt"),
        (&tls.client_key, "apiserver-etcd-client.key"),
        (&tls.client_cert, "apiserver-kubelet-client.crt"),
        (&tls.client_key, "apiserver-kubelet-client.key"),
        (&tls.ca, "etcd/ca.crt"),
        (&tls.server_cert, "etcd/server.crt"),
        (&tls.server_key, "etcd/server.key"),
        (&tls.server_cert, "etcd/peer.crt"),
        (&tls.server_key, "etcd/peer.key"),
        (&tls.client_cert, "etcd/healthcheck-client.crt"),
        (&tls.client_key, "etcd/healthcheck-client.key"),
    ];
    for (from, to) in copies {
        if let Err(e) = std::fs::copy(from, pki.join(to)) {
            panic!(
                "copying {} to {}: {e}",
                from.display(),
                pki.join(to).display()
            );
        }
    }
}

/// `etcdctl` of `version` against `endpoint` (`https://127.0.0.1:PORT`) as kubeadm's
/// healthcheck client (`--cacert/--cert/--key` from the kubeadm PKI at `pki`), stdin closed.
pub fn kubeadm_etcdctl(version: support::Version, endpoint: &str, pki: &Path) -> Command {
    let mut cmd = Command::new(support::etcd_bin(version, "etcdctl"));
    cmd.arg(format!("--endpoints={endpoint}"))
        .arg(format!("--cacert={}", pki.join("etcd/ca.crt").display()))
        .arg(format!(
            "--cert={}",
            pki.join("etcd/healthcheck-client.crt").display()
        ))
        .arg(format!(
            "--key={}",
            pki.join("etcd/healthcheck-client.key").display()
        ))
        .stdin(std::process::Stdio::null());
    cmd
}

/// Starts the stand-in kubelet (`tests/kubeadm/kubelet.py`, with the first `python3` that has
/// PyYAML) on the static pod manifests in `manifests`: it runs each pod's command with the
/// program `bins` names for it (`("etcd", path)`, ...), logs the pods into `log_dir` and itself
/// into `log`, and exits with this process. Its stdin is a pipe, its stdout closed.
#[track_caller]
pub fn start_stand_in_kubelet(
    manifests: &Path,
    log_dir: &Path,
    bins: &[(&str, PathBuf)],
    log: std::fs::File,
) -> std::process::Child {
    use std::process::Stdio;
    // The first python3 with PyYAML: PATH's, else Debian's (python3-yaml).
    let Some(python) = ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import yaml"])
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        panic!("the stand-in kubelet needs python3 with PyYAML (Debian: python3-yaml; run scripts/setup)");
    };
    let mut cmd = Command::new(python);
    cmd.arg(support::repo_root().join("tests/kubeadm/kubelet.py"))
        .arg("--manifests")
        .arg(manifests)
        .arg("--log-dir")
        .arg(log_dir);
    for (name, program) in bins {
        cmd.arg(format!("--bin={name}={}", program.display()));
    }
    match cmd
        .arg(format!("--parent-pid={}", std::process::id()))
        .env("PATH", path_with_tools())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot start {python} tests/kubeadm/kubelet.py: {e}"),
    }
}

/// `<repo>/scripts/<name>`.
pub fn script(name: &str) -> PathBuf {
    support::repo_root().join("scripts").join(name)
}

/// `<repo>/examples/<rel>`.
pub fn example(rel: &str) -> PathBuf {
    support::repo_root().join("examples").join(rel)
}

/// A `PATH` with the workspace binaries and the etcd 3.5 tools first, then the inherited one.
#[track_caller]
pub fn path_with_tools() -> String {
    let etcd = support::etcd_bin(support::Version::V3_5, "etcd");
    let etcd_dir = etcd.parent().map(Path::to_path_buf).unwrap_or_default();
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!(
        "{}:{}:{}",
        bin_dir().display(),
        etcd_dir.display(),
        inherited
    )
}
