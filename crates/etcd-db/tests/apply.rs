//! The apply engine against real etcd 3.5, 3.6 and 3.7, without a log: snapshot S1 at revision
//! A, a load (puts, overwrites, deletes, multi-key transactions, leases attached, a lease
//! revoked), snapshot S2 at B. The changes (A, B] are exactly S2's `key` bucket entries after A;
//! applied to S1 with [`etcd_db::apply::Applier`], the `key` bucket must be byte-identical to
//! S2's (same revision keys, same marshalled values: what etcd's hashkv hashes), and the leases
//! of S2 must all be there.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

use etcd_db::apply::{Applier, Change, Kind};
use etcd_db::proto::KeyValue;
use etcd_db::{buckets, Revision};
use etcd_test_support::{Cluster, Version};
use std::path::Path;

/// A snapshot of `cluster` at `path`, its SHA-256 trailer stripped (the raw database).
fn snapshot(cluster: &Cluster, path: &Path) {
    let out = cluster
        .etcdctl()
        .args(["snapshot", "save", &path.to_string_lossy()])
        .output()
        .unwrap();
    assert!(out.status.success(), "snapshot save: {out:?}");
    let len = std::fs::metadata(path).unwrap().len();
    if len % 512 == 32 {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(len - 32).unwrap();
    }
}

/// Every entry of `bucket`: (key, value).
fn entries(db: &Path, bucket: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = bbolt::Db::open(db).unwrap();
    let Some(b) = db.bucket(bucket).unwrap() else {
        return Vec::new();
    };
    b.entries()
        .map(|e| {
            let e = e.unwrap();
            (e.key().to_vec(), e.plain_value().unwrap().to_vec())
        })
        .collect()
}

fn round_trip(version: Version) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::builder(version).start();
    let gw = cluster.gateway();
    for i in 0..30 {
        gw.put(format!("/k/{i:02}").as_bytes(), b"zero");
    }
    let doomed = gw.lease_grant(900);
    gw.put_with_lease(b"/doomed", b"d", Some(doomed));
    let s1 = dir.path().join("s1.db");
    snapshot(&cluster, &s1);
    let a = gw.revision();

    let lease = gw.lease_grant(300);
    for round in 0..4 {
        for i in (round..30).step_by(3) {
            gw.put(
                format!("/k/{i:02}").as_bytes(),
                format!("r{round}").repeat(50).as_bytes(),
            );
        }
        gw.put_all(
            (0..4).map(|i| (format!("/txn/{round}/{i}"), format!("{round}"))),
            Some(lease),
        );
        gw.delete_range(format!("/k/{:02}", round * 7).as_bytes(), None);
        gw.delete_range(
            format!("/txn/{}/", round.max(1) - 1).as_bytes(),
            Some(b"/txn/9"),
        );
    }
    gw.call("/v3/lease/revoke", &format!("{{\"ID\":\"{doomed}\"}}"));
    let s2 = dir.path().join("s2.db");
    snapshot(&cluster, &s2);
    let b = gw.revision();
    assert!(b > a + 20, "the load made revisions ({a}..{b})");

    // The changes after A, grouped by revision, in sub-revision order.
    let after: Vec<(Revision, Vec<u8>)> = entries(&s2, buckets::KEY)
        .into_iter()
        .map(|(k, v)| (Revision::parse(&k).unwrap(), v))
        .filter(|(r, _)| r.main > a)
        .collect();
    let mut applier = Applier::open(&s1).unwrap();
    assert_eq!(applier.last_revision(), a);
    let s1_leases: Vec<Vec<u8>> = entries(&s1, buckets::LEASE)
        .into_iter()
        .map(|e| e.0)
        .collect();
    for (id, value) in entries(&s2, buckets::LEASE) {
        if !s1_leases.contains(&id) {
            // TTL is field 2 of leasepb.Lease; small TTLs are one varint byte.
            let ttl = value
                .windows(2)
                .find(|w| w[0] == 0x10)
                .map_or(0, |w| i64::from(w[1]));
            applier.grant(i64::from_be_bytes(id.as_slice().try_into().unwrap()), ttl);
        }
    }
    let mut i = 0;
    while i < after.len() {
        let main = after[i].0.main;
        let group: Vec<&(Revision, Vec<u8>)> = after[i..]
            .iter()
            .take_while(|(r, _)| r.main == main)
            .collect();
        i += group.len();
        let changes: Vec<Change<'_>> = group
            .iter()
            .map(|(r, v)| {
                let kv = KeyValue::decode(v).unwrap();
                Change {
                    kind: if r.tombstone { Kind::Delete } else { Kind::Put },
                    key: kv.key,
                    value: kv.value,
                    create_revision: kv.create_revision,
                    mod_revision: main,
                    version: kv.version,
                    lease: kv.lease,
                }
            })
            .collect();
        applier.apply(main, &changes).unwrap();
    }
    // A gap is refused.
    assert!(applier.apply(b + 2, &[]).is_err());
    let applied = applier.finish().unwrap();
    assert_eq!((applied.from_revision, applied.to_revision), (a, b));
    assert_eq!(applied.changes, after.len() as u64);

    assert_eq!(entries(&s1, buckets::KEY), entries(&s2, buckets::KEY));
    let ids = |p: &Path| -> Vec<Vec<u8>> {
        entries(p, buckets::LEASE)
            .into_iter()
            .map(|e| e.0)
            .collect()
    };
    let restored = ids(&s1);
    for id in ids(&s2) {
        assert!(restored.contains(&id), "lease {id:?} missing");
    }
    assert!(restored.contains(&lease.to_be_bytes().to_vec()));
    assert!(bbolt::Db::open(&s1).unwrap().check().is_empty());
}

#[test]
fn applied_changes_equal_etcds_own_3_5() {
    round_trip(Version::V3_5);
}

#[test]
fn applied_changes_equal_etcds_own_3_6() {
    round_trip(Version::V3_6);
}

#[test]
fn applied_changes_equal_etcds_own_3_7() {
    round_trip(Version::V3_7);
}
