//! Which live keys a request names, and collecting them from the database.
//!
//! Why it exists: a resource name becomes a key prefix (`svc` → `/registry/services/specs/`), a
//! name becomes one or two exact keys (a custom resource may be namespaced or not), and what
//! comes back is checked against the API server's layout so that, say, `-n web` never returns
//! an object of another namespace.

use crate::cli::{Query, Scope};
use k8s_registry::layout;
use k8s_registry::resources::{self, Builtin, Resolved};

/// One live key that matched, with its value.
#[derive(Debug, Clone)]
pub struct Item {
    /// The etcd key (lossy UTF-8).
    pub key: String,
    /// The stored value.
    pub value: Vec<u8>,
    /// The key's mod revision (what the API server reports as resourceVersion).
    pub mod_revision: i64,
    /// The namespace, when the key has one.
    pub namespace: Option<String>,
    /// The object's name (the whole key for `--prefix` keys outside the layout).
    pub name: String,
    /// The group in the key (custom resources).
    pub group: Option<String>,
}

/// A request turned into keys.
#[derive(Debug, Clone)]
pub struct Selection {
    /// What the resource resolved to (`None` for `--prefix`).
    pub resolved: Option<Resolved>,
    /// Every matching key starts with this.
    pub key_prefix: String,
    /// The exact keys, when one object is asked for and its keys are known.
    pub exact: Vec<String>,
    /// The one object's name.
    pub name: Option<String>,
    /// Namespaces.
    pub scope: Scope,
    k8s_prefix: String,
}

impl Selection {
    /// Turns the query into keys.
    pub fn new(query: &Query, scope: &Scope, k8s_prefix: &str) -> Selection {
        let (resolved, key_prefix, name) = match query {
            Query::Prefix(p) => (None, p.clone(), None),
            Query::Resource { resource, name } => {
                let resolved = resources::resolve(resource);
                let key_prefix = match &resolved {
                    Resolved::Builtin(b) => layout::resource_prefix(k8s_prefix, b.storage),
                    Resolved::Custom { resource, group } => {
                        layout::resource_prefix(k8s_prefix, &format!("{group}/{resource}"))
                    }
                    Resolved::Unknown(_) => format!("{}/", k8s_prefix.trim_end_matches('/')),
                };
                (Some(resolved), key_prefix, name.clone())
            }
        };
        let ns = match scope {
            Scope::One(ns) => Some(ns.as_str()),
            Scope::All => None,
        };
        let exact = match (&resolved, &name) {
            (Some(Resolved::Builtin(b)), Some(n)) => {
                let namespace = if b.namespaced { ns } else { None };
                match (b.namespaced, namespace) {
                    (true, None) => Vec::new(),
                    _ => vec![layout::object_key(k8s_prefix, b.storage, namespace, n)],
                }
            }
            (Some(Resolved::Custom { resource, group }), Some(n)) => {
                let storage = format!("{group}/{resource}");
                let mut keys = vec![layout::object_key(k8s_prefix, &storage, None, n)];
                if let Some(ns) = ns {
                    keys.insert(0, layout::object_key(k8s_prefix, &storage, Some(ns), n));
                }
                keys
            }
            _ => Vec::new(),
        };
        Selection {
            resolved,
            key_prefix,
            exact,
            name,
            scope: scope.clone(),
            k8s_prefix: k8s_prefix.to_string(),
        }
    }

    /// Whether the first pass should keep `key` (cheap; [`Selection::item`] checks the rest).
    pub fn wants_key(&self, key: &[u8]) -> bool {
        if self.exact.is_empty() {
            key.starts_with(self.key_prefix.as_bytes())
        } else {
            self.exact.iter().any(|k| k.as_bytes() == key)
        }
    }

    /// The item for a live key, if it is what was asked for.
    pub fn item(&self, key: &[u8], value: &[u8], mod_revision: i64) -> Option<Item> {
        let text = String::from_utf8_lossy(key).into_owned();
        let make = |namespace: Option<&str>, name: &str, group: Option<&str>| Item {
            key: text.clone(),
            value: value.to_vec(),
            mod_revision,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            group: group.map(str::to_string),
        };
        let Some(resolved) = &self.resolved else {
            return Some(match layout::parse(&self.k8s_prefix, key) {
                Some(l) => make(l.namespace, l.name, l.group),
                None => make(None, &text, None),
            });
        };
        let location = layout::parse(&self.k8s_prefix, key)?;
        let fits = match resolved {
            Resolved::Builtin(Builtin {
                resource,
                namespaced,
                ..
            }) => {
                location.group.is_none()
                    && location.resource == *resource
                    && location.namespace.is_some() == *namespaced
                    && (!namespaced || self.in_scope(location.namespace))
            }
            Resolved::Custom { resource, group } => {
                location.group == Some(group.as_str())
                    && location.resource == resource
                    && (location.namespace.is_none() || self.in_scope(location.namespace))
            }
            // Every namespace and name: which group has the plural is settled first
            // (`Selection::narrow`).
            Resolved::Unknown(plural) => {
                return (location.group.is_some() && location.resource == plural)
                    .then(|| make(location.namespace, location.name, location.group));
            }
        };
        let named = self.name.as_deref().is_none_or(|n| n == location.name);
        (fits && named).then(|| make(location.namespace, location.name, location.group))
    }

    /// Keeps the items in scope and with the name asked for (for a plural found in a group).
    pub fn narrow(&self, items: Vec<Item>) -> Vec<Item> {
        items
            .into_iter()
            .filter(|i| i.namespace.is_none() || self.in_scope(i.namespace.as_deref()))
            .filter(|i| self.name.as_deref().is_none_or(|n| n == i.name))
            .collect()
    }

    fn in_scope(&self, namespace: Option<&str>) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::One(ns) => namespace == Some(ns.as_str()),
        }
    }
}

/// The live items the selection names, sorted by namespace and name, and the snapshot's
/// revision.
pub fn collect(db: &bbolt::Db, selection: &Selection) -> etcd_db::Result<(Vec<Item>, i64)> {
    let mut items = Vec::new();
    let stats = etcd_db::visit_live(
        db,
        |key| selection.wants_key(key),
        |kv| {
            if let Some(item) = selection.item(kv.key, kv.value, kv.mod_revision) {
                items.push(item);
            }
        },
    )?;
    items.sort_by(|a, b| (&a.namespace, &a.name, &a.key).cmp(&(&b.namespace, &b.name, &b.key)));
    Ok((items, stats.revision))
}
