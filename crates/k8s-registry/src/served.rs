//! From the version an object is stored in to the version the API server serves it in.
//!
//! Why it exists: the API server keeps storing a few resources in a version it no longer serves
//! and converts them on every read. `CustomResourceDefinition`s are the case that matters: stored
//! as `apiextensions.k8s.io/v1beta1` (checked against kube-apiserver 1.36.3), served as
//! `apiextensions.k8s.io/v1` since v1beta1 was removed in 1.22. Printed as stored, a CRD out of a
//! backup would be refused by `kubectl apply` ("no matches for kind CustomResourceDefinition in
//! version apiextensions.k8s.io/v1beta1"). [`to_served`] applies the API server's own conversion
//! (`k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1/conversion.go`) to the JSON.

use serde_json::{Map, Value};

/// Converts `object` in place to the version the API server serves, when it is stored in one
/// it no longer serves; returns whether it changed anything.
pub fn to_served(object: &mut Value) -> bool {
    let Value::Object(obj) = object else {
        return false;
    };
    let is = |key: &str, want: &str| obj.get(key).and_then(Value::as_str) == Some(want);
    if !(is("apiVersion", "apiextensions.k8s.io/v1beta1") && is("kind", "CustomResourceDefinition"))
    {
        return false;
    }
    obj.insert(
        "apiVersion".into(),
        Value::String("apiextensions.k8s.io/v1".into()),
    );
    if let Some(Value::Object(spec)) = obj.get_mut("spec") {
        crd_spec_v1beta1_to_v1(spec);
    }
    true
}

/// `CustomResourceDefinitionSpec` v1beta1 → v1: the spec-wide schema, subresources, printer
/// columns and selectable fields move into every version; `version` goes; `JSONPath` is
/// spelled `jsonPath`; the conversion webhook moves under `webhook`; `preserveUnknownFields`
/// is printed only when true.
fn crd_spec_v1beta1_to_v1(spec: &mut Map<String, Value>) {
    let version = spec.remove("version");
    let mut versions = match spec.remove("versions") {
        Some(Value::Array(v)) if !v.is_empty() => v,
        _ => match version {
            Some(Value::String(name)) if !name.is_empty() => {
                vec![serde_json::json!({"name": name, "served": true, "storage": true})]
            }
            _ => Vec::new(),
        },
    };
    // (v1beta1 spec field, v1 version field)
    let moved = [
        ("subresources", "subresources"),
        ("validation", "schema"),
        ("additionalPrinterColumns", "additionalPrinterColumns"),
        ("selectableFields", "selectableFields"),
    ]
    .map(|(from, to)| (to, spec.remove(from)));
    for (to, value) in moved {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            continue;
        };
        for v in &mut versions {
            if let Value::Object(v) = v {
                v.insert(to.to_string(), value.clone());
            }
        }
    }
    for v in &mut versions {
        if let Some(Value::Array(columns)) = v.get_mut("additionalPrinterColumns") {
            for c in columns.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(path) = c.remove("JSONPath") {
                    c.insert("jsonPath".into(), path);
                }
            }
        }
    }
    if !versions.is_empty() {
        spec.insert("versions".into(), Value::Array(versions));
    }
    if let Some(Value::Bool(true)) = spec.remove("preserveUnknownFields") {
        spec.insert("preserveUnknownFields".into(), Value::Bool(true));
    }
    if let Some(Value::Object(conversion)) = spec.get_mut("conversion") {
        let client = conversion.remove("webhookClientConfig");
        let review = conversion.remove("conversionReviewVersions");
        if client.is_some() || review.is_some() {
            let mut webhook = Map::new();
            if let Some(c) = client.filter(|c| !c.is_null()) {
                webhook.insert("clientConfig".into(), c);
            }
            if let Some(r) = review.filter(|r| !r.is_null()) {
                webhook.insert("conversionReviewVersions".into(), r);
            }
            conversion.insert("webhook".into(), Value::Object(webhook));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_v1beta1_crds_are_served_as_v1() {
        let schema = json!({"openAPIV3Schema": {"type": "object"}});
        let mut crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1beta1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "version": "v1",
                "versions": [{"name": "v1", "served": true, "storage": true},
                             {"name": "v2", "served": true, "storage": false}],
                "validation": schema,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Spec", "type": "string", "JSONPath": ".spec.cronSpec"}],
                "preserveUnknownFields": false,
                "conversion": {"strategy": "Webhook", "webhookClientConfig": {"url": "https://x"},
                               "conversionReviewVersions": ["v1"]},
                "scope": "Namespaced",
            },
            "status": {"storedVersions": ["v1"]},
        });
        assert!(to_served(&mut crd));
        let column = json!([{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]);
        let version = |name: &str, storage: bool| {
            json!({"name": name, "served": true, "storage": storage, "schema": schema,
                   "subresources": {"status": {}}, "additionalPrinterColumns": column})
        };
        assert_eq!(
            crd,
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "crontabs.stable.example.com"},
                "spec": {
                    "group": "stable.example.com",
                    "versions": [version("v1", true), version("v2", false)],
                    "conversion": {"strategy": "Webhook", "webhook": {
                        "clientConfig": {"url": "https://x"}, "conversionReviewVersions": ["v1"]}},
                    "scope": "Namespaced",
                },
                "status": {"storedVersions": ["v1"]},
            })
        );
        // Already served: untouched.
        let mut v1 = crd.clone();
        assert!(!to_served(&mut v1));
        assert_eq!(v1, crd);
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
        assert!(!to_served(&mut pod));
    }

    #[test]
    fn a_crd_with_only_a_version_name_gets_one_version() {
        let mut crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1beta1",
            "kind": "CustomResourceDefinition",
            "spec": {"version": "v1", "preserveUnknownFields": true},
        });
        to_served(&mut crd);
        assert_eq!(
            crd["spec"],
            json!({"versions": [{"name": "v1", "served": true, "storage": true}],
                   "preserveUnknownFields": true})
        );
    }
}
