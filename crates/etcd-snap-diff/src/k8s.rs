//! `--k8s`: a key change seen as a Kubernetes object change.
//!
//! Why it exists: operators think in deployments and secrets, not in etcd keys, and most of what
//! changes between two backups of a cluster is bookkeeping (resourceVersion, managedFields,
//! status, generation). A key the API server laid out (`k8s_registry::layout`) is named by its
//! resource, namespace and name; a changed one is decoded on both sides exactly as
//! `etcd-snap-get` decodes it (`k8s_registry::object`, the one definition of the server-set
//! fields) and the two YAML texts are compared: equal texts mean the object changed only in
//! server-set fields (or in its etcd lease) and it is counted, not listed; otherwise the unified
//! diff is shown. One pair of objects is decoded at a time: memory stays flat.

use etcd_common::output::{escape, escape_bytes};
use etcd_db::diff::{Change, Kind};
use k8s_registry::object::{self, Decoded};
use k8s_registry::EncryptionConfig;

/// How `--k8s` reads objects.
pub struct View<'c> {
    /// The API server's `--etcd-prefix`.
    pub prefix: &'c str,
    /// Compare the server-set fields too.
    pub keep_server_fields: bool,
    /// The user's EncryptionConfiguration.
    pub config: Option<&'c EncryptionConfig>,
}

/// Where an object is, as shown (escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The resource as in the key, with its group for `<group>/<resource>` keys
    /// (`crontabs.stable.example.com`).
    pub resource: String,
    /// The group from the key, if any.
    pub group: Option<String>,
    /// The namespace, `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl Named {
    /// `NAMESPACE/NAME`, or `NAME` for a cluster-scoped object.
    pub fn place(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What one key change is, seen as an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A key outside the API server's layout: reported as a key.
    Key,
    /// A changed object whose only differences are server-set fields or its lease: not listed.
    ServerFieldsOnly,
    /// An object added, removed or changed.
    Object {
        /// Where it is.
        named: Named,
        /// The unified YAML diff (changed objects whose both sides decode).
        diff: Option<String>,
        /// Why the diff is not shown (a side encrypted without its key, or undecodable).
        not_shown: Option<String>,
    },
}

impl View<'_> {
    /// Looks at one change of the merge.
    pub fn see(&self, change: &Change<'_>) -> Seen {
        let Some(loc) = k8s_registry::layout::parse(self.prefix, change.key) else {
            return Seen::Key;
        };
        let named = Named {
            resource: match loc.group {
                Some(g) => escape(&format!("{}.{g}", loc.resource)).into_owned(),
                None => escape(loc.resource).into_owned(),
            },
            group: loc.group.map(|g| escape(g).into_owned()),
            namespace: loc.namespace.map(|ns| escape(ns).into_owned()),
            name: escape(loc.name).into_owned(),
        };
        let (Kind::Changed, Some(a), Some(b)) = (change.kind, &change.a, &change.b) else {
            return Seen::Object {
                named,
                diff: None,
                not_shown: None,
            };
        };
        let shown = |value: &[u8], rev: i64| -> Result<String, String> {
            match object::decode_with(
                value,
                change.key,
                self.prefix,
                rev,
                self.keep_server_fields,
                self.config,
            ) {
                Decoded::Object(v) => Ok(object::escaped_lines(
                    object::to_yaml(&v).as_bytes(),
                    escape_bytes,
                )),
                Decoded::Encrypted(e) => Err(format!(
                    "stored encrypted with {}; --encryption-config FILE (the API server's EncryptionConfiguration) shows the diff",
                    escape(&e.to_string())
                )),
                Decoded::Undecodable(why) => Err(escape(&why).into_owned()),
            }
        };
        let (ta, tb) = (
            shown(a.value, a.mod_revision),
            shown(b.value, b.mod_revision),
        );
        match (ta, tb) {
            (Ok(ta), Ok(tb)) => {
                let key = escape_bytes(change.key);
                match object::unified_diff(
                    &ta,
                    &tb,
                    &format!("a{key} @ {}", a.mod_revision),
                    &format!("b{key} @ {}", b.mod_revision),
                ) {
                    None => Seen::ServerFieldsOnly,
                    diff => Seen::Object {
                        named,
                        diff,
                        not_shown: None,
                    },
                }
            }
            (Err(why), _) => Seen::Object {
                named,
                diff: None,
                not_shown: Some(format!("A: {why}")),
            },
            (_, Err(why)) => Seen::Object {
                named,
                diff: None,
                not_shown: Some(format!("B: {why}")),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;
    use etcd_db::proto::KeyValue;

    fn kv(key: &'static [u8], value: &'static [u8], rev: i64) -> KeyValue<'static> {
        KeyValue {
            key,
            create_revision: 2,
            mod_revision: rev,
            version: 1,
            value,
            lease: 0,
        }
    }

    const VIEW: View<'static> = View {
        prefix: "/registry",
        keep_server_fields: false,
        config: None,
    };

    #[test]
    fn objects_are_named_and_server_fields_ignored() {
        let key: &[u8] = b"/registry/configmaps/app/web";
        let a = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"app","generation":1},"data":{"k":"1"}}"#;
        let b_server = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"app","generation":2,"managedFields":[{}]},"data":{"k":"1"}}"#;
        let b_edit = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"app"},"data":{"k":"2"}}"#;
        let change = |b: &'static [u8]| Change {
            kind: Kind::Changed,
            key,
            a: Some(kv(key, a, 5)),
            b: Some(kv(key, b, 9)),
        };
        assert_eq!(VIEW.see(&change(b_server)), Seen::ServerFieldsOnly);
        let keep = View {
            keep_server_fields: true,
            ..VIEW
        };
        assert!(matches!(
            keep.see(&change(b_server)),
            Seen::Object { diff: Some(_), .. }
        ));
        let Seen::Object {
            named,
            diff: Some(diff),
            not_shown: None,
        } = VIEW.see(&change(b_edit))
        else {
            panic!("not a shown change");
        };
        assert_eq!(
            (named.resource.as_str(), named.place()),
            ("configmaps", "app/web".into())
        );
        assert_eq!(
            diff,
            "--- a/registry/configmaps/app/web @ 5\n+++ b/registry/configmaps/app/web @ 9\n@@ -1,6 +1,6 @@\n apiVersion: v1\n data:\n-  k: \"1\"\n+  k: \"2\"\n kind: ConfigMap\n metadata:\n   name: web\n"
        );
        // Encrypted without a key: listed, with why there is no diff.
        let enc: &[u8] = b"k8s:enc:aescbc:v1:key1:\x01\x02";
        let Seen::Object {
            not_shown, diff, ..
        } = VIEW.see(&change(enc))
        else {
            panic!("not an object");
        };
        assert_eq!(diff, None);
        assert!(not_shown
            .unwrap()
            .starts_with("B: stored encrypted with aescbc"));
        // Outside the layout: a key.
        let other = Change {
            kind: Kind::Added,
            key: b"compact_rev_key",
            a: None,
            b: Some(kv(b"compact_rev_key", b"x", 3)),
        };
        assert_eq!(VIEW.see(&other), Seen::Key);
        let crd = Change {
            kind: Kind::Removed,
            key: b"/registry/stable.example.com/crontabs/c1",
            a: Some(kv(b"/registry/stable.example.com/crontabs/c1", b"{}", 3)),
            b: None,
        };
        let Seen::Object { named, .. } = VIEW.see(&crd) else {
            panic!("not an object");
        };
        assert_eq!(named.resource, "crontabs.stable.example.com");
        assert_eq!(named.place(), "c1");
    }
}
