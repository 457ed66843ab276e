//! A store with history to check revision-aware code against: puts, deletions, a re-created key
//! and a compaction exactly at a deletion's revision, written through the cluster's own etcdctl.
//!
//! Why: `etcd-db`'s `hashkv`/`history`/`diff` tests and `etcd-snap-status --hashkv`'s test both
//! need the same churned store (its compaction at a tombstone is the case where etcd versions
//! disagree), and each used to write it out line by line.

use serde_json::Value;

use crate::etcdctl::run_ok;
use crate::Cluster;

/// Runs the cluster's etcdctl with `args` and `-w json` and parses its output; panics when
/// etcdctl fails or its output is not JSON.
#[track_caller]
pub fn etcdctl_json(cluster: &Cluster, args: &[&str]) -> Value {
    let out = run_ok(cluster.etcdctl().args(args).args(["-w", "json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// Runs the etcdctl write `args` (`put`, `del`) and returns the revision it landed at.
#[track_caller]
pub fn etcdctl_write(cluster: &Cluster, args: &[&str]) -> i64 {
    let v = etcdctl_json(cluster, args);
    v["header"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("{args:?}: no header.revision in {v}"))
}

/// The revisions of a store written by [`churn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Churned {
    /// The revision of every write to `/churn` (puts and deletions), oldest first.
    pub churned: Vec<i64>,
    /// The compact revision: that of the deletion of `/gone`.
    pub compact: i64,
    /// The store's current revision after the last write.
    pub current: i64,
}

/// Writes the churned store into `cluster`: `/a /b /c /gone`, `/churn` put, re-put, deleted and
/// re-created around a physical compaction exactly at the deletion of `/gone` (3.5.16+ keep that
/// tombstone, earlier versions drop it), then more puts and deletions after it, ending with a put
/// of `/c`. Live at the end: `/a /c /churn /d /e`.
#[track_caller]
pub fn churn(cluster: &Cluster) -> Churned {
    let write = |args: &[&str]| etcdctl_write(cluster, args);
    let mut churned = Vec::new();
    for k in ["/a", "/b", "/c", "/gone"] {
        write(&["put", k, "one"]);
    }
    churned.push(write(&["put", "/churn", "v1"]));
    churned.push(write(&["put", "/churn", "v2"]));
    write(&["put", "/a", "two"]);
    churned.push(write(&["del", "/churn"]));
    write(&["put", "/d", "one"]);
    churned.push(write(&["put", "/churn", "v3"]));
    let tomb = write(&["del", "/gone"]);
    run_ok(
        cluster
            .etcdctl()
            .args(["compaction", &tomb.to_string(), "--physical"]),
    );
    churned.push(write(&["put", "/churn", "v4"]));
    write(&["del", "/b"]);
    churned.push(write(&["put", "/churn", "v5"]));
    churned.push(write(&["del", "/churn"]));
    write(&["put", "/e", "one"]);
    churned.push(write(&["put", "/churn", "v6"]));
    let current = write(&["put", "/c", "two"]);
    Churned {
        churned,
        compact: tomb,
        current,
    }
}
