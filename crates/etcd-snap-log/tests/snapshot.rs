//! `etcd-snap-log --from-snapshot` reads a snapshot the way etcd-snap-status does: zstd and age
//! layers detected by content, age decrypted with the identity files of `-i` (never a key in
//! argv). The log then starts right after the snapshot's revision; a wrong identity (exit 4) or
//! a missing one (exit 2) is one line, as etcd-snap-status says it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use etcd_test_support::{etcdctl_write, run_ok, Cluster, Tool, Version};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-snap-log");

/// A new age identity in `path`; returns its recipient.
fn keygen(path: &Path) -> String {
    assert!(Command::new("age-keygen")
        .args(["-o", path.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    run_ok(Command::new("age-keygen").args(["-y", path.to_str().unwrap()]))
        .trim()
        .to_string()
}

#[test]
fn starts_after_an_age_encrypted_zstd_snapshot() {
    let cluster = Cluster::builder(Version::V3_6).start();
    let mut last = 0;
    for i in 0..20 {
        last = etcdctl_write(
            &cluster,
            &["put", &format!("/k/{}", i % 4), &format!("v{i}")],
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key.txt");
    let recipient = keygen(&key);
    let other = tmp.path().join("other.txt");
    keygen(&other);
    // The layers etcd-snap-save --compress -r writes: zstd inside age.
    let raw = tmp.path().join("snap.db");
    run_ok(
        cluster
            .etcdctl()
            .args(["snapshot", "save", raw.to_str().unwrap()]),
    );
    let sealed = tmp.path().join("snap.db.zst.age");
    run_ok(Command::new("bash").args([
        "-c",
        &format!(
            "set -o pipefail; zstd -qc {} | age -r {recipient} > {}",
            raw.display(),
            sealed.display()
        ),
    ]));
    let endpoints = cluster.endpoints().join(",");
    let follower = Tool::new(BIN)
        .args(["--endpoints", &endpoints, "--quiet"])
        .args(["--from-snapshot", sealed.to_str().unwrap()])
        .args(["-i", key.to_str().unwrap()])
        .args(["--until-rev", &(last + 1).to_string(), "-o", "-"])
        .spawn();
    let after = etcdctl_write(&cluster, &["put", "/after-snapshot", "1"]);
    assert_eq!(after, last + 1);
    let run = follower.finish(Some(Duration::from_secs(30)));
    run.succeeds();
    let info = etcd_revlog::verify_stream(&run.stdout_bytes[..]).unwrap();
    assert_eq!((info.first_revision, info.last_revision), (after, after));

    // A wrong identity (exit 4) and none at all (exit 2): one line each, the code and words
    // of etcd-snap-status on the same file.
    let cases = [
        (
            Some(&other),
            4,
            "no -i/--identity key can decrypt this age file (wrong key?)",
        ),
        (
            None,
            2,
            "the input is age-encrypted: did you forget -i/--identity KEYFILE?",
        ),
    ];
    for (identity, code, message) in cases {
        let mut t = Tool::new(BIN);
        t.args(["--endpoints", &endpoints]).args([
            "--from-snapshot",
            sealed.to_str().unwrap(),
            "-o",
            "-",
        ]);
        if let Some(file) = identity {
            t.args(["-i", file.to_str().unwrap()]);
        }
        t.run()
            .fails(code)
            .one_line_error(&format!("{}: {message}", sealed.display()));
    }
    // -i without --from-snapshot: a usage error.
    Tool::new(BIN)
        .args(["--endpoints", &endpoints, "--from-rev", "2", "-o", "-"])
        .args(["-i", key.to_str().unwrap()])
        .run()
        .fails(2)
        .one_line_error("-i/--identity and --skip-hash-check are for --from-snapshot FILE");
}
