//! etcd-health against real etcd servers of every version of the matrix (3.4.23, 3.5.1, Debian
//! sid's 3.5.x when installed, 3.6.x, 3.7.x), compared with the real etcdctl of the same version.
//! The tests of our own behaviour (dead endpoints, `--wait`, variables, flags) run on one version.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{etcd_matrix, Cluster, Run, Tool, Version, READER_PASSWORD, ROOT_PASSWORD};
use std::process::Command;
use std::time::{Duration, Instant};

/// `etcd-health ARGS` plus the given variables (nothing inherited: see `Tool`).
fn health_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Tool::new(env!("CARGO_BIN_EXE_etcd-health"))
        .args(args)
        .envs(env.iter().copied())
        .run()
}

fn health(args: &[&str]) -> Run {
    health_env(args, &[])
}

/// Replaces Go durations (`1.2ms`, `850µs`, `1m5.2s`) with `T`, so two runs compare equal.
fn without_durations(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_token = i == 0 || !chars[i - 1].is_alphanumeric();
        if starts_token && chars[i].is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || chars[j] == '.'
                    || matches!(chars[j], 'n' | 'µ' | 'm' | 's' | 'h'))
            {
                j += 1;
            }
            let token: String = chars[i..j].iter().collect();
            if token.ends_with('s') && (j == chars.len() || !chars[j].is_alphanumeric()) {
                out.push('T');
                i = j;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// etcdctl's stdout and stderr together without its zap log lines (`{"level":"warn",...}`, which
/// etcdctl 3.6 prints when a request is retried).
fn etcdctl_text(out: &std::process::Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    without_log_lines(&all)
}

/// `text` without zap's JSON log lines.
fn without_log_lines(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("{\"level\":"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A table with etcdctl 3.5.1's ASCII rules (`+-|`), whichever style drew it: etcdctl 3.7 and
/// Debian's 3.5.30 draw with box characters (`┌─┬│`).
fn ascii_rules(table: &str) -> String {
    table
        .chars()
        .map(|c| match c {
            '─' => '-',
            '│' => '|',
            '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' => '+',
            other => other,
        })
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The keys etcdctl prints, without the measured `took`.
fn etcdctl_view(v: &serde_json::Value) -> Vec<(String, bool, bool)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap_or_default().to_string(),
                e["health"].as_bool().unwrap_or_default(),
                e.get("error").is_some(),
            )
        })
        .collect()
}

fn single_member_matches_etcdctl(version: Version) {
    let cluster = Cluster::builder(version).start();
    let ep = cluster.host_ports()[0].clone();

    let ours = health(&["--endpoints", &ep]);
    assert_eq!(ours.code, 0, "{ours:?}");
    assert!(ours.stderr.is_empty(), "{ours:?}");
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &ep, "endpoint", "health"])
        .output()
        .expect("etcdctl");
    // etcdctl 3.4 prints the healthy line on stderr, 3.5+ on stdout; ours follows 3.5.
    assert!(theirs.status.success(), "{version}: {theirs:?}");
    assert_eq!(
        without_durations(&ours.stdout),
        without_durations(&etcdctl_text(&theirs)),
        "{version}"
    );

    let ours = health(&["--endpoints", &ep, "-w", "json"]);
    assert_eq!(ours.code, 0, "{ours:?}");
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &ep, "endpoint", "health", "-w", "json"])
        .output()
        .expect("etcdctl");
    let (ours_json, theirs_json) = (
        json(&ours.stdout),
        json(&String::from_utf8_lossy(&theirs.stdout)),
    );
    assert_eq!(
        etcdctl_view(&ours_json),
        etcdctl_view(&theirs_json),
        "{version}"
    );
    let first = &ours_json[0];
    assert_eq!(
        first["version"].as_str(),
        cluster.version().server_version().as_deref(),
        "{first}"
    );
    assert!(
        first["memberId"]
            .as_str()
            .is_some_and(|id| u64::from_str_radix(id, 16).is_ok()),
        "{first}"
    );
    assert_eq!(first["isLeader"], true);
    assert!(first["revision"].as_i64().is_some_and(|r| r >= 1));
    assert!(first["dbSize"].as_i64().is_some_and(|s| s > 0));
    assert_eq!(first["isLearner"], false);
    // 3.6+ report the storage version of the database; ours adds it as etcdctl's status shows it.
    let status = cluster
        .etcdctl_raw()
        .args(["--endpoints", &ep, "endpoint", "status", "-w", "json"])
        .output()
        .expect("etcdctl");
    let status = json(&String::from_utf8_lossy(&status.stdout));
    assert_eq!(
        first.get("storageVersion"),
        status[0]["Status"].get("storageVersion"),
        "{version}: {first}"
    );
    assert_eq!(
        first.get("storageVersion").is_some(),
        version >= Version::V3_6,
        "{version}: {first}"
    );

    let ours = health(&["--endpoints", &ep, "-w", "table"]);
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &ep, "endpoint", "health", "-w", "table"])
        .output()
        .expect("etcdctl");
    // Ours keeps 3.5.1's ASCII rules on every version: the cells are etcdctl's.
    let squeeze = |s: &str| ascii_rules(&without_durations(s)).replace(['-', ' '], "");
    assert_eq!(
        squeeze(&ours.stdout),
        squeeze(&String::from_utf8_lossy(&theirs.stdout)),
        "{version}"
    );
    assert_eq!(ours.stdout.lines().count(), 5, "{}", ours.stdout);
    assert!(ours.stdout.starts_with("+---"), "{}", ours.stdout);
}

etcd_matrix!(single_member_matches_etcdctl);

fn mutual_tls_and_a_wrong_ca(version: Version) {
    let cluster = Cluster::builder(version).tls().start();
    let tls = cluster.tls_files().expect("tls");
    let ep = cluster.host_ports()[0].clone();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (ca, cert, key) = (path(&tls.ca), path(&tls.client_cert), path(&tls.client_key));

    let ok = health(&[
        "--endpoints",
        &ep,
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    assert_eq!(ok.code, 0, "{version:?}: {ok:?}");
    for (cert, key) in [
        (&tls.client_cert, &tls.client_key_sec1),
        (&tls.client_rsa_cert, &tls.client_rsa_key),
        (&tls.client_rsa_cert, &tls.client_rsa_key_pkcs8),
    ] {
        let ok = health(&[
            "--endpoints",
            &ep,
            "--cacert",
            &ca,
            "--cert",
            &path(cert),
            "--key",
            &path(key),
        ]);
        assert_eq!(ok.code, 0, "{version:?} {key:?}: {ok:?}");
    }
    let url = cluster.endpoints()[0].clone();
    assert!(url.starts_with("https://"));
    let ok = health(&[
        "--endpoints",
        &url,
        "--insecure-skip-tls-verify",
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(
        ok.stderr.contains("Warning: --insecure-skip-tls-verify"),
        "{ok:?}"
    );

    let wrong = health(&[
        "--endpoints",
        &ep,
        "--cacert",
        &path(&tls.other_ca),
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong.stderr.contains("TLS handshake") && wrong.stderr.contains("--cacert"),
        "{wrong:?}"
    );
    assert_eq!(
        wrong.stderr.lines().count(),
        2,
        "one line per endpoint and the verdict: {wrong:?}"
    );

    let no_cert = health(&[
        "--endpoints",
        &ep,
        "--cacert",
        &ca,
        "--command-timeout",
        "2s",
    ]);
    assert_eq!(no_cert.code, 1, "{no_cert:?}");
    assert!(no_cert.stderr.contains("is unhealthy"), "{no_cert:?}");
}

etcd_matrix!(mutual_tls_and_a_wrong_ca);

fn auth_reader_is_healthy_and_a_wrong_password_is_an_auth_error(version: Version) {
    let cluster = Cluster::builder(version).auth().start();
    let ep = cluster.host_ports()[0].clone();
    let reader = format!("reader:{READER_PASSWORD}");
    let ok = health(&["--endpoints", &ep, "--user", &reader]);
    assert_eq!(ok.code, 0, "{version:?}: {ok:?}");
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &ep, "--user", &reader, "endpoint", "health"])
        .output()
        .expect("etcdctl");
    assert!(
        theirs.status.success(),
        "etcdctl agrees that a reader sees a healthy endpoint"
    );

    let root_env = health_env(
        &["--endpoints", &ep],
        &[
            ("ETCDCTL_USER", "root"),
            ("ETCDCTL_PASSWORD", ROOT_PASSWORD),
        ],
    );
    assert_eq!(root_env.code, 0, "{root_env:?}");

    let bad = health(&["--endpoints", &ep, "--user", "root:wrong", "-w", "json"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("authentication failed"), "{bad:?}");
    assert!(
        !bad.stderr.contains("wrong") && !bad.stdout.contains("wrong"),
        "the password never prints: {bad:?}"
    );
    let report = json(&bad.stdout);
    assert_eq!(report[0]["errorKind"], "auth", "{report}");
}

etcd_matrix!(auth_reader_is_healthy_and_a_wrong_password_is_an_auth_error);

fn nospace_alarm_is_unhealthy(version: Version) {
    let cluster = Cluster::builder(version)
        .arg("--quota-backend-bytes=1048576")
        .start();
    let ep = cluster.host_ports()[0].clone();
    let value = "x".repeat(64 * 1024);
    for i in 0..200 {
        let out = cluster
            .etcdctl()
            .args(["put", &format!("fill-{i}"), &value])
            .output()
            .expect("etcdctl");
        if !out.status.success() {
            assert!(String::from_utf8_lossy(&out.stderr).contains("database space exceeded"));
            break;
        }
    }
    let ours = health(&["--endpoints", &ep]);
    assert_eq!(ours.code, 1, "{ours:?}");
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &ep, "endpoint", "health"])
        .output()
        .expect("etcdctl");
    if version == Version::V3_4 {
        // etcdctl 3.4 lists no alarms: it calls a NOSPACE member healthy. Ours is 3.5's check.
        assert_eq!(theirs.status.code(), Some(0), "{version}: {theirs:?}");
    } else {
        assert_eq!(theirs.status.code(), Some(1), "{version}: {theirs:?}");
        assert_eq!(
            ours.stderr,
            without_log_lines(&String::from_utf8_lossy(&theirs.stderr)),
            "{version}: same lines as etcdctl"
        );
    }
    assert!(
        ours.stderr.contains("Active Alarm(s): NOSPACE "),
        "{ours:?}"
    );
    let ours = health(&["--endpoints", &ep, "-w", "json"]);
    assert_eq!(json(&ours.stdout)[0]["alarms"][0], "NOSPACE");
}

etcd_matrix!(nospace_alarm_is_unhealthy);

#[test]
fn a_dead_endpoint_among_live_ones() {
    let cluster = Cluster::builder(Version::V3_5).start();
    let live = cluster.host_ports()[0].clone();
    let dead = format!("127.0.0.1:{}", etcd_test_support::free_port());
    let out = health(&["--endpoints", &format!("{live},{dead}"), "-w", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = json(&out.stdout);
    assert_eq!(
        etcdctl_view(&report),
        vec![(live.clone(), true, false), (dead.clone(), false, true)]
    );
    assert_eq!(report[1]["errorKind"], "unreachable");
    assert_eq!(out.stderr, "Error: unhealthy cluster\n");
    let quorum = health(&[
        "--endpoints",
        &format!("{live},{dead}"),
        "--min-healthy",
        "1",
    ]);
    assert_eq!(quorum.code, 7, "{quorum:?}");
}

/// Three voting members compared with etcdctl `--cluster`, then a learner joins (etcdctl calls
/// it unhealthy; it is healthy to us and does not count towards the quorum), then members die.
fn three_members_with_cluster_then_a_learner_then_degraded_then_lost(version: Version) {
    // Without the check etcd accepts the learner at once instead of 5 s after the start.
    let mut cluster = Cluster::builder(version)
        .members(3)
        .arg("--strict-reconfig-check=false")
        .start();
    let first = cluster.host_ports()[0].clone();
    let all = health(&["--endpoints", &first, "--cluster", "-w", "json"]);
    assert_eq!(all.code, 0, "{all:?}");
    let report = json(&all.stdout);
    let mut found: Vec<String> = report
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap_or_default().to_string())
        .collect();
    found.sort();
    let mut expected = cluster.endpoints();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(
        report
            .as_array()
            .map(|a| a.iter().filter(|e| e["isLeader"] == true).count()),
        Some(1)
    );
    let theirs = cluster
        .etcdctl_raw()
        .args([
            "--endpoints",
            &first,
            "endpoint",
            "health",
            "--cluster",
            "-w",
            "json",
        ])
        .output()
        .expect("etcdctl");
    assert!(theirs.status.success(), "etcdctl --cluster: {theirs:?}");
    let mut theirs = etcdctl_view(&json(&String::from_utf8_lossy(&theirs.stdout)));
    theirs.sort();
    let mut ours = etcdctl_view(&report);
    ours.sort();
    assert_eq!(ours, theirs, "{version}");

    let learner = cluster.add_learner();
    let learner_url = cluster.endpoints()[learner].clone();
    let all = health(&["--endpoints", &first, "--cluster", "-w", "json"]);
    assert_eq!(
        all.code, 0,
        "{version}: a learner is not a failure: {all:?}"
    );
    let report = json(&all.stdout);
    assert_eq!(report.as_array().map(Vec::len), Some(4), "{report}");
    let entry = report
        .as_array()
        .and_then(|a| a.iter().find(|e| e["endpoint"] == learner_url.as_str()))
        .unwrap_or_else(|| panic!("{version}: the learner is checked too: {report}"));
    assert_eq!(
        (&entry["health"], &entry["isLearner"], &entry["isLeader"]),
        (&true.into(), &true.into(), &false.into()),
        "{entry}"
    );
    assert!(entry.get("error").is_none(), "{entry}");
    let simple = health(&["--endpoints", &first, "--cluster"]);
    assert_eq!(simple.code, 0, "{simple:?}");
    let leader = report
        .as_array()
        .and_then(|a| a.iter().find(|e| e["isLeader"] == true))
        .and_then(|e| e["memberId"].as_str())
        .unwrap_or_default()
        .to_string();
    let learner_line =
        format!("{learner_url} is healthy: learner, follows leader {leader}: took = T");
    let ours_lines: Vec<String> = without_durations(&simple.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(ours_lines.contains(&learner_line), "{version}: {simple:?}");
    // etcdctl of every version calls a learner unhealthy ("rpc not supported for learner") and
    // the cluster with it; the voting members' lines are the same as ours.
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &first, "endpoint", "health", "--cluster"])
        .output()
        .expect("etcdctl");
    assert_eq!(theirs.status.code(), Some(1), "{version}: {theirs:?}");
    let theirs_text = without_durations(&etcdctl_text(&theirs));
    let mut theirs_lines: Vec<&str> = theirs_text.lines().collect();
    theirs_lines.sort();
    let learner_prefix = format!("{learner_url} ");
    let position = theirs_lines
        .iter()
        .position(|l| l.starts_with(&learner_prefix))
        .unwrap_or_else(|| panic!("{version}: no learner line: {theirs_text}"));
    assert_eq!(
        theirs_lines.remove(position),
        format!(
            "{learner_url} is unhealthy: failed to commit proposal: etcdserver: rpc not supported for learner"
        ),
        "{version}"
    );
    let mut voters: Vec<&str> = ours_lines
        .iter()
        .map(String::as_str)
        .filter(|l| *l != learner_line)
        .collect();
    voters.push("Error: unhealthy cluster");
    voters.sort();
    assert_eq!(voters, theirs_lines, "{version}");
    // The learner alone: healthy to us.
    let alone = health(&["--endpoints", &learner_url]);
    assert_eq!(alone.code, 0, "{version}: {alone:?}");
    // A learner cannot list the members (etcdctl fails too): one line that says what to do.
    let listed = health(&["--endpoints", &learner_url, "--cluster"]);
    assert_eq!(listed.code, 1, "{version}: {listed:?}");
    assert_eq!(listed.stderr.lines().count(), 1, "{listed:?}");
    assert!(
        listed.stderr.contains("give a voting member's endpoint"),
        "{listed:?}"
    );
    let theirs = cluster
        .etcdctl_raw()
        .args(["--endpoints", &learner_url, "--command-timeout=1s"])
        .args(["endpoint", "health", "--cluster"])
        .output()
        .expect("etcdctl");
    assert!(!theirs.status.success(), "{version}: {theirs:?}");

    cluster.kill_member(2);
    let args = [
        "--endpoints",
        &first,
        "--cluster",
        "--command-timeout",
        "2s",
    ];
    let strict = health(&args);
    assert_eq!(strict.code, 1, "{strict:?}");
    let mut quorum_args = args.to_vec();
    quorum_args.extend(["--min-healthy", "quorum"]);
    let degraded = health(&quorum_args);
    assert_eq!(degraded.code, 7, "{degraded:?}");
    assert!(
        degraded.stderr.contains("degraded cluster: 2 of 3 healthy"),
        "{degraded:?}"
    );

    cluster.kill_member(1);
    let lost = health(&quorum_args);
    assert_eq!(lost.code, 1, "{lost:?}");
    assert!(
        lost.stderr.contains("unhealthy cluster: 0 of 3 healthy"),
        "{lost:?}"
    );
}

etcd_matrix!(three_members_with_cluster_then_a_learner_then_degraded_then_lost);

#[test]
fn wait_for_an_etcd_that_starts_late() {
    let cluster = Cluster::builder(Version::V3_5)
        .start_late(Duration::from_secs(3))
        .start();
    let ep = cluster.host_ports()[0].clone();
    let start = Instant::now();
    let out = health(&["--endpoints", &ep, "--wait", "30s", "--progress"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("waiting: 0 of 1 endpoints healthy"),
        "{out:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let late = health(&["--endpoints", "127.0.0.1:1", "--wait", "1s", "--quiet"]);
    assert_eq!(late.code, 1, "{late:?}");
    assert!(!late.stderr.contains("waiting"), "{late:?}");
}

#[test]
fn environment_alone_and_overridden_by_flags() {
    let cluster = Cluster::builder(Version::V3_5).tls().start();
    let tls = cluster.tls_files().expect("tls");
    let ep = cluster.host_ports()[0].clone();
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (ca, cert, key) = (s(&tls.ca), s(&tls.client_cert), s(&tls.client_key));
    let env = [
        ("ETCDCTL_API", "3"),
        ("ETCDCTL_ENDPOINTS", ep.as_str()),
        ("ETCDCTL_CACERT", ca.as_str()),
        ("ETCDCTL_CERT", cert.as_str()),
        ("ETCDCTL_KEY", key.as_str()),
        ("ETCDCTL_WRITE_OUT", "json"),
        ("ETCDCTL_SOMETHING_ELSE", "ignored"),
    ];
    let alone = health_env(&[], &env);
    assert_eq!(alone.code, 0, "{alone:?}");
    assert!(
        alone.stdout.starts_with('['),
        "ETCDCTL_WRITE_OUT applies: {alone:?}"
    );

    let mut wrong_env = env.to_vec();
    wrong_env[1] = ("ETCDCTL_ENDPOINTS", "127.0.0.1:1");
    wrong_env[2] = ("ETCDCTL_CACERT", "/nonexistent/ca.pem");
    let overridden = health_env(
        &["--endpoints", &ep, "--cacert", &ca, "-w", "simple"],
        &wrong_env,
    );
    assert_eq!(overridden.code, 0, "{overridden:?}");
    assert!(overridden.stdout.contains("is healthy"), "{overridden:?}");

    let bad_env = health_env(&[], &wrong_env);
    assert_eq!(
        bad_env.code, 2,
        "a missing CA file is a usage error: {bad_env:?}"
    );
    assert!(
        bad_env.stderr.contains("/nonexistent/ca.pem"),
        "{bad_env:?}"
    );
}

#[test]
fn bad_flags_fail_before_any_connection() {
    for (args, needle) in [
        (vec!["--endpoints", "127.0.0.1"], "missing port"),
        (vec!["--dial-timeout", "-2s"], "negative"),
        (
            vec!["--cert", "/nonexistent.crt", "--key", "/nonexistent.key"],
            "/nonexistent.crt",
        ),
        (vec!["--nope"], "unknown flag --nope"),
        (vec!["--min-healthy", "zero"], "--min-healthy"),
    ] {
        let start = Instant::now();
        health(&args).fails(2).one_line_error(needle);
        assert!(start.elapsed() < Duration::from_secs(1), "no network wait");
    }
}

#[test]
fn core_dumps_are_off_in_the_running_tool() {
    // An endpoint that accepts the connection and never answers keeps the tool running.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let endpoint = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcd-health"))
        .args(["--endpoints", &endpoint])
        .args(["--dial-timeout", "60s", "--command-timeout", "60s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let connected = loop {
        match listener.accept() {
            Ok(conn) => break Some(conn),
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break None,
        }
    };
    // Read while the tool is surely past its first line of main: it has dialled.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    assert!(connected.is_some(), "etcd-health never connected");
    let limits = limits.expect("read /proc/PID/limits");
    let core: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .expect("core line")
        .split_whitespace()
        .collect();
    assert_eq!(&core[..2], ["0", "0"], "soft and hard core limit: {limits}");
}
