//! `scripts/kubeadm-restore` on a kubeadm-shaped control-plane node, against a real etcd 3.5.
//!
//! The node lives in a temporary directory: `etc/kubernetes/manifests` holds `etcd.yaml`,
//! `kube-apiserver.yaml` and `kube-scheduler.yaml` in kubeadm's generated format
//! (`tests/kubeadm/manifests`, also read by etcd-snap-restore's unit tests; paths under the
//! temporary directory, free loopback ports), `etc/kubernetes/pki` a kubeadm-shaped PKI made from
//! the harness's test CA, `var/lib/etcd` the data dir. A stand-in kubelet
//! (`tests/kubeadm/kubelet.py`) runs each manifest's command line as kubelet would run the static
//! pod: `etcd` is the real etcd 3.5 binary, `kube-apiserver` a stand-in that answers `/readyz` 200
//! only while its etcd is healthy (`tests/kubeadm/kube-apiserver.py`), `kube-scheduler` a process
//! that sleeps. Moving a manifest out stops its process; moving it back starts it again.
//!
//! A `crictl` stand-in (`tests/kubeadm/bin/crictl`) lists the stand-in kubelet's processes.
//!
//! What this cannot show: a real kubelet (its 20 s file-source poll, mirror pods, pod UIDs),
//! containerd and the real `crictl`, real container mounts (the hostPath volumes point at host paths as
//! they are), a real kube-apiserver with its watch caches, and a multi-member stacked cluster.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::time::Duration;

use etcd_snap_e2e::support::{self, free_port, run_ok, wait_until, Run, Tool, Version};
use etcd_snap_e2e::{
    age_keygen, kubeadm_etcdctl, ours, path_with_tools, program, script, start_stand_in_kubelet,
    write_kubeadm_pki,
};

/// `etcd-snap-save --quiet` of `cluster`'s first member into `snap`; it must succeed.
fn save_snapshot(cluster: &support::Cluster, snap: &Path) {
    ours("etcd-snap-save")
        .arg("--endpoints")
        .arg(&cluster.endpoints()[0])
        .arg("--quiet")
        .arg(snap)
        .run()
        .succeeds();
}

/// The revision bump of `--k8s`.
const K8S_BUMP: i64 = 1_000_000_000;

/// kubeadm v1.31's `etcd.yaml`, with `@ROOT@` for the node's root and `@…_PORT@` for its ports.
const ETCD_YAML: &str = include_str!("kubeadm/manifests/etcd.yaml");

/// kubeadm v1.31's `kube-apiserver.yaml` (probes and most volumes trimmed).
const APISERVER_YAML: &str = include_str!("kubeadm/manifests/kube-apiserver.yaml");

/// kubeadm v1.31's `kube-scheduler.yaml` (probes trimmed).
const SCHEDULER_YAML: &str = include_str!("kubeadm/manifests/kube-scheduler.yaml");

/// The three manifests, by file name.
const MANIFESTS: [(&str, &str); 3] = [
    ("etcd.yaml", ETCD_YAML),
    ("kube-apiserver.yaml", APISERVER_YAML),
    ("kube-scheduler.yaml", SCHEDULER_YAML),
];

/// A kubeadm-shaped control-plane node in a temporary directory.
struct Node {
    /// Removed when the node is dropped (after the kubelet, which is declared before it).
    dir: tempfile::TempDir,
    /// etcd's client port on 127.0.0.1.
    client_port: u16,
    /// The API server stand-in's port on 127.0.0.1.
    api_port: u16,
    /// etcd's peer port on 127.0.0.1.
    peer_port: u16,
}

impl Node {
    /// Writes the PKI and the manifests; nothing runs yet.
    fn new() -> Node {
        let dir = tempfile::Builder::new()
            .prefix("kubeadm-node-")
            .tempdir()
            .unwrap();
        let node = Node {
            dir,
            client_port: free_port(),
            api_port: free_port(),
            peer_port: free_port(),
        };
        let metrics_port = free_port();
        for d in [
            "etc/kubernetes/manifests",
            "etc/kubernetes/pki/etcd",
            "var/lib",
            "logs",
        ] {
            fs::create_dir_all(node.root().join(d)).unwrap();
        }
        node.write_pki();
        fs::write(node.root().join("etc/kubernetes/scheduler.conf"), "").unwrap();
        for (name, template) in MANIFESTS {
            let text = template
                .replace("@ROOT@", node.root().to_str().unwrap())
                .replace("@CLIENT_PORT@", &node.client_port.to_string())
                .replace("@PEER_PORT@", &node.peer_port.to_string())
                .replace("@METRICS_PORT@", &metrics_port.to_string())
                .replace("@API_PORT@", &node.api_port.to_string());
            fs::write(node.manifests().join(name), text).unwrap();
        }
        node
    }

    /// kubeadm's certificate layout, every file copied from one harness PKI (the server
    /// certificate is valid for 127.0.0.1 and has both server and client usages).
    fn write_pki(&self) {
        let tls = support::TlsFiles::generate(&self.root().join("test-pki"));
        write_kubeadm_pki(&tls, &self.pki());
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn manifests(&self) -> PathBuf {
        self.root().join("etc/kubernetes/manifests")
    }

    fn pki(&self) -> PathBuf {
        self.root().join("etc/kubernetes/pki")
    }

    fn data_dir(&self) -> PathBuf {
        self.root().join("var/lib/etcd")
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    /// Starts the stand-in kubelet on the manifests dir.
    fn kubelet(&self) -> Kubelet {
        let stand_ins = support::repo_root().join("tests/kubeadm");
        let log = fs::File::create(self.root().join("logs/kubelet.log")).unwrap();
        let mut child = start_stand_in_kubelet(
            &self.manifests(),
            &self.root().join("logs"),
            &[
                ("etcd", support::etcd_bin(Version::V3_5, "etcd")),
                ("kube-apiserver", stand_ins.join("kube-apiserver.py")),
                ("kube-scheduler", stand_ins.join("kube-idle")),
            ],
            log,
        );
        let stdin = child.stdin.take();
        Kubelet {
            child,
            stdin,
            logs: self.root().join("logs"),
        }
    }

    /// `etcdctl` 3.5 against this node's etcd with the healthcheck client certificate.
    fn etcdctl(&self) -> Command {
        let mut cmd = kubeadm_etcdctl(Version::V3_5, &self.endpoint(), &self.pki());
        cmd.env("ETCDCTL_API", "3");
        cmd
    }

    fn put(&self, key: &str, value: &str) {
        run_ok(self.etcdctl().args(["put", key, value]));
    }

    /// The `/registry/` keys etcd serves now.
    fn registry_keys(&self) -> Vec<String> {
        let out = run_ok(
            self.etcdctl()
                .args(["get", "/registry/", "--prefix", "--keys-only"]),
        );
        out.lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// etcd's current revision.
    fn revision(&self) -> i64 {
        let out = run_ok(self.etcdctl().args(["get", "health", "-w", "json"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["header"]["revision"].as_i64().unwrap()
    }

    /// One of our tools, talking to this node's etcd as kubeadm's healthcheck client.
    fn client(&self, name: &str) -> Tool {
        let pki = self.pki();
        let mut cmd = ours(name);
        cmd.arg("--endpoints")
            .arg(self.endpoint())
            .arg("--cacert")
            .arg(pki.join("etcd/ca.crt"))
            .arg("--cert")
            .arg(pki.join("etcd/healthcheck-client.crt"))
            .arg("--key")
            .arg(pki.join("etcd/healthcheck-client.key"));
        cmd
    }

    /// `etcd-health --wait` with the kubeadm healthcheck client.
    fn wait_etcd_healthy(&self) {
        self.client("etcd-health")
            .args(["--wait", "30s"])
            .run()
            .succeeds();
    }

    /// `curl https://127.0.0.1:API_PORT/readyz` with the cluster CA: (HTTP code, body).
    fn readyz(&self) -> (String, String) {
        let out = program("curl")
            .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", "--cacert"])
            .arg(self.pki().join("ca.crt"))
            .arg(format!("https://127.0.0.1:{}/readyz", self.api_port))
            .run();
        let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", "000"));
        (code.to_string(), body.to_string())
    }

    fn wait_ready(&self) {
        self.wait_etcd_healthy();
        let ok = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            self.readyz().0 == "200"
        });
        assert!(ok, "/readyz never answered 200: {:?}", self.readyz());
    }

    /// `scripts/kubeadm-restore ARGS... --manifests-dir M --pki-dir P --no-crictl
    /// --readyz-check curl`, with the workspace tools first on PATH (after `ROOT/fakebin`, where a
    /// test may put stand-ins).
    fn restore(&self, args: &[&str]) -> Run {
        let mut cmd = Tool::new(script("kubeadm-restore"));
        cmd.args(args).arg("--no-crictl");
        self.run_restore(cmd, args)
    }

    /// Like [`restore`](Self::restore) but with `crictl` on PATH: the stand-in
    /// `tests/kubeadm/bin/crictl`, which lists the stand-in kubelet's containers.
    fn restore_with_crictl(&self, args: &[&str]) -> Run {
        let mut cmd = Tool::new(script("kubeadm-restore"));
        cmd.args(args)
            .env("KUBELET_CONTAINERS", self.root().join("logs/containers"));
        self.run_restore(cmd, args)
    }

    /// Adds the node's directories and `PATH` to `cmd` (`kubeadm-restore ARGS`), runs it, and
    /// prints what it said.
    fn run_restore(&self, mut cmd: Tool, args: &[&str]) -> Run {
        let crictl_dir = support::repo_root().join("tests/kubeadm/bin");
        let out = cmd
            .arg("--manifests-dir")
            .arg(self.manifests())
            .arg("--pki-dir")
            .arg(self.pki())
            .args(["--readyz-check", "curl"])
            .env(
                "PATH",
                format!(
                    "{}:{}:{}",
                    self.root().join("fakebin").display(),
                    crictl_dir.display(),
                    path_with_tools()
                ),
            )
            .run();
        eprintln!(
            "--- kubeadm-restore {args:?}: exit {}\n--- stdout\n{}--- stderr\n{}",
            out.code, out.stdout, out.stderr
        );
        out
    }

    /// The entries of `dir`, sorted.
    fn ls(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root().join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every manifest's bytes, by name.
    fn manifest_bytes(&self) -> Vec<(String, Vec<u8>)> {
        self.ls("etc/kubernetes/manifests")
            .into_iter()
            .map(|n| {
                let bytes = fs::read(self.manifests().join(&n)).unwrap();
                (n, bytes)
            })
            .collect()
    }
}

/// The stand-in kubelet: stopped (with every process it started) when dropped.
struct Kubelet {
    child: Child,
    stdin: Option<ChildStdin>,
    logs: PathBuf,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        // EOF on stdin: it stops its pods (SIGTERM, then SIGKILL after 10 s) and exits.
        drop(self.stdin.take());
        let exited = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            for entry in fs::read_dir(&self.logs).into_iter().flatten().flatten() {
                let text = fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "--- {} (last 40 lines)", entry.path().display());
                for l in tail.iter().rev() {
                    let _ = writeln!(err, "{l}");
                }
            }
        }
    }
}

/// Loads a few Kubernetes-like keys, saves a backup (`etcd-snap-save --compress -r`, so the
/// script gets age(zstd(db)) and needs `-i`), writes more; returns (backup, age key, the
/// backup's revision).
fn load_and_back_up(node: &Node) -> (PathBuf, PathBuf, i64) {
    for (k, v) in [
        ("/registry/namespaces/default", "ns-default"),
        ("/registry/namespaces/kube-system", "ns-kube-system"),
        ("/registry/configmaps/default/app", "v1"),
        ("/registry/deployments/default/web", "replicas=3"),
    ] {
        node.put(k, v);
    }
    let key = node.root().join("backup.key");
    let recipient = age_keygen(&key);
    let backup = node.root().join("snap.db.zst.age");
    node.client("etcd-snap-save")
        .args(["--quiet", "--compress", "-r", recipient.trim()])
        .arg(&backup)
        .run()
        .succeeds();
    let status = ours("etcd-snap-status")
        .arg("-i")
        .arg(&key)
        .args(["-w", "json"])
        .arg(&backup)
        .run()
        .succeeds()
        .stdout
        .clone();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let revision = status["revision"].as_i64().unwrap();
    // After the backup: a new object and a changed one.
    node.put("/registry/configmaps/default/after-backup", "new");
    node.put("/registry/configmaps/default/app", "v2");
    (backup, key, revision)
}

/// The keys the backup holds.
fn backup_keys() -> Vec<String> {
    [
        "/registry/configmaps/default/app",
        "/registry/deployments/default/web",
        "/registry/namespaces/default",
        "/registry/namespaces/kube-system",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn dry_run_then_restore_on_a_kubeadm_node() {
    let node = Node::new();
    let kubelet = node.kubelet();
    node.wait_ready();
    let (backup, key, backup_rev) = load_and_back_up(&node);
    let (backup, key) = (backup.to_str().unwrap(), key.to_str().unwrap());
    let manifests_before = node.manifest_bytes();
    let etc_before = node.ls("etc/kubernetes");
    assert_eq!(node.ls("var/lib"), ["etcd"]);

    // kubeadm-restore -i KEY BACKUP: checks, prints the plan, changes nothing.
    let dry = node.restore_with_crictl(&["-i", key, backup]);
    assert_eq!(dry.code, 0, "dry run failed");
    let data = node.data_dir();
    let manifests = node.manifests();
    for expected in [
        "DRY RUN".to_string(),
        "container check:      crictl and ports".to_string(),
        "$ crictl ps --name '^kube-apiserver$' -q".to_string(),
        "member name:          cp1".to_string(),
        format!("data dir (host):      {}", data.display()),
        format!(
            "$ mv {m}/kube-apiserver.yaml {root}/etc/kubernetes/manifests.before-restore-",
            m = manifests.display(),
            root = node.root().display()
        ),
        "kube-scheduler.yaml".to_string(),
        format!(
            "$ etcd-snap-restore {backup} --data-dir {}.restored-",
            data.display()
        ),
        format!("-i {key} --name cp1 --initial-cluster cp1=https://127.0.0.1:"),
        "--k8s --owner".to_string(),
        format!("$ mv {d} {d}.before-restore-", d = data.display()),
        format!("/etcd.yaml {}/etcd.yaml", manifests.display()),
        "/readyz".to_string(),
        "nothing was changed".to_string(),
    ] {
        assert!(
            dry.stdout.contains(&expected),
            "dry run does not print {expected:?}"
        );
    }
    assert_eq!(
        node.manifest_bytes(),
        manifests_before,
        "dry run changed the manifests"
    );
    assert_eq!(
        node.ls("etc/kubernetes"),
        etc_before,
        "dry run created something"
    );
    assert_eq!(node.ls("var/lib"), ["etcd"], "dry run created something");
    let mut after_backup = backup_keys();
    after_backup.push("/registry/configmaps/default/after-backup".into());
    after_backup.sort();
    assert_eq!(node.registry_keys(), after_backup, "etcd stopped serving");

    // kubeadm-restore --yes -i KEY BACKUP
    let out = node.restore_with_crictl(&["--yes", "-i", key, backup]);
    assert_eq!(out.code, 0, "restore failed");
    assert_eq!(node.registry_keys(), backup_keys(), "not the backup's data");
    let app = run_ok(node.etcdctl().args([
        "get",
        "/registry/configmaps/default/app",
        "--print-value-only",
    ]));
    assert_eq!(app.trim(), "v1");
    assert_eq!(
        node.revision(),
        backup_rev + K8S_BUMP,
        "revision not bumped by 1e9"
    );
    assert_eq!(node.readyz(), ("200".to_string(), "ok".to_string()));
    assert_eq!(
        node.manifest_bytes(),
        manifests_before,
        "manifests not all back"
    );
    assert_eq!(
        node.ls("etc/kubernetes"),
        etc_before,
        "backup dir left behind"
    );
    let var_lib = node.ls("var/lib");
    assert_eq!(var_lib.len(), 2, "{var_lib:?}");
    let aside = node.root().join("var/lib").join(&var_lib[1]);
    assert!(
        var_lib[1].starts_with("etcd.before-restore-"),
        "{var_lib:?}"
    );
    assert!(
        aside.join("member/snap/db").is_file(),
        "old data dir not kept"
    );
    for expected in [
        "DONE: etcd on cp1 serves the snapshot".to_string(),
        "HOW TO ROLL BACK".to_string(),
        format!("mv {d} {d}.restore-failed-", d = data.display()),
        format!("&& mv {} {}", aside.display(), data.display()),
    ] {
        assert!(out.stdout.contains(&expected), "output lacks {expected:?}");
    }
    drop(kubelet);
}

#[test]
fn corrupt_snapshot_is_refused_before_anything_moves() {
    let node = Node::new();
    let _kubelet = node.kubelet();
    node.wait_ready();
    let (backup, key, _) = load_and_back_up(&node);
    // The raw snapshot, cut in half.
    let plain = node.root().join("snap.db");
    let decrypted = program("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | zstd -dc > '{}'",
            key.display(),
            backup.display(),
            plain.display()
        ))
        .run();
    assert!(decrypted.success(), "{}", decrypted.stderr);
    let bytes = fs::read(&plain).unwrap();
    let cut = node.root().join("cut.db");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let manifests_before = node.manifest_bytes();
    let etc_before = node.ls("etc/kubernetes");

    let out = node.restore(&["--yes", cut.to_str().unwrap()]);
    assert_eq!(out.code, 4, "a corrupt snapshot must exit 4");
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(
        !out.stdout.contains("$ mv"),
        "a move was printed: {}",
        out.stdout
    );
    assert_eq!(node.manifest_bytes(), manifests_before);
    assert_eq!(node.ls("etc/kubernetes"), etc_before);
    assert_eq!(node.ls("var/lib"), ["etcd"]);
    assert_eq!(node.readyz().0, "200");
    assert!(node
        .registry_keys()
        .contains(&"/registry/configmaps/default/after-backup".to_string()));
}

#[test]
fn a_backup_on_object_storage_is_streamed_from_its_url_and_a_corrupt_one_refused() {
    let node = Node::new();
    let _kubelet = node.kubelet();
    node.wait_ready();
    let (backup, key, backup_rev) = load_and_back_up(&node);
    let key = key.to_str().unwrap();
    let s3 = support::S3Server::rclone();
    let object = "etcd/snap.db.zst.age";
    let url = s3.url(object);
    ours("etcd-snap-store")
        .envs(s3.env())
        .args(["put", &url])
        .stdin_file(&backup)
        .run()
        .succeeds();
    let restore = |args: &[&str]| {
        let mut cmd = Tool::new(script("kubeadm-restore"));
        cmd.args(args).arg("--no-crictl").envs(s3.env());
        node.run_restore(cmd, args)
    };
    let manifests_before = node.manifest_bytes();

    // Dry run: the stream is printed, nothing staged, nothing changed.
    let dry = restore(&["-i", key, &url]);
    assert_eq!(dry.code, 0, "dry run failed");
    assert!(
        dry.stdout.contains(&format!(
            "$ etcd-snap-store cat {url} | etcd-snap-restore - --data-dir"
        )),
        "{}",
        dry.stdout
    );
    assert_eq!(node.manifest_bytes(), manifests_before);

    // An object rewritten behind our back: exit 4 before anything moves.
    let good = s3.read_object(object);
    let mut bad = good.clone();
    bad[100] ^= 1;
    s3.rewrite_object(object, &bad);
    let out = restore(&["--yes", "-i", key, &url]);
    assert_eq!(out.code, 4, "a corrupt object must exit 4");
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert_eq!(node.manifest_bytes(), manifests_before);
    assert_eq!(node.ls("var/lib"), ["etcd"]);

    // The good object: restored, streamed, no file of it anywhere under the node.
    s3.rewrite_object(object, &good);
    let out = restore(&["--yes", "-i", key, &url]);
    assert_eq!(out.code, 0, "restore from the URL failed");
    assert_eq!(node.registry_keys(), backup_keys(), "not the backup's data");
    assert_eq!(node.revision(), backup_rev + K8S_BUMP);
    assert_eq!(node.readyz().0, "200");
    assert_eq!(node.manifest_bytes(), manifests_before);
}

#[test]
fn etcd_not_coming_back_times_out_with_rollback_steps() {
    let node = Node::new();
    let kubelet = node.kubelet();
    node.wait_ready();
    let (backup, key, _) = load_and_back_up(&node);
    // No kubelet: the manifests go back but nothing starts etcd.
    drop(kubelet);

    let out = node.restore(&[
        "--yes",
        "--etcd-timeout",
        "3s",
        "-i",
        key.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 3, "waiting for etcd must time out with exit 3");
    let data = node.data_dir();
    let var_lib = node.ls("var/lib");
    let aside = node.root().join("var/lib").join(&var_lib[1]);
    assert!(
        var_lib[1].starts_with("etcd.before-restore-"),
        "{var_lib:?}"
    );
    let etc = node.ls("etc/kubernetes");
    let backup_dir = node.root().join("etc/kubernetes").join(
        etc.iter()
            .find(|n| n.starts_with("manifests.before-restore-"))
            .unwrap(),
    );
    let manifests = node.manifests();
    for expected in [
        "etcd did not become healthy within 3s".to_string(),
        "HOW TO ROLL BACK".to_string(),
        format!(
            "mv {}/etcd.yaml {}/",
            manifests.display(),
            backup_dir.display()
        ),
        format!("&& mv {} {}", aside.display(), data.display()),
        format!(
            "mv {}/kube-apiserver.yaml {}/",
            backup_dir.display(),
            manifests.display()
        ),
    ] {
        assert!(out.stderr.contains(&expected), "stderr lacks {expected:?}");
    }
    // What the run left: etcd.yaml back, the others waiting, the old data aside.
    assert_eq!(node.ls("etc/kubernetes/manifests"), ["etcd.yaml"]);

    // Follow the printed steps: stop etcd (move its manifest out), swap the data back, start all.
    fs::rename(manifests.join("etcd.yaml"), backup_dir.join("etcd.yaml")).unwrap();
    fs::rename(&data, node.root().join("var/lib/etcd.restore-failed")).unwrap();
    fs::rename(&aside, &data).unwrap();
    for (name, _) in MANIFESTS {
        fs::rename(backup_dir.join(name), manifests.join(name)).unwrap();
    }
    fs::remove_dir(&backup_dir).unwrap();
    let _kubelet = node.kubelet();
    node.wait_ready();
    assert!(
        node.registry_keys()
            .contains(&"/registry/configmaps/default/after-backup".to_string()),
        "the rollback did not bring back the data from before the restore"
    );
}

#[test]
fn usage_errors_refusals_and_a_manifest_without_a_needed_flag() {
    let node = Node::new();
    let help = node.restore(&["--help"]);
    assert_eq!(help.code, 0);
    for flag in [
        "--yes",
        "--identity",
        "--no-k8s-bump",
        "--initial-cluster",
        "--manifests-dir",
        "--pki-dir",
        "--backup-dir",
        "--readyz-check",
        "--stop-timeout",
        "--etcd-timeout",
        "--apiserver-timeout",
        "EXIT CODES",
    ] {
        assert!(help.stdout.contains(flag), "--help lacks {flag}");
    }
    assert_eq!(node.restore(&[]).code, 2, "no SNAPSHOT");
    let snap = node.root().join("any.db");
    fs::write(&snap, "x").unwrap();
    let snap = snap.to_str().unwrap();
    assert_eq!(node.restore(&["--bogus", snap]).code, 2);
    assert_eq!(node.restore(&["--stop-timeout", "soon", snap]).code, 2);

    // The manifests must wait outside the manifests dir, in a directory that does not exist yet.
    let inside = node.manifests().join("aside");
    let out = node.restore(&["--backup-dir", inside.to_str().unwrap(), snap]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // Also when the path only leads there: through '..', or relative to the current directory.
    let roundabout = node.root().join("etc/kubernetes/pki/../manifests/aside");
    let out = node.restore(&["--backup-dir", roundabout.to_str().unwrap(), snap]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // cd /etc/kubernetes/manifests && kubeadm-restore --backup-dir aside SNAPSHOT
    let args = ["--backup-dir", "aside", "--no-crictl", snap];
    let mut cmd = Tool::new(script("kubeadm-restore"));
    cmd.current_dir(node.manifests()).args(args);
    let out = node.run_restore(cmd, &args);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let existing = node.root().join("etc/kubernetes/pki");
    let out = node.restore(&["--backup-dir", existing.to_str().unwrap(), snap]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("exists: choose another --backup-dir"));

    // The data dir is the hostPath behind --data-dir's volumeMount, not --data-dir itself.
    let etcd_yaml = node.manifests().join("etcd.yaml");
    let original = fs::read_to_string(&etcd_yaml).unwrap();
    let root = node.root().display().to_string();
    let disk = node.root().join("srv/etcd-disk");
    fs::create_dir_all(&disk).unwrap();
    let old_path = format!("      path: {root}/var/lib/etcd\n");
    assert_eq!(original.matches(&old_path).count(), 1);
    let moved = original.replace(&old_path, &format!("      path: {}\n", disk.display()));
    fs::write(&etcd_yaml, &moved).unwrap();
    let out = node.restore(&[snap]);
    assert_eq!(out.code, 4, "a 1-byte snapshot is not a snapshot");
    assert!(
        out.stdout
            .contains(&format!("data dir (host):      {}\n", disk.display())),
        "{}",
        out.stdout
    );
    fs::write(&etcd_yaml, &original).unwrap();

    // etcd.yaml without --name: a clear error before anything else happens.
    let without_name: String = original
        .lines()
        .filter(|l| !l.contains("- --name="))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&etcd_yaml, &without_name).unwrap();
    let out = node.restore(&["--yes", snap]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("etcd.yaml: no --name in spec.containers[0].command"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_to_string(&etcd_yaml).unwrap(), without_name);
    assert_eq!(node.ls("etc/kubernetes/manifests").len(), 3);
}

#[test]
fn an_etcd_yaml_edited_by_hand_space_separated_flags_quotes_crlf_and_a_sidecar() {
    // etcd's flag parser takes `--name cp1` as two list items as well as `--name=cp1`; the
    // script read the first form as `--name` alone (member name "true", data dir "true").
    // A sidecar listed before etcd was read as etcd (its flags, or "no --name").
    let node = Node::new();
    let snap = node.root().join("any.db");
    fs::write(&snap, "x").unwrap();
    let snap = snap.to_str().unwrap();
    let etcd_yaml = node.manifests().join("etcd.yaml");
    let original = fs::read_to_string(&etcd_yaml).unwrap();
    let root = node.root().display().to_string();
    let sidecar = "  containers:\n  - name: log-shipper\n    command:\n    - sh\n    - -c\n    \
                   - sleep infinity --name=shipper\n    args:\n    - --data-dir=/logs\n    \
                   volumeMounts:\n    - mountPath: /logs\n      name: logs\n  - command:\n    - etcd\n";
    let edited = original
        .replace("  containers:\n  - command:\n    - etcd\n", sidecar)
        .replace("    - --name=cp1\n", "    - --name\n    - cp1\n")
        .replace(
            &format!("    - --data-dir={root}/var/lib/etcd\n"),
            &format!("    - \"--data-dir\"\n    - '{root}/var/lib/etcd'\n"),
        )
        .replace(
            "    - --initial-advertise-peer-urls=",
            "    - \"--initial-advertise-peer-urls=",
        )
        .replace(
            "    - --initial-cluster=cp1=https://127.0.0.1:",
            "    - --initial-cluster\n    - cp1=https://127.0.0.1:",
        )
        .replace("\n", "\r\n");
    let edited = edited.replacen(
        &format!(":{}\r\n    - --initial-cluster", node.peer_port),
        &format!(":{}\"\r\n    - --initial-cluster", node.peer_port),
        1,
    );
    assert_ne!(edited, original);
    fs::write(&etcd_yaml, &edited).unwrap();

    // kubeadm-restore SNAPSHOT (dry run; the 1-byte snapshot stops it after the facts)
    let out = node.restore(&[snap]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let peer = format!("https://127.0.0.1:{}", node.peer_port);
    for expected in [
        "(container etcd)\n".to_string(),
        "member name:          cp1\n".to_string(),
        format!("data dir (host):      {root}/var/lib/etcd (missing"),
        format!("peer URLs:            {peer}\n"),
        format!("initial cluster:      cp1={peer}\n"),
    ] {
        assert!(out.stdout.contains(&expected), "lacks {expected:?}");
    }
    assert_eq!(fs::read_to_string(&etcd_yaml).unwrap(), edited);
}

/// The commands of the "HOW TO ROLL BACK" text, in order, as an operator would paste them
/// (the `etcd-health --wait` line left out: nothing runs the pods here).
fn rollback_commands(text: &str) -> Vec<String> {
    let start = text.find("HOW TO ROLL BACK").expect("no rollback text");
    let mut cmds = Vec::new();
    for line in text[start..].lines().skip(1) {
        let trimmed = line.trim_start();
        let cmd = match trimmed.split_once(".  ").or(trimmed.split_once(":  ")) {
            Some((head, cmd)) if head.starts_with(|c: char| c.is_ascii_digit()) => cmd,
            _ => trimmed,
        };
        let cmd = cmd.rsplit_once(":  ").map_or(cmd, |(_, c)| c);
        if ["mv ", "mkdir ", "rmdir ", "rm "]
            .iter()
            .any(|p| cmd.starts_with(p))
        {
            cmds.push(cmd.to_string());
        }
    }
    cmds
}

#[test]
fn the_printed_rollback_restores_the_node_when_paths_have_spaces() {
    // An operator pastes the rollback steps into a shell; a path with a space must survive that.
    // Two failures: etcd does not come back (exit 3), and the second rename of the swap fails
    // (exit 6: the old dir is aside, the restored one not in place).
    let node = Node::new();
    let cluster = support::Cluster::builder(Version::V3_5).start();
    let snap = node.root().join("snap.db");
    save_snapshot(&cluster, &snap);
    drop(cluster);
    fs::create_dir_all(node.data_dir().join("member")).unwrap();
    fs::write(node.data_dir().join("member/old-data"), "before").unwrap();
    let manifests_before = node.manifest_bytes();
    let backup_dir = node.root().join("etc/kubernetes/manifests before restore");
    let fakebin = node.root().join("fakebin");
    fs::create_dir(&fakebin).unwrap();

    for (failing_swap, code) in [(false, 3), (true, 6)] {
        if failing_swap {
            // mv RESTORED DATA_DIR fails, as on an I/O error.
            let mv = fakebin.join("mv");
            fs::write(
                &mv,
                "#!/bin/sh\ncase \"$1\" in *.restored-*) echo \"mv: $1: Input/output error\" >&2; \
                 exit 1 ;; esac\nexec /bin/mv \"$@\"\n",
            )
            .unwrap();
            program("chmod").arg("+x").arg(&mv).run().succeeds();
            std::thread::sleep(Duration::from_millis(1100));
        }
        // No kubelet: etcd.yaml goes back but etcd never starts, so the run times out (exit 3).
        let out = node.restore(&[
            "--yes",
            "--etcd-timeout",
            "1s",
            "--backup-dir",
            backup_dir.to_str().unwrap(),
            snap.to_str().unwrap(),
        ]);
        assert_eq!(out.code, code, "{}", out.stderr);
        let cmds = rollback_commands(&out.stderr);
        assert!(cmds.len() >= 5, "{cmds:?}");
        for cmd in &cmds {
            let done = program("sh").arg("-c").arg(cmd).run();
            assert!(done.success(), "{cmd}: {}", done.stderr);
        }
        assert_eq!(node.manifest_bytes(), manifests_before);
        assert!(!backup_dir.exists());
        assert_eq!(
            fs::read_to_string(node.data_dir().join("member/old-data")).unwrap(),
            "before"
        );
        let var_lib = node.ls("var/lib");
        assert!(
            var_lib.iter().all(|n| !n.contains(".restored-")),
            "{var_lib:?}"
        );
    }
}

#[test]
fn a_data_dir_that_is_a_symlink_to_another_disk_is_restored_on_that_disk() {
    // /var/lib/etcd -> /data/etcd (a faster disk): the restore must land on /data, not replace
    // the symlink with a directory on the root file system.
    let node = Node::new();
    let cluster = support::Cluster::builder(Version::V3_5).start();
    let snap = node.root().join("snap.db");
    save_snapshot(&cluster, &snap);
    drop(cluster);
    let disk = node.root().join("data");
    fs::create_dir_all(disk.join("etcd/member")).unwrap();
    fs::write(disk.join("etcd/member/old-data"), "before").unwrap();
    std::os::unix::fs::symlink(disk.join("etcd"), node.data_dir()).unwrap();

    // kubeadm-restore --yes SNAPSHOT (no kubelet: it times out waiting for etcd, exit 3)
    let out = node.restore(&["--yes", "--etcd-timeout", "1s", snap.to_str().unwrap()]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "data dir (host):      {} (symlink to {})",
            node.data_dir().display(),
            disk.join("etcd").display()
        )),
        "{}",
        out.stdout
    );
    assert!(fs::symlink_metadata(node.data_dir())
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(
        disk.join("etcd/member/snap/db").is_file(),
        "not restored on the disk"
    );
    let on_disk = node.ls("data");
    assert_eq!(on_disk.len(), 2, "{on_disk:?}");
    assert!(
        on_disk[1].starts_with("etcd.before-restore-"),
        "{on_disk:?}"
    );
    assert_eq!(
        fs::read_to_string(disk.join(&on_disk[1]).join("member/old-data")).unwrap(),
        "before"
    );
    assert_eq!(node.ls("var/lib"), ["etcd"]);
}

#[test]
fn a_multi_member_snapshot_needs_initial_cluster() {
    let node = Node::new();
    let cluster = support::Cluster::builder(Version::V3_5).members(3).start();
    let snap = node.root().join("three.db");
    save_snapshot(&cluster, &snap);
    drop(cluster);
    let snap = snap.to_str().unwrap();

    let out = node.restore(&["--yes", snap]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("the snapshot comes from a 3-member cluster"),
        "{}",
        out.stderr
    );
    assert_eq!(node.ls("etc/kubernetes/manifests").len(), 3);

    // Making this node a single-member cluster on purpose: the plan says so.
    let single = format!("cp1=https://127.0.0.1:{}", node.peer_port);
    let dry = node.restore(&["--initial-cluster", &single, snap]);
    assert_eq!(dry.code, 0);
    assert!(dry.stdout.contains(&format!("--initial-cluster {single}")));
}
