//! A tally of a snapshot's Kubernetes objects: objects and bytes per resource and per namespace,
//! the largest objects, events' share, value formats and encryption at rest.
//!
//! Why it exists: "what is in this backup, and how carefully must I guard it" is the first
//! question about a Kubernetes etcd backup. The caller feeds it every live key once
//! ([`Inventory::add`]); it keeps counters per resource and namespace and the top
//! [`LARGEST`] objects, never a value, so its memory is bounded by the number of resources and
//! namespaces, not by the data. Bytes are stored value bytes (what etcd returns for the key).

use crate::encryption::Encryption;
use crate::layout;
use crate::value::{self, ValueFormat};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// How many of the largest objects are kept.
pub const LARGEST: usize = 10;

/// What the counts cover, stated in every report.
pub const COUNTED: &str =
    "live keys at the snapshot's revision (the latest revision of each key; deleted keys and older revisions are not counted)";

/// Objects and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// Objects (keys).
    pub objects: u64,
    /// Stored value bytes.
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: usize) {
        self.objects += 1;
        self.bytes += bytes as u64;
    }
}

/// Values per storage format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Formats {
    /// `k8s\0` protobuf envelopes.
    pub protobuf: u64,
    /// JSON objects.
    pub json: u64,
    /// Encrypted at rest.
    pub encrypted: u64,
    /// Anything else.
    pub other: u64,
}

/// One resource's tally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    /// Objects and bytes.
    pub count: Count,
    /// Groups read from the values' apiVersion (built-ins; `""` is core).
    pub groups: BTreeSet<String>,
    /// Value formats.
    pub formats: Formats,
    /// Encrypted values per provider label (`aescbc`, `kms-v2`, ...).
    pub encrypted: BTreeMap<String, u64>,
    /// Namespaced and cluster-scoped objects.
    pub namespaced: u64,
}

/// The inventory of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The key prefix (`/registry`).
    pub prefix: String,
    /// Per resource: (group from the key, resource) → tally.
    pub resources: BTreeMap<(Option<String>, String), Resource>,
    /// Per namespace.
    pub namespaces: BTreeMap<String, Count>,
    /// Cluster-scoped objects.
    pub cluster_scoped: Count,
    /// Keys under the prefix not laid out like objects.
    pub other: Count,
    /// Live keys outside the prefix.
    pub outside: Count,
    /// Every live key.
    pub total: Count,
    largest: BinaryHeap<Reverse<(u64, Reverse<String>)>>,
}

impl Inventory {
    /// An empty inventory of the keys under `prefix`.
    pub fn new(prefix: &str) -> Inventory {
        Inventory {
            prefix: prefix.to_string(),
            ..Inventory::default()
        }
    }

    /// Counts one live key.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.total.add(value.len());
        let trimmed = self.prefix.trim_end_matches('/');
        let under = key.starts_with(trimmed.as_bytes())
            && (trimmed.len() == key.len() || key.get(trimmed.len()) == Some(&b'/'));
        if !under {
            self.outside.add(value.len());
            return;
        }
        self.keep_largest(key, value.len() as u64);
        let Some(location) = layout::parse(&self.prefix, key) else {
            self.other.add(value.len());
            return;
        };
        let slot = (
            location.group.map(str::to_string),
            location.resource.to_string(),
        );
        let resource = self.resources.entry(slot).or_default();
        resource.count.add(value.len());
        let format = ValueFormat::of(value);
        match &format {
            ValueFormat::Protobuf => resource.formats.protobuf += 1,
            ValueFormat::Json => resource.formats.json += 1,
            ValueFormat::Encrypted(Encryption { provider, .. }) => {
                resource.formats.encrypted += 1;
                *resource.encrypted.entry(provider.clone()).or_default() += 1;
            }
            ValueFormat::Other => resource.formats.other += 1,
        }
        if location.group.is_none() && !matches!(format, ValueFormat::Encrypted(_)) {
            if let Some(meta) = value::type_meta(value) {
                if !resource.groups.contains(meta.group()) {
                    resource.groups.insert(meta.group().to_string());
                }
            }
        }
        match location.namespace {
            Some(ns) => {
                resource.namespaced += 1;
                match self.namespaces.get_mut(ns) {
                    Some(count) => count.add(value.len()),
                    None => {
                        let mut count = Count::default();
                        count.add(value.len());
                        self.namespaces.insert(ns.to_string(), count);
                    }
                }
            }
            None => self.cluster_scoped.add(value.len()),
        }
    }

    fn keep_largest(&mut self, key: &[u8], bytes: u64) {
        let smallest = self.largest.peek().map(|Reverse((b, _))| *b);
        if self.largest.len() < LARGEST || smallest.is_some_and(|s| bytes > s) {
            let key = String::from_utf8_lossy(key).into_owned();
            self.largest.push(Reverse((bytes, Reverse(key))));
            if self.largest.len() > LARGEST {
                self.largest.pop();
            }
        }
    }

    /// The largest objects under the prefix, largest first (ties by key).
    pub fn largest(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .largest
            .iter()
            .map(|Reverse((bytes, Reverse(key)))| (key.clone(), *bytes))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Objects under the prefix (resources, plus keys that are not objects).
    pub fn under_prefix(&self) -> Count {
        Count {
            objects: self.total.objects - self.outside.objects,
            bytes: self.total.bytes - self.outside.bytes,
        }
    }

    /// The events (core and events.k8s.io share `<prefix>/events`).
    pub fn events(&self) -> Count {
        self.resources
            .get(&(None, "events".to_string()))
            .map(|r| r.count)
            .unwrap_or_default()
    }

    /// The secrets' tally, if there are any.
    pub fn secrets(&self) -> Option<&Resource> {
        self.resources.get(&(None, "secrets".to_string()))
    }
}

/// How a resource is named in reports: `pods`, `deployments.apps`, `crontabs.stable.example.com`;
/// a built-in whose values are all unreadable (encrypted) keeps its bare name.
pub fn display_name(group: Option<&str>, resource: &str, r: &Resource) -> String {
    match group_of(group, r).as_str() {
        "" | "unknown" => resource.to_string(),
        g => format!("{resource}.{g}"),
    }
}

/// The group of a resource: from its key, else the values' apiVersion (several joined by `,`),
/// else `unknown`.
pub fn group_of(group: Option<&str>, r: &Resource) -> String {
    match group {
        Some(g) => g.to_string(),
        None if r.groups.is_empty() => "unknown".to_string(),
        None => r.groups.iter().cloned().collect::<Vec<_>>().join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_and_keeps_the_largest() {
        let mut inv = Inventory::new("/registry");
        let pod: &[u8] = b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x00";
        let ns: &[u8] = b"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\"}";
        let secret: &[u8] = b"k8s:enc:aescbc:v1:key1:zzz";
        inv.add(b"/registry/pods/default/a", pod);
        inv.add(b"/registry/pods/kube-system/b", &[b'x'; 30]);
        inv.add(b"/registry/secrets/default/s", secret);
        inv.add(b"/registry/namespaces/default", ns);
        inv.add(b"/registry/weird", b"1");
        inv.add(b"/other", b"12");
        let bytes = |n: usize| n as u64;
        assert_eq!(inv.total.objects, 6);
        assert_eq!(
            inv.total.bytes,
            bytes(pod.len() + 30 + secret.len() + ns.len() + 3)
        );
        assert_eq!(
            inv.outside,
            Count {
                objects: 1,
                bytes: 2
            }
        );
        assert_eq!(
            inv.other,
            Count {
                objects: 1,
                bytes: 1
            }
        );
        let pods = &inv.resources[&(None, "pods".to_string())];
        assert_eq!(
            pods.count,
            Count {
                objects: 2,
                bytes: bytes(pod.len() + 30)
            }
        );
        assert_eq!((pods.formats.protobuf, pods.formats.other), (1, 1));
        assert_eq!(group_of(None, pods), "");
        let secrets = inv.secrets().cloned().unwrap_or_default();
        assert_eq!(secrets.encrypted.get("aescbc"), Some(&1));
        assert_eq!(group_of(None, &secrets), "unknown");
        assert_eq!(
            inv.namespaces["default"],
            Count {
                objects: 2,
                bytes: bytes(pod.len() + secret.len())
            }
        );
        assert_eq!(
            inv.cluster_scoped,
            Count {
                objects: 1,
                bytes: bytes(ns.len())
            }
        );
        let largest = inv.largest();
        assert_eq!(
            largest[0],
            ("/registry/namespaces/default".to_string(), bytes(ns.len()))
        );
        assert_eq!(largest.len(), 5);
        for i in 0..20u8 {
            inv.add(
                format!("/registry/configmaps/x/{i}").as_bytes(),
                &vec![b'{'; 100 + usize::from(i)],
            );
        }
        let largest = inv.largest();
        assert_eq!(largest.len(), LARGEST);
        assert_eq!(largest[0].1, 119);
        assert_eq!(largest[9].1, 110);
    }
}
