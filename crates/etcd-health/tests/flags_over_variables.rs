//! Any flag on the command line beats any `ETCDCTL_*` variable (docs/design.md), shown end to end
//! against a real etcd 3.5 with mutual TLS and authentication.
//!
//! Why: `ETCDCTL_PASSWORD` used to beat an explicit `--password-file` (issue 11): a cron job's
//! environment silently overrode the file its command line named. Each case sets a variable and
//! the competing flag to different values, one of them wrong, both ways round: the flag's value
//! is the one used, whichever is right. The pure resolution of every pair is unit-tested in
//! etcd-common (`conn.rs`); this shows the tool as a user runs it. No password ever shows in the
//! output.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_test_support::{Cluster, Run, Tool, Version, ROOT_PASSWORD};
use std::path::Path;

/// Flags, variables, and the exit code they must give.
type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, i32);

/// A wrong password; it must never be printed either.
const WRONG: &str = "not-the-password";

/// `etcd-health ARGS` plus the given variables (nothing inherited: see `Tool`).
fn health_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Tool::new(env!("CARGO_BIN_EXE_etcd-health"))
        .args(args)
        .envs(env.iter().copied())
        .run()
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn every_flag_beats_its_variable_end_to_end() {
    let cluster = Cluster::builder(Version::V3_5).tls().auth().start();
    let tls = cluster.tls_files().expect("tls");
    let ep = cluster.host_ports()[0].clone();
    let (ca, cert, key) = (path(&tls.ca), path(&tls.client_cert), path(&tls.client_key));
    let (other_ca, other_cert, other_key) = (
        path(&tls.other_ca),
        path(&tls.other_client_cert),
        path(&tls.other_client_key),
    );
    let right_file = cluster.dir().join("right-password");
    let wrong_file = cluster.dir().join("wrong-password");
    std::fs::write(&right_file, format!("{ROOT_PASSWORD}\n")).unwrap();
    std::fs::write(&wrong_file, format!("{WRONG}\n")).unwrap();
    let (right_file, wrong_file) = (path(&right_file), path(&wrong_file));
    let root_right = format!("root:{ROOT_PASSWORD}");
    let root_wrong = format!("root:{WRONG}");
    let good_tls = [
        "--endpoints",
        &ep,
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let with_tls = |extra: &[&str]| -> Vec<String> {
        good_tls
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    // Exit 2 with --user: etcd refused the password.
    let cases: Vec<Case> = vec![
        // The case, and the reverse: the file named on the command line is used.
        (
            with_tls(&["--user", "root", "--password-file", &right_file]),
            vec![("ETCDCTL_PASSWORD", WRONG)],
            0,
        ),
        (
            with_tls(&["--user", "root", "--password-file", &wrong_file]),
            vec![("ETCDCTL_PASSWORD", ROOT_PASSWORD)],
            2,
        ),
        (
            with_tls(&["--user", "root", "--password-file", &right_file]),
            vec![("ETCDCTL_PASSWORD_FILE", &wrong_file)],
            0,
        ),
        (
            with_tls(&["--user", "root", "--password-file", &wrong_file]),
            vec![("ETCDCTL_PASSWORD_FILE", &right_file)],
            2,
        ),
        // --user NAME:PASSWORD against the variables.
        (
            with_tls(&["--user", &root_right]),
            vec![("ETCDCTL_PASSWORD", WRONG), ("ETCDCTL_USER", &root_wrong)],
            0,
        ),
        (
            with_tls(&["--user", &root_wrong]),
            vec![("ETCDCTL_PASSWORD", ROOT_PASSWORD)],
            2,
        ),
        // A password flag against ETCDCTL_USER=NAME:PASSWORD and ETCDCTL_PASSWORD.
        (
            with_tls(&["--password-file", &right_file]),
            vec![("ETCDCTL_USER", &root_wrong), ("ETCDCTL_PASSWORD", WRONG)],
            0,
        ),
        (
            with_tls(&["--password-file", &wrong_file]),
            vec![("ETCDCTL_USER", &root_right)],
            2,
        ),
        // No flag: the variables apply (so the cases above prove something).
        (
            with_tls(&[]),
            vec![
                ("ETCDCTL_USER", "root"),
                ("ETCDCTL_PASSWORD", ROOT_PASSWORD),
            ],
            0,
        ),
        (
            with_tls(&[]),
            vec![
                ("ETCDCTL_USER", "root"),
                ("ETCDCTL_PASSWORD_FILE", &wrong_file),
            ],
            2,
        ),
        // TLS files, endpoints and timeouts: wrong variables lose to right flags, and the reverse.
        (
            with_tls(&[
                "--dial-timeout",
                "3s",
                "--command-timeout",
                "9s",
                "--insecure-skip-tls-verify=false",
                "--insecure-transport=false",
            ]),
            vec![
                ("ETCDCTL_CACERT", &other_ca),
                ("ETCDCTL_CERT", &other_cert),
                ("ETCDCTL_KEY", &other_key),
                ("ETCDCTL_ENDPOINTS", "127.0.0.1:1"),
                ("ETCDCTL_DIAL_TIMEOUT", "soon"),
                ("ETCDCTL_COMMAND_TIMEOUT", "0s"),
                ("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "maybe"),
                ("ETCDCTL_INSECURE_TRANSPORT", "maybe"),
            ],
            0,
        ),
        (
            vec![
                "--endpoints".into(),
                ep.clone(),
                "--cacert".into(),
                other_ca.clone(),
            ],
            vec![
                ("ETCDCTL_CACERT", &ca),
                ("ETCDCTL_CERT", &cert),
                ("ETCDCTL_KEY", &key),
            ],
            1,
        ),
        (
            with_tls(&["--insecure-skip-tls-verify=false", "--cacert", &other_ca]),
            vec![("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true")],
            1,
        ),
        (
            vec![
                "--endpoints".into(),
                "127.0.0.1:1".into(),
                "--dial-timeout".into(),
                "1s".into(),
            ],
            vec![
                ("ETCDCTL_ENDPOINTS", &ep),
                ("ETCDCTL_CACERT", &ca),
                ("ETCDCTL_CERT", &cert),
                ("ETCDCTL_KEY", &key),
            ],
            1,
        ),
    ];
    for (args, env, code) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = health_env(&args, env);
        assert_eq!(out.code, *code, "{args:?} {env:?}: {out:?}");
        for secret in [ROOT_PASSWORD, WRONG] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{args:?} {env:?}: {out:?}"
            );
        }
        if *code == 2 {
            assert!(
                out.stderr
                    .contains("authentication failed for user \"root\""),
                "{args:?} {env:?}: {out:?}"
            );
        }
    }

    // -w/--write-out against ETCDCTL_WRITE_OUT, both ways.
    let out = health_env(
        &with_ref(&good_tls, &["-w", "json"]),
        &[("ETCDCTL_WRITE_OUT", "bogus")],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.trim_start().starts_with('['), "{out:?}");
    let out = health_env(
        &with_ref(&good_tls, &["-w", "simple"]),
        &[("ETCDCTL_WRITE_OUT", "json")],
    );
    assert!(out.stdout.contains(" is healthy: "), "{out:?}");
}

/// `base` followed by `extra`.
fn with_ref<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}
