//! A snapshot of a real etcd whose keys and names carry terminal controls (ESC sequences that
//! retitle or clear the terminal, BEL, CR, newline, DEL, the C1 CSI U+009B both as UTF-8 and as a
//! raw byte, a bidi override) and bytes that are not UTF-8, loaded through etcd's gRPC gateway:
//! shared by the `etcd-snap-get` and `etcd-snap-status --k8s` tests of escaped output.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)] // a test fails by panicking

use etcd_test_support::{Cluster, Version};
use serde_json::json;
use std::path::PathBuf;

/// The namespace of the configmaps with hostile names.
pub const NS: &str = "evil";

/// Configmap names in [`NS`], the last one printable.
pub const NAMES: [&str; 8] = [
    "title\u{1b}]0;pwned\u{7}",
    "clear\u{1b}[2J\u{1b}[H",
    "cr\roverwrite",
    "new\nline",
    "del\u{7f}",
    "csi\u{9b}2J",
    "bidi\u{202e}gpj.exe",
    "plain-name",
];

/// A namespace whose name turns the terminal red.
pub const RED_NS: &str = "ns\u{1b}[31m";

/// Keys outside the API server's layout (`--prefix /evil/`), sorted, with values that are not
/// objects.
pub const OUTSIDE: [&[u8]; 3] = [
    b"/evil/c1byte\x9b[2J",
    b"/evil/esc\x1b[2J",
    b"/evil/raw\xff\xfe",
];

/// The snapshot and what it holds.
pub struct Hostile {
    /// Keeps the server (and the snapshot's directory) alive.
    pub cluster: Cluster,
    /// The snapshot, saved by `etcdctl snapshot save`.
    pub snap: PathBuf,
}

/// A configmap's stored JSON value.
pub fn configmap(ns: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"k": "v"},
    }))
    .unwrap()
}

/// The stored value of an [`OUTSIDE`] key.
pub fn outside_value(key: &[u8]) -> Vec<u8> {
    [b"not an object \x1b[2J ".as_slice(), key].concat()
}

/// Loads the keys into a real etcd 3.5 and saves a snapshot.
pub fn build() -> Hostile {
    let cluster = Cluster::builder(Version::V3_5).start();
    let gw = cluster.gateway();
    for name in NAMES {
        let key = format!("/registry/configmaps/{NS}/{name}");
        gw.put(key.as_bytes(), &configmap(NS, name));
    }
    let key = format!("/registry/configmaps/{RED_NS}/x");
    gw.put(key.as_bytes(), &configmap(RED_NS, "x"));
    for key in OUTSIDE {
        gw.put(key, &outside_value(key));
    }
    let snap = cluster.dir().join("hostile.db");
    let snap_arg = snap.to_str().unwrap().to_string();
    etcd_test_support::run_ok(cluster.etcdctl().args(["snapshot", "save", &snap_arg]));
    Hostile { cluster, snap }
}

/// Panics unless `bytes` is UTF-8 without a control character (newlines apart) or a bidi
/// control: nothing in it can drive a terminal or reorder what it shows.
#[track_caller]
pub fn assert_printable(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: not UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    let bad = text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
            || c == '\u{fffd}'
    });
    assert!(bad.is_none(), "{what}: raw {bad:?} in {text:?}");
}
