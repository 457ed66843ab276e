//! Member and cluster IDs exactly as etcd derives them when it bootstraps (and restores) a
//! cluster, so that a restored member has the ID etcd itself would give it.

use sha1::{Digest, Sha1};

/// The first 8 bytes of the SHA-1 of `data`, big-endian.
fn sha1_u64(data: &[u8]) -> u64 {
    let hash = Sha1::digest(data);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// A member ID: SHA-1 of the member's normalised peer URLs (sorted, concatenated without a
/// separator) followed by the cluster token; the first 8 bytes, big-endian. Restore passes no
/// timestamp, so none is hashed (etcd's `computeMemberId` with `now == nil`).
pub fn member_id<S: AsRef<str>>(peer_urls: &[S], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(AsRef::as_ref).collect();
    urls.sort_unstable();
    let mut data = urls.concat().into_bytes();
    data.extend_from_slice(token.as_bytes());
    sha1_u64(&data)
}

/// The cluster ID: SHA-1 of every member ID as 8 big-endian bytes, in ascending order; the
/// first 8 bytes, big-endian (etcd's `RaftCluster.genID`). The token is not hashed again.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let data: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    sha1_u64(&data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let m = member_id(&["http://localhost:2380"], "etcd-cluster");
        assert_eq!(format!("{m:x}"), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", cluster_id(&[m])), "cdf818194e3a8c32");
    }

    #[test]
    fn order_does_not_matter() {
        let a = member_id(&["http://b:1", "http://a:1"], "t");
        let b = member_id(&["http://a:1", "http://b:1"], "t");
        assert_eq!(a, b);
        assert_eq!(cluster_id(&[3, 1, 2]), cluster_id(&[1, 2, 3]));
    }
}
