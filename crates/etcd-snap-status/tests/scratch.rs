#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]
use etcd_test_support::{Cluster, Version};
#[test]
fn scratch() {
    let c = Cluster::builder(Version::V3_5)
        .arg("--max-txn-ops=1000")
        .start();
    let gw = c.gateway().batch(1000);
    let big = std::fs::read("/tmp/scratch/big.bin").unwrap();
    for (i, size) in [4096, 4097, 9000, 65_536 + 3, 300_000, 1_000_000]
        .into_iter()
        .enumerate()
    {
        gw.put(
            format!("/big/{size}").as_bytes(),
            &big[i * 1000..i * 1000 + size],
        );
    }
    let p = "/tmp/scratch/o.db";
    let _ = std::fs::remove_file(p);
    etcd_test_support::run_ok(c.etcdctl().args(["snapshot", "save", p]));
}
