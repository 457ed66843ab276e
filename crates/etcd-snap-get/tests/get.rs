#![allow(clippy::expect_used, clippy::unwrap_used)]
//! `etcd-snap-get` against a Kubernetes-shaped snapshot of a real etcd: every object comes back
//! as the manifest that was written (server fields stripped), byte for byte with `-o raw`,
//! through pipes too; encrypted values are reported, never printed; bad input fails the contract
//! way.

mod fixture;

use etcd_test_support::{etcd_matrix, Version};
use fixture::{run, Fixture};
use serde_json::Value;
use std::path::Path;

const GET: &str = env!("CARGO_BIN_EXE_etcd-snap-get");

fn stripped(manifest: &Value) -> Value {
    let mut v = manifest.clone();
    k8s_codec::strip_server_fields(&mut v);
    v
}

/// Runs and expects success; returns stdout as text.
#[track_caller]
fn ok(args: &[&str], stdin: Option<&Path>) -> String {
    let out = run(GET, args, stdin);
    out.succeeds();
    String::from_utf8(out.stdout_bytes).unwrap()
}

/// Runs and expects one `Error:` line with `code` and nothing on stdout; returns the line.
#[track_caller]
fn fails(args: &[&str], code: i32) -> String {
    let out = run(GET, args, None);
    out.fails(code).one_line_error("");
    out.stderr
}

/// Every object: -o json equals the stripped original; default yaml is k8s-codec's YAML of it;
/// --keep-server-fields keeps them and fills resourceVersion; -o raw is the stored bytes.
fn check_objects(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    assert!(fx.objects.len() >= 7, "{}", fx.objects.len());
    for o in &fx.objects {
        let ns = o.namespace.clone().unwrap_or_else(|| "default".into());
        let args = [snap, o.resource, &o.name, "-n", &ns];
        let got: Value =
            serde_json::from_str(&ok(&[&args[..], &["-o", "json"]].concat(), None)).unwrap();
        assert_eq!(got, stripped(&o.manifest), "{}", o.key);
        let yaml = ok(&args, None);
        assert_eq!(
            yaml.trim_end(),
            k8s_codec::to_yaml(&stripped(&o.manifest)).trim_end(),
            "{}",
            o.key
        );
        let slash = format!("{}/{}", o.resource, o.name);
        let got: Value =
            serde_json::from_str(&ok(&[snap, &slash, "-n", &ns, "-o", "json"], None)).unwrap();
        assert_eq!(got, stripped(&o.manifest), "{slash}");
        let kept: Value = serde_json::from_str(&ok(
            &[&args[..], &["-o", "json", "--keep-server-fields"]].concat(),
            None,
        ))
        .unwrap();
        let mut want = o.manifest.clone();
        want["metadata"]["resourceVersion"] = Value::String(fx.mod_revision[&o.key].to_string());
        assert_eq!(kept, want, "{} --keep-server-fields", o.key);
        let (code, raw, err) = run(GET, &[&args[..], &["-o", "raw"]].concat(), None).into_parts();
        assert_eq!(code, 0, "{err}");
        assert_eq!(raw, fx.live[&o.key], "{} -o raw", o.key);
    }
}

/// Every object back, from a snapshot of etcd 3.5, 3.6 (what kubeadm installs today) and 3.7.
fn objects_come_back(v: Version) {
    let fx = fixture::build(v, "/registry");
    etcd_test_support::cases(
        &fx,
        &[
            ("every object, every output", check_objects),
            ("names, singulars, kinds and groups", by_any_name),
            ("lists", lists),
            ("encrypted values", encrypted_values),
            ("--prefix", raw_prefix),
            ("deleted objects and older revisions", deleted_and_old),
            ("bad input", bad_input),
            ("-o raw on a terminal", raw_on_a_terminal),
        ],
    );
}

/// Short names, singulars, kinds and groups; the custom resource by its plural alone; the
/// updated deployment in its latest version; the default namespace; cluster-scoped objects.
fn by_any_name(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    let frontend = fx.objects.iter().find(|o| o.name == "frontend").unwrap();
    for resource in [
        "deploy",
        "deployment",
        "deployments",
        "deployments.apps",
        "Deployment",
    ] {
        let got: Value = serde_json::from_str(&ok(
            &[snap, resource, "frontend", "-n", "web", "-o", "json"],
            None,
        ))
        .unwrap();
        assert_eq!(got, stripped(&frontend.manifest), "{resource}");
    }
    // The updated deployment comes back in its latest version.
    assert_eq!(frontend.manifest["spec"]["replicas"], 5);
    let nightly = fx.objects.iter().find(|o| o.name == "nightly").unwrap();
    let got: Value = serde_json::from_str(&ok(
        &[snap, "crontabs", "nightly", "-n", "web", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(got, stripped(&nightly.manifest));
    let svc = fx
        .objects
        .iter()
        .find(|o| o.resource == "services")
        .unwrap();
    let got: Value =
        serde_json::from_str(&ok(&[snap, "svc", "kubernetes", "-o", "json"], None)).unwrap();
    assert_eq!(got, stripped(&svc.manifest), "default namespace");
    let ns: Value = serde_json::from_str(&ok(
        &[snap, "ns", "web", "-n", "elsewhere", "-o", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(ns["metadata"]["name"], "web", "cluster-scoped ignores -n");
}

/// Lists: `-A` table rows, a `-n` JSON List of exactly that namespace's live objects, a list
/// with encrypted items (the others printed, a warning each, exit 1), an empty namespace.
fn lists(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    let table = ok(&[snap, "secrets", "-A"], None);
    let secrets: Vec<&String> = fx
        .live
        .keys()
        .filter(|k| k.starts_with("/registry/secrets/"))
        .collect();
    assert_eq!(table.lines().count(), secrets.len() + 1, "{table}");
    assert!(table.starts_with("NAMESPACE"), "{table}");
    assert!(
        table.contains("encrypted (aescbc:key1)")
            && table.contains("encrypted (secretbox:sb-2026)"),
        "{table}"
    );
    let (code, out, err) = run(GET, &[snap, "cm", "-n", "bulk", "-o", "json"], None).into_parts();
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(list["kind"], "List");
    let want: Vec<Value> = fx
        .objects
        .iter()
        .filter(|o| o.resource == "configmaps" && o.namespace.as_deref() == Some("bulk"))
        .map(|o| stripped(&o.manifest))
        .collect();
    assert_eq!(list["items"], Value::Array(want));
    // A list with an encrypted item: the others printed, a warning each, exit 1.
    let (code, out, err) =
        run(GET, &[snap, "secrets", "-n", "web", "-o", "yaml"], None).into_parts();
    assert_eq!(code, 1, "{err}");
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("apiVersion: v1\n"));
    assert_eq!(
        err.lines().filter(|l| l.starts_with("Warning: ")).count(),
        2,
        "{err}"
    );
    let broken = fixture::run_stderr_broken(GET, &[snap, "secrets", "-n", "web", "-o", "yaml"]);
    assert_eq!(broken, 1, "a broken stderr is no reason to panic");
    let empty = run(GET, &[snap, "pods", "-n", "nowhere"], None);
    assert_eq!((empty.code, empty.stdout_bytes.is_empty()), (0, true));
    assert!(
        empty
            .stderr
            .contains("No resources found in nowhere namespace."),
        "{}",
        empty.stderr
    );
}

/// Encrypted values: reported with provider and key, never printed mangled; `-o raw` works.
fn encrypted_values(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    for (key, (provider, keyname)) in &fx.encrypted {
        let rest: Vec<&str> = key.trim_start_matches("/registry/").split('/').collect();
        let err = fails(&[snap, rest[0], rest[2], "-n", rest[1]], 1);
        assert!(
            err.contains(&format!("stored encrypted with {provider} key {keyname}")),
            "{err}"
        );
        assert!(err.contains("EncryptionConfiguration"), "{err}");
        let (code, raw, _) = run(
            GET,
            &[snap, rest[0], rest[2], "-n", rest[1], "-o", "raw"],
            None,
        )
        .into_parts();
        assert_eq!((code, &raw), (0, &fx.live[key]));
    }
}

/// `--prefix`: raw keys, one object when exactly named.
fn raw_prefix(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    let table = ok(&[snap, "--prefix", "/other/"], None);
    assert!(table.contains("/other/app/config"), "{table}");
    let (code, raw, _) = run(
        GET,
        &[snap, "--prefix", "/registry/weird", "-o", "raw"],
        None,
    )
    .into_parts();
    assert_eq!((code, raw.as_slice()), (0, &b"not an object"[..]));
    let err = fails(&[snap, "--prefix", "/registry/weird"], 1);
    assert!(err.contains("not a Kubernetes object"), "{err}");
    fails(&[snap, "--prefix", "/registry/", "-o", "raw"], 2);
}

/// Deleted objects and older revisions are gone.
fn deleted_and_old(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    for key in &fx.deleted {
        let rest: Vec<&str> = key.trim_start_matches("/registry/").split('/').collect();
        let err = fails(&[snap, rest[0], rest[2], "-n", rest[1]], 1);
        assert!(
            err.contains("not found") && err.contains(key.as_str()),
            "{err}"
        );
    }
    let pods = ok(&[snap, "po", "-A"], None);
    assert!(!pods.contains("deleted-pod"), "{pods}");
}

/// Bad input: unknown objects and resources, usage errors, a damaged snapshot.
fn bad_input(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    let err = fails(&[snap, "crontabs", "nightly", "-n", "default"], 1);
    assert!(
        err.contains("crontabs \"nightly\" not found in namespace \"default\""),
        "{err}"
    );
    let none = run(GET, &[snap, "crontabs", "-n", "default"], None);
    assert_eq!(
        (none.code, none.stdout_bytes.is_empty()),
        (0, true),
        "{}",
        none.stderr
    );
    let err = fails(&[snap, "frobnicators"], 2);
    assert!(
        err.contains("unknown resource type \"frobnicators\""),
        "{err}"
    );
    let err = fails(&[snap, "pods", "missing", "-n", "default"], 1);
    assert!(
        err.contains("pods \"missing\" not found in namespace \"default\"")
            && err.contains("/registry/pods/default/missing"),
        "{err}"
    );
    fails(&[snap, "pods", "-o", "xml"], 2);
    fails(&[snap, "pods", "--bogus"], 2);
    fails(&[snap, "pods", "-n", "a", "-A"], 2);
    fails(&[snap], 2);
    fails(&[snap, "pods", "a", "b"], 2);
    fails(&[snap, "pods/a", "b"], 2);
    fails(&[snap, "pods", "-o", "raw"], 2);
    let bytes = std::fs::read(&fx.snap).unwrap();
    let truncated = fx.dir.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    fails(&[truncated.to_str().unwrap(), "pods", "-A"], 4);
    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 0x40;
    let corrupt = fx.dir.path().join("flipped.db");
    std::fs::write(&corrupt, &flipped).unwrap();
    fails(&[corrupt.to_str().unwrap(), "pods", "-A"], 4);
    fails(&["/nonexistent/snap.db", "pods"], 2);
}

/// `-o raw` on a terminal is refused (exit 5), under a real pseudo-terminal.
fn raw_on_a_terminal(fx: &Fixture) {
    let snap = fx.snap.to_str().unwrap();
    let script = format!("{GET} {snap} secrets plain-secret -o raw; echo \"exit=$?\"");
    let out = fixture::sh_ok(&format!("script -qec '{script}' /dev/null"));
    assert!(
        out.contains("exit=5") && out.contains("refusing to write raw"),
        "{out}"
    );
}
etcd_matrix!(objects_come_back: V3_5, V3_6, V3_7);

#[test]
fn through_pipes_and_3_4() {
    let fx = fixture::build(Version::V3_4, "/registry");
    check_objects(&fx);
    let snap = fx.snap.to_str().unwrap();
    let (identity, recipient) = fixture::age_key(fx.dir.path());
    let zst = fx.dir.path().join("k8s.db.zst");
    let age = fx.dir.path().join("k8s.db.zst.age");
    fixture::sh_ok(&format!("zstd -q -c {snap} > {}", zst.display()));
    fixture::sh_ok(&format!(
        "zstd -q -c {snap} | age -r {recipient} > {}",
        age.display()
    ));
    let id = identity.to_str().unwrap();
    let frontend = fx.objects.iter().find(|o| o.name == "frontend").unwrap();
    for (args, stdin) in [
        (
            vec!["-", "deploy", "frontend", "-n", "web", "-o", "json"],
            Some(zst.as_path()),
        ),
        (
            vec![
                "-i", id, "-", "deploy", "frontend", "-n", "web", "-o", "json",
            ],
            Some(age.as_path()),
        ),
        (
            vec![
                "-i",
                id,
                age.to_str().unwrap(),
                "deploy",
                "frontend",
                "-n",
                "web",
                "-o",
                "json",
            ],
            None,
        ),
    ] {
        let got: Value = serde_json::from_str(&ok(&args, stdin)).unwrap();
        assert_eq!(got, stripped(&frontend.manifest), "{args:?}");
    }
    let (code, raw, err) = run(
        GET,
        &["-i", id, "-", "secret", "plain-secret", "-o", "raw"],
        Some(&age),
    )
    .into_parts();
    assert_eq!(code, 0, "{err}");
    let key = "/registry/secrets/default/plain-secret";
    assert_eq!(raw, fx.live[key]);
    // age input without -i is a usage error; a wrong key is an integrity error.
    let (code, _, err) = run(GET, &["-", "pods"], Some(&age)).into_parts();
    assert_eq!(code, 2, "{err}");
    let other = tempfile::tempdir().unwrap();
    let (wrong, _) = fixture::age_key(other.path());
    let (code, _, err) = run(
        GET,
        &["-i", wrong.to_str().unwrap(), "-", "pods"],
        Some(&age),
    )
    .into_parts();
    assert_eq!(code, 4, "{err}");
}
