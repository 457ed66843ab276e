//! The built-in resources of the Kubernetes API server: plural, group, kind, where they are
//! stored, whether they are namespaced, and the names kubectl accepts for them.
//!
//! Why it exists: a key does not say which group a built-in belongs to nor whether it is
//! namespaced, and `etcd-snap-get pods` must find `/registry/pods/...` while `svc` must find
//! `/registry/services/specs/...`. Resources missing here (custom resources, aggregated APIs)
//! are stored under `<group>/<plural>` and are found by their `resource.group` name.

/// One built-in resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// The plural resource name (`deployments`).
    pub resource: &'static str,
    /// The API group (`""` for core).
    pub group: &'static str,
    /// The kind (`Deployment`).
    pub kind: &'static str,
    /// The path under the prefix holding its objects (`deployments`, `services/specs`,
    /// `apiextensions.k8s.io/customresourcedefinitions`).
    pub storage: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl's short names.
    pub short: &'static [&'static str],
}

const fn b(
    resource: &'static str,
    group: &'static str,
    kind: &'static str,
    storage: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> Builtin {
    Builtin {
        resource,
        group,
        kind,
        storage,
        namespaced,
        short,
    }
}

/// Every built-in resource the API server stores (Kubernetes 1.2x to 1.3x).
pub const BUILTINS: &[Builtin] = &[
    b("pods", "", "Pod", "pods", true, &["po"]),
    b("services", "", "Service", "services/specs", true, &["svc"]),
    b(
        "endpoints",
        "",
        "Endpoints",
        "services/endpoints",
        true,
        &["ep"],
    ),
    b("nodes", "", "Node", "minions", false, &["no"]),
    b("namespaces", "", "Namespace", "namespaces", false, &["ns"]),
    b("configmaps", "", "ConfigMap", "configmaps", true, &["cm"]),
    b("secrets", "", "Secret", "secrets", true, &[]),
    b(
        "serviceaccounts",
        "",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
    ),
    b(
        "persistentvolumes",
        "",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
    ),
    b(
        "persistentvolumeclaims",
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
    ),
    b("events", "", "Event", "events", true, &["ev"]),
    b(
        "limitranges",
        "",
        "LimitRange",
        "limitranges",
        true,
        &["limits"],
    ),
    b(
        "resourcequotas",
        "",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
    ),
    b(
        "replicationcontrollers",
        "",
        "ReplicationController",
        "controllers",
        true,
        &["rc"],
    ),
    b("podtemplates", "", "PodTemplate", "podtemplates", true, &[]),
    b(
        "deployments",
        "apps",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
    ),
    b(
        "replicasets",
        "apps",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
    ),
    b(
        "statefulsets",
        "apps",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
    ),
    b(
        "daemonsets",
        "apps",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
    ),
    b(
        "controllerrevisions",
        "apps",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
    ),
    b("jobs", "batch", "Job", "jobs", true, &[]),
    b("cronjobs", "batch", "CronJob", "cronjobs", true, &["cj"]),
    b(
        "horizontalpodautoscalers",
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
    ),
    b(
        "ingresses",
        "networking.k8s.io",
        "Ingress",
        "ingress",
        true,
        &["ing"],
    ),
    b(
        "ingressclasses",
        "networking.k8s.io",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
    ),
    b(
        "networkpolicies",
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
    ),
    b(
        "endpointslices",
        "discovery.k8s.io",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
    ),
    b(
        "poddisruptionbudgets",
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
    ),
    b(
        "podsecuritypolicies",
        "policy",
        "PodSecurityPolicy",
        "podsecuritypolicy",
        false,
        &["psp"],
    ),
    b(
        "roles",
        "rbac.authorization.k8s.io",
        "Role",
        "roles",
        true,
        &[],
    ),
    b(
        "rolebindings",
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
    ),
    b(
        "clusterroles",
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
    ),
    b(
        "clusterrolebindings",
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
    ),
    b(
        "storageclasses",
        "storage.k8s.io",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
    ),
    b(
        "volumeattachments",
        "storage.k8s.io",
        "VolumeAttachment",
        "volumeattachments",
        false,
        &[],
    ),
    b(
        "csidrivers",
        "storage.k8s.io",
        "CSIDriver",
        "csidrivers",
        false,
        &[],
    ),
    b(
        "csinodes",
        "storage.k8s.io",
        "CSINode",
        "csinodes",
        false,
        &[],
    ),
    b(
        "csistoragecapacities",
        "storage.k8s.io",
        "CSIStorageCapacity",
        "csistoragecapacities",
        true,
        &[],
    ),
    b(
        "priorityclasses",
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
    ),
    b(
        "leases",
        "coordination.k8s.io",
        "Lease",
        "leases",
        true,
        &[],
    ),
    b(
        "runtimeclasses",
        "node.k8s.io",
        "RuntimeClass",
        "runtimeclasses",
        false,
        &[],
    ),
    b(
        "certificatesigningrequests",
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
        &["csr"],
    ),
    b(
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        &[],
    ),
    b(
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        &[],
    ),
    b(
        "validatingadmissionpolicies",
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
        &[],
    ),
    b(
        "validatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
        &[],
    ),
    b(
        "flowschemas",
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        "flowschemas",
        false,
        &[],
    ),
    b(
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        false,
        &[],
    ),
    // Checked against kube-apiserver 1.36.3 (tests/k8s_apiserver.rs): stored at <prefix>/<plural>.
    b(
        "ipaddresses",
        "networking.k8s.io",
        "IPAddress",
        "ipaddresses",
        false,
        &["ip"],
    ),
    b(
        "servicecidrs",
        "networking.k8s.io",
        "ServiceCIDR",
        "servicecidrs",
        false,
        &[],
    ),
    b(
        "volumeattributesclasses",
        "storage.k8s.io",
        "VolumeAttributesClass",
        "volumeattributesclasses",
        false,
        &["vac"],
    ),
    b(
        "deviceclasses",
        "resource.k8s.io",
        "DeviceClass",
        "deviceclasses",
        false,
        &[],
    ),
    b(
        "resourceclaims",
        "resource.k8s.io",
        "ResourceClaim",
        "resourceclaims",
        true,
        &[],
    ),
    b(
        "resourceclaimtemplates",
        "resource.k8s.io",
        "ResourceClaimTemplate",
        "resourceclaimtemplates",
        true,
        &[],
    ),
    b(
        "resourceslices",
        "resource.k8s.io",
        "ResourceSlice",
        "resourceslices",
        false,
        &[],
    ),
    b(
        "mutatingadmissionpolicies",
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicy",
        "mutatingadmissionpolicies",
        false,
        &[],
    ),
    b(
        "mutatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        "mutatingadmissionpolicybindings",
        false,
        &[],
    ),
    b(
        "clustertrustbundles",
        "certificates.k8s.io",
        "ClusterTrustBundle",
        "clustertrustbundles",
        false,
        &[],
    ),
    b(
        "podcertificaterequests",
        "certificates.k8s.io",
        "PodCertificateRequest",
        "podcertificaterequests",
        true,
        &[],
    ),
    b(
        "leasecandidates",
        "coordination.k8s.io",
        "LeaseCandidate",
        "leasecandidates",
        true,
        &[],
    ),
    b(
        "customresourcedefinitions",
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "apiextensions.k8s.io/customresourcedefinitions",
        false,
        &["crd", "crds"],
    ),
    b(
        "apiservices",
        "apiregistration.k8s.io",
        "APIService",
        "apiregistration.k8s.io/apiservices",
        false,
        &[],
    ),
];

/// Groups whose resources are stored with another group's objects: `events.events.k8s.io`
/// shares `/registry/events` with core events; the old `extensions` group named resources now
/// served (and stored) by apps, networking.k8s.io and policy.
const GROUP_ALIASES: &[(&str, &str)] = &[
    ("events", "events.k8s.io"),
    ("ingresses", "extensions"),
    ("deployments", "extensions"),
    ("daemonsets", "extensions"),
    ("replicasets", "extensions"),
    ("networkpolicies", "extensions"),
    ("podsecuritypolicies", "extensions"),
];

/// The built-in stored at `storage` (a path under the prefix), if its path is not simply its
/// resource name or if it is a known resource.
pub fn by_storage(storage: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.storage == storage)
}

/// What a name given on the command line (`po`, `pod`, `pods`, `Pod`, `deployments.apps`,
/// `crontabs.stable.example.com`) refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A built-in resource.
    Builtin(&'static Builtin),
    /// Not built in: `<plural>.<group>` of a custom or aggregated resource, stored under
    /// `<group>/<plural>`.
    Custom {
        /// The plural as given.
        resource: String,
        /// The group as given.
        group: String,
    },
    /// Not built in and no group given: may be a custom resource's plural, to be looked for
    /// among the snapshot's keys.
    Unknown(String),
}

/// Resolves a resource name the way kubectl accepts it: plural, singular, kind or short name,
/// optionally followed by `.group`.
pub fn resolve(text: &str) -> Resolved {
    let lower = text.to_ascii_lowercase();
    let (name, group) = match lower.split_once('.') {
        Some((name, group)) => (name, Some(group)),
        None => (lower.as_str(), None),
    };
    let matches = |b: &&Builtin| {
        (b.resource == name
            || b.short.contains(&name)
            || b.kind.eq_ignore_ascii_case(name)
            || b.resource.strip_suffix('s') == Some(name)
            || b.resource.strip_suffix("es") == Some(name)
            || (b.resource.ends_with("ies")
                && format!("{}y", &b.resource[..b.resource.len() - 3]) == name))
            && group.is_none_or(|g| {
                g == b.group
                    || (g == "core" && b.group.is_empty())
                    || GROUP_ALIASES
                        .iter()
                        .any(|(r, ag)| *r == b.resource && *ag == g)
            })
    };
    if let Some(builtin) = BUILTINS.iter().find(matches) {
        return Resolved::Builtin(builtin);
    }
    // kubectl's fully qualified `resource.version.group` (`deployments.v1.apps`, `pods.v1`).
    if let Some(g) = group {
        let (first, rest) = g.split_once('.').unwrap_or((g, "core"));
        if is_version(first) {
            if let Resolved::Builtin(b) = resolve(&format!("{name}.{rest}")) {
                return Resolved::Builtin(b);
            }
        }
    }
    match group {
        Some(group) => Resolved::Custom {
            resource: name.to_string(),
            group: group.to_string(),
        },
        None => Resolved::Unknown(name.to_string()),
    }
}

/// Whether an API version label (`v1`, `v2beta1`, `v1alpha3`).
fn is_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (major, tail) = rest.split_at(digits);
    let level = tail
        .strip_prefix("alpha")
        .or_else(|| tail.strip_prefix("beta"));
    !major.is_empty()
        && match level {
            None => tail.is_empty(),
            Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(text: &str) -> Option<&'static str> {
        match resolve(text) {
            Resolved::Builtin(b) => Some(b.resource),
            _ => None,
        }
    }

    #[test]
    fn resolves_like_kubectl() {
        for (given, want) in [
            ("po", "pods"),
            ("pod", "pods"),
            ("Pods", "pods"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("deployment.apps", "deployments"),
            ("svc", "services"),
            ("cm", "configmaps"),
            ("secret", "secrets"),
            ("ns", "namespaces"),
            ("ingress", "ingresses"),
            ("ip", "ipaddresses"),
            ("ipaddresses.networking.k8s.io", "ipaddresses"),
            ("servicecidrs.networking.k8s.io", "servicecidrs"),
            ("resourceclaims.resource.k8s.io", "resourceclaims"),
            ("ingresses.extensions", "ingresses"),
            ("networkpolicy", "networkpolicies"),
            ("events.events.k8s.io", "events"),
            ("crd", "customresourcedefinitions"),
            ("pods.core", "pods"),
            ("endpoints", "endpoints"),
            ("Secret", "secrets"),
        ] {
            assert_eq!(builtin(given), Some(want), "{given}");
        }
        for (given, want) in [
            ("deployments.v1.apps", "deployments"),
            ("deployment.v1.apps", "deployments"),
            ("pods.v1", "pods"),
            ("pods.v1.core", "pods"),
            ("hpa.v2.autoscaling", "horizontalpodautoscalers"),
            ("cronjobs.v1beta1.batch", "cronjobs"),
            ("events.v1.events.k8s.io", "events"),
            ("csr.v1.certificates.k8s.io", "certificatesigningrequests"),
        ] {
            assert_eq!(builtin(given), Some(want), "{given}");
        }
        assert_eq!(builtin("pods.apps"), None);
        assert_eq!(builtin("pods.v1.apps"), None);
        assert_eq!(builtin("pods.vx.core"), None);
        // CRD plurals next to built-ins: a group always picks the custom resource.
        assert_eq!(
            resolve("certificates.cert-manager.io"),
            Resolved::Custom {
                resource: "certificates".into(),
                group: "cert-manager.io".into()
            }
        );
        assert_eq!(
            resolve("certificates"),
            Resolved::Unknown("certificates".into())
        );
        assert_eq!(builtin("csr"), Some("certificatesigningrequests"));
        assert_eq!(
            resolve("events.example.com"),
            Resolved::Custom {
                resource: "events".into(),
                group: "example.com".into()
            }
        );
        assert_eq!(
            resolve("crontabs.stable.example.com"),
            Resolved::Custom {
                resource: "crontabs".into(),
                group: "stable.example.com".into()
            }
        );
        assert_eq!(resolve("crontabs"), Resolved::Unknown("crontabs".into()));
        assert_eq!(by_storage("minions").map(|b| b.resource), Some("nodes"));
    }
}
