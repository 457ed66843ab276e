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
    /// The etcd key's bytes, for messages and tables ([`Item::shown_key`]).
    pub raw_key: Vec<u8>,
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

impl Item {
    /// The key as human output shows it: non-printable bytes escaped (`\x1b`, `\xff`), printable
    /// keys unchanged.
    pub fn shown_key(&self) -> std::borrow::Cow<'_, str> {
        etcd_common::output::escape_bytes(&self.raw_key)
    }

    /// The name as human output shows it, escaped like [`Item::shown_key`] (a key outside the
    /// API server's layout is its own name, shown from its bytes).
    pub fn shown_name(&self) -> std::borrow::Cow<'_, str> {
        if self.name == self.key {
            self.shown_key()
        } else {
            etcd_common::output::escape(&self.name)
        }
    }
}

/// Where a key sits: namespace, name, group.
type Place<'k> = (Option<&'k str>, &'k str, Option<&'k str>);

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
            // A custom resource may be namespaced or not; with -A its namespaced objects of that
            // name may be in any namespace, found by scanning the resource's keys.
            (Some(Resolved::Custom { resource, group }), Some(n)) => match ns {
                Some(ns) => {
                    let storage = format!("{group}/{resource}");
                    vec![
                        layout::object_key(k8s_prefix, &storage, Some(ns), n),
                        layout::object_key(k8s_prefix, &storage, None, n),
                    ]
                }
                None => Vec::new(),
            },
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

    /// Whether the first pass should keep `key`: exactly what [`Selection::item`] takes (a
    /// plural without a group: every namespace and name, settled later), so that the first pass
    /// holds only the keys asked for, not every key under the resource's prefix.
    pub fn wants_key(&self, key: &[u8]) -> bool {
        if !self.exact.is_empty() {
            return self.exact.iter().any(|k| k.as_bytes() == key);
        }
        key.starts_with(self.key_prefix.as_bytes())
            && (self.resolved.is_none() || self.place(key).is_some())
    }

    /// The item for a live key, if it is what was asked for.
    pub fn item(&self, key: &[u8], value: &[u8], mod_revision: i64) -> Option<Item> {
        let text = String::from_utf8_lossy(key).into_owned();
        let make = |(namespace, name, group): Place<'_>| Item {
            key: text.clone(),
            raw_key: key.to_vec(),
            value: value.to_vec(),
            mod_revision,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            group: group.map(str::to_string),
        };
        if self.resolved.is_none() {
            return Some(match layout::parse(&self.k8s_prefix, key) {
                Some(l) => make((l.namespace, l.name, l.group)),
                None => make((None, &text, None)),
            });
        }
        self.place(key).map(make)
    }

    /// Where a key sits, if it is an object of the resource asked for, in scope and named as
    /// asked (a plural without a group: any namespace and name, see [`Selection::narrow`]).
    fn place<'k>(&self, key: &'k [u8]) -> Option<Place<'k>> {
        let resolved = self.resolved.as_ref()?;
        let named = |name: &str| self.name.as_deref().is_none_or(|n| n == name);
        match resolved {
            // By the built-in's storage path, not by parsing the key: CRDs and APIServices are
            // built in yet stored under a group path, and the rest of the key is `[ns/]name`.
            Resolved::Builtin(Builtin { namespaced, .. }) => {
                let rest = key.strip_prefix(self.key_prefix.as_bytes())?;
                let rest = std::str::from_utf8(rest).ok()?;
                let (namespace, name) = match rest.split_once('/') {
                    Some((ns, name)) if *namespaced => (Some(ns), name),
                    None if !namespaced => (None, rest),
                    _ => return None,
                };
                let fits = !name.is_empty()
                    && !name.contains('/')
                    && namespace.is_none_or(|ns| !ns.is_empty())
                    && (!namespaced || self.in_scope(namespace))
                    && named(name);
                fits.then_some((namespace, name, None))
            }
            Resolved::Custom { resource, group } => {
                let l = layout::parse(&self.k8s_prefix, key)?;
                let fits = l.group == Some(group.as_str())
                    && l.resource == resource
                    && (l.namespace.is_none() || self.in_scope(l.namespace))
                    && named(l.name);
                fits.then_some((l.namespace, l.name, l.group))
            }
            // Every namespace and name: which group has the plural is settled first
            // (`Selection::narrow`).
            Resolved::Unknown(plural) => {
                let l = layout::parse(&self.k8s_prefix, key)?;
                (l.group.is_some() && l.resource == plural).then_some((
                    l.namespace,
                    l.name,
                    l.group,
                ))
            }
        }
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

/// The items the selection names that were live at revision `at` (`None`: the snapshot's
/// revision), with their values as of `at`, sorted by namespace and name, and the revision read.
/// A compacted or future `at` is refused ([`etcd_db::Error::Compacted`],
/// [`etcd_db::Error::FutureRevision`]).
pub fn collect(
    db: &bbolt::Db,
    selection: &Selection,
    at: Option<i64>,
) -> etcd_db::Result<(Vec<Item>, i64)> {
    let mut items = Vec::new();
    let revision = etcd_db::history::visit_at(
        db,
        at,
        |key| selection.wants_key(key),
        |kv| {
            if let Some(item) = selection.item(kv.key, kv.value, kv.mod_revision) {
                items.push(item);
            }
        },
    )?;
    items.sort_by(|a, b| (&a.namespace, &a.name, &a.key).cmp(&(&b.namespace, &b.name, &b.key)));
    Ok((items, revision))
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sel(resource: &str, name: Option<&str>, scope: Scope) -> Selection {
        let query = Query::Resource {
            resource: resource.into(),
            name: name.map(str::to_string),
        };
        Selection::new(&query, &scope, "/registry")
    }

    fn one(ns: &str) -> Scope {
        Scope::One(ns.into())
    }

    /// Whether `key` is kept by both passes.
    fn takes(s: &Selection, key: &str) -> bool {
        s.wants_key(key.as_bytes()) && s.item(key.as_bytes(), b"v", 1).is_some()
    }

    #[test]
    fn built_ins_stored_under_a_group_path() {
        let crd =
            "/registry/apiextensions.k8s.io/customresourcedefinitions/crontabs.stable.example.com";
        let api = "/registry/apiregistration.k8s.io/apiservices/v1.apps";
        for scope in [one("default"), Scope::All] {
            assert!(takes(&sel("crd", None, scope.clone()), crd));
            assert!(takes(
                &sel("crd", Some("crontabs.stable.example.com"), scope.clone()),
                crd
            ));
            assert!(takes(&sel("apiservices", None, scope.clone()), api));
            assert!(takes(
                &sel("apiservice", Some("v1.apps"), scope.clone()),
                api
            ));
        }
        let item = sel("crd", None, Scope::All)
            .item(crd.as_bytes(), b"v", 1)
            .unwrap();
        assert_eq!(item.name, "crontabs.stable.example.com");
        assert_eq!(item.namespace, None);
    }

    #[test]
    fn the_first_pass_keeps_only_what_is_asked_for() {
        // Memory is bounded by the keys the first pass keeps: other namespaces, other resources
        // and other names must not be kept.
        let pods = sel("pods", None, one("web"));
        assert!(pods.wants_key(b"/registry/pods/web/a"));
        assert!(!pods.wants_key(b"/registry/pods/other/a"));
        let plural = sel("crontabs", None, one("web"));
        assert!(plural.wants_key(b"/registry/stable.example.com/crontabs/web/c1"));
        assert!(!plural.wants_key(b"/registry/pods/web/a"));
        assert!(!plural.wants_key(b"/registry/configmaps/web/a"));
        // A plural without a group keeps its objects in every namespace and of every name:
        // which groups have it is settled over all of them, then narrowed.
        assert!(plural.wants_key(b"/registry/stable.example.com/crontabs/other/c1"));
        assert!(!plural.wants_key(b"/registry/stable.example.com/other/web/c1"));
        let named = sel("crontabs.stable.example.com", Some("c1"), Scope::All);
        assert!(named.wants_key(b"/registry/stable.example.com/crontabs/c1"));
        assert!(!named.wants_key(b"/registry/stable.example.com/crontabs/other/c2"));
        let custom = sel("crontabs.stable.example.com", None, one("web"));
        assert!(custom.wants_key(b"/registry/stable.example.com/crontabs/web/c1"));
        assert!(custom.wants_key(b"/registry/stable.example.com/crontabs/cluster-scoped"));
        assert!(!custom.wants_key(b"/registry/stable.example.com/crontabs/other/c1"));
    }

    #[test]
    fn namespaces_named_like_paths_and_resources() {
        // A namespace called `specs` or `endpoints`, objects named like resources.
        let svc = sel("svc", None, one("specs"));
        assert!(takes(&svc, "/registry/services/specs/specs/x"));
        assert!(!takes(&svc, "/registry/services/endpoints/specs/x"));
        let ep = sel("ep", None, one("endpoints"));
        assert!(takes(&ep, "/registry/services/endpoints/endpoints/x"));
        assert!(!takes(&ep, "/registry/services/specs/endpoints/x"));
        let pods = sel("pods", None, one("pods"));
        assert!(takes(&pods, "/registry/pods/pods/pods"));
        // Cluster-scoped: the namespace is ignored, and -A lists them.
        for scope in [one("default"), Scope::All] {
            let ns = sel("ns", None, scope.clone());
            assert!(takes(&ns, "/registry/namespaces/default"));
            assert!(takes(&ns, "/registry/namespaces/kube-system"));
            assert!(!takes(&ns, "/registry/namespaces/a/b"));
            assert!(takes(&sel("no", Some("n1"), scope), "/registry/minions/n1"));
        }
    }

    #[test]
    fn events_of_both_groups_share_one_path() {
        let key = "/registry/events/web/e1";
        for given in ["events", "ev", "events.events.k8s.io", "event"] {
            assert!(takes(&sel(given, None, one("web")), key), "{given}");
        }
    }

    #[test]
    fn a_custom_resource_by_name_across_namespaces() {
        // -A with a NAME: kubectl lists that name in every namespace (and cluster-scoped).
        let named = sel("crontabs.stable.example.com", Some("c1"), Scope::All);
        assert!(takes(
            &named,
            "/registry/stable.example.com/crontabs/ns1/c1"
        ));
        assert!(takes(
            &named,
            "/registry/stable.example.com/crontabs/ns2/c1"
        ));
        assert!(takes(&named, "/registry/stable.example.com/crontabs/c1"));
        assert!(!takes(
            &named,
            "/registry/stable.example.com/crontabs/ns1/c2"
        ));
        let in_ns = sel("crontabs.stable.example.com", Some("c1"), one("ns1"));
        assert!(takes(
            &in_ns,
            "/registry/stable.example.com/crontabs/ns1/c1"
        ));
        assert!(takes(&in_ns, "/registry/stable.example.com/crontabs/c1"));
        assert!(!takes(
            &in_ns,
            "/registry/stable.example.com/crontabs/ns2/c1"
        ));
    }

    #[test]
    fn non_utf8_keys() {
        // Not a layout key: only --prefix shows them, by their lossy text.
        let key = b"/registry/pods/web/\xff\xfe";
        assert!(!takes_bytes(&sel("pods", None, one("web")), key));
        let prefix = Selection::new(
            &Query::Prefix("/registry/pods/".into()),
            &one("x"),
            "/registry",
        );
        let item = prefix.item(key, b"v", 1).unwrap();
        assert_eq!(item.key, "/registry/pods/web/\u{fffd}\u{fffd}");
        assert_eq!(item.shown_key(), "/registry/pods/web/\\xff\\xfe");
        assert_eq!(item.shown_name(), "/registry/pods/web/\\xff\\xfe");
    }

    fn takes_bytes(s: &Selection, key: &[u8]) -> bool {
        s.wants_key(key) && s.item(key, b"v", 1).is_some()
    }
}
