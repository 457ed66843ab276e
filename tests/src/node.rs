//! The control-plane node in miniature that the etcd-backup scenarios (`backup.rs`,
//! `backup_log.rs`, `backup_object_store.rs`) run the script on: one etcd member, a
//! kubeadm-shaped PKI, an age key pair, a backup directory, a metrics directory and a directory
//! for stand-in programs, all under one temporary directory. One definition, so the three files
//! run the script with the same environment.
#![allow(clippy::unwrap_used)] // a fixture fails its test by panicking

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{self, run_ok, Cluster, Tool, Version};
use crate::{age_keygen, path_with_tools, script};

/// One etcd 3.5 member (mutual TLS unless plain) with `etc/kubernetes/pki/etcd`, `backups/`,
/// `metrics/`, `fakebin/` and an age identity `backup.key` under [`root`](Self::root).
pub struct Node {
    /// The member.
    pub cluster: Cluster,
    /// Everything else of the node; removed with it.
    pub root: TempDir,
    /// The age recipient of `backup.key`.
    pub recipient: String,
}

impl Node {
    /// A node whose etcd speaks mutual TLS, as on kubeadm.
    pub fn start() -> Node {
        Node::with(Cluster::builder(Version::V3_5).tls().start())
    }

    /// A node whose etcd speaks plain HTTP.
    pub fn start_plain() -> Node {
        Node::with(Cluster::builder(Version::V3_5).start())
    }

    /// A node around `cluster` (its TLS files, if any, copied into the kubeadm-shaped PKI).
    pub fn with(cluster: Cluster) -> Node {
        let root = tempfile::tempdir().unwrap();
        for d in ["etc/kubernetes/pki/etcd", "backups", "fakebin", "metrics"] {
            fs::create_dir_all(root.path().join(d)).unwrap();
        }
        if let Some(tls) = cluster.tls_files() {
            let pki = root.path().join("etc/kubernetes/pki/etcd");
            fs::copy(&tls.ca, pki.join("ca.crt")).unwrap();
            fs::copy(&tls.server_cert, pki.join("server.crt")).unwrap();
            fs::copy(&tls.server_key, pki.join("server.key")).unwrap();
        }
        let recipient = age_keygen(&root.path().join("backup.key"));
        Node {
            cluster,
            root,
            recipient,
        }
    }

    /// The kubeadm-shaped `etc/kubernetes/pki/etcd`.
    pub fn pki(&self) -> PathBuf {
        self.root.path().join("etc/kubernetes/pki/etcd")
    }

    /// The local backup directory, empty at the start.
    pub fn dest(&self) -> PathBuf {
        self.root.path().join("backups")
    }

    /// The age identity.
    pub fn identity(&self) -> PathBuf {
        self.root.path().join("backup.key")
    }

    /// The directory first in the script's `PATH`, for stand-ins ([`fake`](Self::fake)).
    pub fn fakebin(&self) -> PathBuf {
        self.root.path().join("fakebin")
    }

    /// Where a test has the script write its metrics (`--metrics-file`).
    pub fn metrics(&self) -> PathBuf {
        self.root.path().join("metrics/etcd-backup.prom")
    }

    /// `127.0.0.1:PORT`, without a scheme: TLS follows from the certificates, as with etcdctl.
    pub fn endpoint(&self) -> String {
        self.cluster.host_ports()[0].clone()
    }

    /// `etcd-backup` with the workspace tools (and any stand-ins) in `PATH`,
    /// `ETCDCTL_ENDPOINTS` set, and for a TLS node `ETCD_BACKUP_PKI_DIR` pointing at the
    /// kubeadm-shaped PKI; no other `ETCDCTL_*`/`ETCD_*` variable is inherited.
    pub fn backup(&self) -> Tool {
        Tool::from_command(self.backup_cmd())
    }

    /// [`backup`](Self::backup) as a command, for a test that holds the running script.
    pub fn backup_cmd(&self) -> Command {
        self.with_backup_env(Command::new(script("etcd-backup")))
    }

    /// `program` with the environment of [`backup`](Self::backup) (to run etcd-backup inside it).
    pub fn with_backup_env(&self, mut cmd: Command) -> Command {
        clean_env(&mut cmd);
        cmd.env(
            "PATH",
            format!("{}:{}", self.fakebin().display(), path_with_tools()),
        )
        .env("ETCDCTL_ENDPOINTS", self.endpoint())
        .stdin(Stdio::null());
        if self.cluster.tls_files().is_some() {
            cmd.env("ETCD_BACKUP_PKI_DIR", self.pki());
        }
        cmd
    }

    /// The cluster ID in hex, from `etcdctl endpoint status -w json` (decimal there).
    pub fn cluster_id(&self) -> String {
        format!("{:x}", self.status_header()["cluster_id"].as_u64().unwrap())
    }

    /// The current revision, from `etcdctl endpoint status -w json`.
    pub fn revision(&self) -> u64 {
        self.status_header()["revision"].as_u64().unwrap()
    }

    fn status_header(&self) -> Value {
        let out = run_ok(
            self.cluster
                .etcdctl()
                .args(["endpoint", "status", "-w", "json"]),
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0]["Status"]["header"].clone()
    }

    /// Writes an executable stand-in `fakebin/NAME` (a bash script).
    pub fn fake(&self, name: &str, body: &str) {
        let path = self.fakebin().join(name);
        fs::write(&path, format!("#!/bin/bash\n{body}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Removes every inherited `ETCDCTL_*`/`ETCD_*` variable (the runner's list), so a developer's
/// shell cannot change what the script does.
pub fn clean_env(cmd: &mut Command) {
    for k in support::scrubbed_vars() {
        cmd.env_remove(k);
    }
}
