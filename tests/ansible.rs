//! The Ansible playbooks of `examples/ansible` against three "hosts" on this machine.
//!
//! The inventory has three hosts with `ansible_connection: local`, each one member of a real
//! etcd 3.5 cluster with its own free loopback ports and directories (data dir, WAL dir for one,
//! pid and log files). etcd is started and stopped through `examples/ansible/test-support/
//! etcd-service` (setsid, pid file), which the inventory plugs into the playbooks as
//! `etcd_start_command`/`etcd_stop_command` in place of systemd:
//!
//! ```text
//! ansible-lint --offline; ansible-playbook --syntax-check backup.yml restore-cluster.yml install.yml
//! ansible-playbook -i inventory.json backup.yml                # → one verified backup, pruned
//! ansible-playbook -i inventory.json restore-cluster.yml -e etcd_restore_snapshot=BACKUP ...
//! etcd-health --cluster; etcdctl get "" --prefix -w json       # on every member: the backup's data
//! ```
//!
//! - `playbooks_pass_ansible_lint_and_syntax_check`: ansible-lint, profile production;
//! - `backup_from_the_first_healthy_member_with_retention_then_restore_from_a_shared_path`: node1
//!   down, so node2 backs up; retention keeps 2 of this cluster's backups; restore in place,
//!   the API servers as kubeadm static pods (manifests moved out and back);
//! - `encrypted_backup_fetched_to_the_controller_then_restore_with_the_k8s_bump`: TLS, age,
//!   identity staged to the members, `--k8s`, `--owner`;
//! - `restore_refuses_a_corrupt_snapshot_before_stopping_anything`;
//! - `restore_refuses_a_data_dir_that_is_a_mount_point_before_stopping_anything`: a non-empty
//!   tmpfs on one member's data dir (in `unshare -rm`): the play fails before any stop;
//! - `backup_fails_when_no_member_is_healthy`;
//! - `restore_stages_in_a_fresh_private_directory_never_in_a_planted_one`: another user's
//!   directory at the old fixed staging path is neither used nor removed; the staging is a fresh
//!   0700 directory, removed afterwards; the old variable is refused;
//! - `a_vaulted_password_reaches_etcd_as_a_file_never_on_a_command_line_or_in_output`: auth-enabled
//!   etcd, the password from Ansible Vault, every process's command line scanned while the tools
//!   run, backup and restore.
//! - `install_from_the_release_tarball_then_back_up_with_the_installed_tools`: `install.yml` (and
//!   backup.yml's first step) install the tools from a tarball laid out as `scripts/dist` makes
//!   it, checked against its SHA-256, idempotently; a wrong SHA-256 installs nothing. The other
//!   tests use the build's binaries in place (`etcd_snap_install` empty: "already installed").
//!
//! After a restore every member must serve exactly the data at backup time, as one new healthy
//! cluster with one leader and the inventory's names, started by the playbook, the old data dirs
//! kept, and the stops and starts in order (API servers, etcd, etcd, API servers).
//!
//! Ansible comes from `scripts/setup` (`.deps/ansible`); when it is missing the tests fail, they
//! never skip. Every etcd started here is killed by its pid file when the test ends.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_snap_e2e::{bin_dir, example, path_with_tools, support, tool};
use serde_json::{json, Value};
use support::{etcd_bin, free_port, repo_root, run, CmdOutput, TlsFiles, Version};

/// The inventory names, in order: host, etcd member name.
const HOSTS: [(&str, &str); 3] = [("node1", "etcd1"), ("node2", "etcd2"), ("node3", "etcd3")];

/// `<repo>/.deps/ansible/bin/<tool>`; panics (CI or not) when `scripts/setup` has not installed it.
fn ansible_bin(tool: &str) -> PathBuf {
    let p = repo_root().join(".deps/ansible/bin").join(tool);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup (it installs ansible-core and ansible-lint into .deps/ansible)",
        p.display()
    );
    p
}

/// `record EVENTS WHAT [COMMAND...]`: appends WHAT to EVENTS, then runs COMMAND (no shell).
const RECORD: &str = "#!/bin/sh\nset -e\nevents=$1 what=$2\nshift 2\necho \"$what\" >>\"$events\"\n[ $# -eq 0 ] || exec \"$@\"\n";

/// One member: its inventory host, etcd name, ports and files.
struct Member {
    host: &'static str,
    name: &'static str,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    wal_dir: Option<PathBuf>,
    env_file: PathBuf,
    pid_file: PathBuf,
    log_file: PathBuf,
}

/// Three "hosts" on this machine and the inventory that describes them. Dropping it kills every
/// etcd by its pid file and removes the directory.
struct Hosts {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    tls: Option<TlsFiles>,
    inventory: PathBuf,
    /// The API server is stopped and started by recorded commands (not overridden).
    apiserver_recorded: bool,
}

impl Hosts {
    /// Lays out three members (the third with its WAL in a separate dir), writes each member's
    /// environment file and the inventory; starts nothing. `tls`: mutual TLS on the client URLs.
    fn new(tls: bool, extra_vars: Value) -> Hosts {
        let dir = tempfile::Builder::new()
            .prefix("etcd-snap-ansible-")
            .tempdir()
            .unwrap();
        let tls = tls.then(|| TlsFiles::generate(&dir.path().join("pki")));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let members: Vec<Member> = HOSTS
            .iter()
            .enumerate()
            .map(|(i, &(host, name))| {
                let root = dir.path().join(host);
                Member {
                    host,
                    name,
                    client_url: format!("{scheme}://127.0.0.1:{}", free_port()),
                    peer_url: format!("http://127.0.0.1:{}", free_port()),
                    data_dir: root.join("var/lib/etcd"),
                    wal_dir: (i == 2).then(|| root.join("var/lib/etcd-wal")),
                    env_file: root.join("etc/default/etcd"),
                    pid_file: root.join("run/etcd.pid"),
                    log_file: root.join("var/log/etcd.log"),
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let service = example("ansible/test-support/etcd-service");
        // Every stop and start goes through `record EVENTS WHAT [COMMAND...]`, which appends
        // "<host>:<what>" to one file and runs the command: the order the playbook did things in.
        let record = dir.path().join("record");
        std::fs::write(&record, RECORD).unwrap();
        std::fs::set_permissions(&record, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let events = dir.path().join("events");
        let recorded = |host: &str, what: &str, command: &str| {
            format!(
                "{} {} {host}:{what} {command}",
                record.display(),
                events.display()
            )
        };
        let mut hostvars = serde_json::Map::new();
        for m in &members {
            let mut env = vec![
                format!("SERVICE_ETCD={}", etcd_bin(Version::V3_5, "etcd").display()),
                format!("SERVICE_PIDFILE={}", m.pid_file.display()),
                format!("SERVICE_LOG={}", m.log_file.display()),
                format!("ETCD_NAME={}", m.name),
                format!("ETCD_DATA_DIR={}", m.data_dir.display()),
                format!("ETCD_LISTEN_CLIENT_URLS={}", m.client_url),
                format!("ETCD_ADVERTISE_CLIENT_URLS={}", m.client_url),
                format!("ETCD_LISTEN_PEER_URLS={}", m.peer_url),
                format!("ETCD_INITIAL_ADVERTISE_PEER_URLS={}", m.peer_url),
                format!("ETCD_INITIAL_CLUSTER={initial_cluster}"),
                "ETCD_INITIAL_CLUSTER_TOKEN=etcd-snap-ansible-original".to_string(),
                "ETCD_INITIAL_CLUSTER_STATE=new".to_string(),
                "ETCD_HEARTBEAT_INTERVAL=100".to_string(),
                "ETCD_ELECTION_TIMEOUT=1000".to_string(),
                "ETCD_LOGGER=zap".to_string(),
            ];
            if let Some(wal) = &m.wal_dir {
                env.push(format!("ETCD_WAL_DIR={}", wal.display()));
            }
            if let Some(t) = &tls {
                env.push("ETCD_CLIENT_CERT_AUTH=true".to_string());
                env.push(format!("ETCD_TRUSTED_CA_FILE={}", t.ca.display()));
                env.push(format!("ETCD_CERT_FILE={}", t.server_cert.display()));
                env.push(format!("ETCD_KEY_FILE={}", t.server_key.display()));
            }
            std::fs::create_dir_all(m.env_file.parent().unwrap()).unwrap();
            std::fs::create_dir_all(staging_parent(dir.path(), m.host)).unwrap();
            std::fs::write(&m.env_file, env.join("\n") + "\n").unwrap();
            let mut vars = json!({
                "etcd_name": m.name,
                "etcd_peer_url": m.peer_url,
                "etcd_client_url": m.client_url,
                "etcd_data_dir": m.data_dir,
                "etcd_stop_command": recorded(m.host, "etcd-stop",
                    &format!("{} stop {}", service.display(), m.env_file.display())),
                "etcd_start_command": recorded(m.host, "etcd-start",
                    &format!("{} start {}", service.display(), m.env_file.display())),
                "etcd_apiserver_stop_command": recorded(m.host, "apiserver-stop", ""),
                "etcd_apiserver_start_command": recorded(m.host, "apiserver-start", ""),
                "etcd_restore_staging_parent": staging_parent(dir.path(), m.host),
            });
            if let Some(wal) = &m.wal_dir {
                vars["etcd_wal_dir"] = json!(wal);
            }
            hostvars.insert(m.host.to_string(), vars);
        }
        let mut group_vars = json!({
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "etcd_become": false,
            "etcd_service_control": "command",
            "etcd_apiserver_control": "command",
            "etcd_apiserver_port": 0,
            "etcd_snap_bin_dir": bin_dir(),
            "etcd_restore_health_wait": "60s",
        });
        if let Some(t) = &tls {
            group_vars["etcd_client_env"] = json!({
                "ETCDCTL_CACERT": t.ca,
                "ETCDCTL_CERT": t.client_cert,
                "ETCDCTL_KEY": t.client_key,
            });
        }
        let apiserver_recorded = extra_vars.get("etcd_apiserver_control").is_none();
        for (k, v) in extra_vars.as_object().unwrap() {
            group_vars[k] = v.clone();
        }
        let inventory = dir.path().join("inventory.json");
        let doc = json!({ "etcd": { "hosts": hostvars, "vars": group_vars } });
        std::fs::write(&inventory, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        Hosts {
            dir,
            members,
            tls,
            inventory,
            apiserver_recorded,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What the playbooks stopped and started so far, in order: `node1:apiserver-stop`, ...
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `etcd-service start` on every member (what the inventory's etcd_start_command runs),
    /// then waits until the cluster is healthy.
    /// [`new`](Self::new), then `etcd-service start` on every member (what the inventory's
    /// etcd_start_command runs) and a wait until the cluster is healthy. Lays out the hosts
    /// again, once, when a port chosen was taken meanwhile by another process.
    fn started(tls: bool, extra_vars: Value) -> Hosts {
        for attempt in 1..=2 {
            let hosts = Hosts::new(tls, extra_vars.clone());
            for m in &hosts.members {
                run(Command::new(example("ansible/test-support/etcd-service"))
                    .args(["start", m.env_file.to_str().unwrap()]));
            }
            let out = hosts.health(&["--cluster", "--wait=30s"]);
            if out.success() {
                return hosts;
            }
            let logs = hosts.logs();
            if attempt == 1 && logs.contains("address already in use") {
                eprintln!("a port was taken: laying out the hosts again");
                continue;
            }
            panic!(
                "the cluster did not start:\n{}{}\n{logs}",
                out.stdout, out.stderr
            );
        }
        unreachable!()
    }

    /// The tail of every member's etcd log.
    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- {} log (tail) ---\n{}\n",
                    m.name,
                    tail(
                        &std::fs::read_to_string(&m.log_file).unwrap_or_default(),
                        20
                    )
                )
            })
            .collect()
    }

    fn service(&self, action: &str, m: &Member) {
        let out = run(Command::new(example("ansible/test-support/etcd-service"))
            .args([action, m.env_file.to_str().unwrap()]));
        assert!(
            out.success(),
            "etcd-service {action} {} failed: {}{}\n--- log ---\n{}",
            m.name,
            out.stdout,
            out.stderr,
            std::fs::read_to_string(&m.log_file).unwrap_or_default()
        );
    }

    /// The pid in member `m`'s pid file, when that process is running.
    fn pid(&self, m: &Member) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&m.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client TLS files as `ETCDCTL_*` variables (what the inventory's etcd_client_env says).
    fn client_env(&self, cmd: &mut Command) {
        if let Some(t) = &self.tls {
            cmd.env("ETCDCTL_CACERT", &t.ca)
                .env("ETCDCTL_CERT", &t.client_cert)
                .env("ETCDCTL_KEY", &t.client_key);
        }
    }

    /// `etcd-health --endpoints <all> ARGS`.
    fn health(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new(tool("etcd-health"));
        cmd.arg(format!("--endpoints={}", self.endpoints()))
            .args(args)
            .stdin(Stdio::null());
        self.client_env(&mut cmd);
        run(&mut cmd)
    }

    #[track_caller]
    fn health_ok(&self, args: &[&str]) -> String {
        let out = self.health(args);
        assert!(
            out.success(),
            "etcd-health {args:?} failed ({}):\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// etcd 3.5's `etcdctl --endpoints <client URLs of members> ARGS`; panics when it fails.
    #[track_caller]
    fn etcdctl(&self, members: &[usize], args: &[&str]) -> String {
        let eps: Vec<&str> = members
            .iter()
            .map(|&i| self.members[i].client_url.as_str())
            .collect();
        let mut cmd = Command::new(etcd_bin(Version::V3_5, "etcdctl"));
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", eps.join(",")))
            .args(args)
            .stdin(Stdio::null());
        self.client_env(&mut cmd);
        support::run_ok(&mut cmd)
    }

    /// Every key of member `i` as `etcdctl get "" --prefix -w json` shows it (`kvs`: key, value,
    /// create and mod revision, version, lease), read from that member alone.
    fn dump(&self, i: usize) -> Vec<Value> {
        let out = self.etcdctl(
            &[i],
            &["get", "", "--prefix", "--consistency=s", "-w", "json"],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        v["kvs"].as_array().cloned().unwrap_or_default()
    }

    /// `etcdctl member list -w json`: (cluster ID, sorted member names).
    fn members_json(&self) -> (u64, Vec<String>) {
        let v: Value =
            serde_json::from_str(&self.etcdctl(&[0, 1, 2], &["member", "list", "-w", "json"]))
                .unwrap();
        let mut names: Vec<String> = v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        (v["header"]["cluster_id"].as_u64().unwrap(), names)
    }

    /// `ansible-playbook -i inventory.json examples/ansible/<playbook> ARGS`, with the workspace
    /// binaries and etcd 3.5 first in PATH.
    fn playbook(&self, playbook: &str, args: &[&str]) -> CmdOutput {
        let started = Instant::now();
        let out = run(ansible_command("ansible-playbook", self.path())
            .arg("-i")
            .arg(&self.inventory)
            .arg(example(&format!("ansible/{playbook}")))
            .args(args));
        eprintln!(
            "ansible-playbook {playbook} {args:?}: {} in {:.1?}\n{}",
            out.status,
            started.elapsed(),
            out.stdout
        );
        out
    }

    #[track_caller]
    fn playbook_ok(&self, playbook: &str, args: &[&str]) -> String {
        let out = self.playbook(playbook, args);
        assert!(
            out.success(),
            "ansible-playbook {playbook} failed ({}):\n{}\n{}\n{}",
            out.status,
            out.stdout,
            out.stderr,
            self.logs()
        );
        out.stdout
    }

    /// Old data (and WAL) dirs kept by the restore: `<dir>.bak-<time>` beside each.
    fn moved_aside(&self, dir: &Path) -> Vec<PathBuf> {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&format!("{name}.bak-")))
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for m in &self.members {
            if let Some(pid) = self.pid(m) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Whether `pid` runs (exists and is not a zombie waiting for init to reap it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| !st.trim_start().starts_with('Z'))
    })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An Ansible tool from `.deps/ansible` run in `cwd`, with a UTF-8 locale (ansible-core refuses
/// to run without one), no colours, its temporary files under `cwd`, and the workspace binaries
/// and etcd 3.5 first in PATH.
fn ansible_command(tool: &str, cwd: &Path) -> Command {
    let mut cmd = Command::new(ansible_bin(tool));
    cmd.current_dir(cwd)
        .env("LC_ALL", "C.UTF-8")
        .env("LANG", "C.UTF-8")
        .env("PATH", path_with_tools())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("NO_COLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", cwd.join(".ansible/tmp"))
        .env("ANSIBLE_REMOTE_TEMP", cwd.join(".ansible/tmp"))
        .env("ANSIBLE_HOME", cwd.join(".ansible"))
        .stdin(Stdio::null());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("ETCDCTL_") || (k.starts_with("ANSIBLE_") && k != "ANSIBLE_HOME") {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// Loads what a small Kubernetes control plane keeps in etcd: /registry objects, a node lease
/// key attached to a real lease, a key updated twice and one deleted. Returns the lease ID (hex).
fn load_data(hosts: &Hosts) -> String {
    let granted = hosts.etcdctl(&[0], &["lease", "grant", "600"]);
    // "lease 694d9b2f1f1cc810 granted with TTL(600s)"
    let lease = granted.split_whitespace().nth(1).unwrap().to_string();
    for i in 0..10 {
        hosts.etcdctl(
            &[i % 3],
            &[
                "put",
                &format!("/registry/configmaps/kube-system/cm-{i}"),
                &format!("{{\"kind\":\"ConfigMap\",\"data\":{{\"n\":\"{i}\"}}}}"),
            ],
        );
    }
    hosts.etcdctl(&[1], &["put", "/registry/pods/default/web-0", "pod v1"]);
    hosts.etcdctl(&[2], &["put", "/registry/pods/default/web-0", "pod v2"]);
    hosts.etcdctl(&[0], &["put", "/registry/pods/default/gone", "x"]);
    hosts.etcdctl(&[0], &["del", "/registry/pods/default/gone"]);
    hosts.etcdctl(
        &[0],
        &[
            "put",
            &format!("--lease={lease}"),
            "/registry/leases/kube-node-lease/node1",
            "renewed",
        ],
    );
    hosts.etcdctl(&[0], &["put", "/app/config", "a=1 b=2"]);
    lease
}

/// Writes after the backup: none of it may survive the restore.
fn write_after_backup(hosts: &Hosts) {
    hosts.etcdctl(&[0], &["put", "/after-backup/new", "1"]);
    hosts.etcdctl(&[1], &["put", "/registry/pods/default/web-0", "pod v3"]);
    hosts.etcdctl(&[2], &["del", "/app/config"]);
}

#[test]
fn playbooks_pass_ansible_lint_and_syntax_check() {
    let dir = tempfile::tempdir().unwrap();
    let playbooks = ["backup.yml", "restore-cluster.yml", "install.yml"];
    for playbook in playbooks {
        let out = run(ansible_command("ansible-playbook", dir.path())
            .arg("--syntax-check")
            .arg("-i")
            .arg(example("ansible/inventory.example.yml"))
            .arg(example(&format!("ansible/{playbook}"))));
        assert!(
            out.success(),
            "ansible-playbook --syntax-check {playbook}:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    // examples/ansible/.ansible-lint: profile production, offline, one rule skipped (explained there).
    let out = run(ansible_command("ansible-lint", &example("ansible"))
        .env("HOME", dir.path())
        .env("ANSIBLE_HOME", dir.path().join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join(".ansible/tmp"))
        .args([
            "--offline",
            "--profile",
            "production",
            "-c",
            ".ansible-lint",
        ]));
    assert!(
        out.success(),
        "ansible-lint --profile production failed ({}):\n{}{}",
        out.status,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Profile 'production' was required, and it passed"),
        "{}",
        out.stderr
    );
}

#[test]
fn restore_refuses_a_corrupt_snapshot_before_stopping_anything() {
    let (hosts, snap, before, pids) = started_and_saved();
    // One byte flipped in the middle of the snapshot: its SHA-256 trailer no longer matches.
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&snap, bytes).unwrap();

    let out = hosts.playbook(
        "restore-cluster.yml",
        &["-e", &format!("etcd_restore_snapshot={}", snap.display())],
    );
    assert!(!out.success(), "the playbook accepted a corrupt snapshot");
    assert!(
        out.stdout.contains("Verify the snapshot on the member")
            && out.stdout.contains("\"rc\": 4"),
        "expected etcd-snap-status to fail with exit 4:\n{}",
        out.stdout
    );
    assert!(!out
        .stdout
        .contains("TASK [etcd_snap : Stop etcd (command)]"));
    assert_untouched(&hosts, &pids, &before);
}

/// The cluster a refused restore runs against: started, `/app/config` written, and a raw
/// snapshot of it saved to `snap.db` in the hosts' directory; with what must not change (member
/// 0's data and the etcd pids, for [`assert_untouched`]).
fn started_and_saved() -> (Hosts, PathBuf, Vec<Value>, Vec<Option<u32>>) {
    let hosts = Hosts::started(false, json!({}));
    hosts.etcdctl(&[0], &["put", "/app/config", "kept"]);
    let before = hosts.dump(0);
    let pids: Vec<Option<u32>> = hosts.members.iter().map(|m| hosts.pid(m)).collect();
    let snap = hosts.path().join("snap.db");
    support::run_ok(
        Command::new(tool("etcd-snap-save"))
            .arg(format!("--endpoints={}", hosts.members[0].client_url))
            .arg(&snap),
    );
    (hosts, snap, before, pids)
}

/// After a restore the playbook refused: nothing was stopped or touched (no stop events, the
/// same etcd processes `pids`, a healthy cluster, every member still holding `before`, nothing
/// moved aside, no staging left).
#[track_caller]
fn assert_untouched(hosts: &Hosts, pids: &[Option<u32>], before: &[Value]) {
    assert_eq!(
        hosts.events(),
        Vec::<String>::new(),
        "something was stopped"
    );
    let after: Vec<Option<u32>> = hosts.members.iter().map(|m| hosts.pid(m)).collect();
    assert_eq!(pids, after, "etcd was restarted");
    hosts.health_ok(&["--cluster"]);
    for i in 0..3 {
        assert_eq!(hosts.dump(i), before, "member {i} changed");
        assert!(hosts.moved_aside(&hosts.members[i].data_dir).is_empty());
    }
    for m in &hosts.members {
        assert_eq!(
            file_names(&staging_parent(hosts.path(), m.host)),
            Vec::<String>::new(),
            "staging left on {}",
            m.host
        );
    }
}

/// What every member of the restored cluster must show: healthy, one leader, the inventory's
/// names, a new cluster ID, exactly the data of `expected`, started by the playbook (new pids),
/// and the old data dirs kept.
fn assert_restored(hosts: &Hosts, expected: &[Value], old_cluster_id: u64, old_pids: &[u32]) {
    let health: Value =
        serde_json::from_str(&hosts.health_ok(&["--cluster", "-w", "json"])).unwrap();
    let health = health.as_array().unwrap();
    assert_eq!(health.len(), 3, "{health:?}");
    assert!(
        health.iter().all(|e| e["health"] == json!(true)),
        "{health:?}"
    );
    let leaders = health
        .iter()
        .filter(|e| e["isLeader"] == json!(true))
        .count();
    assert_eq!(leaders, 1, "{health:?}");

    let (cluster_id, names) = hosts.members_json();
    assert_eq!(names, ["etcd1", "etcd2", "etcd3"]);
    assert_ne!(
        cluster_id, old_cluster_id,
        "the cluster was not restored (same cluster ID)"
    );

    for (i, m) in hosts.members.iter().enumerate() {
        assert_eq!(
            hosts.dump(i),
            expected,
            "{}: not the data of the snapshot",
            m.name
        );
        let pid = hosts.pid(m).expect("etcd runs with a pid file");
        assert!(!old_pids.contains(&pid), "{} was not restarted", m.name);
        let kept = hosts.moved_aside(&m.data_dir);
        assert_eq!(
            kept.len(),
            1,
            "{}: old data dir kept once: {kept:?}",
            m.name
        );
        if let Some(wal) = &m.wal_dir {
            let kept_wal = hosts.moved_aside(wal);
            assert_eq!(
                kept_wal.len(),
                1,
                "{}: old WAL dir kept: {kept_wal:?}",
                m.name
            );
            assert!(wal.join("0000000000000000-0000000000000000.wal").is_file());
        } else {
            assert!(kept[0].join("member/wal").is_dir(), "{kept:?}");
        }
    }
    // On every host: API server stopped, etcd stopped, etcd started, API server started; and
    // everything stopped everywhere before anything started again.
    let events = hosts.events();
    let phase = |e: &String| {
        [
            "apiserver-stop",
            "etcd-stop",
            "etcd-start",
            "apiserver-start",
        ]
        .iter()
        .position(|p| e.ends_with(&format!(":{p}")))
        .unwrap()
    };
    let phases: Vec<usize> = events.iter().map(phase).collect();
    assert!(phases.is_sorted(), "out of order: {events:?}");
    for m in &hosts.members {
        let mine = events
            .iter()
            .filter(|e| e.starts_with(&format!("{}:", m.host)));
        let per_host = if hosts.apiserver_recorded { 4 } else { 2 };
        assert_eq!(mine.count(), per_host, "{events:?}");
    }
    // The playbook removed what it staged.
    for m in &hosts.members {
        assert_eq!(
            file_names(&staging_parent(hosts.path(), m.host)),
            Vec::<String>::new(),
            "{}: staging left behind",
            m.host
        );
    }
}

/// A member's `etcd_restore_staging_parent` (its `/var/tmp`).
fn staging_parent(root: &Path, host: &str) -> PathBuf {
    root.join(host).join("var/tmp")
}

/// `etcdctl member list` cluster ID and the pids of the running members.
fn cluster_id_and_pids(hosts: &Hosts) -> (u64, Vec<u32>) {
    let pids = hosts
        .members
        .iter()
        .map(|m| hosts.pid(m).unwrap())
        .collect();
    (hosts.members_json().0, pids)
}

/// The header revision of member 0.
fn revision(hosts: &Hosts) -> i64 {
    let v: Value = serde_json::from_str(&hosts.etcdctl(&[0], &["get", "x", "-w", "json"])).unwrap();
    v["header"]["revision"].as_i64().unwrap()
}

/// `etcd-snap-status -w json [ARGS] FILE`.
fn snapshot_status(file: &Path, args: &[&str]) -> Value {
    let out = support::run_ok(
        Command::new(tool("etcd-snap-status"))
            .args(["-w", "json"])
            .args(args)
            .arg(file),
    );
    serde_json::from_str(&out).unwrap()
}

/// The file names in `dir`, sorted.
/// The backups in `dir` (without the `NAME.json` metadata etcd-backup writes beside each), sorted.
fn backup_names(dir: &Path) -> Vec<String> {
    file_names(dir)
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn backup_from_the_first_healthy_member_with_retention_then_restore_from_a_shared_path() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sbin")).unwrap();
    let backups = root.path().join("backups");
    // The API servers are kubeadm static pods: their manifests are moved out and back.
    let manifest = |host: &str| root.path().join(host).join("manifests/kube-apiserver.yaml");
    for (host, _) in HOSTS {
        std::fs::create_dir_all(manifest(host).parent().unwrap()).unwrap();
        std::fs::write(manifest(host), format!("kind: Pod # {host}\n")).unwrap();
    }
    let hosts = Hosts::started(
        false,
        json!({
            "etcd_backup_dir": backups,
            "etcd_backup_script": root.path().join("sbin/etcd-backup"),
            "etcd_backup_keep": 2,
            "etcd_apiserver_control": "static-pod",
            "etcd_manifest_dir": root.path().join("{{ inventory_hostname }}/manifests"),
            "etcd_manifest_holding_dir": root.path().join("{{ inventory_hostname }}/stopped"),
        }),
    );
    let lease = load_data(&hosts);
    let at_backup = hosts.dump(0);
    let revision_at_backup = revision(&hosts);
    let health: Value = serde_json::from_str(&hosts.health_ok(&["-w", "json"])).unwrap();
    let cluster_id = health[0]["clusterId"].as_str().unwrap().to_string();

    // Older backups of this cluster, one of another cluster, and an unrelated file.
    std::fs::create_dir_all(&backups).unwrap();
    let old = [
        format!("etcd-{cluster_id}-20200101T000000Z-r5.db.zst"),
        format!("etcd-{cluster_id}-20210101T000000Z-r9.db.zst"),
    ];
    let other = "etcd-1234abcd-20200101T000000Z-r1.db.zst";
    for f in old.iter().map(String::as_str).chain([other, "README"]) {
        std::fs::write(backups.join(f), "old").unwrap();
    }

    // node1 is down: the backup comes from node2, the first healthy member.
    hosts.service("stop", &hosts.members[0]);
    let stdout = hosts.playbook_ok("backup.yml", &[]);
    assert!(
        stdout.contains("Backing up from node2 (etcd2, "),
        "{stdout}"
    );

    // One new verified backup; --keep 2 pruned the oldest of this cluster only.
    let names = file_names(&backups);
    let new: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.starts_with(&format!("etcd-{cluster_id}-"))
                && n.ends_with(&format!("-r{revision_at_backup}.db.zst"))
        })
        .collect();
    assert_eq!(new.len(), 1, "{names:?}");
    let backup = backups.join(new[0]);
    let mut expected = vec![
        old[1].clone(),
        new[0].clone(),
        // its metadata (etcd-backup writes NAME.json beside every backup)
        format!("{}.json", new[0]),
        other.to_string(),
        "README".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let status = snapshot_status(&backup, &[]);
    assert_eq!(status["revision"], json!(revision_at_backup), "{status}");
    assert_eq!(status["sha256Verified"], json!(true), "{status}");
    assert!(stdout.contains(&format!("Backup stored and verified: {}", backup.display())));

    hosts.service("start", &hosts.members[0]);
    hosts.health_ok(&["--cluster", "--wait=30s"]);
    write_after_backup(&hosts);
    let (old_cluster_id, old_pids) = cluster_id_and_pids(&hosts);

    // The backup is on a path every member sees (a shared mount): nothing is copied.
    hosts.playbook_ok(
        "restore-cluster.yml",
        &[
            "-e",
            &format!("etcd_restore_snapshot={}", backup.display()),
            "-e",
            "etcd_restore_snapshot_on_hosts=true",
        ],
    );
    assert_restored(&hosts, &at_backup, old_cluster_id, &old_pids);
    for (host, _) in HOSTS {
        let back = std::fs::read_to_string(manifest(host)).unwrap();
        assert_eq!(back, format!("kind: Pod # {host}\n"));
        assert_eq!(
            file_names(&root.path().join(host).join("stopped")),
            Vec::<String>::new()
        );
    }
    // No revision bump without etcd_restore_k8s.
    assert_eq!(revision(&hosts), revision_at_backup);
    let leases = hosts.etcdctl(&[0], &["lease", "list"]);
    assert!(
        leases.contains(&lease),
        "lease {lease} not restored: {leases}"
    );
    assert!(backup.is_file(), "the restore must not remove the backup");
}

#[test]
fn encrypted_backup_fetched_to_the_controller_then_restore_with_the_k8s_bump() {
    let owner = support::run_ok(Command::new("id").arg("-un"))
        .trim()
        .to_string();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sbin")).unwrap();
    let key = root.path().join("backup.key");
    support::run_ok(Command::new("age-keygen").arg("-o").arg(&key));
    let recipient = support::run_ok(Command::new("age-keygen").arg("-y").arg(&key));
    let controller = root.path().join("controller");
    let hosts = Hosts::started(
        true,
        json!({
            "etcd_owner": owner,
            "etcd_backup_dir": root.path().join("backups"),
            "etcd_backup_script": root.path().join("sbin/etcd-backup"),
            "etcd_backup_recipients": [recipient.trim()],
            "etcd_backup_verify_identity": key,
            "etcd_backup_fetch_dir": controller,
        }),
    );
    let lease = load_data(&hosts);
    let at_backup = hosts.dump(0);
    let revision_at_backup = revision(&hosts);

    let stdout = hosts.playbook_ok("backup.yml", &[]);
    assert!(
        stdout.contains("Backing up from node1 (etcd1, https://"),
        "{stdout}"
    );
    let fetched = file_names(&controller);
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(fetched[0].ends_with(".db.zst.age"), "{fetched:?}");
    let snap = controller.join(&fetched[0]);
    let status = snapshot_status(&snap, &["-i", key.to_str().unwrap()]);
    assert_eq!(status["revision"], json!(revision_at_backup), "{status}");
    assert_eq!(status["layers"], json!(["age", "zstd"]), "{status}");

    write_after_backup(&hosts);
    let (old_cluster_id, old_pids) = cluster_id_and_pids(&hosts);

    let started = Instant::now();
    let stdout = hosts.playbook_ok(
        "restore-cluster.yml",
        &[
            "-e",
            &format!("etcd_restore_snapshot={}", snap.display()),
            "-e",
            &format!("etcd_restore_identity_file={}", key.display()),
            "-e",
            "etcd_restore_k8s=true",
            "-e",
            "etcd_restore_token=etcd-restore-test",
        ],
    );
    eprintln!("restore-cluster.yml took {:.1?}", started.elapsed());
    assert!(stdout.contains("\"revisionAfter\": "), "{stdout}");

    assert_restored(&hosts, &at_backup, old_cluster_id, &old_pids);
    // --k8s: the revision moved 1,000,000,000 past the snapshot's; the lease is back.
    let bumped = revision(&hosts);
    assert!(
        bumped >= revision_at_backup + 1_000_000_000,
        "revision {bumped} after a --k8s restore of revision {revision_at_backup}"
    );
    let leases = hosts.etcdctl(&[0], &["lease", "list"]);
    assert!(
        leases.contains(&lease),
        "lease {lease} not restored: {leases}"
    );
}

#[test]
fn backup_fails_when_no_member_is_healthy() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sbin")).unwrap();
    let backups = root.path().join("backups");
    let hosts = Hosts::new(
        false,
        json!({
            "etcd_backup_dir": backups,
            "etcd_backup_script": root.path().join("sbin/etcd-backup"),
        }),
    );
    // Nothing started: every member's etcd-health fails.
    let out = hosts.playbook("backup.yml", &[]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("No healthy etcd member to back up from: node1: "),
        "{}",
        out.stdout
    );
    assert!(!backups.exists(), "nothing may be written");
}

/// `probe PARENT OUT EVENTS WHAT`: what `etcd_apiserver_stop_command` runs in the staging tests,
/// while the snapshot is staged: appends mode, owner and type of each private staging directory
/// under PARENT and its file names to OUT, then records WHAT in EVENTS like `record`.
const PROBE: &str = "#!/bin/sh\nset -e\nfor d in \"$1\"/etcd-restore.*; do\n  stat -c '%a %u %F' \"$d\" >>\"$2\"\n  ls -A \"$d\" >>\"$2\"\ndone\necho \"$4\" >>\"$3\"\n";

#[test]
fn restore_stages_in_a_fresh_private_directory_never_in_a_planted_one() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let hosts = Hosts::started(false, json!({}));
    hosts.etcdctl(&[0], &["put", "/app/config", "restored"]);
    let at_backup = hosts.dump(0);
    let snap = hosts.path().join("snap.db");
    support::run_ok(
        Command::new(tool("etcd-snap-save"))
            .arg(format!("--endpoints={}", hosts.members[0].client_url))
            .arg(&snap),
    );
    hosts.etcdctl(&[0], &["put", "/after-backup", "gone after the restore"]);
    let (old_cluster_id, old_pids) = cluster_id_and_pids(&hosts);

    // Another local user got there first: the fixed directory of older versions, world-writable,
    // with a snapshot of theirs under our snapshot's name and links to a file that is not theirs.
    let victim = hosts.path().join("victim");
    std::fs::write(&victim, "not to be touched").unwrap();
    let planted = |host: &str| staging_parent(hosts.path(), host).join("etcd-restore");
    for m in &hosts.members {
        let dir = planted(m.host);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("snap.db"), "their snapshot").unwrap();
        for link in ["identity", "snapshot"] {
            std::os::unix::fs::symlink(&victim, dir.join(link)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }

    // The old variable (a fixed directory) is refused before anything is copied or stopped.
    let out = hosts.playbook(
        "restore-cluster.yml",
        &[
            "-e",
            &format!("etcd_restore_snapshot={}", snap.display()),
            "-e",
            &format!("etcd_restore_staging_dir={}", planted("node1").display()),
        ],
    );
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("etcd_restore_staging_dir is no longer used"),
        "{}",
        out.stdout
    );
    assert_eq!(
        hosts.events(),
        Vec::<String>::new(),
        "something was stopped"
    );

    // While the cluster is down (the API server's stop command), a probe looks at the staging.
    let probe = hosts.path().join("probe");
    std::fs::write(&probe, PROBE).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stop = format!(
        "{} {}/{{{{ inventory_hostname }}}}/var/tmp {}/probe-{{{{ inventory_hostname }}}} {} {{{{ inventory_hostname }}}}:apiserver-stop",
        probe.display(),
        hosts.path().display(),
        hosts.path().display(),
        hosts.path().join("events").display(),
    );
    hosts.playbook_ok(
        "restore-cluster.yml",
        &[
            "-e",
            &format!("etcd_restore_snapshot={}", snap.display()),
            "-e",
            &json!({ "etcd_apiserver_stop_command": stop }).to_string(),
        ],
    );

    let uid = std::fs::metadata(hosts.path()).unwrap().uid();
    for m in &hosts.members {
        // One fresh directory, 0700, ours, holding the snapshot the play verified and restored.
        let seen = std::fs::read_to_string(hosts.path().join(format!("probe-{}", m.host))).unwrap();
        assert_eq!(
            seen,
            format!("700 {uid} directory\nsnapshot\n"),
            "{}",
            m.host
        );
        // The planted directory was neither used nor removed, nor anything it links to touched.
        let dir = planted(m.host);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o777
        );
        assert_eq!(file_names(&dir), ["identity", "snap.db", "snapshot"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("snap.db")).unwrap(),
            "their snapshot"
        );
        assert_eq!(std::fs::read_link(dir.join("identity")).unwrap(), victim);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not to be touched"
    );
    // The private directories are gone too (assert_restored: the staging parents are empty).
    assert_restored(&hosts, &at_backup, old_cluster_id, &old_pids);
}

/// A tool wrapper: appends every process's command line (`/proc/*/cmdline`) and its own argv to
/// LOG, then runs the real tool. It runs while Ansible's module and its `/bin/sh -c` parents
/// run, so a password anywhere on a command line at that moment lands in LOG.
fn cmdline_scanner(log: &Path, real: &Path) -> String {
    format!(
        "#!/bin/sh\nfor f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' <\"$f\" 2>/dev/null; echo; done >>'{log}'\n\
         echo \"argv: $0 $*\" >>'{log}'\nexec '{real}' \"$@\"\n",
        log = log.display(),
        real = real.display()
    )
}

#[test]
fn a_vaulted_password_reaches_etcd_as_a_file_never_on_a_command_line_or_in_output() {
    use std::os::unix::fs::PermissionsExt;
    let password = format!("pw-{}-{}", std::process::id(), free_port());
    let root = tempfile::tempdir().unwrap();
    for d in ["sbin", "wrappers", "secrets", "backups"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    let scan = root.path().join("cmdlines.log");
    for t in etcd_snap_e2e::TOOLS {
        let w = root.path().join("wrappers").join(t);
        std::fs::write(&w, cmdline_scanner(&scan, &tool(t))).unwrap();
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let backups = root.path().join("backups");
    let secrets = root.path().join("secrets");
    let hosts = Hosts::started(
        false,
        json!({
            "etcd_snap_bin_dir": root.path().join("wrappers"),
            "etcd_backup_dir": backups,
            "etcd_backup_script": root.path().join("sbin/etcd-backup"),
            "etcd_client_env": { "ETCDCTL_USER": "root" },
            "etcd_client_password_parent": secrets,
        }),
    );
    hosts.etcdctl(&[0], &["put", "/app/config", "with auth"]);
    hosts.etcdctl(
        &[0],
        &[
            "user",
            "add",
            "root",
            &format!("--new-user-password={password}"),
        ],
    );
    hosts.etcdctl(&[0], &["auth", "enable"]);

    // group_vars-style vault file: etcd_client_password: !vault |...
    let vault_pass = root.path().join("vault-pass");
    std::fs::write(&vault_pass, "vault password of the test\n").unwrap();
    let vaulted = support::run_with_stdin(
        ansible_command("ansible-vault", root.path())
            .args(["encrypt_string", "--vault-password-file"])
            .arg(&vault_pass)
            .args(["--stdin-name", "etcd_client_password"]),
        password.as_bytes(),
    );
    assert!(vaulted.success(), "{vaulted:?}");
    let vault_vars = root.path().join("vault.yml");
    std::fs::write(&vault_vars, &vaulted.stdout).unwrap();
    let vault_args = [
        "-e".to_string(),
        format!("@{}", vault_vars.display()),
        "--vault-password-file".to_string(),
        vault_pass.display().to_string(),
    ];
    let vault_args: Vec<&str> = vault_args.iter().map(String::as_str).collect();

    // Backup as root with the password, then a restore (whose health wait logs in too).
    let out = hosts.playbook("backup.yml", &vault_args);
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    let stored = backup_names(&backups);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let mut args = vault_args.clone();
    let snapshot = format!(
        "etcd_restore_snapshot={}",
        backups.join(&stored[0]).display()
    );
    args.extend(["-e", &snapshot]);
    let restored = hosts.playbook("restore-cluster.yml", &args);
    assert!(
        restored.success(),
        "{}\n{}",
        restored.stdout,
        restored.stderr
    );

    for (what, text) in [
        ("backup.yml output", format!("{}{}", out.stdout, out.stderr)),
        (
            "restore-cluster.yml output",
            format!("{}{}", restored.stdout, restored.stderr),
        ),
    ] {
        assert!(!text.contains(&password), "{what} shows the password");
    }
    let seen = std::fs::read_to_string(&scan).unwrap();
    for t in [
        "etcd-health",
        "etcd-snap-save",
        "etcd-snap-status",
        "etcd-snap-restore",
    ] {
        assert!(
            seen.contains(&format!(
                "argv: {}",
                root.path().join("wrappers").join(t).display()
            )),
            "{t} never ran"
        );
    }
    assert!(
        seen.contains("ansible"),
        "the scan saw no Ansible process:\n{seen}"
    );
    assert!(
        !seen.contains(&password),
        "the password was on a command line during the run"
    );
    assert_eq!(
        file_names(&secrets),
        Vec::<String>::new(),
        "password file left behind"
    );

    // The restored cluster has auth on and the same password: log in as root to read it back.
    let mut get = Command::new(etcd_bin(Version::V3_5, "etcdctl"));
    get.env("ETCDCTL_API", "3")
        .env("ETCDCTL_USER", "root")
        .env("ETCDCTL_PASSWORD", &password)
        .arg(format!("--endpoints={}", hosts.endpoints()))
        .args(["get", "/app/config", "--print-value-only"]);
    assert_eq!(support::run_ok(&mut get).trim(), "with auth");

    // The old way, ETCDCTL_PASSWORD in etcd_client_env, is refused before anything runs.
    let other = format!("{password}-env");
    let env = json!({ "etcd_client_env": { "ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": other } });
    let out = hosts.playbook("backup.yml", &["-e", &env.to_string()]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("etcd_client_env must not hold ETCDCTL_PASSWORD"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&other) && !out.stderr.contains(&other));
    assert_eq!(backup_names(&backups).len(), 1);
}

#[test]
fn restore_refuses_a_data_dir_that_is_a_mount_point_before_stopping_anything() {
    // etcd-snap-restore --move-aside cannot rename a mount point: it wrote the whole database to
    // the parent file system and only then failed with EBUSY, with etcd already stopped
    // everywhere. The role must find it before it stops anything. node2's data dir becomes a
    // non-empty tmpfs of its own in a user and mount namespace (`unshare -rm`), where the
    // playbook runs; etcd, outside it, keeps its own view and keeps running.
    if !Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "unshare -rm does not work here: cannot make a mount point"
        );
        eprintln!("skipped: unshare -rm does not work here");
        return;
    }
    let (hosts, snap, before, pids) = started_and_saved();
    let mounted = &hosts.members[1].data_dir;

    // unshare -rm sh -c 'mount -t tmpfs tmpfs DATA && echo x > DATA/lost+found-ish && exec
    //   ansible-playbook -i inventory.json restore-cluster.yml -e etcd_restore_snapshot=SNAP'
    let inner = ansible_command("ansible-playbook", hosts.path());
    let mut cmd = Command::new("unshare");
    cmd.current_dir(hosts.path()).stdin(Stdio::null());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["-rm", "sh", "-c"])
        .arg("mount -t tmpfs tmpfs \"$1\" && echo x >\"$1/not-etcd\" && shift && exec \"$@\"")
        .arg("_")
        .arg(mounted)
        .arg(inner.get_program())
        .arg("-i")
        .arg(&hosts.inventory)
        .arg(example("ansible/restore-cluster.yml"))
        .arg("-e")
        .arg(format!("etcd_restore_snapshot={}", snap.display()));
    let started = Instant::now();
    let out = run(&mut cmd);
    eprintln!(
        "ansible-playbook restore-cluster.yml in a mount namespace: {} in {:.1?}",
        out.status,
        started.elapsed()
    );
    assert!(!out.success(), "the playbook restored into a mount point");
    assert!(
        out.stdout
            .contains("Refuse a data dir or WAL dir that is a mount point")
            && out.stdout.contains(&format!(
                "etcd2: {} is a mount point (a file system of its own)",
                mounted.display()
            ))
            && out.stdout.contains("Nothing was stopped or changed"),
        "expected the mount-point refusal:\n{}",
        out.stdout
    );
    // Only node2 is refused; any_errors_fatal stops every member before anything stops.
    assert!(!out
        .stdout
        .contains("TASK [etcd_snap : Stop the API server (command)]"));
    assert!(!out
        .stdout
        .contains("TASK [etcd_snap : Stop etcd (command)]"));
    assert_untouched(&hosts, &pids, &before);
}

/// A release tarball laid out as `scripts/dist` makes it (`etcd-snap-VERSION-x86_64-linux/bin`,
/// `share/man/man1`), in `dir`; returns its path and SHA-256. By default it is assembled from this
/// build's binaries, their debug info stripped (`objcopy --strip-debug`: a debug binary is ~100
/// MB), and the repository's scripts, in about a second: a real `scripts/dist` build takes
/// minutes of LTO. Its man pages are stand-ins (`scripts/dist --check` checks the real ones).
/// `ETCD_SNAP_DIST_TARBALL=dist/etcd-snap-...tar.gz` runs the test on a real artifact instead.
fn release_tarball(dir: &Path, tools: &[&str]) -> (PathBuf, String) {
    let tarball = match std::env::var_os("ETCD_SNAP_DIST_TARBALL") {
        Some(real) => PathBuf::from(real),
        None => {
            let name = format!("etcd-snap-{}-x86_64-linux", env!("CARGO_PKG_VERSION"));
            let top = dir.join("stage").join(&name);
            std::fs::create_dir_all(top.join("bin")).unwrap();
            std::fs::create_dir_all(top.join("share/man/man1")).unwrap();
            for t in tools {
                let dest = top.join("bin").join(t);
                if etcd_snap_e2e::TOOLS.contains(t) {
                    run(Command::new("objcopy")
                        .arg("--strip-debug")
                        .arg(tool(t))
                        .arg(&dest));
                } else {
                    std::fs::copy(etcd_snap_e2e::script(t), &dest).unwrap();
                }
                std::fs::write(
                    top.join("share/man/man1").join(format!("{t}.1")),
                    format!(
                        ".TH {} 1\n.SH NAME\n{t} \\- stand-in page of the test\n",
                        t.to_uppercase()
                    ),
                )
                .unwrap();
            }
            let tarball = dir.join(format!("{name}.tar.gz"));
            run(Command::new("tar")
                .arg("-C")
                .arg(dir.join("stage"))
                .args(["--owner=0", "--group=0", "-czf"])
                .arg(&tarball)
                .arg(&name));
            tarball
        }
    };
    let sum = run(Command::new("sha256sum").arg(&tarball));
    assert!(
        sum.success(),
        "sha256sum {}: {}",
        tarball.display(),
        sum.stderr
    );
    let sha = sum.stdout.split_whitespace().next().unwrap().to_string();
    (tarball, sha)
}

#[test]
fn install_from_the_release_tarball_then_back_up_with_the_installed_tools() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let mut tools: Vec<&str> = etcd_snap_e2e::TOOLS.to_vec();
    tools.extend(["etcd-backup", "kubeadm-restore"]);
    let (tarball, sha) = release_tarball(root.path(), &tools);
    let bin = root.path().join("usr/local/bin");
    let man = root.path().join("usr/local/share/man/man1");
    let backups = root.path().join("backups");
    let hosts = Hosts::started(
        false,
        json!({
            "etcd_snap_install": "tarball",
            "etcd_snap_package": tarball,
            "etcd_snap_package_sha256": sha,
            "etcd_snap_bin_dir": bin,
            "etcd_snap_man_dir": man,
            "etcd_snap_tools": tools,
            "etcd_backup_dir": backups,
        }),
    );

    // A damaged download: the play fails before anything is installed.
    let bad = hosts.playbook(
        "install.yml",
        &[
            "-e",
            &format!("etcd_snap_package_sha256={}", "0".repeat(64)),
        ],
    );
    assert!(
        !bad.success(),
        "a wrong SHA-256 was accepted:\n{}",
        bad.stdout
    );
    assert!(bad.stdout.contains("SHA-256"), "{}", bad.stdout);
    assert!(
        !bin.exists(),
        "a failed check installed something in {}",
        bin.display()
    );

    hosts.playbook_ok("install.yml", &[]);
    for t in &tools {
        let meta = std::fs::metadata(bin.join(t)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{t}");
        assert!(man.join(format!("{t}.1")).is_file(), "no man page {t}.1");
    }
    for t in etcd_snap_e2e::TOOLS {
        let v = run(Command::new(bin.join(t)).arg("--version"));
        assert!(
            v.success() && v.stdout.starts_with(&format!("{t} ")),
            "{t}: {}",
            v.stdout
        );
        assert!(
            v.stdout.contains("\ncommit: "),
            "{t} --version names no commit: {}",
            v.stdout
        );
    }
    // Nothing left on the members but what was installed (the private directory is removed).
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("etcd-snap-install.")
        })
        .filter(|e| {
            std::fs::read_dir(e.path()).is_ok_and(|mut d| {
                d.any(|f| f.is_ok_and(|f| f.file_name() == tarball.file_name().unwrap()))
            })
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "the unpacked package was left behind: {leftovers:?}"
    );

    // Again: idempotent, nothing changes.
    let again = hosts.playbook_ok("install.yml", &[]);
    for (host, _) in HOSTS {
        assert!(
            again
                .lines()
                .any(|l| l.starts_with(host) && l.contains(" changed=0 ")),
            "a second install changed {host}:\n{again}"
        );
    }

    // backup.yml installs first (nothing to change) and backs up with the installed etcd-backup.
    hosts.etcdctl(&[0], &["put", "/app/installed", "from the tarball"]);
    hosts.playbook_ok("backup.yml", &[]);
    let names = backup_names(&backups);
    assert_eq!(names.len(), 1, "{names:?}");
    let status = snapshot_status(&backups.join(&names[0]), &[]);
    assert!(status["totalKey"].as_u64().unwrap() >= 1, "{status}");
}
