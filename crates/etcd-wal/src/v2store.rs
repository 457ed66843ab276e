//! The v2 store JSON that etcd 3.4/3.5 keep inside the raft snapshot (docs/formats.md §5.4),
//! byte for byte as etcd's restore produces it: the node tree with the cluster membership under
//! `/0/members`, the watcher hub's 1000-slot event history, the stats and the current index.
//! etcd 3.4 and 3.5 read membership at boot from here.

use std::fmt::Write as _;

use crate::gostr::push_json_string;
use crate::member::{raft_attributes_json, ClusterMember};

/// Capacity of the v2 store's event history (`newWatchHub(1000)`): the JSON always holds this
/// many slots, `null` when unused, because a reader's next event insert indexes into it.
pub const EVENT_HISTORY_CAPACITY: usize = 1000;

/// Go's zero `time.Time` in JSON: permanent nodes.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A member's v2 key: `strconv.FormatUint(id, 16)`, no padding.
fn id_hex(id: u64) -> String {
    format!("{id:x}")
}

/// Appends a node object; `children` is `None` for a file (`"Children":null`) and the already
/// serialised `"k":{…}` pairs, sorted by key, for a directory.
fn push_node(
    out: &mut String,
    path: &str,
    index: u64,
    value: &str,
    children: Option<&[(String, String)]>,
) {
    out.push_str("{\"Path\":");
    push_json_string(out, path);
    let _ = write!(
        out,
        ",\"CreatedIndex\":{index},\"ModifiedIndex\":{index},\"ExpireTime\":\"{ZERO_TIME}\",\"Value\":"
    );
    push_json_string(out, value);
    out.push_str(",\"Children\":");
    match children {
        None => out.push_str("null"),
        Some(kids) => {
            out.push('{');
            for (i, (name, json)) in kids.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(out, name);
                out.push(':');
                out.push_str(json);
            }
            out.push('}');
        }
    }
    out.push('}');
}

/// A node as a string (see [`push_node`]).
fn node(path: &str, index: u64, value: &str, children: Option<&[(String, String)]>) -> String {
    let mut s = String::new();
    push_node(&mut s, path, index, value, children);
    s
}

/// The v2 store JSON after a restore created `members`, in this order (etcd 3.4/3.5 add them
/// in ascending ID order; pass them so): member `i` (1-based) was created at store index `i`.
pub fn store_json(members: &[ClusterMember]) -> String {
    let n = members.len() as u64;
    // /0/members/<hex> directories, each with its raftAttributes file; Go sorts map keys.
    let mut member_dirs: Vec<(String, String)> = members
        .iter()
        .zip(1u64..)
        .map(|(m, i)| {
            let hex = id_hex(m.id);
            let dir = format!("/0/members/{hex}");
            let file = node(
                &format!("{dir}/raftAttributes"),
                i,
                &raft_attributes_json(m),
                None,
            );
            let kids = [("raftAttributes".to_string(), file)];
            (hex, node(&dir, i, "", Some(&kids)))
        })
        .collect();
    member_dirs.sort_by(|a, b| a.0.cmp(&b.0));
    // `/0/members` is created together with the first member, at index 1.
    let members_dir = node("/0/members", 1, "", Some(&member_dirs));
    let zero = node("/0", 0, "", Some(&[("members".to_string(), members_dir)]));
    let one = node("/1", 0, "", Some(&[]));
    let root = node(
        "/",
        0,
        "",
        Some(&[("0".to_string(), zero), ("1".to_string(), one)]),
    );

    let mut out = String::with_capacity(root.len() + 8 * EVENT_HISTORY_CAPACITY + 1024);
    out.push_str("{\"Root\":");
    out.push_str(&root);
    out.push_str(",\"WatcherHub\":{\"EventHistory\":{\"Queue\":{\"Events\":[");
    // The ring buffer after inserting one create event per member.
    let cap = EVENT_HISTORY_CAPACITY;
    let mut slots: Vec<Option<String>> = vec![None; cap];
    for (m, i) in members.iter().zip(1u64..) {
        let mut ev = String::from("{\"action\":\"create\",\"node\":{\"key\":");
        push_json_string(
            &mut ev,
            &format!("/0/members/{}/raftAttributes", id_hex(m.id)),
        );
        ev.push_str(",\"value\":");
        push_json_string(&mut ev, &raft_attributes_json(m));
        let _ = write!(ev, ",\"modifiedIndex\":{i},\"createdIndex\":{i}}}}}");
        slots[((i - 1) % cap as u64) as usize] = Some(ev);
    }
    for (k, slot) in slots.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push_str(slot.as_deref().unwrap_or("null"));
    }
    let size = members.len().min(cap);
    let front = members.len().saturating_sub(cap) % cap;
    let back = members.len() % cap;
    let start_index = if members.is_empty() {
        0
    } else {
        n - size as u64 + 1
    };
    let _ = write!(
        out,
        "],\"Size\":{size},\"Front\":{front},\"Back\":{back},\"Capacity\":{cap}}},\"StartIndex\":{start_index},\"LastIndex\":{n}}}}},\"CurrentIndex\":{n},"
    );
    let _ = write!(
        out,
        "\"Stats\":{{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,\"deleteSuccess\":0,\"deleteFail\":0,\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":{n},\"createFail\":0,\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":0,\"expireCount\":0,\"watchers\":0}},\"CurrentVersion\":2}}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_member_shape() {
        let m = ClusterMember {
            name: "default".into(),
            peer_urls: vec!["http://localhost:2380".into()],
            id: 0x8e9e_05c5_2164_694d,
        };
        let json = store_json(&[m]);
        let head = concat!(
            r#"{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"#,
            r#""0":{"Path":"/0","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"#,
            r#""members":{"Path":"/0/members","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"#,
            r#""8e9e05c52164694d":{"Path":"/0/members/8e9e05c52164694d","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"#,
            r#""raftAttributes":{"Path":"/0/members/8e9e05c52164694d/raftAttributes","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z","Value":"{\"peerURLs\":[\"http://localhost:2380\"]}","Children":null}}}}}}},"#,
            r#""1":{"Path":"/1","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{}}}},"#,
            r#""WatcherHub":{"EventHistory":{"Queue":{"Events":[{"action":"create","node":{"key":"/0/members/8e9e05c52164694d/raftAttributes","value":"{\"peerURLs\":[\"http://localhost:2380\"]}","modifiedIndex":1,"createdIndex":1}},null,"#
        );
        assert!(
            json.starts_with(head),
            "{}",
            &json[..head.len().min(json.len())]
        );
        assert!(json.ends_with(concat!(
            r#"null],"Size":1,"Front":0,"Back":1,"Capacity":1000},"StartIndex":1,"LastIndex":1}},"CurrentIndex":1,"#,
            r#""Stats":{"getsSuccess":0,"getsFail":0,"setsSuccess":0,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"updateSuccess":0,"updateFail":0,"createSuccess":1,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0},"CurrentVersion":2}"#
        )));
        // One event and 999 empty slots.
        assert_eq!(json.matches(",null").count(), 999);
    }
}
