//! Where the API server puts an object: `<prefix>/<resource>/<namespace>/<name>` for a namespaced
//! built-in resource, `<prefix>/<resource>/<name>` for a cluster-scoped one, and
//! `<prefix>/<group>/<resource>/[<namespace>/]<name>` when the first segment holds a dot (custom
//! resources, CRDs, APIServices). A few built-ins keep historical paths (`services/specs`,
//! `services/endpoints`, `minions`, `ingress`, `controllers`, `podsecuritypolicy`), mapped back
//! to their resource names by [`crate::resources`].
//!
//! Why it exists: keys are all an inventory has for encrypted objects, and `etcd-snap-get` builds
//! the key to read from a resource, namespace and name.

use crate::resources;
use serde::Serialize;

/// What a key under the prefix names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location<'k> {
    /// The API group from the key (`Some` only for `<group>/<resource>` paths); a built-in's group
    /// is only in its value.
    pub group: Option<&'k str>,
    /// The resource (plural) as the API server names it (`services` for `services/specs`).
    pub resource: &'k str,
    /// The namespace, `None` for a cluster-scoped object.
    pub namespace: Option<&'k str>,
    /// The object's name.
    pub name: &'k str,
}

/// Splits `key` (under `prefix`, e.g. `/registry`) into resource, namespace and name; `None`
/// for a key that is not laid out like an object (outside the prefix, too few or too many
/// segments, empty segments, not UTF-8).
pub fn parse<'k>(prefix: &str, key: &'k [u8]) -> Option<Location<'k>> {
    let key = std::str::from_utf8(key).ok()?;
    let rest = key
        .strip_prefix(prefix.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let (group, resource, tail) = match segments.as_slice() {
        [group, resource, tail @ ..] if group.contains('.') => (Some(*group), *resource, tail),
        [first, second, tail @ ..]
            if resources::by_storage(&format!("{first}/{second}")).is_some() =>
        {
            let builtin = resources::by_storage(&format!("{first}/{second}"))?;
            (None, builtin.resource, tail)
        }
        [first, tail @ ..] => (
            None,
            resources::by_storage(first).map_or(*first, |b| b.resource),
            tail,
        ),
        [] => return None,
    };
    let (namespace, name) = match tail {
        [namespace, name] => (Some(*namespace), *name),
        [name] => (None, *name),
        _ => return None,
    };
    Some(Location {
        group,
        resource,
        namespace,
        name,
    })
}

/// The key prefix holding every object of a resource stored at `storage` (a path from
/// [`resources::Builtin::storage`] or `<group>/<plural>`), ending in `/`.
pub fn resource_prefix(prefix: &str, storage: &str) -> String {
    format!("{}/{storage}/", prefix.trim_end_matches('/'))
}

/// The key of one object.
pub fn object_key(prefix: &str, storage: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{}{ns}/{name}", resource_prefix(prefix, storage)),
        None => format!("{}{name}", resource_prefix(prefix, storage)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: &str) -> Option<(Option<&str>, &str, Option<&str>, &str)> {
        parse("/registry", key.as_bytes()).map(|l| (l.group, l.resource, l.namespace, l.name))
    }

    #[test]
    fn parses_the_api_servers_layout() {
        assert_eq!(
            p("/registry/pods/default/web-0"),
            Some((None, "pods", Some("default"), "web-0"))
        );
        assert_eq!(
            p("/registry/namespaces/kube-system"),
            Some((None, "namespaces", None, "kube-system"))
        );
        assert_eq!(
            p("/registry/services/specs/default/kubernetes"),
            Some((None, "services", Some("default"), "kubernetes"))
        );
        assert_eq!(
            p("/registry/services/endpoints/default/kubernetes"),
            Some((None, "endpoints", Some("default"), "kubernetes"))
        );
        assert_eq!(
            p("/registry/minions/node-1"),
            Some((None, "nodes", None, "node-1"))
        );
        assert_eq!(
            p("/registry/ingress/web/front"),
            Some((None, "ingresses", Some("web"), "front"))
        );
        assert_eq!(
            p("/registry/controllers/ns/rc"),
            Some((None, "replicationcontrollers", Some("ns"), "rc"))
        );
        assert_eq!(
            p("/registry/ranges/serviceips"),
            Some((None, "ranges", None, "serviceips"))
        );
        assert_eq!(
            p("/registry/masterleases/10.0.0.1"),
            Some((None, "masterleases", None, "10.0.0.1"))
        );
        assert_eq!(
            p("/registry/apiextensions.k8s.io/customresourcedefinitions/crontabs.stable.example.com"),
            Some((Some("apiextensions.k8s.io"), "customresourcedefinitions", None, "crontabs.stable.example.com"))
        );
        assert_eq!(
            p("/registry/stable.example.com/crontabs/ns1/c1"),
            Some((Some("stable.example.com"), "crontabs", Some("ns1"), "c1"))
        );
        assert_eq!(p("/registry/pods/a/b/c"), None);
        assert_eq!(p("/registry/pods"), None);
        assert_eq!(p("/registry//x"), None);
        assert_eq!(p("/registryx/pods/a"), None);
        assert_eq!(p("/other/pods/a"), None);
        assert_eq!(
            parse("/kubernetes.io/", b"/kubernetes.io/pods/a/b").map(|l| l.name),
            Some("b")
        );
        assert_eq!(
            object_key("/registry", "services/specs", Some("d"), "k"),
            "/registry/services/specs/d/k"
        );
        assert_eq!(
            object_key("/registry/", "minions", None, "n"),
            "/registry/minions/n"
        );
    }
}
