//! Proves the sshd harness: a real OpenSSH server on loopback accepts the generated key, carries
//! bytes through `ssh ... 'cat > FILE'` unchanged, refuses other keys, and leaves neither a
//! process nor a directory behind when dropped.

use std::io::Write;
use std::process::{Command, Stdio};

use etcd_test_support::{pid_alive, Sshd};

/// Bytes that catch truncation, reordering and text-mode mangling: every byte value, then a
/// pseudo-random tail, about 3 MiB in all (several SSH channel windows).
fn payload() -> Vec<u8> {
    let mut v: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for _ in 0..(2 << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 24) as u8);
    }
    v.extend_from_slice(b"\r\n\0end");
    v
}

#[test]
fn pipes_bytes_through_ssh_cat() {
    let sshd = Sshd::start();
    assert!(sshd.port() > 0);
    assert!(sshd.client_key().exists());
    let args = sshd.ssh_args();
    assert_eq!(
        args.last().map(String::as_str),
        Some(format!("{}@127.0.0.1", sshd.user()).as_str())
    );

    let target = sshd.dir().join("received.bin");
    let data = payload();
    let mut child = Command::new("ssh")
        .args(&args)
        .arg(format!("cat > '{}'", target.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ssh: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || {
            stdin.write_all(&data).unwrap();
            // Dropping stdin sends EOF, which ends the remote `cat`.
        })
    };
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "ssh failed ({}): {}\nsshd log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        sshd.log_tail()
    );
    let got = std::fs::read(&target).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the file differs from what was sent");

    // The remote command runs as the current user, and stdout comes back.
    let who = sshd
        .ssh_command("id -un")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        who.status.success(),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&who.stdout).trim(), sshd.user());
}

#[test]
fn refuses_other_keys_and_cleans_up() {
    let sshd = Sshd::start();
    let other = sshd.dir().join("other_key");
    let gen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(gen.success());
    let mut args = sshd.ssh_args();
    let i = args.iter().position(|a| a == "-i").unwrap();
    args[i + 1] = other.display().to_string();
    let out = Command::new("ssh")
        .args(&args)
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "sshd accepted a key it was not given"
    );
    assert_eq!(out.status.code(), Some(255));

    let pid = sshd.pid().unwrap();
    let dir = sshd.dir().to_path_buf();
    assert!(pid_alive(pid));
    drop(sshd);
    assert!(!pid_alive(pid), "sshd {pid} still runs after drop");
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
}
