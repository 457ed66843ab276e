#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Realistic hand-written manifests: encode as the API server stores them, decode back, keep the
//! zero values that matter (pointer fields), print YAML that two independent parsers read back to
//! the same JSON, and strip exactly the server-set fields.

mod common;

use serde_json::{json, Value};

/// The manifests under test, as an operator would write them.
fn manifests() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "prod", "labels": {"app": "web", "tier": "1"},
                "annotations": {"note": "yes", "multi": "line one\nline two\n"},
                "uid": "0b7c5a6e-1111-2222-3333-444455556666", "resourceVersion": "12345", "generation": 3,
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                    "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]},
            "spec": {
                "containers": [{"name": "web", "image": "nginx:1.27",
                    "args": ["--port=8080", "-v", "on", "123", "# not a comment"],
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                    "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true},
                    "env": [{"name": "EMPTY", "value": ""}, {"name": "FROM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}],
                "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "fsGroup": 0},
                "terminationGracePeriodSeconds": 0,
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
                    {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}]
            },
            "status": {"phase": "Running", "podIP": "10.0.0.7", "startTime": "2024-05-01T10:00:05Z"}
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "prod"},
            "spec": {"replicas": 0, "revisionHistoryLimit": 0,
                "selector": {"matchLabels": {"app": "api"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "api", "image": "example/api:v2",
                        "command": ["sh", "-c", "echo start\nexec api\n"]}]}}}
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "tls", "namespace": "prod"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "AAEC/f7/", "tls.key": "", "blob": "gICA//8AAQ=="}
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "prod"},
            "data": {"k": "v", "nginx.conf": "server {\n  listen 80;\n\n  location / {\n    root /srv;\n  }\n}\n",
                "no-newline": "a\nb", "trailing": "x\n\n\n", "leading-space": "  indented\nline",
                "quotes": "it's \"quoted\"", "true": "false", "empty": "", "tab": "a\tb", "cr": "a\r\nb",
                "unicode": "héllo — ☃", "number": "0777", "date": "2024-05-01", "colon": "a: b"},
            "binaryData": {"bin": "AP8="}
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"selector": {"app": "web"}, "type": "ClusterIP",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "named", "port": 443, "targetPort": "https", "protocol": "TCP"}]}
        }),
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-web-0", "namespace": "prod"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                "resources": {"requests": {"storage": "10Gi"}}}
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "backup", "namespace": "ops"},
            "spec": {"schedule": "0 3 * * *", "suspend": false, "successfulJobsHistoryLimit": 0,
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "b", "image": "etcd-snap:1"}]}}}}}
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "ops"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ops"}]
        }),
        json!({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                "versionPriority": 100, "insecureSkipTLSVerify": true,
                "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443}}
        }),
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0, "maximum": 10.5, "default": 1},
                                "mode": {"type": "string", "enum": ["fast", "slow", null], "nullable": true},
                                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                    "additionalProperties": false},
                                "dep": {"type": "object", "dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}}}
                            },
                            "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "too big"}]},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
        }),
    ]
}

#[test]
fn nested_type_meta_is_accepted_and_dropped() {
    // Real StatefulSet manifests often give volumeClaimTemplates an apiVersion and kind: the API
    // server accepts them and does not store them (protobuf has no field for them).
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "prod"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    });
    let back = k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&sts).unwrap()).unwrap();
    let pvc = &back["spec"]["volumeClaimTemplates"][0];
    assert_eq!(pvc["metadata"]["name"], "data");
    assert!(pvc.get("kind").is_none() && pvc.get("apiVersion").is_none());
    // But where TypeMeta is not embedded, apiVersion is an unknown field.
    let bad = json!({"apiVersion": "v1", "kind": "Service", "spec": {"apiVersion": "v1"}});
    assert!(k8s_codec::encode_protobuf(&bad).is_err());
}

#[test]
fn special_json_forms_survive() {
    let all = manifests();
    let crd = k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&all[9]).unwrap()).unwrap();
    let spec = &all[9]["spec"]["versions"][0]["schema"];
    assert_eq!(&crd["spec"]["versions"][0]["schema"], spec);
    let api = k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&all[8]).unwrap()).unwrap();
    assert_eq!(api["spec"]["service"]["port"], 443);
}

#[test]
fn encode_decode_keeps_the_manifest() {
    for m in manifests() {
        let pb = k8s_codec::encode_protobuf(&m).unwrap();
        assert_eq!(&pb[..4], k8s_codec::PROTOBUF_MAGIC);
        let tm = k8s_codec::type_meta(&pb).unwrap();
        assert_eq!(m["kind"], tm.kind.as_str());
        let back = k8s_codec::decode_protobuf(&pb).unwrap();
        // The API server adds Go's zero values for absent non-pointer fields (`resources: {}`,
        // `containerPort: 0`); nothing else may change.
        if let Some(d) = common::contained(&m, &back, "") {
            panic!("{}: {d}", m["kind"]);
        }
        // And a second round trip is exact.
        let again =
            k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&back).unwrap()).unwrap();
        assert_eq!(again, back, "{}", m["kind"]);
    }
}

#[test]
fn pointer_zero_values_survive() {
    let all = manifests();
    let back = |i: usize| {
        k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&all[i]).unwrap()).unwrap()
    };
    let pod = back(0);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["runAsUser"], 0);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], false);
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 0);
    assert_eq!(
        c["env"][0]["value"],
        json!(null),
        "a non-pointer omitempty \"\" is dropped, as in Go"
    );
    let deploy = back(1);
    assert_eq!(deploy["spec"]["replicas"], 0);
    assert_eq!(deploy["spec"]["revisionHistoryLimit"], 0);
    assert_eq!(
        deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    assert_eq!(
        deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        "25%"
    );
    let secret = back(2);
    assert_eq!(secret["data"]["blob"], "gICA//8AAQ==");
    assert_eq!(secret["data"]["tls.key"], "");
    let svc = back(4);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["ports"][1]["targetPort"], "https");
    let pvc = back(5);
    assert_eq!(pvc["spec"]["storageClassName"], "");
    let cron = back(6);
    assert_eq!(cron["spec"]["suspend"], false);
    assert_eq!(cron["spec"]["jobTemplate"]["spec"]["backoffLimit"], 0);
}

#[test]
fn yaml_reads_back_to_the_same_json() {
    let values: Vec<Value> = manifests()
        .iter()
        .map(|m| k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(m).unwrap()).unwrap())
        .collect();
    common::assert_yaml_reads_back(&values);
}

#[test]
fn yaml_looks_like_kubectl() {
    let cm =
        k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&manifests()[3]).unwrap()).unwrap();
    let y = k8s_codec::to_yaml(&cm);
    assert!(
        y.starts_with("apiVersion: v1\nbinaryData:\n  bin: AP8=\ndata:\n"),
        "{y}"
    );
    assert!(
        y.contains("  nginx.conf: |\n    server {\n      listen 80;\n\n      location / {\n"),
        "{y}"
    );
    assert!(y.contains("  no-newline: |-\n    a\n    b\n"), "{y}");
    assert!(y.contains("  \"true\": \"false\"\n"), "{y}");
    assert!(y.contains("  number: \"0777\"\n"), "{y}");
    let svc =
        k8s_codec::decode_protobuf(&k8s_codec::encode_protobuf(&manifests()[4]).unwrap()).unwrap();
    let y = k8s_codec::to_yaml(&svc);
    assert!(
        y.contains(
            "  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n    targetPort: 8080\n"
        ),
        "{y}"
    );
}

#[test]
fn strip_removes_exactly_the_server_fields() {
    let mut pod = manifests()[0].clone();
    pod["metadata"]["selfLink"] = json!("/api/v1/namespaces/prod/pods/web-0");
    pod["metadata"]["deletionTimestamp"] = json!("2024-05-02T00:00:00Z");
    pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let before = pod.clone();
    k8s_codec::strip_server_fields(&mut pod);
    let mut expected = before.clone();
    let meta = expected["metadata"].as_object_mut().unwrap();
    for k in [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        assert!(meta.remove(k).is_some(), "{k} was in the test object");
    }
    expected.as_object_mut().unwrap().remove("status");
    assert_eq!(pod, expected);
    assert_eq!(pod["metadata"]["labels"], before["metadata"]["labels"]);
    // Not an object: nothing happens.
    let mut s = json!("x");
    k8s_codec::strip_server_fields(&mut s);
    assert_eq!(s, json!("x"));
}

#[test]
fn unknown_json_fields_are_rejected() {
    let bad =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}});
    let e = k8s_codec::encode_protobuf(&bad).unwrap_err().to_string();
    assert!(e.contains("dta"), "{e}");
    let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
    assert!(matches!(
        k8s_codec::encode_protobuf(&bad),
        Err(k8s_codec::Error::UnknownKind { .. })
    ));
    let bad =
        json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": "eighty"}]}});
    let e = k8s_codec::encode_protobuf(&bad).unwrap_err().to_string();
    assert!(e.contains("spec.ports[0].port"), "{e}");
}
