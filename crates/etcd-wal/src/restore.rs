//! What `etcdutl snapshot restore` (3.5) decides and writes besides the database: the new
//! cluster's members and IDs from the command-line flags (with etcdutl's validation and error
//! texts, docs/formats.md §5.2), the first WAL segment (§5.5) and the v2 `.snap` file (§5.4).
//! The database rewrite (members bucket, `consistent_index` = [`RestorePlan::commit_index`],
//! `term` = [`RESTORE_TERM`]) is another crate's job; [`member_json`] gives it the members
//! bucket values.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gostr::{quote, quote_list};
use crate::ids;
pub use crate::member::{member_json, ClusterMember};
use crate::peer_url;
use crate::proto::{
    ConfChange, ConfState, Entry, HardState, Metadata, RaftSnapshot, SnapshotMetadata, WalSnapshot,
    CONF_CHANGE_ADD_NODE, ENTRY_CONF_CHANGE,
};
use crate::snap;
use crate::v2store;
use crate::wal::{self, RecordType, SegmentWriter};

/// The raft term of everything a restore writes (HardState, entries, snapshots, and the db's
/// `meta/term`).
pub const RESTORE_TERM: u64 = 1;

/// The cluster a restore creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    /// Every member, in ascending ID order.
    pub members: Vec<ClusterMember>,
    /// The cluster ID.
    pub cluster_id: u64,
    /// The ID of the local member (`--name`).
    pub local: u64,
}

impl RestorePlan {
    /// The raft index the restore commits: one ConfChange entry per member, so the member
    /// count. The db's `consistent_index` must be set to it.
    pub fn commit_index(&self) -> u64 {
        self.members.len() as u64
    }

    /// The local member.
    pub fn local_member(&self) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.id == self.local)
    }

    /// The member IDs, ascending (the raft voters).
    pub fn voters(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }
}

/// Normalises a list of peer URLs like etcd's `types.NewURLs` and sorts them.
fn new_urls(raw: &[&str]) -> Result<Vec<String>> {
    let mut urls = raw
        .iter()
        .map(|u| peer_url::normalize(u).map_err(Error::Config))
        .collect::<Result<Vec<_>>>()?;
    urls.sort();
    Ok(urls)
}

/// etcd's `types.URLsMap.String()`: `name=url` pairs, sorted, comma-joined.
fn urls_map_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [String])>) -> String {
    let mut all: Vec<String> = pairs
        .into_iter()
        .flat_map(|(name, urls)| urls.iter().map(move |u| format!("{name}={u}")))
        .collect();
    all.sort();
    all.join(",")
}

/// Splits `--initial-cluster` like etcd's `types.parse`: on `,`, then at the first `=`;
/// empty items skipped; a repeated name collects several URLs. Names keep first-seen order.
fn parse_initial_cluster(s: &str) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let (name, url) = item.split_once('=').unwrap_or((item, ""));
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, urls)) => urls.push(url),
            None => out.push((name, vec![url])),
        }
    }
    out
}

/// etcd's `advertiseMatchesCluster` without DNS: the advertised URLs must equal the local
/// member's URLs in `--initial-cluster` as strings. (etcd also accepts a host name that
/// resolves to the other side's IP, after up to 30 s of lookups; we never resolve.)
fn check_advertise(name: &str, advertised: &[String], in_cluster: &[String]) -> Result<()> {
    if advertised == in_cluster {
        return Ok(());
    }
    // What netutil.URLStringsEqual would report (hosts are not resolved, so "resolved from"
    // shows the same string).
    let why = if advertised.len() != in_cluster.len() {
        format!(
            "len({}) != len({})",
            quote_list(advertised),
            quote_list(in_cluster)
        )
    } else {
        advertised
            .iter()
            .zip(in_cluster)
            .find(|(a, b)| a != b)
            .map(|(a, b)| {
                format!(
                    "{}(resolved from {}) != {}(resolved from {})",
                    quote(a),
                    quote(a),
                    quote(b),
                    quote(b)
                )
            })
            .unwrap_or_default()
    };
    let init: BTreeSet<&String> = in_cluster.iter().collect();
    let ap: BTreeSet<&String> = advertised.iter().collect();
    let ap_str = advertised.join(",");
    let missing: Vec<String> = init
        .difference(&ap)
        .map(|u| format!("{name}={u}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "--initial-cluster has {} but missing from --initial-advertise-peer-urls={ap_str} ({why})",
            missing.join(",")
        )));
    }
    let umap = urls_map_string([(name, advertised)]);
    let extra: Vec<&str> = ap.difference(&init).map(|u| u.as_str()).collect();
    if !extra.is_empty() {
        return Err(Error::Config(format!(
            "--initial-advertise-peer-urls has {} but missing from --initial-cluster={umap}",
            extra.join(",")
        )));
    }
    Err(Error::Config(format!(
        "failed to resolve {ap_str} to match --initial-cluster={umap} ({why})"
    )))
}

/// Plans a restore from the flags of `etcdutl snapshot restore` (`--name`,
/// `--initial-cluster`, `--initial-cluster-token`, `--initial-advertise-peer-urls`), with
/// etcdutl 3.5's checks in its order and its error texts: bad advertised URL, bad URL in the
/// cluster, name not in the cluster, advertised URLs not matching, duplicate URLs, empty
/// cluster, ID collision. Differences: no DNS look-ups (see `check_advertise`), and where Go
/// iterates a map (which of several bad entries is reported, the order of a `missing` list)
/// we are deterministic.
pub fn plan(
    name: &str,
    initial_cluster: &str,
    token: &str,
    advertise_peer_urls: &str,
) -> Result<RestorePlan> {
    let advertised: Vec<&str> = advertise_peer_urls.split(',').collect();
    let advertised = new_urls(&advertised)?;
    let mut cluster: Vec<(&str, Vec<String>)> = Vec::new();
    for (n, raw) in parse_initial_cluster(initial_cluster) {
        cluster.push((n, new_urls(&raw)?));
    }

    let Some((_, local_urls)) = cluster.iter().find(|(n, _)| *n == name) else {
        return Err(Error::Config(format!(
            "couldn't find local name {} in the initial cluster configuration",
            quote(name)
        )));
    };
    check_advertise(name, &advertised, local_urls)?;

    let mut seen = BTreeSet::new();
    let duplicate = cluster
        .iter()
        .flat_map(|(_, urls)| urls)
        .any(|u| !seen.insert(u));
    if duplicate {
        let map = urls_map_string(cluster.iter().map(|(n, u)| (*n, u.as_slice())));
        return Err(Error::Config(format!(
            "initial cluster {map} has duplicate url"
        )));
    }
    if cluster.is_empty() {
        return Err(Error::Config(
            "initial cluster unset and no discovery URL found".to_string(),
        ));
    }

    let mut by_id: HashMap<u64, &str> = HashMap::new();
    let mut members = BTreeMap::new();
    for (n, urls) in &cluster {
        let id = ids::member_id(urls, token);
        if by_id.insert(id, n).is_some() {
            return Err(Error::Config(format!(
                "member exists with identical ID &{{{id:x} {{[{}] false}} {{{n} []}}}}",
                urls.join(" ")
            )));
        }
        if id == 0 {
            return Err(Error::Config("cannot use 0 as member id".to_string()));
        }
        members.insert(
            id,
            ClusterMember {
                name: (*n).to_string(),
                peer_urls: urls.clone(),
                id,
            },
        );
    }
    let members: Vec<ClusterMember> = members.into_values().collect();
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let local = by_id
        .iter()
        .find(|(_, n)| **n == name)
        .map(|(id, _)| *id)
        .unwrap_or_default();
    Ok(RestorePlan {
        cluster_id: ids::cluster_id(&ids),
        members,
        local,
    })
}

/// The raft ConfState of the restored cluster: every member a voter.
fn conf_state(plan: &RestorePlan) -> ConfState {
    ConfState {
        voters: plan.voters(),
        ..ConfState::default()
    }
}

/// The first WAL segment a restore writes, as records (without the preallocated zero tail):
/// `crc`, `metadata{local, cluster}`, `snapshot{0,0}`, one ConfChange `entry` per member,
/// `state{term 1, vote = lowest ID, commit N}`, `snapshot{N, 1, voters}`.
pub fn wal_segment(plan: &RestorePlan) -> SegmentWriter {
    let mut w = SegmentWriter::new(0);
    let md = Metadata {
        node_id: plan.local,
        cluster_id: plan.cluster_id,
    };
    w.record(RecordType::Metadata, &md.encode());
    w.record(RecordType::Snapshot, &WalSnapshot::default().encode());
    for (m, index) in plan.members.iter().zip(1u64..) {
        let cc = ConfChange {
            id: 0,
            change_type: CONF_CHANGE_ADD_NODE,
            node_id: m.id,
            context: Some(member_json(m).into_bytes()),
        };
        let entry = Entry {
            entry_type: ENTRY_CONF_CHANGE,
            term: RESTORE_TERM,
            index,
            data: Some(cc.encode()),
        };
        w.record(RecordType::Entry, &entry.encode());
    }
    let hs = HardState {
        term: RESTORE_TERM,
        vote: plan.members.first().map(|m| m.id).unwrap_or_default(),
        commit: plan.commit_index(),
    };
    w.record(RecordType::State, &hs.encode());
    let snapshot = WalSnapshot {
        index: plan.commit_index(),
        term: RESTORE_TERM,
        conf_state: Some(conf_state(plan)),
    };
    w.record(RecordType::Snapshot, &snapshot.encode());
    w
}

/// The raft snapshot a restore writes into the `.snap` file: the v2 store with the members,
/// at index N, term 1, all members voters.
pub fn raft_snapshot(plan: &RestorePlan) -> RaftSnapshot {
    RaftSnapshot {
        data: Some(v2store::store_json(&plan.members).into_bytes()),
        metadata: SnapshotMetadata {
            conf_state: conf_state(plan),
            index: plan.commit_index(),
            term: RESTORE_TERM,
        },
    }
}

/// Writes `dir/0000000000000000-0000000000000000.wal` (mode 0600, 64,000,000 bytes, see
/// [`wal::write_segment`] on preallocation), fsyncs it and `dir`. `dir` is the WAL directory
/// (`<data-dir>/member/wal` or `--wal-dir`); it must exist and should be empty. Returns the
/// file's path.
pub fn write_wal(dir: &Path, plan: &RestorePlan) -> Result<PathBuf> {
    wal::write_segment(dir, wal::FIRST_SEGMENT_NAME, &wal_segment(plan))
}

/// Writes `dir/<term %016x>-<index %016x>.snap` (mode 0600), fsyncs it and `dir`. `dir` is the
/// snap directory, `<data-dir>/member/snap`, which must exist. Returns the file's path.
pub fn write_snap(dir: &Path, plan: &RestorePlan) -> Result<PathBuf> {
    snap::write(dir, &raft_snapshot(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults of etcdutl's flags.
    fn default_plan() -> Result<RestorePlan> {
        plan(
            "default",
            "default=http://localhost:2380",
            "etcd-cluster",
            "http://localhost:2380",
        )
    }

    fn err(name: &str, cluster: &str, adv: &str) -> String {
        match plan(name, cluster, "tok", adv) {
            Ok(p) => format!("unexpected success: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_give_the_well_known_ids() {
        let p = default_plan().ok();
        let p = p.as_ref();
        assert_eq!(
            p.map(|p| format!("{:x}", p.local)).as_deref(),
            Some("8e9e05c52164694d")
        );
        assert_eq!(
            p.map(|p| format!("{:x}", p.cluster_id)).as_deref(),
            Some("cdf818194e3a8c32")
        );
        assert_eq!(p.map(RestorePlan::commit_index), Some(1));
    }

    #[test]
    fn three_members_sorted_by_id() {
        let p = plan(
            "b",
            "a=http://127.0.0.1:1001,b=http://127.0.0.1:1002,c=http://127.0.0.1:1003",
            "tok",
            "http://127.0.0.1:1002",
        );
        let Ok(p) = p else {
            panic!("{p:?}");
        };
        assert_eq!(p.members.len(), 3);
        assert!(p.members.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(p.local_member().map(|m| m.name.as_str()), Some("b"));
        assert_eq!(p.local, ids::member_id(&["http://127.0.0.1:1002"], "tok"));
    }

    #[test]
    fn multiple_urls_per_member_are_sorted() {
        let p = plan(
            "a",
            "a=http://10.0.0.2:2,a=http://10.0.0.1:1",
            "t",
            "http://10.0.0.1:1,http://10.0.0.2:2",
        );
        let urls = p.ok().map(|p| p.members[0].peer_urls.clone());
        assert_eq!(
            urls,
            Some(vec![
                "http://10.0.0.1:1".to_string(),
                "http://10.0.0.2:2".to_string()
            ])
        );
    }

    #[test]
    fn etcdutl_error_texts() {
        assert_eq!(
            err("x", "a=http://h:1", "http://h:1"),
            r#"couldn't find local name "x" in the initial cluster configuration"#
        );
        assert_eq!(
            err("a", "", "http://h:1"),
            r#"couldn't find local name "a" in the initial cluster configuration"#
        );
        assert_eq!(
            err("a", "a=http://h:1", "http://h:2"),
            r#"--initial-cluster has a=http://h:1 but missing from --initial-advertise-peer-urls=http://h:2 ("http://h:2"(resolved from "http://h:2") != "http://h:1"(resolved from "http://h:1"))"#
        );
        assert_eq!(
            err("a", "a=http://h:1", "http://h:1,http://h:2"),
            r#"--initial-advertise-peer-urls has http://h:2 but missing from --initial-cluster=a=http://h:1,a=http://h:2"#
        );
        assert_eq!(
            err("a", "a=http://h:1,a=http://h:1", "http://h:1"),
            r#"failed to resolve http://h:1 to match --initial-cluster=a=http://h:1 (len(["http://h:1"]) != len(["http://h:1" "http://h:1"]))"#
        );
        assert_eq!(
            err("a", "a=http://h:1,b=http://h:1", "http://h:1"),
            "initial cluster a=http://h:1,b=http://h:1 has duplicate url"
        );
        assert_eq!(
            err("a", "a=http://h:1", "localhost:2380"),
            "URL scheme must be http, https, unix, or unixs: localhost:2380"
        );
        assert_eq!(
            err("a", "a=http://h:1,b", "http://h:1"),
            "URL scheme must be http, https, unix, or unixs: "
        );
        assert_eq!(
            err("a", "a=http://h", "http://h:1"),
            r#"URL address does not have the form "host:port": http://h"#
        );
    }

    #[test]
    fn wal_segment_starts_like_section_6() {
        let Ok(p) = default_plan() else {
            panic!("default plan failed");
        };
        let w = wal_segment(&p);
        let b = w.bytes();
        assert_eq!(
            &b[..16],
            &[4, 0, 0, 0, 0, 0, 0, 0x84, 8, 4, 0x10, 0, 0, 0, 0, 0]
        );
        assert_eq!(&b[16..24], &[0x20, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            &b[24..34],
            &[0x08, 0x01, 0x10, 0xbb, 0x81, 0xc7, 0xfc, 0x05, 0x1a, 0x16]
        );
        let recs = wal::read_segment(b).unwrap_or_default();
        let kinds: Vec<RecordType> = recs.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                RecordType::Crc,
                RecordType::Metadata,
                RecordType::Snapshot,
                RecordType::Entry,
                RecordType::State,
                RecordType::Snapshot
            ]
        );
        let entry = Entry::decode(recs[3].data.as_deref().unwrap_or_default()).unwrap_or_default();
        let cc = ConfChange::decode(entry.data.as_deref().unwrap_or_default()).unwrap_or_default();
        assert_eq!(cc.node_id, p.local);
        assert_eq!(
            cc.context.as_deref(),
            Some(
                &br#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#[..]
            )
        );
    }
}
