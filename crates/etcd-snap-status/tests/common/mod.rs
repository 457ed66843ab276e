//! Helpers for the etcd-snap-status tests: running our binary, the reference `etcdutl`, saving
//! snapshots with the real `etcdctl`, layering them through the real `zstd` and `age`, and
//! corrupting them.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)] // a test fails by panicking

use etcd_test_support::{etcd_bin, Cluster, Tool, Version};
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Our binary.
pub const STATUS: &str = env!("CARGO_BIN_EXE_etcd-snap-status");

/// What a finished command printed: the one runner's result.
pub use etcd_test_support::Run as Out;

/// `p` as a `String` for command lines.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Our binary with `args` (nothing inherited: see `Tool`), `TMPDIR` = `tmp` when given.
pub fn status_cmd(args: &[&str], tmp: Option<&Path>) -> Tool {
    let mut tool = Tool::new(STATUS);
    if let Some(t) = tmp {
        tool.env("TMPDIR", t);
    }
    tool.args(args);
    tool
}

/// Runs our binary on `args` with stdin closed.
pub fn status(args: &[&str]) -> Out {
    status_cmd(args, None).run()
}

/// Runs our binary on `args` with the contents of `input` on stdin.
pub fn status_stdin(args: &[&str], input: &Path) -> Out {
    status_stdin_tmp(args, input, None)
}

/// Like [`status_stdin`], with `TMPDIR` = `tmp`.
pub fn status_stdin_tmp(args: &[&str], input: &Path, tmp: Option<&Path>) -> Out {
    status_cmd(args, tmp).stdin_file(input).run()
}

/// Runs a shell pipeline (`bash -o pipefail -c`) and returns its output.
pub fn sh(script: &str) -> Out {
    let mut bash = Command::new("bash");
    bash.args(["-o", "pipefail", "-c", script]);
    Tool::from_command(bash).run()
}

/// Runs a shell pipeline and panics unless it succeeds.
#[track_caller]
pub fn sh_ok(script: &str) -> String {
    let out = sh(script);
    assert_eq!(out.code, 0, "`{script}` failed: {out:?}");
    out.stdout
}

/// `etcdutl snapshot status FILE -w FORMAT` of etcd 3.5.1.
#[track_caller]
pub fn etcdutl_status(path: &Path, format: &str) -> String {
    reference_status(Version::V3_5, path, format)
}

/// `etcdctl snapshot status FILE -w FORMAT` of etcd 3.4.23.
#[track_caller]
pub fn etcdctl34_status(path: &Path, format: &str) -> String {
    reference_status(Version::V3_4, path, format)
}

/// What etcd `v` itself prints for `snapshot status FILE -w FORMAT`: its `etcdutl`, or for 3.4
/// (which has none) its `etcdctl` with `ETCDCTL_API=3`.
#[track_caller]
pub fn reference_status(v: Version, path: &Path, format: &str) -> String {
    let mut cmd = match v {
        Version::V3_4 => {
            let mut c = Command::new(etcd_bin(v, "etcdctl"));
            c.env("ETCDCTL_API", "3");
            c
        }
        _ => {
            let mut c = Command::new(etcd_bin(v, "etcdutl"));
            c.env_remove("ETCDCTL_API");
            c
        }
    };
    cmd.args(["snapshot", "status", &s(path), "-w", format]);
    let out = Tool::from_command(cmd).run();
    assert_eq!(
        out.code,
        0,
        "{v} snapshot status {}: {out:?}",
        path.display()
    );
    out.stdout
}

/// The `--as-etcdutl` value that reproduces etcd `v`'s `snapshot status` (3.4: 3.5's).
pub fn as_etcdutl(v: Version) -> &'static str {
    match v {
        Version::V3_4 | Version::V3_5 | Version::V3_5Sid => "3.5",
        Version::V3_6 => "3.6",
        Version::V3_7 => "3.7",
    }
}

/// Saves a snapshot of member 0 with this version's `etcdctl snapshot save` into `dir/name`.
#[track_caller]
pub fn save(cluster: &Cluster, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out =
        Tool::from_command(cluster.etcdctl_on(&[0], cluster.auth_enabled().then_some("root")))
            .args(["snapshot", "save", &s(&path)])
            .run();
    assert_eq!(out.code, 0, "etcdctl snapshot save: {out:?}");
    path
}

/// Parses one JSON document.
#[track_caller]
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts success with an empty stderr and returns stdout.
#[track_caller]
pub fn assert_ok(out: Out, what: &str) -> String {
    assert_eq!(out.code, 0, "{what}: {out:?}");
    assert_eq!(out.stderr, "", "{what}: stderr: {out:?}");
    out.stdout
}

/// Our report of `path` (plus `extra` flags) against `reference`'s `snapshot status` on the same
/// file: `simple` and `table` byte for byte, and etcdutl's JSON fields first in ours, byte for
/// byte, then ours. Returns our parsed JSON.
#[track_caller]
pub fn assert_matches(reference: Version, path: &Path, extra: &[&str], what: &str) -> Value {
    let p = s(path);
    for format in ["simple", "table", "json"] {
        let mut args = vec![p.as_str(), "-w", format];
        args.extend_from_slice(extra);
        let ours = assert_ok(status(&args), &format!("{what}: {args:?}"));
        let theirs = reference_status(reference, path, format);
        if format != "json" {
            assert_eq!(ours, theirs, "{what}: {args:?} vs {reference}");
            continue;
        }
        let prefix = theirs
            .trim_end()
            .strip_suffix('}')
            .expect("etcd's JSON ends with }");
        assert!(
            ours.starts_with(&format!("{prefix},")),
            "{what}: {args:?}: JSON does not start with {reference}'s fields\n ours: {ours}\n {reference}: {theirs}"
        );
        assert!(ours.ends_with("}\n"), "{what}: JSON is one line: {ours:?}");
        assert_eq!(ours.lines().count(), 1, "{what}: JSON is one line");
        return json(&ours);
    }
    unreachable!()
}

/// Our default report of a snapshot that etcd `v` wrote equals `v`'s own `snapshot status`
/// (etcdutl; etcdctl for 3.4), and `--as-etcdutl` of `v` changes nothing. Returns our JSON.
#[track_caller]
pub fn assert_matches_etcdutl_of(v: Version, path: &Path, extra: &[&str], what: &str) -> Value {
    let report = assert_matches(v, path, extra, what);
    let mut with_flag = extra.to_vec();
    with_flag.extend(["--as-etcdutl", as_etcdutl(v)]);
    let flagged = assert_ok(
        status(&[&[s(path).as_str(), "-w", "json"][..], &with_flag].concat()),
        what,
    );
    assert_eq!(
        json(&flagged),
        report,
        "{what}: --as-etcdutl {}",
        as_etcdutl(v)
    );
    report
}

/// `--as-etcdutl X` on `path` equals the real etcdutl X on it, for X = 3.5, 3.6, 3.7 (and
/// etcd 3.4's etcdctl for 3.5's format).
#[track_caller]
pub fn assert_as_every_etcdutl(path: &Path, extra: &[&str], what: &str) {
    for reference in [Version::V3_4, Version::V3_5, Version::V3_6, Version::V3_7] {
        let mut args = extra.to_vec();
        args.extend(["--as-etcdutl", as_etcdutl(reference)]);
        assert_matches(reference, path, &args, &format!("{what} as {reference}"));
    }
}

/// An age key pair made by `age-keygen`: the identity file and the recipient.
pub struct AgeKey {
    /// The identity file.
    pub identity: PathBuf,
    /// `age1...`.
    pub recipient: String,
}

/// Makes an age key in `dir/name`.
#[track_caller]
pub fn age_key(dir: &Path, name: &str) -> AgeKey {
    let identity = dir.join(name);
    sh_ok(&format!("age-keygen -o {} 2>/dev/null", s(&identity)));
    let recipient = sh_ok(&format!("age-keygen -y {}", s(&identity)))
        .trim()
        .to_string();
    AgeKey {
        identity,
        recipient,
    }
}

/// One way a snapshot is wrapped, built with the real command-line tools.
pub struct Wrapped {
    /// The wrapped file.
    pub path: PathBuf,
    /// The layers our JSON should report, outermost first.
    pub layers: Vec<&'static str>,
}

/// Snapshots bigger than this go only through `zstd` and `age(zstd)`: our debug build decrypts
/// age at a few MB/s.
pub const FULL_LAYERING_MAX: u64 = 1 << 20;

/// `raw` through `zstd`, `age`, `age -a`, `age(zstd)`, `zstd(age)` and `age -a(zstd)`, each
/// written next to it; only `zstd` and `age(zstd)` when `raw` is bigger than
/// [`FULL_LAYERING_MAX`].
#[track_caller]
pub fn wrap_all(raw: &Path, key: &AgeKey) -> Vec<Wrapped> {
    let full = fs::metadata(raw).unwrap().len() <= FULL_LAYERING_MAX;
    let r = &key.recipient;
    let cases: [(&str, String, Vec<&'static str>); 6] = [
        ("zst", "zstd -q -c".into(), vec!["zstd"]),
        ("age", format!("age -r {r}"), vec!["age"]),
        ("asc", format!("age -a -r {r}"), vec!["age (armored)"]),
        (
            "zst.age",
            format!("zstd -q -c | age -r {r}"),
            vec!["age", "zstd"],
        ),
        (
            "age.zst",
            format!("age -r {r} | zstd -q -c"),
            vec!["zstd", "age"],
        ),
        (
            "zst.asc",
            format!("zstd -q -c -9 | age -a -r {r}"),
            vec!["age (armored)", "zstd"],
        ),
    ];
    cases
        .into_iter()
        .filter(|(ext, _, _)| full || ["zst", "zst.age"].contains(ext))
        .map(|(ext, pipe, layers)| {
            let path = PathBuf::from(format!("{}.{ext}", s(raw)));
            sh_ok(&format!("({pipe}) < {} > {}", s(raw), s(&path)));
            Wrapped { path, layers }
        })
        .collect()
}

/// `v` without the `layers` field.
pub fn without_layers(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("layers");
    v
}

/// Checks that `raw` read from stdin, and every wrapping of it from a file and from stdin, gives
/// the report of `raw` read as a file (`expected`, our JSON), with the right `layers`; and that
/// `simple`/`table` output does not depend on the layering.
#[track_caller]
pub fn assert_layers_agree(raw: &Path, expected: &Value, key: &AgeKey, light: bool, what: &str) {
    let id = s(&key.identity);
    if light {
        let wrapped = raw.with_extension("zst.age");
        sh_ok(&format!(
            "zstd -q -c < {} | age -r {} > {}",
            s(raw),
            key.recipient,
            s(&wrapped)
        ));
        let piped = json(&assert_ok(
            status_stdin(&["-i", &id, "-w", "json"], &wrapped),
            &format!("{what}: age > zstd (stdin)"),
        ));
        assert_eq!(
            without_layers(&piped),
            without_layers(expected),
            "{what}: age > zstd"
        );
        assert_eq!(
            piped["layers"],
            serde_json::json!(["age", "zstd"]),
            "{what}"
        );
        fs::remove_file(&wrapped).unwrap();
        return;
    }
    let from_stdin = json(&assert_ok(
        status_stdin(&["-w", "json"], raw),
        &format!("{what}: raw from stdin"),
    ));
    assert_eq!(&from_stdin, expected, "{what}: raw from stdin");
    let simple = assert_ok(status(&[&s(raw)]), what);
    let table = assert_ok(status(&[&s(raw), "-w", "table"]), what);
    for (n, w) in wrap_all(raw, key).into_iter().enumerate() {
        let case = format!("{what}: {}", w.layers.join(" > "));
        let p = s(&w.path);
        let from_file = json(&assert_ok(status(&[&p, "-i", &id, "-w", "json"]), &case));
        let from_pipe = json(&assert_ok(
            status_stdin(&["-", "-i", &id, "-w", "json"], &w.path),
            &format!("{case} (stdin)"),
        ));
        assert_eq!(
            without_layers(&from_file),
            without_layers(expected),
            "{case}"
        );
        assert_eq!(from_file, from_pipe, "{case}: file vs stdin");
        let layers: Vec<&str> = from_file["layers"]
            .as_array()
            .unwrap_or_else(|| panic!("{case}: no layers array in {from_file}"))
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(layers, w.layers, "{case}: layers");
        if n < 2 {
            // simple and table do not depend on the layers: checked on the first two.
            assert_eq!(
                assert_ok(status(&[&p, "-i", &id]), &case),
                simple,
                "{case}: simple"
            );
            assert_eq!(
                assert_ok(status_stdin(&["-i", &id, "-w", "table"], &w.path), &case),
                table,
                "{case}: table"
            );
        }
        fs::remove_file(&w.path).unwrap();
    }
}

/// The hex SHA-256 trailer of a snapshot: its last 32 bytes.
pub fn trailer_hex(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    bytes[bytes.len() - 32..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSON value of `report[field]` as i64 (panics when absent or not a number).
#[track_caller]
pub fn int(report: &Value, field: &str) -> i64 {
    report[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} is not a number in {report}"))
}

/// Entries of bucket `name` in our JSON report (0 when absent).
pub fn bucket_entries(report: &Value, name: &str) -> i64 {
    report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .map_or(0, |b| b["entries"].as_i64().unwrap())
}

/// What `etcdctl member list -w json` says: (hex ID, name, peer URLs, client URLs), by ID.
#[track_caller]
pub fn member_list(cluster: &Cluster) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let out = etcd_test_support::run_ok(cluster.etcdctl().args(["member", "list", "-w", "json"]));
    let v = json(&out);
    let strings = |x: &Value| -> Vec<String> {
        x.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut members: Vec<(u64, String, Vec<String>, Vec<String>)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["ID"].as_u64().unwrap(),
                m["name"].as_str().unwrap_or_default().to_string(),
                strings(&m["peerURLs"]),
                strings(&m["clientURLs"]),
            )
        })
        .collect();
    members.sort_by_key(|m| m.0);
    members
        .into_iter()
        .map(|(id, n, p, c)| (format!("{id:x}"), n, p, c))
        .collect()
}

/// Our JSON's members in the same shape as [`member_list`].
pub fn report_members(report: &Value) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let strings = |x: &Value| -> Vec<String> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["name"].as_str().unwrap().to_string(),
                strings(&m["peerURLs"]),
                strings(&m["clientURLs"]),
            )
        })
        .collect()
}

/// Writes `bytes` to `path`.
pub fn write(path: &Path, bytes: &[u8]) {
    let mut f = fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Prints how long a step took (shown by `--nocapture` / nextest on failure).
pub struct Timer(Instant, String);

impl Timer {
    /// Starts timing `what`.
    pub fn start(what: impl Into<String>) -> Timer {
        Timer(Instant::now(), what.into())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        eprintln!("[time] {}: {:.2?}", self.1, self.0.elapsed());
    }
}
