//! The ground truth for the Kubernetes side of the tools: a real `kube-apiserver` (built by
//! `scripts/setup` from `k8s.io/kubernetes`, the version pinned there) on loopback against a real
//! etcd 3.6, populated through the API with `kubectl`, then snapshotted with `etcd-snap-save` and
//! read back by `etcd-snap-status --k8s` and `etcd-snap-get`, restored with `etcd-snap-restore
//! --k8s` and served again; `etcd-snap-diff --k8s` of snapshots taken around edits made through
//! the API (a status patch, `kubectl set image`); and `scripts/kubeadm-restore` on a
//! kubeadm-shaped node whose API server is the real one (the kubelet is still the stand-in of
//! `tests/kubeadm`: there is no kubelet to be had here).
//!
//! The fixture-based tests of k8s-codec, k8s-registry and etcd-snap-get cover every kind fast;
//! these check the same code against what an API server really writes: defaulting,
//! managedFields, status, CRDs with structural schemas, encryption at rest with key rotation,
//! watch caches. "At the snapshot's revision" is exact: the API server's lists are read with
//! `resourceVersion=<revision>&resourceVersionMatch=Exact`, so objects that change afterwards
//! (leases renew every few seconds) are compared as they were.
//!
//! The binaries are the workspace's (`cargo build --bins` first, as the whole suite does).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use etcd_snap_e2e::support::kube_apiserver::{kubernetes_bin, kubernetes_version, KubeApiServer};
use etcd_snap_e2e::support::{self, free_port, run, run_ok, wait_until, Cluster, Version};
use etcd_snap_e2e::{
    bin_dir, kubeadm_etcdctl, path_with_tools, script, start_stand_in_kubelet, tool,
    write_kubeadm_pki,
};

/// The revision bump of `--k8s`.
const K8S_BUMP: i64 = 1_000_000_000;

/// The metadata fields `etcd-snap-get` strips (with top-level `status`) unless
/// `--keep-server-fields`: the contract of its help text, checked here against real objects.
const STRIPPED_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// `etcd-snap-get SNAP` (built with the other workspace binaries), stdin closed; the caller adds
/// what to get.
fn snap_get(snap: &Path) -> Command {
    let p = bin_dir().join("etcd-snap-get");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    let mut cmd = Command::new(p);
    cmd.arg(snap).stdin(Stdio::null());
    cmd
}

/// Prints how long a step took (the suite asserts no timings; the log shows them).
fn step(start: &mut Instant, what: &str) {
    eprintln!(
        "k8s_apiserver: {what}: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    *start = Instant::now();
}

/// 32 random bytes (or `n`), base64: a key for the EncryptionConfiguration.
fn random_key(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    use std::io::Read;
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    support::base64(&bytes)
}

/// The keys of one test run.
struct Keys {
    aescbc: String,
    aesgcm: String,
    secretbox: String,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            aescbc: random_key(32),
            aesgcm: random_key(16),
            secretbox: random_key(32),
        }
    }

    /// An EncryptionConfiguration for secrets whose first provider (the one that encrypts new
    /// writes) is `first`; every key stays for reading, as in a key rotation.
    fn config(&self, first: &str) -> String {
        let mut providers = vec![
            (
                "aescbc",
                format!(
                    "      - aescbc:\n          keys:\n            - name: cbc-key-1\n              secret: {}\n",
                    self.aescbc
                ),
            ),
            (
                "aesgcm",
                format!(
                    "      - aesgcm:\n          keys:\n            - name: gcm-key-1\n              secret: {}\n",
                    self.aesgcm
                ),
            ),
            (
                "secretbox",
                format!(
                    "      - secretbox:\n          keys:\n            - name: sb-key-1\n              secret: {}\n",
                    self.secretbox
                ),
            ),
            ("identity", "      - identity: {}\n".to_string()),
        ];
        let at = providers.iter().position(|(n, _)| *n == first).unwrap();
        let head = providers.remove(at);
        providers.insert(0, head);
        let mut text = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n".to_string();
        for (_, p) in providers {
            text.push_str(&p);
        }
        text
    }
}

/// Runs `kubectl ARGS` and parses its JSON output.
fn kubectl_json(api: &KubeApiServer, args: &[&str]) -> Value {
    let out = run_ok(api.kubectl().args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {args:?}: not JSON: {e}"))
}

/// `kubectl apply -f` (or `create -f`) of a manifest written to the server's directory.
fn kubectl_file(api: &KubeApiServer, verb: &str, name: &str, manifest: &str) -> String {
    let path = api.dir().join(name);
    fs::write(&path, manifest).unwrap();
    run_ok(api.kubectl().args([verb, "-f"]).arg(&path))
}

/// What the test creates through the API before the rotations.
const POPULATE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: app-a
  labels: {team: a}
---
apiVersion: v1
kind: Namespace
metadata:
  name: app-b
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: app-a}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: app-a
  labels: {app: web}
  annotations: {example.com/owner: "team a"}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.2.3
          args: ["--port=8080", "--greeting=hello: world"]
          ports: [{containerPort: 8080, name: http}]
          env:
            - {name: MODE, value: production}
            - name: FROM_CM
              valueFrom: {configMapKeyRef: {name: settings, key: mode}}
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {memory: 128Mi}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
          securityContext: {runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false}
---
apiVersion: v1
kind: Pod
metadata:
  name: standalone
  namespace: app-a
spec:
  containers:
    - name: app
      image: registry.example/app:1
      command: [sh, -c, "echo hi; sleep 3600"]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app-a}
data:
  mode: production
  script.sh: |
    #!/bin/sh
    echo "multi-line: yes"
  empty: ""
  schedule: "*/5 * * * *"
  address: 10.0.0.1
  version: 1.2.3
  number: "123"
  answer: "yes"
  colon: "a: b"
  quote: "it's"
  unicode: "héllo wörld"
  trailing: "a \nb\n"
  tabbed: "a\tb"
  long: "a long line of words that goes on and on past eighty columns, to see whether kubectl folds it or not"
binaryData:
  blob: AAEC/w==
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: app-b}
data: {k: v}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app-a}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: exposed, namespace: app-b}
spec:
  type: NodePort
  selector: {app: exposed}
  ports: [{port: 443, targetPort: 8443, protocol: TCP}]
---
apiVersion: v1
kind: Secret
metadata: {name: plain, namespace: app-a}
type: Opaque
data: {password: c2VjcmV0LWluLXBsYWludGV4dA==}
stringData: {user: admin}
---
apiVersion: v1
kind: Secret
metadata: {name: plain, namespace: app-b}
type: Opaque
data: {token: AAECAwQ=}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: app-a}
rules:
  - apiGroups: [""]
    resources: [configmaps, secrets]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: app-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
  - {kind: ServiceAccount, name: default, namespace: app-a}
  - {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: crontab-editor}
rules:
  - apiGroups: [stable.example.com]
    resources: [crontabs]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crontab-editors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: crontab-editor}
subjects:
  - {kind: Group, name: editors, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: Event
metadata: {name: web.populated, namespace: app-a}
involvedObject: {apiVersion: apps/v1, kind: Deployment, name: web, namespace: app-a}
reason: Populated
message: "created by tests/k8s_apiserver.rs"
type: Normal
count: 1
firstTimestamp: "2026-01-02T03:04:05Z"
lastTimestamp: "2026-01-02T03:04:05Z"
source: {component: etcd-snap-e2e}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crontabs.stable.example.com}
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                cronSpec: {type: string}
                image: {type: string}
                replicas: {type: integer, default: 1}
"#;

/// Custom resources, once the CRD is established.
const CRONTABS: &str = r#"
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: nightly, namespace: app-a}
spec: {cronSpec: "0 3 * * *", image: registry.example/backup:2, replicas: 3}
---
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {name: defaulted, namespace: app-b}
spec: {cronSpec: "*/5 * * * *", image: registry.example/poll:1}
"#;

/// A secret named `name` in `ns`, with a value that says which provider stored it.
fn secret_manifest(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: Opaque\nstringData: {{written-as: {name}, ns: {ns}}}\n"
    )
}

/// A listable resource as discovery describes it.
#[derive(Debug, Clone)]
struct ApiResource {
    /// kubectl's full name: `pods`, `deployments.apps`.
    name: String,
    /// `v1`, `apps/v1`.
    group_version: String,
    /// `""` for core.
    group: String,
    /// The plural.
    plural: String,
    kind: String,
}

impl ApiResource {
    fn list_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}/{}", self.group_version, self.plural)
        } else {
            format!("/apis/{}/{}", self.group_version, self.plural)
        }
    }
}

/// Every listable resource of the preferred version of each group (what `kubectl api-resources
/// --verbs=list` shows).
fn discover(api: &KubeApiServer) -> Vec<ApiResource> {
    let mut lists = vec![kubectl_json(api, &["get", "--raw=/api/v1"])];
    let groups = kubectl_json(api, &["get", "--raw=/apis"]);
    for g in groups["groups"].as_array().unwrap() {
        let gv = g["preferredVersion"]["groupVersion"].as_str().unwrap();
        lists.push(kubectl_json(api, &["get", &format!("--raw=/apis/{gv}")]));
    }
    let mut out = Vec::new();
    for list in lists {
        let gv = list["groupVersion"].as_str().unwrap().to_string();
        let group = gv.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        for r in list["resources"].as_array().unwrap() {
            let plural = r["name"].as_str().unwrap();
            let listable = r["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v == "list"));
            if plural.contains('/') || !listable {
                continue;
            }
            out.push(ApiResource {
                name: if group.is_empty() {
                    plural.to_string()
                } else {
                    format!("{plural}.{group}")
                },
                group_version: gv.clone(),
                group: group.clone(),
                plural: plural.to_string(),
                kind: r["kind"].as_str().unwrap().to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Resources that `kubectl get` lists but that are no objects of their own in etcd.
fn not_stored(name: &str) -> Option<&'static str> {
    match name {
        "componentstatuses" => Some("computed on each request"),
        "events.events.k8s.io" => Some("the same objects as core events (one etcd key each)"),
        _ => None,
    }
}

/// The items of `r` at exactly `revision`, as the API server serves them (a list served at
/// that revision: `resourceVersion=REV&resourceVersionMatch=Exact`), each with the apiVersion
/// and kind `kubectl get -o json` puts on list items.
fn list_at(api: &KubeApiServer, r: &ApiResource, revision: i64) -> Vec<Value> {
    let path = format!(
        "--raw={}?resourceVersion={revision}&resourceVersionMatch=Exact",
        r.list_path()
    );
    let list = kubectl_json(api, &["get", &path]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(|mut item| {
            item["apiVersion"] = json!(r.group_version);
            item["kind"] = json!(r.kind);
            item
        })
        .collect()
}

/// `(namespace or "", name)` of an object.
fn id(v: &Value) -> (String, String) {
    let meta = &v["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap().to_string(),
    )
}

/// The object without the server-set fields `etcd-snap-get` strips by default.
fn stripped(mut v: Value) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.remove("status");
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        for f in STRIPPED_METADATA {
            meta.remove(f);
        }
    }
    v
}

/// `etcd-snap-get SNAP RESOURCE -A -o json [extra]`: the items, by (namespace, name), or
/// why it failed.
fn our_list(
    snap: &Path,
    resource: &str,
    extra: &[&str],
) -> Result<BTreeMap<(String, String), Value>, String> {
    let out = run(snap_get(snap)
        .args([resource, "-A", "-o", "json"])
        .args(extra));
    if !out.success() {
        return Err(format!(
            "etcd-snap-get {resource} -A -o json {extra:?} failed ({}): {}",
            out.code(),
            out.stderr.trim_end()
        ));
    }
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    Ok(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (id(v), v.clone()))
        .collect())
}

/// Removes the members whose value is `null` (Go's nil slices and maps without `omitempty`),
/// at any depth; returns how many. k8s-codec leaves them out by design (see its crate docs):
/// to `kubectl apply` and to every JSON reader of Kubernetes objects, absent and null are the
/// same.
fn drop_nulls(v: &mut Value) -> usize {
    match v {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            before - map.len() + map.values_mut().map(drop_nulls).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(drop_nulls).sum(),
        _ => 0,
    }
}

/// With `K8S_APISERVER_DUMP=DIR` set, writes both sides of a difference there (for a look).
fn dump(resource: &str, (ns, name): &(String, String), ours: &Value, theirs: &Value) {
    let Some(dir) = std::env::var_os("K8S_APISERVER_DUMP") else {
        return;
    };
    let base = Path::new(&dir).join(format!("{resource}_{ns}_{name}"));
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    fs::write(base.with_extension("ours.json"), pretty(ours)).unwrap();
    fs::write(base.with_extension("theirs.json"), pretty(theirs)).unwrap();
}

/// The first difference between two JSON values, as a path.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{path}.{k}")),
                (p, q) => Some(format!("{path}.{k}: ours {p:?}, API server's {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: ours {a}, API server's {b}")),
    }
}

/// `etcd-snap-status --k8s -w json SNAP`.
fn status_json(snap: &Path) -> Value {
    let out = run_ok(
        Command::new(tool("etcd-snap-status"))
            .args(["--k8s", "-w", "json"])
            .arg(snap),
    );
    serde_json::from_str(&out).unwrap()
}

/// Writes the three encrypted secrets of one rotation step and checks how etcd holds them.
fn rotate_to(api: &mut KubeApiServer, etcd: &Cluster, keys: &Keys, provider: &str, key: &str) {
    api.set_encryption_config(&keys.config(provider));
    api.restart();
    for ns in ["app-a", "app-b"] {
        kubectl_file(
            api,
            "apply",
            &format!("secret-{ns}-{provider}.yaml"),
            &secret_manifest(ns, &format!("enc-{provider}")),
        );
        let stored = run_ok(etcd.etcdctl().args([
            "get",
            &format!("/registry/secrets/{ns}/enc-{provider}"),
            "--print-value-only",
        ]));
        let want = format!("k8s:enc:{provider}:v1:{key}:");
        assert!(
            stored.starts_with(&want),
            "secret enc-{provider} in {ns} is not stored with {want}"
        );
    }
}

#[test]
fn real_api_server_objects_through_snapshot_inventory_get_apply_and_restore() {
    let mut clock = Instant::now();
    let started = Instant::now();
    eprintln!(
        "k8s_apiserver: Kubernetes {} ({})",
        kubernetes_version(),
        kubernetes_bin("kube-apiserver").display()
    );
    let etcd = Cluster::builder(Version::V3_6).start();
    let keys = Keys::new();
    let mut api = KubeApiServer::builder(&etcd.endpoints())
        .encryption_config(&keys.config("identity"))
        // No compaction by the API server during the test: lists "at the snapshot's revision"
        // must stay readable (a restore still marks everything older compacted).
        .arg("--etcd-compaction-interval=0")
        .start();
    step(&mut clock, "etcd 3.6 and kube-apiserver started");

    // ---- Populate through the API.
    kubectl_file(&api, "apply", "populate.yaml", POPULATE);
    run_ok(api.kubectl().args([
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=60s",
    ]));
    // A fresh discovery cache: the CRD's resource is new.
    let _ = fs::remove_dir_all(api.dir().join("kubectl-cache"));
    kubectl_file(&api, "apply", "crontabs.yaml", CRONTABS);
    // A large object (create: apply's last-applied annotation would double it past the limit).
    let big = "0123456789abcdef".repeat(700 * 1024 / 16);
    kubectl_file(
        &api,
        "create",
        "big.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big, namespace: app-b}}\ndata:\n  payload: {big}\n"),
    );
    step(&mut clock, "populated");

    // ---- Key rotation: identity -> aescbc -> aesgcm -> secretbox, every key kept for reading.
    rotate_to(&mut api, &etcd, &keys, "aescbc", "cbc-key-1");
    rotate_to(&mut api, &etcd, &keys, "aesgcm", "gcm-key-1");
    rotate_to(&mut api, &etcd, &keys, "secretbox", "sb-key-1");
    let plain =
        run_ok(
            etcd.etcdctl()
                .args(["get", "/registry/secrets/app-a/plain", "--print-value-only"]),
        );
    assert!(
        plain.starts_with("k8s\0"),
        "plain secret not stored in plaintext"
    );
    let encryption_config = api.dir().join("user-encryption-config.yaml");
    fs::write(&encryption_config, keys.config("secretbox")).unwrap();
    step(&mut clock, "three key rotations");

    // ---- Snapshot.
    let snap = api.dir().join("snap.db");
    run_ok(
        Command::new(tool("etcd-snap-save"))
            .args(["--endpoints", &etcd.endpoints()[0], "--quiet"])
            .arg(&snap),
    );
    let status = status_json(&snap);
    let revision = status["revision"].as_i64().unwrap();
    step(&mut clock, "snapshot saved");

    // ---- What the API server serves at the snapshot's revision.
    let resources = discover(&api);
    let mut served: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut max_rv_seen: i64 = revision;
    for r in &resources {
        if not_stored(&r.name).is_some() {
            continue;
        }
        let items = list_at(&api, r, revision);
        for item in &items {
            let rv: i64 = item["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(rv <= revision, "{}: rv {rv} after the snapshot", r.name);
            max_rv_seen = max_rv_seen.max(rv);
        }
        served.insert(r.name.clone(), items);
    }
    step(
        &mut clock,
        "listed every resource at the snapshot's revision",
    );

    // ---- Inventory: per resource and per namespace, as kubectl get -A lists them.
    let k8s = &status["k8s"];
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for r in k8s["resources"].as_array().unwrap() {
        ours.insert(
            r["name"].as_str().unwrap().to_string(),
            r["objects"].as_u64().unwrap(),
        );
    }
    let theirs: BTreeMap<String, u64> = served
        .iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(name, items)| (name.clone(), items.len() as u64))
        .collect();
    let only_ours: BTreeMap<&String, &u64> = ours
        .iter()
        .filter(|(name, _)| !theirs.contains_key(*name))
        .collect();
    // Keys that are no API objects: the service IP/port allocators, the API servers'
    // endpoint leases and their peer-proxy leases (`/registry/peerserverleases/<id>`).
    for name in only_ours.keys() {
        assert!(
            ["ranges", "masterleases", "peerserverleases"].contains(&name.as_str()),
            "the inventory has {name} ({}) which kubectl does not list",
            only_ours[name]
        );
    }
    let ours_listed: BTreeMap<String, u64> = ours
        .into_iter()
        .filter(|(name, _)| theirs.contains_key(name))
        .collect();
    assert_eq!(ours_listed, theirs, "objects per resource");
    let mut ns_theirs: BTreeMap<String, u64> = BTreeMap::new();
    for items in served.values() {
        for item in items {
            if let Some(ns) = item["metadata"]["namespace"].as_str() {
                *ns_theirs.entry(ns.to_string()).or_default() += 1;
            }
        }
    }
    let ns_ours: BTreeMap<String, u64> = k8s["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap().to_string(),
                n["objects"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ns_ours, ns_theirs, "objects per namespace");
    let secrets_total = served["secrets"].len() as u64;
    assert_eq!(
        k8s["secrets"],
        json!({
            "total": secrets_total,
            "plaintext": secrets_total - 6,
            "encrypted": {"aescbc": 2, "aesgcm": 2, "secretbox": 2},
        }),
        "secrets by provider"
    );
    step(&mut clock, "inventory equals the API server's lists");

    // ---- Extraction: every object, stripped and whole, equals what the API server serves.
    let mut compared = 0;
    let mut nulls = 0;
    let mut differences = Vec::new();
    for r in &resources {
        let Some(items) = served.get(&r.name) else {
            continue;
        };
        if items.is_empty() {
            continue;
        }
        let mut extra = vec![];
        if r.name == "secrets" {
            extra.extend(["--encryption-config", encryption_config.to_str().unwrap()]);
        }
        let default = our_list(&snap, &r.name, &extra);
        extra.push("--keep-server-fields");
        let whole = our_list(&snap, &r.name, &extra);
        let (default, whole) = match (default, whole) {
            (Ok(d), Ok(w)) => (d, w),
            (Err(e), _) | (_, Err(e)) => {
                differences.push(e);
                continue;
            }
        };
        let ids: BTreeSet<(String, String)> = items.iter().map(id).collect();
        if whole.keys().cloned().collect::<BTreeSet<_>>() != ids {
            differences.push(format!(
                "{}: we list {:?}, the API server {ids:?}",
                r.name,
                whole.keys().collect::<Vec<_>>()
            ));
            continue;
        }
        for item in items {
            let key = id(item);
            let mut item = item.clone();
            nulls += drop_nulls(&mut item);
            if let Some(d) = first_difference(&whole[&key], &item, "") {
                differences.push(format!("{} {key:?} --keep-server-fields: {d}", r.name));
                dump(&r.name, &key, &whole[&key], &item);
            }
            let want = stripped(item);
            if let Some(d) = first_difference(&default[&key], &want, "") {
                differences.push(format!("{} {key:?}: {d}", r.name));
            }
            compared += 1;
        }
    }
    eprintln!(
        "k8s_apiserver: {compared} objects compared; {nulls} null members of the API server's JSON not printed by us (by design)"
    );
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    assert!(compared > 150, "only {compared} objects compared");

    // kubectl get -o json and -o yaml of one object, against ours as text.
    let get_text = |args: &[&str]| run_ok(snap_get(&snap).args(args));
    let mut text_differences = Vec::new();
    for (res, ns, name) in [
        ("deployments.apps", "app-a", "web"),
        ("configmaps", "app-a", "settings"),
        ("crontabs.stable.example.com", "app-b", "defaulted"),
        (
            "customresourcedefinitions.apiextensions.k8s.io",
            "",
            "crontabs.stable.example.com",
        ),
        ("services", "app-b", "exposed"),
    ] {
        let ns_args: Vec<&str> = if ns.is_empty() {
            vec![]
        } else {
            vec!["-n", ns]
        };
        for format in ["json", "yaml"] {
            // kubectl hides managedFields unless asked; we keep them with the server's fields.
            let mut args = vec!["get", res, name, "-o", format, "--show-managed-fields"];
            args.extend(&ns_args);
            let theirs = run_ok(api.kubectl().args(&args));
            let mut our_args = vec![res, name, "-o", format, "--keep-server-fields"];
            our_args.extend(&ns_args);
            let ours = get_text(&our_args);
            if ours != theirs {
                if let Some(dir) = std::env::var_os("K8S_APISERVER_DUMP") {
                    let base = Path::new(&dir).join(format!("{res}_{name}_text"));
                    fs::write(base.with_extension(format!("ours.{format}")), &ours).unwrap();
                    fs::write(base.with_extension(format!("theirs.{format}")), &theirs).unwrap();
                }
                text_differences.push(format!("{res} {name} -o {format}"));
            }
        }
    }
    assert!(
        text_differences.is_empty(),
        "our text differs from kubectl's: {text_differences:?}"
    );
    step(&mut clock, "extraction equals the API server's objects");

    // ---- Offline decryption: with the user's EncryptionConfiguration, as the API serves it.
    for provider in ["aescbc", "aesgcm", "secretbox"] {
        let name = format!("enc-{provider}");
        let theirs = kubectl_json(
            &api,
            &[
                "get",
                "secret",
                &name,
                "-n",
                "app-b",
                "-o",
                "json",
                "--show-managed-fields",
            ],
        );
        let ours = get_text(&[
            "secret",
            &name,
            "-n",
            "app-b",
            "-o",
            "json",
            "--keep-server-fields",
            "--encryption-config",
            encryption_config.to_str().unwrap(),
        ]);
        let ours: Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(ours, theirs, "decrypted {name}");
        assert_eq!(
            ours["data"]["written-as"],
            json!(support::base64(name.as_bytes()))
        );
        let without = run(snap_get(&snap).args(["secret", &name, "-n", "app-b"]));
        assert_eq!(without.code(), 1, "{}", without.stderr);
        assert!(without.stdout.is_empty());
        assert!(
            without.stderr.contains("stored encrypted"),
            "{}",
            without.stderr
        );
    }
    // The wrong keys: refused in one line that shows no key.
    let wrong = Keys::new();
    let wrong_config = api.dir().join("wrong-encryption-config.yaml");
    fs::write(&wrong_config, wrong.config("aesgcm")).unwrap();
    let out = run(snap_get(&snap)
        .args(["secret", "enc-aesgcm", "-n", "app-a", "--encryption-config"])
        .arg(&wrong_config));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    for k in [&wrong.aesgcm, &keys.aesgcm, &wrong.aescbc, &wrong.secretbox] {
        assert!(!out.stderr.contains(k.as_str()), "a key in the error");
    }
    step(&mut clock, "offline decryption");

    // ---- kubectl apply -f of our output: into a fresh namespace, and in place after a delete.
    run_ok(api.kubectl().args(["create", "namespace", "from-backup"]));
    for (res, name, from) in [
        ("deployments.apps", "web", "app-a"),
        ("configmaps", "settings", "app-a"),
        ("configmaps", "big", "app-b"),
        ("secrets", "enc-aesgcm", "app-a"),
        ("secrets", "plain", "app-a"),
        ("crontabs.stable.example.com", "nightly", "app-a"),
        ("roles.rbac.authorization.k8s.io", "reader", "app-a"),
        ("rolebindings.rbac.authorization.k8s.io", "reader", "app-a"),
    ] {
        let text = get_text(&[
            res,
            name,
            "-n",
            from,
            "-o",
            "json",
            "--encryption-config",
            encryption_config.to_str().unwrap(),
        ]);
        let mut ours: Value = serde_json::from_str(&text).unwrap();
        ours["metadata"]["namespace"] = json!("from-backup");
        // The large object: kubectl's client-side apply would add a copy of it as an annotation,
        // past the 256 KiB annotation limit (as with the original): created instead.
        let verb = if name == "big" { "create" } else { "apply" };
        kubectl_file(&api, verb, &format!("apply-{name}.json"), &ours.to_string());
        let original = kubectl_json(&api, &["get", res, name, "-n", from, "-o", "json"]);
        let copy = kubectl_json(&api, &["get", res, name, "-n", "from-backup", "-o", "json"]);
        for field in [
            "spec",
            "data",
            "binaryData",
            "type",
            "rules",
            "roleRef",
            "subjects",
        ] {
            assert_eq!(copy[field], original[field], "{res} {name}: {field}");
        }
        assert_eq!(
            copy["metadata"]["labels"], original["metadata"]["labels"],
            "{res} {name}: labels"
        );
    }
    // The Service keeps its cluster IP: it goes back where it was, after a delete.
    let service_yaml = get_text(&["svc", "web", "-n", "app-a"]);
    let before = kubectl_json(&api, &["get", "svc", "web", "-n", "app-a", "-o", "json"]);
    run_ok(api.kubectl().args(["delete", "svc", "web", "-n", "app-a"]));
    kubectl_file(&api, "apply", "apply-svc.yaml", &service_yaml);
    let after = kubectl_json(&api, &["get", "svc", "web", "-n", "app-a", "-o", "json"]);
    assert_eq!(after["spec"], before["spec"], "service spec");
    assert_ne!(after["metadata"]["uid"], before["metadata"]["uid"]);
    // Changes after the snapshot, which the restore takes back.
    run_ok(
        api.kubectl()
            .args(["delete", "deployment", "web", "-n", "app-a"]),
    );
    run_ok(
        api.kubectl()
            .args(["create", "configmap", "after-snapshot", "-n", "app-a"]),
    );
    let latest = kubectl_json(&api, &["get", "--raw=/api/v1/configmaps"]);
    let latest_rv: i64 = latest["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    max_rv_seen = max_rv_seen.max(latest_rv);
    step(&mut clock, "kubectl apply of our output");

    // ---- Restore with --k8s and restart the API server on it.
    api.stop();
    drop(etcd);
    let prepared = Cluster::builder(Version::V3_6).prepare();
    let initial_cluster = prepared.initial_cluster();
    run_ok(
        Command::new(tool("etcd-snap-restore"))
            .arg(&snap)
            .arg("--data-dir")
            .arg(prepared.cluster().data_dir(0))
            .args(["--name", &prepared.cluster().member_name(0)])
            .args(["--initial-cluster", &initial_cluster])
            .args([
                "--initial-advertise-peer-urls",
                &prepared.cluster().peer_urls()[0],
            ])
            .args(["--initial-cluster-token", prepared.token()])
            .arg("--k8s"),
    );
    let restored = prepared.start();
    api.set_etcd_servers(&restored.endpoints());
    api.restart();
    step(&mut clock, "restored and restarted");

    let web = kubectl_json(
        &api,
        &["get", "deployment", "web", "-n", "app-a", "-o", "json"],
    );
    let snap_web = &served["deployments.apps"]
        .iter()
        .find(|d| id(d) == ("app-a".into(), "web".into()))
        .unwrap();
    assert_eq!(web["metadata"]["uid"], snap_web["metadata"]["uid"]);
    assert_eq!(web["spec"], snap_web["spec"]);
    let gone = run(api
        .kubectl()
        .args(["get", "configmap", "after-snapshot", "-n", "app-a"]));
    assert_eq!(
        gone.code(),
        1,
        "a configmap made after the snapshot survived the restore"
    );
    let svc = kubectl_json(&api, &["get", "svc", "web", "-n", "app-a", "-o", "json"]);
    assert_eq!(svc["metadata"]["uid"], before["metadata"]["uid"]);
    let secret = kubectl_json(
        &api,
        &[
            "get",
            "secret",
            "enc-secretbox",
            "-n",
            "app-a",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        secret["data"]["written-as"],
        json!(support::base64(b"enc-secretbox"))
    );
    let cms = kubectl_json(&api, &["get", "--raw=/api/v1/configmaps"]);
    let list_rv: i64 = cms["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        list_rv > max_rv_seen && list_rv >= revision + K8S_BUMP,
        "list resourceVersion {list_rv} after restore, {max_rv_seen} seen before"
    );
    run_ok(
        api.kubectl()
            .args(["create", "configmap", "after-restore", "-n", "app-a"]),
    );
    let new = kubectl_json(
        &api,
        &[
            "get",
            "configmap",
            "after-restore",
            "-n",
            "app-a",
            "-o",
            "json",
        ],
    );
    let new_rv: i64 = new["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        new_rv > max_rv_seen && new_rv > list_rv,
        "new object rv {new_rv}"
    );
    // A watcher from before the restore is told to relist.
    let watch = run(api.kubectl().args([
        "get",
        &format!(
            "--raw=/api/v1/namespaces/app-a/configmaps?watch=1&resourceVersion={max_rv_seen}&timeoutSeconds=5"
        ),
        "--request-timeout=20s",
    ]));
    let said = format!("{}{}", watch.stdout, watch.stderr);
    assert!(
        said.contains("\"code\":410") && said.contains("\"type\":\"ERROR\""),
        "a watch from resourceVersion {max_rv_seen} was not told 410 Gone: {said}"
    );
    assert!(!said.contains("\"type\":\"ADDED\""), "{said}");
    step(&mut clock, "served after restore");
    eprintln!(
        "k8s_apiserver: whole scenario {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(api);
    drop(restored);
}

#[test]
fn kms_encrypted_values_are_refused_offline_in_one_line() {
    // A value as kube-apiserver writes it with a KMS v2 provider (no KMS plugin runs here, so
    // it is written directly): with any EncryptionConfiguration, etcd-snap-get says that
    // offline decryption of KMS is impossible, in one line, exit 1.
    let etcd = Cluster::builder(Version::V3_6).start();
    etcd.put(
        "/registry/secrets/prod/db",
        "k8s:enc:kms:v2:vault:\u{1}opaque",
    );
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap.db");
    run_ok(
        Command::new(tool("etcd-snap-save"))
            .args(["--endpoints", &etcd.endpoints()[0], "--quiet"])
            .arg(&snap),
    );
    let keys = Keys::new();
    let config = dir.path().join("encryption-config.yaml");
    fs::write(&config, keys.config("aesgcm")).unwrap();
    let get_db = || {
        run(snap_get(&snap)
            .args(["secret", "db", "-n", "prod", "--encryption-config"])
            .arg(&config))
    };
    let out = get_db();
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("offline decryption of KMS-encrypted values is impossible"),
        "{}",
        out.stderr
    );
    // A configuration that is not one: a usage error naming the file, no key shown.
    fs::write(&config, format!("kind: Nope\nsecret: {}\n", keys.aescbc)).unwrap();
    let bad = get_db();
    assert_eq!(bad.code(), 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("EncryptionConfiguration"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains(&keys.aescbc));
}

/// `tests/kubeadm/manifests/kube-apiserver.yaml` with the service-account key flags that
/// kubeadm's real manifest has (the stand-in did not need them; the real API server does).
fn real_apiserver_manifest() -> String {
    let template = fs::read_to_string(
        support::repo_root().join("tests/kubeadm/manifests/kube-apiserver.yaml"),
    )
    .unwrap();
    let issuer = "    - --service-account-issuer=https://kubernetes.default.svc.cluster.local\n";
    assert!(template.contains(issuer));
    template.replace(
        issuer,
        &format!(
            "{issuer}    - --service-account-key-file=@ROOT@/etc/kubernetes/pki/sa.pub\n    - --service-account-signing-key-file=@ROOT@/etc/kubernetes/pki/sa.key\n"
        ),
    )
}

#[test]
fn kubeadm_restore_with_the_real_api_server() {
    let mut clock = Instant::now();
    let root = tempfile::Builder::new()
        .prefix("kubeadm-real-")
        .tempdir()
        .unwrap();
    let root_path = root.path();
    let (client_port, api_port, peer_port, metrics_port) =
        (free_port(), free_port(), free_port(), free_port());
    for d in [
        "etc/kubernetes/manifests",
        "etc/kubernetes/pki/etcd",
        "var/lib",
        "logs",
    ] {
        fs::create_dir_all(root_path.join(d)).unwrap();
    }
    // kubeadm's certificate layout from one harness PKI, as tests/kubeadm.rs lays it out.
    let tls = support::TlsFiles::generate(&root_path.join("test-pki"));
    let pki = root_path.join("etc/kubernetes/pki");
    write_kubeadm_pki(&tls, &pki);
    fs::copy(&tls.reader_key, pki.join("sa.key")).unwrap();
    // The service-account key pair, as kubeadm makes it: sa.key and its public half.
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(pki.join("sa.key"))
            .arg("-out")
            .arg(pki.join("sa.pub")),
    );
    fs::write(root_path.join("etc/kubernetes/scheduler.conf"), "").unwrap();
    let stand_ins = support::repo_root().join("tests/kubeadm");
    let manifests = root_path.join("etc/kubernetes/manifests");
    for (name, template) in [
        (
            "etcd.yaml",
            fs::read_to_string(stand_ins.join("manifests/etcd.yaml")).unwrap(),
        ),
        ("kube-apiserver.yaml", real_apiserver_manifest()),
        (
            "kube-scheduler.yaml",
            fs::read_to_string(stand_ins.join("manifests/kube-scheduler.yaml")).unwrap(),
        ),
    ] {
        let text = template
            .replace("@ROOT@", root_path.to_str().unwrap())
            .replace("@CLIENT_PORT@", &client_port.to_string())
            .replace("@PEER_PORT@", &peer_port.to_string())
            .replace("@METRICS_PORT@", &metrics_port.to_string())
            .replace("@API_PORT@", &api_port.to_string());
        fs::write(manifests.join(name), text).unwrap();
    }

    // The stand-in kubelet runs the real etcd 3.6 and the real kube-apiserver.
    let kubelet_log = fs::File::create(root_path.join("logs/kubelet.log")).unwrap();
    let mut kubelet = start_stand_in_kubelet(
        &manifests,
        &root_path.join("logs"),
        &[
            ("etcd", support::etcd_bin(Version::V3_6, "etcd")),
            ("kube-apiserver", kubernetes_bin("kube-apiserver")),
            ("kube-scheduler", stand_ins.join("kube-idle")),
        ],
        kubelet_log,
    );
    let kubelet_stdin = kubelet.stdin.take();
    let show_logs = |why: &str| {
        let mut text = String::new();
        for entry in fs::read_dir(root_path.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let body = fs::read_to_string(entry.path()).unwrap_or_default();
            let lines: Vec<&str> = body.lines().collect();
            text.push_str(&format!(
                "--- {}\n{}\n",
                entry.path().display(),
                lines[lines.len().saturating_sub(30)..].join("\n")
            ));
        }
        format!("{why}\n{text}")
    };

    // A kubeconfig for the real API server, authenticated by the kubelet-client certificate
    // (its CN `root` is no admin: /readyz and /version are public, writes go through etcdctl).
    let readyz = || {
        let out = run(Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
            ])
            .arg(pki.join("ca.crt"))
            .arg("--cert")
            .arg(pki.join("apiserver-kubelet-client.crt"))
            .arg("--key")
            .arg(pki.join("apiserver-kubelet-client.key"))
            .arg(format!("https://127.0.0.1:{api_port}/readyz")));
        out.stdout.trim().to_string()
    };
    let ready = wait_until(Duration::from_secs(180), Duration::from_millis(500), || {
        readyz() == "200"
    });
    assert!(
        ready,
        "{}",
        show_logs("the real kube-apiserver never became ready")
    );
    step(
        &mut clock,
        "kubeadm node up (real etcd 3.6 and kube-apiserver)",
    );

    let endpoint = format!("https://127.0.0.1:{client_port}");
    let etcdctl = || kubeadm_etcdctl(Version::V3_6, &endpoint, &pki);
    // The API server created its namespaces; a backup, then one more namespace key after it.
    let ok = wait_until(Duration::from_secs(60), Duration::from_millis(500), || {
        run(etcdctl().args(["get", "/registry/namespaces/kube-system", "--keys-only"]))
            .stdout
            .contains("kube-system")
    });
    assert!(
        ok,
        "{}",
        show_logs("the API server did not create kube-system")
    );
    let snap = root_path.join("snap.db");
    run_ok(
        Command::new(tool("etcd-snap-save"))
            .args(["--endpoints", &format!("https://127.0.0.1:{client_port}")])
            .arg("--cacert")
            .arg(pki.join("etcd/ca.crt"))
            .arg("--cert")
            .arg(pki.join("etcd/healthcheck-client.crt"))
            .arg("--key")
            .arg(pki.join("etcd/healthcheck-client.key"))
            .arg("--quiet")
            .arg(&snap),
    );
    let before: Value = serde_json::from_str(&run_ok(
        Command::new(tool("etcd-snap-status"))
            .args(["--k8s", "-w", "json"])
            .arg(&snap),
    ))
    .unwrap();
    let backup_rev = before["revision"].as_i64().unwrap();
    let namespaces = |v: &Value| {
        v["k8s"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "namespaces")
            .map(|r| r["objects"].as_u64().unwrap())
            .unwrap()
    };
    let backup_namespaces = namespaces(&before);
    assert!(backup_namespaces >= 4, "{before}");
    step(&mut clock, "backup");

    let out = run(Command::new(script("kubeadm-restore"))
        .args(["--yes", "--no-crictl", "--readyz-check", "curl"])
        .arg("--manifests-dir")
        .arg(&manifests)
        .arg("--pki-dir")
        .arg(&pki)
        .args(["--apiserver-timeout", "240s"])
        .arg(&snap)
        .env("PATH", path_with_tools())
        .stdin(Stdio::null()));
    eprintln!(
        "--- kubeadm-restore: exit {}\n--- stdout\n{}--- stderr\n{}",
        out.code(),
        out.stdout,
        out.stderr
    );
    assert_eq!(out.code(), 0, "{}", show_logs("kubeadm-restore failed"));
    assert!(out.stdout.contains("DONE: etcd on cp1 serves the snapshot"));
    assert_eq!(readyz(), "200", "/readyz after the restore");
    step(&mut clock, "kubeadm-restore --yes");

    // The restored etcd serves the backup's revision + 1e9, and the real API server wrote on
    // top of it (its leases), so the revision only grows from there.
    let header: Value = serde_json::from_str(&run_ok(etcdctl().args([
        "get",
        "/registry/namespaces/default",
        "-w",
        "json",
    ])))
    .unwrap();
    let now = header["header"]["revision"].as_i64().unwrap();
    assert!(
        now >= backup_rev + K8S_BUMP,
        "revision {now} after the restore"
    );
    drop(kubelet_stdin);
    let exited = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        matches!(kubelet.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = kubelet.kill();
        let _ = kubelet.wait();
    }
}

/// `etcd-snap-diff --k8s A B ARGS -w json` (built with the other workspace binaries): its exit
/// code and report.
fn snap_diff_k8s(a: &Path, b: &Path, args: &[&str]) -> (i32, Value) {
    let p = bin_dir().join("etcd-snap-diff");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    let out = run(Command::new(p)
        .arg("--k8s")
        .arg(a)
        .arg(b)
        .args(args)
        .args(["-w", "json"])
        .stdin(Stdio::null()));
    let report = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("etcd-snap-diff: not JSON ({e}): {out:?}"));
    (out.code(), report)
}

/// What the API server rewrites on its own while nobody calls it: its identity lease in
/// kube-system (renewed every ~10 s) and its endpoint lease under /registry/masterleases/.
/// `etcd-snap-diff --k8s` lists them (they are real changes); this test accepts them, and no
/// other object, besides the one it edits.
fn api_server_churn(change: &Value) -> bool {
    let key = change["key"].as_str().unwrap_or("");
    (change["resource"] == "leases" && change["namespace"] == "kube-system")
        || key.starts_with("/registry/masterleases/")
}

/// `(change, resource, namespace/name)` of each listed change that is not the API server's own.
fn listed(report: &Value) -> Vec<(String, String, String)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !api_server_churn(c))
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["resource"].as_str().unwrap_or("-").to_string(),
                format!(
                    "{}/{}",
                    c["namespace"].as_str().unwrap_or("-"),
                    c["name"].as_str().unwrap_or(c["key"].as_str().unwrap())
                ),
            )
        })
        .collect()
}

#[test]
fn snap_diff_k8s_shows_exactly_an_edit_made_through_the_api() {
    // etcd 3.6 and the real kube-apiserver (no controllers: nothing acts on the deployment but
    // the API server), a deployment created through the API, then: two snapshots with no API
    // call between them, a status-only patch (server-set), an image change by `kubectl set
    // image`, each followed by a snapshot. `etcd-snap-diff --k8s` must list exactly the edit.
    let mut clock = Instant::now();
    let etcd = Cluster::builder(Version::V3_6).start();
    let api = KubeApiServer::builder(&etcd.endpoints())
        .arg("--etcd-compaction-interval=0")
        .start();
    step(&mut clock, "etcd 3.6 and kube-apiserver started");
    run_ok(api.kubectl().args(["create", "namespace", "shop"]));
    run_ok(api.kubectl().args([
        "create",
        "deployment",
        "web",
        "-n",
        "shop",
        "--image=registry.example/web:1.0",
        "--replicas=2",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str| {
        let path = dir.path().join(name);
        run_ok(
            Command::new(tool("etcd-snap-save"))
                .args(["--endpoints", &etcd.endpoints()[0], "--quiet"])
                .arg(&path),
        );
        path
    };
    let a = save("a.db");
    let a2 = save("a2.db");

    // No API call between A and A2: nothing listed but the API server's own churn, and the
    // deployments the same (exit 0).
    let (code, report) = snap_diff_k8s(&a, &a2, &[]);
    assert!(code == 0 || code == 1, "{report}");
    assert_eq!(
        listed(&report),
        Vec::<(String, String, String)>::new(),
        "{report}"
    );
    assert_eq!(code == 0, report["changes"].as_array().unwrap().is_empty());
    let (code, report) = snap_diff_k8s(&a, &a2, &["--prefix", "/registry/deployments/"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["same"], true);

    // A status-only patch: the deployment changed in etcd, in server-set fields only.
    run_ok(api.kubectl().args([
        "patch",
        "deployment",
        "web",
        "-n",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":1,"replicas":2}}"#,
    ]));
    let s = save("s.db");
    let (code, report) = snap_diff_k8s(&a2, &s, &["--prefix", "/registry/deployments/"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["serverFieldsOnly"], 1, "{report}");
    assert_eq!(report["changes"], json!([]));
    let (code, report) = snap_diff_k8s(
        &a2,
        &s,
        &["--prefix", "/registry/deployments/", "--keep-server-fields"],
    );
    assert_eq!(code, 1, "{report}");
    let kept = report["changes"][0]["diff"].as_str().unwrap();
    assert!(kept.contains("+  observedGeneration: 1\n"), "{kept}");

    // The edit: `kubectl set image`.
    run_ok(api.kubectl().args([
        "set",
        "image",
        "deployment/web",
        "-n",
        "shop",
        "web=registry.example/web:1.1",
    ]));
    let b = save("b.db");
    step(&mut clock, "four snapshots around the changes");
    let (code, report) = snap_diff_k8s(&a, &b, &[]);
    assert_eq!(code, 1, "{report}");
    let churn: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| api_server_churn(c))
        .filter_map(|c| c["key"].as_str())
        .collect();
    eprintln!(
        "k8s_apiserver: the API server's own changes between A and B: {churn:?}; {} changed only in server-set fields",
        report["serverFieldsOnly"]
    );
    assert_eq!(
        listed(&report),
        [(
            "changed".to_string(),
            "deployments".to_string(),
            "shop/web".to_string()
        )],
        "{report}"
    );
    let change = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "/registry/deployments/shop/web")
        .unwrap();
    let diff = change["diff"].as_str().unwrap();
    let edits: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(
        edits,
        [
            "-      - image: registry.example/web:1.0",
            "+      - image: registry.example/web:1.1"
        ],
        "{diff}"
    );
    // What etcd-snap-get prints of each side is what the diff compared.
    for (snap, image) in [(&a, "1.0"), (&b, "1.1")] {
        let yaml = run_ok(snap_get(snap).args(["deploy", "web", "-n", "shop"]));
        assert!(
            yaml.contains(&format!("- image: registry.example/web:{image}\n")),
            "{yaml}"
        );
    }
    // The simple report: the same object and diff, and the summary.
    let out = run(Command::new(bin_dir().join("etcd-snap-diff"))
        .args(["--k8s", "--prefix", "/registry/deployments/"])
        .arg(&a)
        .arg(&b)
        .stdin(Stdio::null()));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("changed\tdeployments\tshop/web\n{diff}summary: 0 added, 0 removed, 1 changed, 0 changed only")),
        "{}",
        out.stdout
    );
    step(&mut clock, "diffs checked");
}
