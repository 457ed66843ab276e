//! etcd-snap-save against real etcd servers of every version of the matrix (3.4.23, 3.5.1, Debian
//! sid's 3.5.x when installed, 3.6.x, 3.7.x): the same bytes and lines as `etcdctl snapshot save`
//! of the same version, learners; and, on one version, files that are complete or absent,
//! verified streams, and pipes through the real zstd, age and ssh.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{
    etcd_bin, etcd_matrix, Cluster, Run, Running, Sshd, Tool, Version, READER_PASSWORD,
    ROOT_PASSWORD,
};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SAVE: &str = env!("CARGO_BIN_EXE_etcd-snap-save");

/// `etcd-snap-save ARGS`, run to the end (no inherited `ETCDCTL_*`, stdin closed).
fn save(args: &[&str]) -> Run {
    Tool::new(SAVE).args(args).run()
}

/// `etcd-snap-save ARGS`, started for a test that acts on it while it runs.
fn spawn_save(args: &[&str]) -> Running {
    Tool::new(SAVE).args(args).spawn()
}

/// A shell command line (`sh -c`), run to the end.
fn shell(line: &str) -> Run {
    Tool::from_command(Command::new("sh"))
        .args(["-c", line])
        .run()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// What `etcdctl snapshot save` writes for this cluster's first member.
fn etcdctl_snapshot(cluster: &Cluster, dir: &Path) -> Vec<u8> {
    etcdctl_snapshot_of(cluster, 0, &dir.join("etcdctl.db")).0
}

/// What `etcdctl snapshot save PATH` writes for member `member`, and the lines it prints on
/// stdout (`Snapshot saved at PATH`, and `Server version X` from 3.6 on).
fn etcdctl_snapshot_of(cluster: &Cluster, member: usize, path: &Path) -> (Vec<u8>, String) {
    let out = cluster
        .etcdctl_on(&[member], cluster.auth_enabled().then_some("root"))
        .args(["snapshot", "save", &s(path)])
        .output()
        .expect("etcdctl");
    assert!(out.status.success(), "etcdctl snapshot save: {out:?}");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    (fs::read(path).expect("read etcdctl snapshot"), stdout)
}

/// The `Server version X` of etcdctl's lines (3.6+), if any.
fn server_version(etcdctl_lines: &str) -> Option<&str> {
    etcdctl_lines
        .lines()
        .find_map(|l| l.strip_prefix("Server version "))
}

/// Compares snapshots without printing megabytes when they differ.
#[track_caller]
fn assert_same_bytes(ours: &[u8], theirs: &[u8], what: &str) {
    if ours != theirs {
        let first = ours.iter().zip(theirs).position(|(a, b)| a != b);
        panic!(
            "{what}: {} vs {} bytes, first difference at {first:?}",
            ours.len(),
            theirs.len()
        );
    }
}

/// Compares our snapshot with etcdctl's, taken one after the other from the same idle member.
///
/// etcd 3.4 and 3.5.1 send the same bytes for every snapshot of an idle database, so ours must be
/// byte-identical. Later servers (Debian's 3.5.30, 3.6, 3.7) commit a write transaction (the
/// consistent index) at the start of every Snapshot RPC, so no two snapshots are byte-identical,
/// not even two of etcdctl's: the meta pages and a page or two differ. There ours must have the
/// same size and the same contents as etcdctl's: `etcdutl snapshot status` (a hash over every
/// key and value of every bucket, revision, key count, size, storage version) is identical.
#[track_caller]
fn assert_same_snapshot(version: Version, ours: &[u8], theirs: &[u8], what: &str) {
    if matches!(version, Version::V3_4 | Version::V3_5) {
        assert_same_bytes(ours, theirs, what);
        return;
    }
    assert_eq!(ours.len(), theirs.len(), "{version}: {what}: sizes");
    assert_trailer_matches(ours);
    let dir = tempfile::tempdir().expect("tempdir");
    let status = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, bytes).expect("write");
        let out = Command::new(etcd_bin(version, "etcdutl"))
            .args(["snapshot", "status", &s(&path), "-w", "json"])
            .output()
            .expect("etcdutl");
        assert!(out.status.success(), "{version}: etcdutl status: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        status("ours.db", ours),
        status("theirs.db", theirs),
        "{version}: {what}: etcdutl snapshot status"
    );
}

/// A whole snapshot: the last 32 bytes are the SHA-256 of the rest.
#[track_caller]
fn assert_trailer_matches(bytes: &[u8]) {
    use sha2::Digest;
    assert!(
        bytes.len() > 32 && (bytes.len() - 32).is_multiple_of(4096),
        "size {}",
        bytes.len()
    );
    let (db, trailer) = bytes.split_at(bytes.len() - 32);
    assert_eq!(
        sha2::Sha256::digest(db).as_slice(),
        trailer,
        "trailer is the SHA-256 of the data"
    );
}

/// No file and no `.part` left in `dir` except the ones named.
fn only_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn load(cluster: &Cluster) {
    for (key, value) in [
        ("/registry/pods/default/a", "x"),
        ("/registry/configmaps/kube-system/b", "y"),
        ("/app/c", "z"),
    ] {
        cluster.put(key, value);
    }
}

/// One member of `version` with a few keys, etcdctl's snapshot of it, and our file-mode save of
/// it (what the cases of [`same_bytes_as_etcdctl`] check).
struct SameBytes {
    version: Version,
    cluster: Cluster,
    dir: tempfile::TempDir,
    ep: String,
    /// etcdctl's snapshot (`etcdctl.db`) and the lines it printed.
    expected: Vec<u8>,
    etcdctl_lines: String,
    /// The storage version etcdctl 3.6+ printed.
    storage_version: Option<String>,
    /// Our file mode (`ours.db`), which the `--force` cases overwrite.
    file: PathBuf,
    first: Run,
}

fn same_bytes_as_etcdctl(version: Version) {
    let cluster = Cluster::builder(version).start();
    load(&cluster);
    let dir = tempfile::tempdir().expect("tempdir");
    let etcdctl_path = dir.path().join("etcdctl.db");
    let (expected, etcdctl_lines) = etcdctl_snapshot_of(&cluster, 0, &etcdctl_path);
    let ep = cluster.host_ports()[0].clone();
    // etcdctl 3.6+ names the storage version the server sent; older ones print one line.
    let storage_version = server_version(&etcdctl_lines).map(String::from);
    assert_eq!(
        storage_version.is_some(),
        version >= Version::V3_6,
        "{version}: {etcdctl_lines}"
    );
    let file = dir.path().join("ours.db");
    let first = save(&["--endpoints", &ep, &s(&file)]);
    first.succeeds();
    let input = SameBytes {
        version,
        cluster,
        dir,
        ep,
        expected,
        etcdctl_lines,
        storage_version,
        file,
        first,
    };
    etcd_test_support::cases(
        &input,
        &[
            (
                "file mode: etcdctl's lines and bytes",
                file_mode_is_etcdctls,
            ),
            ("stdout mode: etcdctl's bytes", stdout_mode_is_etcdctls),
            ("-w json describes the file", json_describes_the_file),
            (
                "-w table names the storage version",
                table_names_the_storage_version,
            ),
        ],
    );
}

etcd_matrix!(same_bytes_as_etcdctl);

fn file_mode_is_etcdctls(c: &SameBytes) {
    let (version, out) = (c.version, &c.first);
    // Our first lines are etcdctl's, then our own `endpoint=... sha256=...` line.
    let etcdctl_path = c.dir.path().join("etcdctl.db");
    let theirs = c.etcdctl_lines.replace(&s(&etcdctl_path), &s(&c.file));
    assert!(
        out.stdout.starts_with(&theirs) && out.stdout.lines().count() == theirs.lines().count() + 1,
        "{version}: etcdctl printed {:?}, we {out:?}",
        c.etcdctl_lines
    );
    assert_same_snapshot(
        version,
        &fs::read(&c.file).expect("read"),
        &c.expected,
        "file mode is byte-identical to etcdctl",
    );
}

fn stdout_mode_is_etcdctls(c: &SameBytes) {
    let piped = save(&["--endpoints", &c.ep, "-"]);
    piped.succeeds();
    assert_same_snapshot(
        c.version,
        &piped.stdout_bytes,
        &c.expected,
        "stdout mode is byte-identical to etcdctl",
    );
    let mut first_lines = String::from("Snapshot written to stdout\n");
    if let Some(v) = &c.storage_version {
        first_lines.push_str(&format!("Server version {v}\n"));
    }
    assert!(
        piped.stderr.starts_with(&first_lines),
        "{}: {}",
        c.version,
        piped.stderr
    );
}

/// `snapshot status -w json` of our file mode's file by the real tools of `c.version`, which
/// must accept it.
fn real_tools_status(c: &SameBytes) -> serde_json::Value {
    let version = c.version;
    let status = if version.is_3_5() {
        Command::new(etcd_bin(version, "etcdutl"))
            .args(["snapshot", "status", &s(&c.file), "-w", "json"])
            .output()
    } else {
        c.cluster
            .etcdctl_raw()
            .args(["snapshot", "status", &s(&c.file), "-w", "json"])
            .output()
    }
    .expect("status");
    assert!(status.status.success(), "{status:?}");
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert!(report["revision"].as_i64() >= Some(4), "{report}");
    // etcdutl 3.6+ reads the storage version from the file: the one the server sent.
    if version >= Version::V3_6 {
        assert_eq!(
            report["version"].as_str(),
            c.storage_version.as_deref(),
            "{report}"
        );
    }
    report
}

fn json_describes_the_file(c: &SameBytes) {
    // The real tools accept our file (before it is overwritten below).
    let report = real_tools_status(c);
    let (version, expected) = (c.version, &c.expected);
    let json = save(&["--endpoints", &c.ep, "-w", "json", "--force", &s(&c.file)]);
    let summary: serde_json::Value = serde_json::from_str(&json.stdout).expect("summary json");
    // The summary describes the file it wrote (3.5.30+ send new bytes for every snapshot).
    let written = fs::read(&c.file).expect("read");
    assert_same_snapshot(version, &written, expected, "the file of -w json");
    let sha = &written[written.len() - 32..];
    assert_eq!(
        summary["sha256"].as_str(),
        Some(
            sha.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .as_str()
        )
    );
    assert_eq!(summary["dbSize"].as_u64(), Some(expected.len() as u64 - 32));
    assert_eq!(
        summary["bytesWritten"].as_u64(),
        Some(expected.len() as u64)
    );
    assert_eq!(summary["revision"], report["revision"]);
    assert!(summary["memberId"]
        .as_str()
        .is_some_and(|m| u64::from_str_radix(m, 16).is_ok()));
    // JSON only adds `storageVersion` (3.6+); `isLearner` appears only for a learner.
    assert_eq!(
        summary.get("storageVersion").and_then(|v| v.as_str()),
        c.storage_version.as_deref(),
        "{summary}"
    );
    assert!(summary.get("isLearner").is_none(), "{summary}");
}

fn table_names_the_storage_version(c: &SameBytes) {
    let table = save(&["--endpoints", &c.ep, "-w", "table", "--force", &s(&c.file)]);
    table.succeeds();
    let header = table.stdout.lines().nth(1).unwrap_or_default();
    assert_eq!(
        header.contains("STORAGE VERSION"),
        c.storage_version.is_some(),
        "{}: {}",
        c.version,
        table.stdout
    );
    if let Some(v) = &c.storage_version {
        assert!(table.stdout.contains(&format!(" {v} ")), "{}", table.stdout);
    }
    assert_eq!(only_files(c.dir.path()), ["etcdctl.db", "ours.db"]);
}

#[test]
fn file_safety_mode_refusals_and_force() {
    let cluster = Cluster::builder(Version::V3_5).start();
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");

    shell(&format!(
        "umask 000; exec {SAVE} --endpoints {ep} {}",
        s(&file)
    ))
    .succeeds();
    let mode = fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode 0600 whatever the umask");

    fs::write(&file, b"precious").expect("write");
    save(&["--endpoints", &ep, &s(&file)])
        .fails(5)
        .one_line_error("--force");
    assert_eq!(fs::read(&file).expect("read"), b"precious");

    let forced = save(&["--endpoints", &ep, "--force", &s(&file)]);
    forced.succeeds();
    assert_trailer_matches(&fs::read(&file).expect("read"));

    // A leftover .part of a killed run does not block the next one.
    let other = dir.path().join("other.db");
    fs::write(dir.path().join("other.db.part"), b"leftover").expect("write");
    let out = save(&["--endpoints", &ep, &s(&other)]);
    out.succeeds();
    assert_eq!(only_files(dir.path()), ["other.db", "snap.db"]);

    // A binary snapshot is never written to a terminal.
    // `script` runs it on a pseudo-terminal and copies the terminal's output to its stdout.
    Tool::from_command(Command::new("script"))
        .args([
            "-qec",
            &format!("{SAVE} --endpoints {ep} -; echo exit=$?"),
            "/dev/null",
        ])
        .run()
        .stdout_contains("refusing to write a binary snapshot to a terminal")
        .stdout_contains("exit=5");

    // A missing directory is a local I/O error, and nothing is left behind.
    save(&[
        "--endpoints",
        &ep,
        &s(&dir.path().join("no/such/dir/snap.db")),
    ])
    .fails(6)
    .one_line_error("");
}

fn mutual_tls_and_auth(version: Version) {
    let cluster = Cluster::builder(version).tls().auth().start();
    let tls = cluster.tls_files().expect("tls");
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");
    let tls_args = [
        "--cacert",
        &s(&tls.ca),
        "--cert",
        &s(&tls.client_cert),
        "--key",
        &s(&tls.client_key),
    ]
    .map(String::from);
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["--endpoints", &ep];
        args.extend(tls_args.iter().map(String::as_str));
        args.extend_from_slice(extra);
        save(&args)
    };

    let root = format!("root:{ROOT_PASSWORD}");
    let ok = with(&["--user", &root, &s(&file)]);
    assert_eq!(ok.code, 0, "{version:?}: {ok:?}");
    // Authenticating writes through raft, so an etcdctl snapshot taken after ours differs in
    // its meta page: check ours on its own.
    assert_trailer_matches(&fs::read(&file).expect("read"));

    let reader = format!("reader:{READER_PASSWORD}");
    let other = dir.path().join("reader.db");
    with(&["--user", &reader, &s(&other)])
        .named(version)
        .fails(2)
        .one_line_error("permission denied")
        .stderr_contains("root role");

    with(&["--user", "root:nope", &s(&other)])
        .named(version)
        .fails(2)
        .stderr_contains("authentication failed");
    assert_eq!(
        only_files(dir.path()),
        ["snap.db"],
        "refusals leave nothing behind"
    );
}

etcd_matrix!(mutual_tls_and_auth);

/// The member's store revision, as `etcdctl endpoint status` (which a learner serves) says.
fn revision_of(cluster: &Cluster, member: usize) -> Option<i64> {
    let out = cluster
        .etcdctl_on(&[member], None)
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v[0]["Status"]["header"]["revision"].as_i64()
}

/// A cluster that is adding a member as a learner. etcd serves snapshots from a learner, and so
/// do we when it is the only endpoint (the same bytes as etcdctl's, with a warning: its copy may
/// lag); among several endpoints the voting members come first.
fn from_a_cluster_with_a_learner(version: Version) {
    // Without the check etcd accepts the learner at once instead of 5 s after the start.
    let mut cluster = Cluster::builder(version)
        .arg("--strict-reconfig-check=false")
        .start();
    load(&cluster);
    let learner = cluster.add_learner();
    assert!(
        etcd_test_support::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            revision_of(&cluster, learner).is_some()
                && revision_of(&cluster, learner) == revision_of(&cluster, 0)
        }),
        "{version}: the learner caught up"
    );
    let (voter_ep, learner_ep) = (
        cluster.host_ports()[0].clone(),
        cluster.host_ports()[learner].clone(),
    );
    let dir = tempfile::tempdir().expect("tempdir");

    // The learner alone: saved, with one warning line, byte-identical to etcdctl's.
    let (expected, etcdctl_lines) =
        etcdctl_snapshot_of(&cluster, learner, &dir.path().join("etcdctl-learner.db"));
    let file = dir.path().join("learner.db");
    let out = save(&["--endpoints", &learner_ep, "-w", "json", &s(&file)]);
    assert_eq!(out.code, 0, "{version}: {out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "Warning: {learner_ep} is a learner: its snapshot may lag behind the voting members\n"
        ),
        "{version}"
    );
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(summary["isLearner"], true, "{summary}");
    assert_eq!(
        summary.get("storageVersion").and_then(|v| v.as_str()),
        server_version(&etcdctl_lines),
        "{version}: {summary} vs etcdctl's {etcdctl_lines:?}"
    );
    assert_same_snapshot(
        version,
        &fs::read(&file).expect("read"),
        &expected,
        "from the learner, as etcdctl",
    );

    // The learner first among several endpoints: the voting member serves, no warning.
    let (expected, _) = etcdctl_snapshot_of(&cluster, 0, &dir.path().join("etcdctl-voter.db"));
    let both = format!("{learner_ep},{voter_ep}");
    let out = save(&["--endpoints", &both, "-w", "json", "--force", &s(&file)]);
    assert_eq!(out.code, 0, "{version}: {out:?}");
    assert!(out.stderr.is_empty(), "{version}: {out:?}");
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(summary["endpoint"].as_str(), Some(voter_ep.as_str()));
    assert!(summary.get("isLearner").is_none(), "{summary}");
    assert_same_snapshot(
        version,
        &fs::read(&file).expect("read"),
        &expected,
        "from the voting member, as etcdctl",
    );

    // Only the learner answers: it serves after all, with the warning.
    cluster.kill_member(0);
    let out = save(&[
        "--endpoints",
        &both,
        "--force",
        "--dial-timeout",
        "1s",
        &s(&file),
    ]);
    assert_eq!(out.code, 0, "{version}: {out:?}");
    assert!(
        out.stderr
            .contains(&format!("Warning: {learner_ep} is a learner")),
        "{version}: {out:?}"
    );
    assert_trailer_matches(&fs::read(&file).expect("read"));
}

etcd_matrix!(from_a_cluster_with_a_learner: V3_5, V3_6, V3_7);

#[test]
fn several_endpoints_with_the_first_one_dead() {
    let mut cluster = Cluster::builder(Version::V3_5).members(3).start();
    load(&cluster);
    cluster.kill_member(0);
    let eps = cluster.host_ports().join(",");
    // --prefer needs a leader among the living: followers keep naming the dead one for a while.
    let has_leader = || {
        let out = cluster
            .etcdctl_on(&[1, 2], None)
            .args(["endpoint", "status", "-w", "json"])
            .output()
            .expect("status");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v.as_array().is_some_and(|a| {
            a.iter()
                .any(|m| m["Status"]["leader"] == m["Status"]["header"]["member_id"])
        })
    };
    assert!(etcd_test_support::wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        has_leader
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");
    let out = save(&["--endpoints", &eps, "-w", "json", &s(&file)]);
    out.succeeds();
    assert!(out.stderr.contains("trying the next endpoint"), "{out:?}");
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        summary["endpoint"].as_str(),
        Some(cluster.host_ports()[1].as_str())
    );

    for prefer in ["leader", "follower"] {
        let out = save(&[
            "--endpoints",
            &eps,
            "--prefer",
            prefer,
            "--force",
            "-w",
            "json",
            &s(&file),
        ]);
        out.succeeds();
        let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let ep = summary["endpoint"].as_str().unwrap_or_default().to_string();
        let status = cluster
            .etcdctl_raw()
            .args(["--endpoints", &ep, "endpoint", "status", "-w", "json"])
            .output()
            .expect("status");
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
        let is_leader = status[0]["Status"]["leader"] == status[0]["Status"]["header"]["member_id"];
        assert_eq!(
            is_leader,
            prefer == "leader",
            "--prefer {prefer} chose {ep}"
        );
    }

    cluster.kill_member(1);
    cluster.kill_member(2);
    save(&[
        "--endpoints",
        &eps,
        "--dial-timeout",
        "1s",
        &s(&dir.path().join("x.db")),
    ])
    .fails(3)
    .stderr_contains("no endpoint could start a snapshot");
    assert_eq!(only_files(dir.path()), ["snap.db"]);
}

/// Loads about `mib` MiB of 1 MiB values, so that a snapshot takes a while to stream.
fn load_big(cluster: &Cluster, mib: usize) {
    let value_file = cluster.dir().join("value.bin");
    let value: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(&value_file, value).expect("write value");
    for i in 0..mib {
        let out = cluster
            .etcdctl()
            .args(["put", &format!("/big/{i:04}")])
            .stdin(fs::File::open(&value_file).expect("open"))
            .output()
            .expect("etcdctl");
        assert!(out.status.success(), "{out:?}");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn server_killed_mid_stream_and_signals_leave_nothing() {
    let mut cluster = Cluster::builder(Version::V3_5).start();
    load_big(&cluster, 48);
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");
    let part = dir.path().join("snap.db.part");
    let etcd_pid = cluster.pid(0).expect("pid");

    // SIGTERM to the tool while the server is frozen mid-stream: the .part goes, exit 143.
    let saving = spawn_save(&["--endpoints", &ep, &s(&file)]);
    assert!(wait_for(Duration::from_secs(20), || fs::metadata(&part)
        .is_ok_and(|m| m.len() > 0)));
    signal(etcd_pid, "STOP");
    signal(saving.child.id(), "TERM");
    let out = saving.finish(Some(Duration::from_secs(60)));
    signal(etcd_pid, "CONT");
    out.fails(143);
    assert_eq!(
        only_files(dir.path()),
        Vec::<String>::new(),
        "nothing left after SIGTERM"
    );

    // The server dies in the middle: exit 3, and neither FILE nor FILE.part exists.
    let saving = spawn_save(&["--endpoints", &ep, &s(&file)]);
    assert!(wait_for(Duration::from_secs(20), || fs::metadata(&part)
        .is_ok_and(|m| m.len() > 0)));
    signal(etcd_pid, "STOP");
    cluster.kill_member(0);
    saving
        .finish(Some(Duration::from_secs(60)))
        .fails(3)
        .one_line_error("snapshot stream broke");
    assert_eq!(
        only_files(dir.path()),
        Vec::<String>::new(),
        "nothing left after the server died"
    );
}

/// Runs a save that must end on its own within `limit` (a FIFO at `FILE.part` used to hang it).
fn save_within(args: &[&str], limit: Duration) -> Run {
    Tool::new(SAVE).args(args).timeout(limit).run()
}

/// What the `Max core file size` line of `/proc/PID/limits` says: soft and hard.
fn core_limits(pid: u32) -> (String, String) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line");
    let fields: Vec<&str> = line["Max core file size".len()..]
        .split_whitespace()
        .collect();
    (fields[0].to_string(), fields[1].to_string())
}

/// Whether a thread of `pid` is blocked writing into a full pipe.
fn blocked_on_a_pipe(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks
        .flatten()
        .any(|t| fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write")))
}

#[test]
fn planted_links_fifos_and_foreign_files_are_never_followed_or_written() {
    let cluster = Cluster::builder(Version::V3_5).start();
    load(&cluster);
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");
    let part = dir.path().join("snap.db.part");
    let ghost = dir.path().join("ghost");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").expect("write");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).expect("chmod");
    let untouched = || {
        assert_eq!(fs::read(&victim).expect("read victim"), b"precious");
        let mode = fs::metadata(&victim).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the victim's mode is left alone");
        assert!(
            fs::symlink_metadata(&ghost).is_err(),
            "no file created through a link"
        );
    };
    let limit = Duration::from_secs(60);
    let args = ["--endpoints", ep.as_str(), &s(&file)];

    // Whatever someone planted at FILE.part is refused (exit 5, one line naming it), left as it
    // was, and nothing is written anywhere.
    let plants: [(&str, &dyn Fn()); 5] = [
        ("a symbolic link", &|| {
            std::os::unix::fs::symlink(&victim, &part).expect("symlink")
        }),
        ("a symbolic link", &|| {
            std::os::unix::fs::symlink(&ghost, &part).expect("symlink")
        }),
        ("a FIFO", &|| {
            assert!(Command::new("mkfifo")
                .arg(&part)
                .status()
                .expect("mkfifo")
                .success())
        }),
        ("2 hard links", &|| {
            fs::hard_link(&victim, &part).expect("link")
        }),
        ("a directory", &|| fs::create_dir(&part).expect("mkdir")),
    ];
    for (kind, plant) in plants {
        plant();
        let before = fs::symlink_metadata(&part).expect("planted");
        let out = save_within(&args, limit).named(kind);
        out.fails(5)
            .one_line_error(&s(&part))
            .stderr_contains(kind)
            .stderr_contains("remove it");
        assert!(out.stderr.starts_with("Error: creating "), "{out:?}");
        let after = fs::symlink_metadata(&part).expect("still there");
        assert_eq!(
            (before.file_type(), before.ino()),
            (after.file_type(), after.ino()),
            "{kind}: left as it was"
        );
        assert!(fs::symlink_metadata(&file).is_err(), "{kind}: no FILE");
        untouched();
        if after.is_dir() {
            fs::remove_dir(&part).expect("rmdir");
        } else {
            fs::remove_file(&part).expect("rm");
        }
    }

    // Without --force anything at FILE, a dangling link included, is refused and left alone.
    std::os::unix::fs::symlink(&ghost, &file).expect("symlink");
    save_within(&args, limit)
        .fails(5)
        .stderr_contains("already exists");
    assert!(fs::symlink_metadata(&file).expect("link").is_symlink());
    untouched();

    // With --force a link at FILE is replaced by the regular file we wrote, never followed.
    fs::remove_file(&file).expect("rm");
    std::os::unix::fs::symlink(&victim, &file).expect("symlink");
    save_within(&["--endpoints", &ep, "--force", &s(&file)], limit).succeeds();
    let meta = fs::symlink_metadata(&file).expect("stat");
    assert!(meta.is_file(), "FILE is a regular file now");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.nlink(), 1);
    assert_trailer_matches(&fs::read(&file).expect("read"));
    untouched();

    // A leftover .part of a killed run (ours: a regular file, one link, no lock) is replaced by a
    // new file, not reused: its mode and contents do not survive.
    fs::write(&part, b"leftover of a killed run").expect("write");
    fs::set_permissions(&part, fs::Permissions::from_mode(0o644)).expect("chmod");
    save_within(&["--endpoints", &ep, "--force", &s(&file)], limit).succeeds();
    assert_eq!(
        fs::metadata(&file).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    assert_trailer_matches(&fs::read(&file).expect("read"));
    assert_eq!(only_files(dir.path()), ["snap.db", "victim"]);
}

#[test]
fn a_part_replaced_while_saving_is_never_installed_and_a_second_save_is_refused() {
    let cluster = Cluster::builder(Version::V3_5).start();
    load_big(&cluster, 24);
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.db");
    let part = dir.path().join("snap.db.part");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").expect("write");
    let etcd_pid = cluster.pid(0).expect("pid");

    let first = spawn_save(&["--endpoints", &ep, &s(&file)]);
    assert!(wait_for(Duration::from_secs(20), || fs::metadata(&part)
        .is_ok_and(|m| m.len() > 0)));
    signal(etcd_pid, "STOP");

    // A second save to the same FILE while the first is writing: refused, the .part untouched.
    let ino = fs::metadata(&part).expect("part").ino();
    save_within(
        &["--endpoints", &ep, "--force", &s(&file)],
        Duration::from_secs(60),
    )
    .fails(5)
    .stderr_contains("being written by another etcd-snap-save");
    assert_eq!(fs::metadata(&part).expect("part").ino(), ino);

    // Someone who can write to the directory swaps the .part for a link to another file.
    fs::rename(&part, dir.path().join("moved-away")).expect("rename");
    std::os::unix::fs::symlink(&victim, &part).expect("symlink");
    signal(etcd_pid, "CONT");
    first
        .finish(Some(Duration::from_secs(120)))
        .fails(5)
        .one_line_error("was replaced while saving");
    assert!(
        fs::symlink_metadata(&file).is_err(),
        "the planted link is not installed as FILE"
    );
    assert!(fs::symlink_metadata(&part).expect("link").is_symlink());
    assert_eq!(fs::read(&victim).expect("read"), b"precious");
}

#[test]
fn a_signal_ends_a_save_blocked_on_a_stalled_pipe_and_core_dumps_are_off() {
    let cluster = Cluster::builder(Version::V3_5).start();
    load_big(&cluster, 4);
    let ep = cluster.host_ports()[0].clone();
    for (sig, code, word) in [("TERM", 143, "terminated"), ("INT", 130, "interrupted")] {
        let dir = tempfile::tempdir().expect("tempdir");
        // stdout is a pipe nobody reads: once it is full, the save blocks in write(2).
        let mut saving = Tool::new(SAVE)
            .args(["--endpoints", &ep, "-"])
            .current_dir(dir.path())
            .spawn();
        let stalled = saving.child.stdout.take().expect("stdout");
        let pid = saving.child.id();
        wait_for(Duration::from_secs(10), || blocked_on_a_pipe(pid));

        // Core dumps are off in the running tool, soft and hard limit.
        assert_eq!(
            core_limits(pid),
            ("0".to_string(), "0".to_string()),
            "Max core file size"
        );

        signal(pid, sig);
        let out = saving
            .finish(Some(Duration::from_secs(10)))
            .named(format!("SIG{sig}"));
        out.fails(code);
        assert!(
            out.stderr
                .ends_with(&format!("Error: {word}: nothing was saved\n")),
            "{out:?}"
        );
        assert_eq!(only_files(dir.path()), Vec::<String>::new());
        drop(stalled);
    }
}

/// What the shell command `cmd` writes when fed `input`; it must succeed.
fn decode(cmd: &str, input: &[u8]) -> Vec<u8> {
    Tool::from_command(Command::new("sh"))
        .args(["-c", cmd])
        .stdin_bytes(input)
        .run()
        .succeeds()
        .stdout_bytes
        .clone()
}

/// A new age identity in `dir/age.key`, and its recipient (`age1...`).
fn age_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("age.key");
    let keygen = || Tool::from_command(Command::new("age-keygen"));
    keygen().args(["-o", &s(&key)]).run().succeeds();
    let recipient = keygen()
        .args(["-y", &s(&key)])
        .run()
        .succeeds()
        .stdout
        .trim()
        .to_string();
    (key, recipient)
}

#[test]
fn built_in_compression_and_encryption_read_by_the_real_clis() {
    let cluster = Cluster::builder(Version::V3_5).start();
    load(&cluster);
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = etcdctl_snapshot(&cluster, dir.path());
    let (key, recipient) = age_key(dir.path());
    let recipient = recipient.as_str();
    let ssh_key = dir.path().join("id_ed25519");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", &s(&ssh_key)])
        .status()
        .expect("ssh-keygen")
        .success());
    let ssh_pub = fs::read_to_string(dir.path().join("id_ed25519.pub")).expect("pub");
    let recipients_file = dir.path().join("recipients.txt");
    fs::write(
        &recipients_file,
        format!("# backup keys\n{recipient}\n\n{ssh_pub}"),
    )
    .expect("write");

    let k = s(&key);
    let sk = s(&ssh_key);
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["--compress".into()], "zstd -dc".into()),
        (
            vec![
                "--compress=19".into(),
                "--compress-threads".into(),
                "2".into(),
            ],
            "zstd -dc".into(),
        ),
        (
            vec!["-r".into(), recipient.into()],
            format!("age -d -i {k}"),
        ),
        (
            vec!["--compress".into(), "-r".into(), recipient.into()],
            format!("age -d -i {k} | zstd -dc"),
        ),
        (
            vec![
                "--compress".into(),
                "-r".into(),
                recipient.into(),
                "--armor".into(),
            ],
            format!("age -d -i {k} | zstd -dc"),
        ),
        (
            vec!["-R".into(), s(&recipients_file)],
            format!("age -d -i {sk}"),
        ),
    ];
    for (flags, decoder) in cases {
        let mut args = vec!["--endpoints".to_string(), ep.clone()];
        args.extend(flags.iter().cloned());
        args.push("-".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = save(&args);
        out.succeeds();
        if flags.contains(&"--armor".to_string()) {
            assert!(out
                .stdout_bytes
                .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        }
        let what = format!("{flags:?} decoded by `{decoder}`");
        assert_same_bytes(&decode(&decoder, &out.stdout_bytes), &expected, &what);
    }

    // To a file too, and the summary says what was done.
    let file = dir.path().join("snap.db.zst.age");
    let out = save(&[
        "--endpoints",
        &ep,
        "--compress",
        "-r",
        recipient,
        "-w",
        "json",
        &s(&file),
    ]);
    out.succeeds();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        (
            summary["compressed"].as_bool(),
            summary["encrypted"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        summary["bytesWritten"].as_u64(),
        fs::metadata(&file).ok().map(|m| m.len())
    );
    let decoded = decode(
        &format!("age -d -i {k} | zstd -dc"),
        &fs::read(&file).expect("read"),
    );
    assert_same_bytes(&decoded, &expected, "file encoded by --compress -r");
}

#[test]
fn pipeline_through_zstd_age_and_ssh() {
    let cluster = Cluster::builder(Version::V3_5).start();
    load(&cluster);
    let ep = cluster.host_ports()[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = etcdctl_snapshot(&cluster, dir.path());
    let (key, recipient) = age_key(dir.path());
    let sshd = Sshd::start();
    let remote: PathBuf = sshd.dir().join("backup.db.zst.age");
    let ssh = sshd.ssh_args().join(" ");
    let pipeline = format!(
        "set -o pipefail; {SAVE} --endpoints {ep} - | zstd -q | age -r {} | ssh {ssh} 'cat > {}'",
        recipient,
        s(&remote)
    );
    let out = Tool::from_command(Command::new("bash"))
        .args(["-c", &pipeline])
        .run();
    assert_eq!(out.code, 0, "{out:?}\n{}", sshd.log_tail());
    out.succeeds();
    let arrived = fs::read(&remote).expect("remote file");
    let decoded = decode(&format!("age -d -i {} | zstd -dc", s(&key)), &arrived);
    assert_same_bytes(&decoded, &expected, "what arrived through ssh");
}

#[test]
fn bad_flags_are_usage_errors() {
    for (args, needle) in [
        (vec![], "missing destination"),
        (vec!["a", "b"], "unexpected argument"),
        (vec!["--armor", "-"], "--armor needs"),
        (vec!["-r", "AGE-SECRET-KEY-1ABC", "-"], "age-keygen -y"),
        (vec!["-r", "nonsense", "-"], "not a recipient"),
        (
            vec!["-R", "/nonexistent/recipients", "-"],
            "/nonexistent/recipients",
        ),
        (vec!["--compress=99", "-"], "level must be 1 to 19"),
        (vec!["--prefer", "any", "-"], "--prefer"),
        (vec!["--endpoints", "localhost", "-"], "missing port"),
    ] {
        save(&args)
            .named(format!("{args:?}"))
            .fails(2)
            .one_line_error(needle);
    }
}

#[test]
fn a_reader_that_goes_away_fails_the_save_with_exit_6_never_quietly() {
    // `etcd-snap-save - | zstd | ...` where the reader dies after 1000 bytes: the backup did not
    // complete, so the tool must not end quietly with 0 (as a report cut short by `| head` does).
    let cluster = Cluster::builder(Version::V3_5).start();
    load_big(&cluster, 2);
    let ep = cluster.host_ports()[0].clone();
    let mut saving = spawn_save(&["--endpoints", &ep, "--quiet", "-"]);
    let mut stdout = saving.child.stdout.take().expect("stdout");
    let mut first = vec![0u8; 1000];
    stdout.read_exact(&mut first).expect("the first 1000 bytes");
    drop(stdout); // the reader goes away: the next write gets EPIPE
    let out = saving.finish(Some(Duration::from_secs(20)));
    out.fails(6)
        .one_line_error("stdout was closed by its reader after ")
        .stderr_contains("the snapshot was not saved");
    assert!(
        out.stderr
            .starts_with("Error: stdout was closed by its reader after "),
        "{out:?}"
    );
    // --help says the same.
    let help = save(&["--help"]).stdout;
    assert!(
        help.contains("a reader that goes away before the end"),
        "{help}"
    );
}

#[test]
fn a_server_that_stops_answering_mid_stream_is_named_with_how_long_it_was_silent() {
    // etcd frozen (SIGSTOP) mid-stream: the TCP connection stays up, nothing arrives. The HTTP/2
    // keepalive (1 s, answer within 2 s here) ends the save with exit 3, and the line says that
    // the server stopped answering and for how long, not "h2 protocol error".
    let cluster = Cluster::builder(Version::V3_5).start();
    load_big(&cluster, 32);
    let ep = cluster.host_ports()[0].clone();
    let etcd_pid = cluster.pid(0).expect("pid");
    let dir = tempfile::tempdir().expect("tempdir");
    // stdout is a pipe nobody reads yet: the save blocks once it is full, mid-stream for sure.
    let mut saving = Tool::new(SAVE)
        .args([
            "--endpoints",
            &ep,
            "--keepalive-time",
            "1s",
            "--keepalive-timeout",
            "2s",
            "-",
        ])
        .current_dir(dir.path())
        .spawn();
    let mut stdout = saving.child.stdout.take().expect("stdout");
    let pid = saving.child.id();
    assert!(
        wait_for(Duration::from_secs(20), || blocked_on_a_pipe(pid)),
        "the stream did not start"
    );
    signal(etcd_pid, "STOP");
    let stopped = Instant::now();
    // Now drain: what was in flight arrives, then nothing.
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
        sink.len()
    });
    let out = saving.finish(Some(Duration::from_secs(30)));
    let took = stopped.elapsed();
    signal(etcd_pid, "CONT");
    let got = reader.join().expect("join");
    eprintln!("{took:.1?} after SIGSTOP, {got} bytes through: {out:?}");
    out.fails(3)
        .one_line_error("the server stopped answering: nothing received for ")
        .stderr_contains("--keepalive-timeout 2s");
    assert!(!out.stderr.contains("h2 protocol error"), "{out:?}");
    assert!(got < 32 << 20, "the whole snapshot arrived ({got} bytes)");
    assert_eq!(only_files(dir.path()), Vec::<String>::new());
}
