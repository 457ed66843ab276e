//! Proves the harness against every real etcd of the matrix (3.4.23, 3.5.1, Debian sid's 3.5.x
//! when installed, 3.6.x and 3.7.x built from their Go modules): members start and answer, TLS and auth behave as documented, a 3-member cluster
//! survives losing a member, and dropping a cluster leaves neither processes nor files.

use std::process::Command;
use std::time::{Duration, Instant};

use etcd_test_support::{
    etcd_bin, etcd_matrix, free_port, pid_alive, run_ok, wait_until, Cluster, Tool, Version,
};

/// Runs `cmd` with the one runner, returning (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = Tool::from_command(std::mem::replace(cmd, Command::new("true"))).run();
    (out.success(), out.output())
}

fn put_get(v: Version) {
    let c = Cluster::builder(v).start();
    assert_eq!(c.version(), v);
    assert_eq!(c.endpoints().len(), 1);
    assert!(c.endpoints()[0].starts_with("http://127.0.0.1:"));
    assert!(c.host_ports()[0].starts_with("127.0.0.1:"));
    c.put("/k", "hello");
    let out = run_ok(c.etcdctl().args(["get", "/k"]));
    assert_eq!(out, "/k\nhello\n");
    assert_eq!(c.get("/k").as_deref(), Some("hello"));
    assert_eq!(c.get("/missing"), None);
    // The server really is this version.
    let status = run_ok(c.etcdctl().args(["endpoint", "status", "-w", "json"]));
    let want = v.server_version().unwrap_or_default();
    assert!(
        status.contains(&format!("\"version\":\"{want}\"")),
        "{v}: {status}"
    );
}

etcd_matrix!(put_get);

fn tls(v: Version) {
    let c = Cluster::builder(v).tls().start();
    let t = c.tls_files().unwrap_or_else(|| panic!("tls files missing"));
    assert!(c.endpoints()[0].starts_with("https://127.0.0.1:"));
    c.put("/tls", "yes");
    assert_eq!(c.get("/tls").as_deref(), Some("yes"));

    let ep = format!("--endpoints={}", c.endpoints()[0]);
    let ca = format!("--cacert={}", t.ca.display());
    let get = ["get", "/tls", "--dial-timeout=2s", "--command-timeout=3s"];
    // Refused calls fail only when their command timeout ends: keep it short.
    let get_refused = ["get", "/tls", "--dial-timeout=1s", "--command-timeout=1s"];
    // No client certificate: refused.
    let (ok, text) = run(c.etcdctl_raw().args([&ep, &ca]).args(get_refused));
    assert!(!ok, "{v}: etcdctl without a client cert must fail: {text}");
    // A client certificate from an unrelated CA: refused.
    let (ok, text) = run(c
        .etcdctl_raw()
        .args([&ep, &ca])
        .args([
            format!("--cert={}", t.other_client_cert.display()),
            format!("--key={}", t.other_client_key.display()),
        ])
        .args(get_refused));
    assert!(!ok, "{v}: a client cert from another CA must fail: {text}");
    // The other key formats work with their certificates.
    for (cert, key) in [
        (&t.client_cert, &t.client_key_sec1),
        (&t.client_rsa_cert, &t.client_rsa_key),
        (&t.client_rsa_cert, &t.client_rsa_key_pkcs8),
        (&t.reader_cert, &t.reader_key),
    ] {
        let out = run_ok(
            c.etcdctl_raw()
                .args([&ep, &ca])
                .args([
                    format!("--cert={}", cert.display()),
                    format!("--key={}", key.display()),
                ])
                .args(get),
        );
        assert_eq!(out, "/tls\nyes\n", "{v}: {}", key.display());
    }
    // The SEC1 key file really is SEC1 and the RSA one PKCS#1.
    let sec1 = std::fs::read_to_string(&t.client_key_sec1).unwrap_or_default();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    let rsa = std::fs::read_to_string(&t.client_rsa_key).unwrap_or_default();
    assert!(rsa.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
}

etcd_matrix!(tls: V3_4, V3_5, V3_6, V3_7);

fn auth(v: Version, with_tls: bool) {
    let mut b = Cluster::builder(v).auth();
    if with_tls {
        b = b.tls();
    }
    let c = b.start();
    assert!(c.auth_enabled());
    c.put("/app/x", "1");
    c.put("health", "h");
    let (ok, text) = run(c.etcdctl_as(Some("reader")).args(["get", "health"]));
    assert!(!ok, "{v}: reader must not read 'health': {text}");
    assert!(text.contains("permission denied"), "{v}: {text}");
    let out = run_ok(c.etcdctl_as(Some("reader")).args(["get", "/app/x"]));
    assert_eq!(out, "/app/x\n1\n");
    let (ok, text) = run(c.etcdctl_as(Some("reader")).args(["put", "/app/x", "2"]));
    assert!(!ok && text.contains("permission denied"), "{v}: {text}");
    let (ok, text) = run(c.etcdctl_as(Some("root:wrong")).args(["get", "health"]));
    assert!(!ok, "{v}: a wrong password must fail: {text}");
    if with_tls {
        // No --user: etcd takes the client certificate's CN (root) as the user.
        let out = run_ok(c.etcdctl_as(None).args(["get", "health"]));
        assert_eq!(out, "health\nh\n");
    } else {
        let (ok, text) = run(c.etcdctl_as(None).args(["get", "health"]));
        assert!(!ok, "{v}: no user must fail with auth on: {text}");
    }
}

fn auth_root_and_reader(v: Version) {
    auth(v, false);
}
etcd_matrix!(auth_root_and_reader: V3_4, V3_5, V3_6, V3_7);

fn auth_over_tls_uses_cert_cn(v: Version) {
    auth(v, true);
}
etcd_matrix!(auth_over_tls_uses_cert_cn: V3_5, V3_6, V3_7);

fn three_members_survive_losing_one(v: Version) {
    let mut c = Cluster::builder(v).members(3).start();
    assert_eq!(c.len(), 3);
    assert_eq!(c.member_name(2), "m2");
    assert_eq!(c.peer_urls().len(), 3);
    let list = run_ok(c.etcdctl().args(["member", "list"]));
    assert_eq!(list.lines().count(), 3, "{list}");
    c.put("/before", "1");

    let pid = c.pid(2).unwrap_or_else(|| panic!("m2 has no pid"));
    c.kill_member(2);
    assert!(
        !pid_alive(pid),
        "m2 (pid {pid}) still exists after kill_member"
    );
    assert!(!c.is_running(2));
    run_ok(c.etcdctl_on(&[0, 1], None).args(["endpoint", "health"]));
    let (ok, _) =
        run(c
            .etcdctl_on(&[2], None)
            .args(["endpoint", "health", "--command-timeout=1s"]));
    assert!(!ok, "the killed member must be unhealthy");
    c.put("/during", "2");

    c.restart_member(2);
    assert!(c.is_running(2));
    run_ok(c.etcdctl().args(["endpoint", "health"]));
    let got = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        run(c
            .etcdctl_on(&[2], None)
            .args(["get", "/during", "--consistency=s"]))
        .1
        .contains("/during\n2")
    });
    assert!(got, "the restarted member did not catch up");

    c.stop_member(0);
    assert!(!c.is_running(0));
    run_ok(c.etcdctl_on(&[1, 2], None).args(["endpoint", "health"]));
}
etcd_matrix!(three_members_survive_losing_one: V3_5, V3_6, V3_7);

#[test]
fn drop_leaves_no_process_and_no_dir() {
    let c = Cluster::builder(Version::V3_5).start();
    let pid = c.pid(0).unwrap_or_else(|| panic!("no pid"));
    let dir = c.dir().to_path_buf();
    std::fs::write(dir.join("scratch"), "x").unwrap_or_else(|e| panic!("{e}"));
    assert!(pid_alive(pid) && dir.is_dir() && c.data_dir(0).is_dir());
    drop(c);
    assert!(!pid_alive(pid), "etcd pid {pid} survived Drop");
    assert!(!dir.exists(), "{} survived Drop", dir.display());
}

#[test]
fn drop_on_panic_cleans_up() {
    let (tx, rx) = std::sync::mpsc::channel();
    let res = std::thread::spawn(move || {
        let c = Cluster::builder(Version::V3_4).start();
        let _ = tx.send((c.pid(0), c.dir().to_path_buf()));
        panic!("test panics while the cluster runs");
    })
    .join();
    assert!(res.is_err());
    let (pid, dir) = rx.recv().unwrap_or_else(|e| panic!("{e}"));
    let pid = pid.unwrap_or_else(|| panic!("no pid"));
    assert!(!pid_alive(pid), "etcd pid {pid} survived a panicking test");
    assert!(!dir.exists());
}

#[test]
fn start_late_returns_at_once_and_starts_later() {
    let t0 = Instant::now();
    let c = Cluster::builder(Version::V3_5)
        .start_late(Duration::from_millis(1500))
        .start();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(c.pid(0), None);
    let refused = std::net::TcpStream::connect(&c.host_ports()[0]).is_err();
    assert!(refused, "nothing may listen before the delay");
    c.wait_ready();
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    c.put("/late", "1");
}

#[test]
fn start_late_dropped_before_delay_starts_nothing() {
    let c = Cluster::builder(Version::V3_5)
        .start_late(Duration::from_secs(30))
        .start();
    let dir = c.dir().to_path_buf();
    let t0 = Instant::now();
    drop(c);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(!dir.exists());
}

#[test]
fn extra_args_reach_etcd() {
    let c = Cluster::builder(Version::V3_5)
        .arg("--quota-backend-bytes=33554432")
        .start();
    let cmdline = std::fs::read(format!(
        "/proc/{}/cmdline",
        c.pid(0).unwrap_or_else(|| panic!("no pid"))
    ))
    .unwrap_or_default();
    assert!(String::from_utf8_lossy(&cmdline).contains("--quota-backend-bytes=33554432"));
}

#[test]
fn binaries_are_where_setup_puts_them() {
    for v in Version::all_required() {
        assert!(etcd_bin(v, "etcd").is_file());
        assert!(etcd_bin(v, "etcdctl").is_file());
    }
    assert!(etcd_bin(Version::V3_5, "etcdutl").is_file());
    let r = std::panic::catch_unwind(|| etcd_bin(Version::V3_4, "etcdutl"));
    assert!(r.is_err(), "etcd 3.4 has no etcdutl");
    assert!(Version::available().len() >= 2);
    for v in Version::built_from_go() {
        for tool in ["etcd", "etcdctl", "etcdutl"] {
            assert!(etcd_bin(v, tool).is_file());
        }
        let exact = v.server_version().unwrap_or_default();
        assert!(
            exact.starts_with(&format!("{}.", v.label())),
            "{v}: .deps/etcd-{}/VERSION says {exact:?}",
            v.label()
        );
    }
}

#[test]
fn free_ports_are_distinct() {
    let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 50);
}

#[test]
fn wait_until_times_out_and_succeeds() {
    let t0 = Instant::now();
    assert!(!wait_until(
        Duration::from_millis(100),
        Duration::from_millis(10),
        || false
    ));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    let mut n = 0;
    assert!(wait_until(
        Duration::from_secs(1),
        Duration::from_millis(1),
        || {
            n += 1;
            n == 3
        }
    ));
}
