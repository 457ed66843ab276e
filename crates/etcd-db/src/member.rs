//! Member records of the `members` bucket (Go JSON of etcd's `Member`).

use serde::{Deserialize, Serialize};

/// A cluster member as etcd stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Member {
    /// The member ID.
    pub id: u64,
    /// Peer URLs.
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    /// Whether the member is a learner.
    #[serde(
        rename = "isLearner",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub is_learner: bool,
    /// The member's name (empty until it has started).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Client URLs (empty until it has started).
    #[serde(rename = "clientURLs", default, skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
}

impl Member {
    /// Decodes a `members` bucket value.
    pub fn decode(value: &[u8]) -> Result<Member, String> {
        serde_json::from_slice(value).map_err(|e| format!("member JSON does not decode: {e}"))
    }
}
