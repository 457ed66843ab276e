//! A member of the restored cluster and its JSON forms (docs/formats.md §2.4), written byte for
//! byte as Go's `encoding/json` writes etcd's `Member` and `RaftAttributes`: key order, omitted
//! empty fields, `\u003c`-style escaping. The same bytes go into the members bucket, the raft
//! ConfChange context in the WAL and the v2 store in the `.snap` file.

use crate::gostr::push_json_string;

/// One member of the cluster a restore creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    /// Its name (the key in `--initial-cluster`).
    pub name: String,
    /// Its peer URLs, normalised as Go's `URL.String()` writes them, sorted ascending.
    pub peer_urls: Vec<String>,
    /// Its member ID.
    pub id: u64,
}

/// Appends `["a","b"]`.
fn push_string_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, s);
    }
    out.push(']');
}

/// The member JSON etcd writes into the members bucket and the ConfChange context:
/// `{"id":<decimal>,"peerURLs":[…],"name":"…"}`. `isLearner` (always false for a restore) and
/// `clientURLs` (empty until the member publishes them) are omitted as Go omits them; so is
/// `name` when empty.
pub fn member_json(m: &ClusterMember) -> String {
    let mut out = String::with_capacity(64 + m.name.len() + 32 * m.peer_urls.len());
    out.push_str("{\"id\":");
    out.push_str(&m.id.to_string());
    out.push_str(",\"peerURLs\":");
    push_string_list(&mut out, &m.peer_urls);
    if !m.name.is_empty() {
        out.push_str(",\"name\":");
        push_json_string(&mut out, &m.name);
    }
    out.push('}');
    out
}

/// The `raftAttributes` JSON of the v2 store: `{"peerURLs":[…]}` (`isLearner` omitted).
pub fn raft_attributes_json(m: &ClusterMember) -> String {
    let mut out = String::from("{\"peerURLs\":");
    push_string_list(&mut out, &m.peer_urls);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_member() {
        let m = ClusterMember {
            name: "default".into(),
            peer_urls: vec!["http://localhost:2380".into()],
            id: 0x8e9e_05c5_2164_694d,
        };
        assert_eq!(
            member_json(&m),
            r#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#
        );
        assert_eq!(
            raft_attributes_json(&m),
            r#"{"peerURLs":["http://localhost:2380"]}"#
        );
    }

    #[test]
    fn empty_name_and_escaping() {
        let m = ClusterMember {
            name: String::new(),
            peer_urls: vec!["http://a&b:1".into(), "http://c:2".into()],
            id: 1,
        };
        assert_eq!(
            member_json(&m),
            r#"{"id":1,"peerURLs":["http://a\u0026b:1","http://c:2"]}"#
        );
        let named = ClusterMember {
            name: "<x>".into(),
            ..m
        };
        assert!(member_json(&named).ends_with(r#","name":"\u003cx\u003e"}"#));
    }
}
