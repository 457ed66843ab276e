//! `etcd-snap-store` against real object storage servers on loopback: `rclone serve s3` (files
//! in a directory), moto (a second S3 implementation), Azurite (Azure Blob) and fake-gcs-server
//! (GCS). Each test body runs over every server it can: multi-part round trips, refusal to
//! overwrite, signals mid-upload, corruption behind the tool's back, wrong credentials, an
//! unreachable endpoint, retention. fake-gcs-server takes no `object_store` upload (see
//! [`Server::all_with_gcs`]), so it runs the bodies whose objects the harness can store.

use std::io::Write;
use std::time::Duration;

use etcd_test_support::{AzuriteServer, Cluster, GcsServer, S3Kind, S3Server, Tool, Version};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_etcd-snap-store");
/// A cluster id as etcd-backup writes it in names.
const CLUSTER: &str = "8e9e05c52164694d";
/// Another cluster's id.
const OTHER: &str = "0123456789abcdef";

/// One running server, S3 or Azure, behind one interface.
enum Server {
    /// rclone or moto.
    S3(S3Server),
    /// Azurite.
    Az(AzuriteServer),
    /// fake-gcs-server.
    Gcs(GcsServer),
}

impl Server {
    /// Every server kind the body runs over.
    fn all() -> Vec<Server> {
        vec![
            Server::S3(S3Server::rclone()),
            Server::S3(S3Server::moto()),
            Server::Az(AzuriteServer::start()),
        ]
    }

    /// [`all`](Server::all) and fake-gcs-server, for bodies that store their objects with
    /// [`store`](Server::store): fake-gcs-server has no XML API upload (`PUT /BUCKET/KEY`, and
    /// no XML multipart upload), which object_store's GCS puts use, so `put` cannot reach it.
    fn all_with_gcs() -> Vec<Server> {
        let mut all = Server::all();
        all.push(Server::Gcs(GcsServer::start()));
        all
    }

    /// Stores `bytes` as `key` with its checksum companion: through `put` (in 5 MiB parts), or
    /// for fake-gcs-server through its JSON upload API, as `put` would have stored them.
    fn store(&self, key: &str, bytes: &[u8]) {
        match self {
            Server::Gcs(g) => {
                g.rewrite_object(key, bytes);
                let base = key.rsplit('/').next().unwrap_or(key);
                let line = format!("{}  {base}\n", sha256sum(bytes));
                g.rewrite_object(&format!("{key}.sha256"), line.as_bytes());
            }
            _ => {
                self.tool()
                    .args(["put", "--part-size", "5MiB", &self.url(key)])
                    .stdin_bytes(bytes.to_vec())
                    .run()
                    .named(self.name())
                    .succeeds();
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::S3(s) => s.kind().name(),
            Server::Az(_) => "azurite",
            Server::Gcs(_) => "fake-gcs-server",
        }
    }

    fn url(&self, key: &str) -> String {
        match self {
            Server::S3(s) => s.url(key),
            Server::Az(a) => a.url(key),
            Server::Gcs(g) => g.url(key),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        match self {
            Server::S3(s) => s.env(),
            Server::Az(a) => a.env(),
            Server::Gcs(g) => g.env(),
        }
    }

    /// What the server really stores (rclone: the files in its directory, its own temporary
    /// upload files included, so a leftover would show).
    fn keys(&self) -> Vec<String> {
        match self {
            Server::S3(s) => s.keys(),
            Server::Az(a) => a.keys(),
            Server::Gcs(g) => g.keys(),
        }
    }

    fn rewrite(&self, key: &str, bytes: &[u8]) {
        match self {
            Server::S3(s) => s.rewrite_object(key, bytes),
            Server::Az(a) => a.rewrite_object(key, bytes),
            Server::Gcs(g) => g.rewrite_object(key, bytes),
        }
    }

    /// The tool with this server's credentials.
    fn tool(&self) -> Tool {
        let mut t = Tool::new(BIN);
        t.envs(clean_env(self.env()));
        t.timeout(Duration::from_secs(300));
        t
    }
}

/// The server's variables plus empty values for every other cloud variable the host may have.
fn clean_env(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    for k in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_DEFAULT_REGION",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    ] {
        if !env.iter().any(|(e, _)| e == k) {
            env.push((k.into(), String::new()));
        }
    }
    env.push(("HOME".into(), "/nonexistent".into()));
    env
}

/// `n` bytes that do not repeat in any short period (xorshift).
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Hex SHA-256 via sha256sum (an independent implementation).
fn sha256sum(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write: {e}"));
    let out = std::process::Command::new("sha256sum")
        .arg(&p)
        .output()
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Asserts exit `code` with exactly one `Error:` line on stderr containing `text` (stdout may
/// hold what cat streamed before it found the damage).
#[track_caller]
fn one_line(run: &etcd_test_support::Run, code: i32, text: &str) {
    run.no_panic();
    assert_eq!(run.code, code, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.starts_with("Error: "), "{run:?}");
    assert!(run.stderr.contains(text), "{text:?}: {run:?}");
}

#[test]
fn multipart_round_trip_ls_rm_on_every_server() {
    // 16 MiB + a tail: four parts of 5 MiB (the last one short).
    let bytes = data(16 * 1024 * 1024 + 12_345, 7);
    let want = sha256sum(&bytes);
    for s in Server::all() {
        let name = s.name();
        let key = "backups/etcd/snap.db";
        let url = s.url(key);
        let put = s
            .tool()
            .args(["put", "--part-size", "5MiB", "-w", "json", &url])
            .stdin_bytes(bytes.clone())
            .run()
            .named(name);
        put.succeeds().no_stderr();
        let j = put.stdout_json();
        assert_eq!(j["sha256"], want, "{name}");
        assert_eq!(j["size"], bytes.len() as u64, "{name}");
        assert_eq!(j["url"], url, "{name}");
        assert_eq!(
            s.keys(),
            vec![key.to_string(), format!("{key}.sha256")],
            "{name}: the object and its checksum, nothing else"
        );

        // A second put without --force is refused; nothing changes.
        s.tool()
            .args(["put", &url])
            .stdin_bytes(b"other".to_vec())
            .run()
            .named(name)
            .fails(5)
            .one_line_error("already exists");

        let cat = s.tool().args(["cat", &url]).run().named(name);
        cat.succeeds().no_stderr();
        assert!(
            cat.stdout_bytes == bytes,
            "{name}: cat returned other bytes"
        );

        // ls folds the companions into the object's row; json adds the checksum.
        s.tool()
            .args(["put", &s.url("backups/etcd/snap.db.json")])
            .stdin_bytes(br#"{"revision":42}"#.to_vec())
            .run()
            .named(name)
            .succeeds();
        let ls = s
            .tool()
            .args(["ls", "-w", "json", &s.url("backups/etcd/")])
            .run()
            .named(name);
        ls.succeeds();
        let j = ls.stdout_json();
        let objects = j["objects"].as_array().cloned().unwrap_or_default();
        assert_eq!(objects.len(), 1, "{name}: {j}");
        assert_eq!(objects[0]["name"], "snap.db", "{name}");
        assert_eq!(objects[0]["size"], bytes.len() as u64, "{name}");
        assert_eq!(objects[0]["sha256"], want, "{name}");
        assert_eq!(objects[0]["metadata"]["revision"], 42, "{name}");
        let simple = s
            .tool()
            .args(["ls", &s.url("backups/etcd")])
            .run()
            .named(name);
        simple.succeeds();
        assert!(
            simple
                .stdout
                .starts_with(&format!("snap.db\t{}\t", bytes.len())),
            "{name}: {simple:?}"
        );

        s.tool()
            .args(["rm", &url])
            .run()
            .named(name)
            .succeeds()
            .no_stderr();
        assert_eq!(s.keys(), Vec::<String>::new(), "{name}: rm left something");
        s.tool()
            .args(["cat", &url])
            .run()
            .named(name)
            .fails(5)
            .one_line_error("no such object");
        s.tool()
            .args(["rm", &url])
            .run()
            .named(name)
            .fails(5)
            .one_line_error("no such object");
    }
}

#[test]
fn a_corrupted_object_fails_cat_with_exit_4_and_a_missing_checksum_too() {
    let bytes = data(6 * 1024 * 1024, 11);
    for s in Server::all_with_gcs() {
        let name = s.name();
        let key = "c/snap.db";
        let url = s.url(key);
        s.store(key, &bytes);
        let mut bad = bytes.clone();
        bad[3 * 1024 * 1024] ^= 0x40;
        s.rewrite(key, &bad);
        let cat = s.tool().args(["cat", &url]).run().named(name);
        one_line(&cat, 4, "SHA-256 mismatch");
        // --no-verify reads it anyway (and returns what is stored).
        let cat = s
            .tool()
            .args(["cat", "--no-verify", &url])
            .run()
            .named(name);
        cat.succeeds();
        assert!(cat.stdout_bytes == bad, "{name}");
        // An object without its companion cannot be verified: exit 4, before any output.
        let orphan = "c/orphan.db";
        s.rewrite(orphan, b"no checksum beside me");
        s.tool()
            .args(["cat", &s.url(orphan)])
            .run()
            .named(name)
            .fails(4)
            .one_line_error("is missing");
    }
}

/// Starts a put, feeds it 11 MiB (two parts sent), then ends it with `signal`; returns the run.
fn interrupted_put(s: &Server, url: &str, signal: i32) -> etcd_test_support::Run {
    let mut running = s
        .tool()
        .args(["put", "--part-size", "5MiB", url])
        .stdin_piped()
        .spawn();
    let mut stdin = running
        .child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("no stdin pipe"));
    stdin
        .write_all(&data(11 * 1024 * 1024, 3))
        .unwrap_or_else(|e| panic!("feeding put: {e}"));
    // Let the parts reach the server; the outcome must not depend on how far they got.
    std::thread::sleep(Duration::from_millis(700));
    let pid = i32::try_from(running.child.id()).unwrap_or_else(|e| panic!("pid: {e}"));
    let rc = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(rc.success());
    let run = running.finish(Some(Duration::from_secs(60)));
    drop(stdin);
    run
}

#[test]
fn sigterm_and_sigkill_mid_upload_leave_no_object() {
    for s in Server::all() {
        let name = s.name();
        let url = s.url("sig/term.db");
        let run = interrupted_put(&s, &url, libc::SIGTERM).named(name);
        one_line(&run, 143, "upload aborted, nothing stored");
        let url_kill = s.url("sig/kill.db");
        let run = interrupted_put(&s, &url_kill, libc::SIGKILL).named(name);
        assert_eq!(run.code, -1, "{run:?}");
        assert_eq!(
            s.keys(),
            Vec::<String>::new(),
            "{name}: a killed upload became visible"
        );
        let ls = s.tool().args(["ls", &s.url("sig/")]).run().named(name);
        ls.succeeds().stdout_is("");
        if let Server::S3(s3) = &s {
            if s3.kind() == S3Kind::Moto {
                // SIGTERM aborted its multipart upload; only SIGKILL's is left (for the bucket's
                // lifecycle rule), never an object.
                assert_eq!(s3.open_uploads(), Some(1), "{name}");
            }
        }
    }
}

#[test]
fn wrong_credentials_exit_2_without_the_secret_and_unreachable_exits_3() {
    let rclone = S3Server::rclone();
    let az = AzuriteServer::start();
    for (name, env, url, secret) in [
        (
            "rclone",
            rclone.env_wrong_secret(),
            rclone.url("x.db"),
            String::new(),
        ),
        (
            "azurite",
            az.env_wrong_secret(),
            az.url("x.db"),
            String::new(),
        ),
    ] {
        let secret = if secret.is_empty() {
            env.iter()
                .find(|(k, _)| k.contains("SECRET") || k.ends_with("ACCOUNT_KEY"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        } else {
            secret
        };
        for args in [
            vec!["put", url.as_str()],
            vec!["cat", url.as_str()],
            vec!["ls", url.as_str()],
        ] {
            let mut t = Tool::new(BIN);
            t.envs(clean_env(env.clone()))
                .args(&args)
                .stdin_bytes(b"x".to_vec());
            let run = t.run().named(format!("{name} {args:?}"));
            run.fails(2).one_line_error("access denied");
            assert!(!run.stderr.contains(&secret), "{run:?}");
        }
    }
    // A bucket that does not exist: exit 2, saying so.
    Tool::new(BIN)
        .envs(clean_env(rclone.env()))
        .args(["put", "s3://no-such-bucket/x.db"])
        .stdin_bytes(b"x".to_vec())
        .run()
        .fails(2)
        .one_line_error("no such bucket");
    // A port nobody listens on: exit 3, quickly.
    let port = etcd_test_support::free_port();
    let mut env = rclone.env();
    for (k, v) in &mut env {
        if k == "AWS_ENDPOINT_URL" {
            *v = format!("http://127.0.0.1:{port}");
        }
    }
    let run = Tool::new(BIN)
        .envs(clean_env(env))
        .args(["put", &rclone.url("x.db")])
        .stdin_bytes(b"x".to_vec())
        .timeout(Duration::from_secs(120))
        .run();
    run.fails(3).one_line_error("cannot reach");
    assert!(!run.stderr.contains(rclone.secret_key()), "{run:?}");
}

/// Another workspace binary, beside this test's (`target/debug/NAME`), as `Tool::new` finds it.
fn sibling_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or_else(|| panic!("{} has no grandparent", exe.display()));
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: cargo build -p {name}",
        p.display()
    );
    p
}

/// `etcd-<cluster>-<ts>-r<rev>.db.zst.age`.
fn backup(cluster: &str, ts: &str, rev: u64) -> String {
    format!("etcd-{cluster}-{ts}-r{rev}.db.zst.age")
}

#[test]
fn prune_gfs_keeps_other_clusters_the_newest_and_one_per_period() {
    // Two backups a day on 2026-11-29 .. 2026-12-04, one in October, another cluster's old
    // backups, and an unrelated object.
    let mut ours = Vec::new();
    for (day, rev) in [
        ("20261015", 1),
        ("20261129", 10),
        ("20261130", 20),
        ("20261201", 30),
        ("20261202", 40),
        ("20261203", 50),
        ("20261204", 60),
    ] {
        ours.push(backup(CLUSTER, &format!("{day}T010000Z"), rev));
        ours.push(backup(CLUSTER, &format!("{day}T130000Z"), rev + 1));
    }
    let theirs = [
        backup(OTHER, "20250101T000000Z", 1),
        backup(OTHER, "20250102T000000Z", 2),
    ];
    for s in Server::all_with_gcs() {
        let name = s.name();
        for n in ours
            .iter()
            .chain(theirs.iter())
            .chain(["notes.txt".to_string()].iter())
        {
            s.store(&format!("p/{n}"), n.as_bytes());
        }
        let before = s.keys();
        let prune = |dry: bool| {
            let mut t = s.tool();
            t.args([
                "prune",
                "--cluster",
                CLUSTER,
                "--keep-daily",
                "2",
                "--keep-weekly",
                "2",
                "--keep-monthly",
                "2",
                "--now",
                "20261204T200000Z",
                "-w",
                "json",
            ]);
            if dry {
                t.arg("--dry-run");
            }
            t.arg(s.url("p/"));
            t.run().named(name)
        };
        let dry = prune(true);
        dry.succeeds();
        assert_eq!(s.keys(), before, "{name}: --dry-run deleted something");
        let run = prune(false);
        run.succeeds();
        assert_eq!(
            dry.stdout_json()["deleted"],
            run.stdout_json()["deleted"],
            "{name}"
        );
        // Daily: 12-04 13:00, 12-03 13:00. Weekly (ISO): week 49 (12-04 13:00), week 48
        // (11-29 13:00, a Sunday). Monthly: December (12-04), November (11-30 13:00).
        let kept: Vec<String> = [
            backup(CLUSTER, "20261129T130000Z", 11),
            backup(CLUSTER, "20261130T130000Z", 21),
            backup(CLUSTER, "20261203T130000Z", 51),
            backup(CLUSTER, "20261204T130000Z", 61),
        ]
        .into_iter()
        .collect();
        let mut want: Vec<String> = kept
            .iter()
            .chain(theirs.iter())
            .chain(["notes.txt".to_string()].iter())
            .flat_map(|n| [format!("p/{n}"), format!("p/{n}.sha256")])
            .collect();
        want.sort();
        assert_eq!(s.keys(), want, "{name}");
        let deleted = run.stdout_json()["deleted"].as_array().map_or(0, Vec::len);
        assert_eq!(
            deleted,
            2 * (ours.len() - kept.len()),
            "{name}: each with its checksum"
        );
    }
}

#[test]
fn prune_names_from_stdin_prints_and_deletes_nothing() {
    let names = [
        backup(CLUSTER, "20261201T000000Z", 1),
        backup(CLUSTER, "20261202T000000Z", 2),
        backup(CLUSTER, "20261203T000000Z", 3),
        backup(OTHER, "20200101T000000Z", 1),
        "junk".to_string(),
    ];
    Tool::new(BIN)
        .args([
            "prune",
            "--cluster",
            CLUSTER,
            "--keep",
            "1",
            "--names-from",
            "-",
        ])
        .stdin_bytes(format!("{}\n", names.join("\n")).into_bytes())
        .run()
        .succeeds()
        .stdout_is(format!("{}\n{}\n", names[1], names[0]));
    Tool::new(BIN)
        .args(["prune", "--cluster", CLUSTER, "--names-from", "-"])
        .run()
        .fails(2)
        .one_line_error("at least one rule");
}

#[test]
fn an_etcd_snapshot_streams_through_s3_and_verifies() {
    let cluster = Cluster::builder(Version::V3_5).start();
    for i in 0..200 {
        cluster.put(&format!("/app/{i}"), &"v".repeat(100));
    }
    let s3 = S3Server::rclone();
    let url = s3.url("etcd/snap.db");
    let save = Tool::new("etcd-snap-save")
        .args([
            format!("--endpoints={}", cluster.endpoints().join(",")),
            "-".to_string(),
        ])
        .run();
    save.succeeds();
    let mut t = Tool::new(BIN);
    t.envs(clean_env(s3.env()))
        .args(["put", &url])
        .stdin_bytes(save.stdout_bytes.clone())
        .run()
        .succeeds();
    let cat = Tool::new(BIN)
        .envs(clean_env(s3.env()))
        .args(["cat", &url])
        .run();
    cat.succeeds();
    assert!(
        cat.stdout_bytes == save.stdout_bytes,
        "cat returned other bytes than save wrote"
    );
    // The verification path as users run it: `etcd-snap-store cat URL | etcd-snap-status -`.
    let mut store = std::process::Command::new(BIN);
    store
        .args(["cat", &url])
        .stdout(std::process::Stdio::piped());
    for (k, v) in clean_env(s3.env()) {
        store.env(k, v);
    }
    let mut store = store
        .spawn()
        .unwrap_or_else(|e| panic!("etcd-snap-store: {e}"));
    let pipe = store
        .stdout
        .take()
        .unwrap_or_else(|| panic!("no stdout pipe"));
    let status = std::process::Command::new(sibling_bin("etcd-snap-status"))
        .args(["-w", "json", "-"])
        .stdin(pipe)
        .output()
        .unwrap_or_else(|e| panic!("etcd-snap-status: {e}"));
    let store = store.wait().unwrap_or_else(|e| panic!("wait: {e}"));
    assert!(store.success(), "cat failed: {store:?}");
    assert!(
        status.status.success(),
        "status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("status json: {e}"));
    assert!(j["revision"].as_i64().unwrap_or(0) >= 200, "{j}");
}

#[test]
fn gcs_cat_ls_rm_and_refusals_on_fake_gcs_server() {
    // Objects are stored through the JSON API (see Server::all_with_gcs); everything else goes
    // through the tool: cat, ls, rm, the existence check of put, and an unreachable endpoint.
    let s = Server::Gcs(GcsServer::start());
    let name = s.name();
    let bytes = data(3 * 1024 * 1024 + 17, 5);
    let key = "g/etcd/snap.db";
    let url = s.url(key);
    s.store(key, &bytes);
    s.rewrite("g/etcd/snap.db.json", br#"{"revision":42}"#);
    let cat = s.tool().args(["cat", &url]).run().named(name);
    cat.succeeds().no_stderr();
    assert!(cat.stdout_bytes == bytes, "cat returned other bytes");
    let ls = s.tool().args(["ls", "-w", "json", &s.url("g/etcd/")]).run();
    ls.succeeds();
    let j = ls.stdout_json();
    let objects = j["objects"].as_array().cloned().unwrap_or_default();
    assert_eq!(objects.len(), 1, "{j}");
    assert_eq!(objects[0]["name"], "snap.db");
    assert_eq!(objects[0]["size"], bytes.len() as u64);
    assert_eq!(objects[0]["sha256"], sha256sum(&bytes));
    assert_eq!(objects[0]["metadata"]["revision"], 42);
    // A second put without --force is refused before anything is sent.
    s.tool()
        .args(["put", &url])
        .stdin_bytes(b"other".to_vec())
        .run()
        .fails(5)
        .one_line_error("already exists");
    // A put the server refuses (fake-gcs-server has no XML upload) stores nothing.
    let before = s.keys();
    let run = s
        .tool()
        .args(["put", &s.url("g/new.db")])
        .stdin_bytes(b"new".to_vec())
        .run();
    one_line(&run, 2, "refused");
    assert_eq!(s.keys(), before, "a refused put left something");
    // rm takes the companions with the object.
    s.tool().args(["rm", &url]).run().succeeds().no_stderr();
    assert_eq!(s.keys(), Vec::<String>::new(), "rm left something");
    s.tool()
        .args(["cat", &url])
        .run()
        .fails(5)
        .one_line_error("no such object");
    // A port nobody listens on: exit 3.
    let port = etcd_test_support::free_port();
    let mut env = s.env();
    for (k, v) in &mut env {
        if k == "GOOGLE_STORAGE_ENDPOINT" {
            *v = format!("http://127.0.0.1:{port}");
        }
    }
    Tool::new(BIN)
        .envs(clean_env(env))
        .args(["cat", &url])
        .timeout(Duration::from_secs(120))
        .run()
        .fails(3)
        .one_line_error("cannot reach");
}
