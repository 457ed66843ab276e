//! `--read-manifest FILE`: what a kubeadm static-pod manifest (`etcd.yaml`, `kube-apiserver.yaml`)
//! says about its component, for `scripts/kubeadm-restore`, which keeps the orchestration.
//!
//! The manifest is read as YAML (yaml-rust2's event parser, with the tree built here on an explicit
//! stack), and the facts are printed as `key<TAB>value` lines, one fact per line:
//!
//! | key | value |
//! |---|---|
//! | `pod` | `metadata.name` |
//! | `container` | the container read: the one named like the pod, as kubeadm names it |
//! | `flag.NAME` | the value of `--NAME` in that container's `command` then `args` (the last one wins) |
//! | `host.NAME` | where that value, a path inside the container, lives on the host |
//!
//! A flag is `--NAME=VALUE`, `-NAME=VALUE`, or `--NAME`/`-NAME` followed by its value as the next
//! item; a flag followed by another flag or by nothing has the value `true`. `host.NAME` is printed
//! when the value is an absolute path under a `volumeMounts[].mountPath` (the longest one wins) whose
//! volume is a `hostPath`.
//!
//! Keys and values are escaped so that no manifest can add a line or a field: `\` is `\\`, tab,
//! newline and carriage return are `\t`, `\n`, `\r`, any other control character is `\u{HEX}`.
//! A value that needed escaping therefore contains a backslash, which kubeadm never writes.
//!
//! What kubeadm does not write is refused with exit 4: more than [`MAX_MANIFEST_BYTES`], not UTF-8,
//! not YAML, not exactly one document, YAML aliases, nesting deeper than [`MAX_DEPTH`], more than
//! [`MAX_NODES`] nodes, a duplicated mapping key, not a `Pod`, no container named like the pod (or
//! two), or a `command`, `args`, `volumeMounts` or `volumes` that is not a list. A file that cannot
//! be read is exit 6 (docs/design.md, "Exit codes").

use etcd_common::args::{Args, Opt};
use etcd_common::{Error, ExitCode, Result};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use yaml_rust2::parser::{Event, Parser};

/// The largest manifest read: kubeadm's are about 4 KiB.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The deepest nesting of lists and mappings accepted: a kubeadm Pod nests 7 deep.
pub const MAX_DEPTH: usize = 32;
/// The most nodes (scalars, lists, mappings) accepted in one manifest.
pub const MAX_NODES: usize = 65_536;

/// What `--read-manifest` found in one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `metadata.name`.
    pub pod: String,
    /// The name of the container read (equal to `pod`).
    pub container: String,
    /// Every flag of that container's `command` and `args`, in the order of first appearance, with
    /// the value of its last appearance.
    pub flags: Vec<(String, String)>,
    /// `(flag, host path)` for each flag whose value is a path inside a `hostPath` volume mount.
    pub host_paths: Vec<(String, String)>,
}

impl Manifest {
    /// The `key<TAB>value` lines `--read-manifest` prints, escaped (see the module documentation).
    pub fn facts(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: &str| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{}\t{}", escape(key), escape(value));
        };
        line("pod", &self.pod);
        line("container", &self.container);
        for (name, value) in &self.flags {
            line(&format!("flag.{name}"), value);
        }
        for (name, path) in &self.host_paths {
            line(&format!("host.{name}"), path);
        }
        out
    }
}

/// `--read-manifest FILE`, given alone: the text to print on stdout (the facts), or the error.
pub fn from_command_line(flag: &Opt, args: &mut Args) -> Result<String> {
    let file = args.value(flag)?;
    if let Some(extra) = args.next_opt()? {
        return Err(Error::usage(format!(
            "--read-manifest takes one FILE and nothing else (got {} too)",
            extra.display()
        )));
    }
    Ok(read(Path::new(&file))?.facts())
}

/// Reads and interprets the manifest at `path`: exit 6 when it cannot be read, 4 when it is not
/// what kubeadm writes. Errors name the file.
pub fn read(path: &Path) -> Result<Manifest> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| Error::io(format!("{shown}: cannot open it"), &e))?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("{shown}: cannot read it"), &e))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(not_kubeadm(format!(
            "{shown}: larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| not_kubeadm(format!("{shown}: not UTF-8 text")))?;
    parse(&text).map_err(|why| not_kubeadm(format!("{shown}: {why}")))
}

/// Interprets a manifest's text; the error says why it is not what kubeadm writes.
pub fn parse(text: &str) -> std::result::Result<Manifest, String> {
    let root = load(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    let kind = scalar(get(&root, "kind")).unwrap_or("missing");
    if kind != "Pod" {
        return Err(format!("not a Pod manifest (kind: {})", escape(kind)));
    }
    let pod = scalar(get(&root, "metadata").and_then(|m| get(m, "name")))
        .filter(|name| !name.is_empty())
        .ok_or("no metadata.name")?;
    let containers = match get(&root, "spec").and_then(|s| get(s, "containers")) {
        Some(Node::Seq(items)) if !items.is_empty() => items,
        _ => return Err("no spec.containers list".into()),
    };
    let mut named = containers
        .iter()
        .filter(|c| scalar(get(c, "name")) == Some(pod));
    let container = named.next().ok_or_else(|| {
        format!(
            "no container named {} in spec.containers (kubeadm names it like the pod)",
            escape(pod)
        )
    })?;
    if named.next().is_some() {
        return Err(format!("two containers named {}", escape(pod)));
    }
    let mut items = Vec::new();
    for field in ["command", "args"] {
        items.extend(strings(container, field)?);
    }
    let flags = flags(&items);
    let mounts = pairs(container, "volumeMounts", "mountPath", "name")?;
    let mut volumes = Vec::new();
    for volume in list(
        get(&root, "spec").and_then(|s| get(s, "volumes")),
        "volumes",
    )? {
        if let Some(name) = scalar(get(volume, "name")) {
            let host = get(volume, "hostPath").and_then(|h| scalar(get(h, "path")));
            volumes.push((name, host));
        }
    }
    let host_paths = flags
        .iter()
        .filter_map(|(flag, value)| {
            host_path(value, &mounts, &volumes).map(|path| (flag.clone(), path))
        })
        .collect();
    Ok(Manifest {
        pod: pod.to_string(),
        container: pod.to_string(),
        flags,
        host_paths,
    })
}

/// Escapes `text` for one field of a `key<TAB>value` line (see the module documentation).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn not_kubeadm(message: String) -> Error {
    Error::new(
        ExitCode::Integrity,
        format!("{message}: not a static-pod manifest as kubeadm writes it"),
    )
}

/// A YAML node; every scalar is kept as its text (kubeadm quotes nothing that matters).
#[derive(Debug)]
enum Node {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// A list or mapping being built.
enum Frame {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(String, Node)>,
        keys: BTreeSet<String>,
        key: Option<String>,
    },
}

/// Builds the one document of `text` without recursion, within [`MAX_DEPTH`] and [`MAX_NODES`].
fn load(text: &str) -> std::result::Result<Node, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| format!("not YAML: {e}"))?;
        let at = mark.line();
        let node = match event {
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => continue,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(format!(
                        "line {at}: a second YAML document (kubeadm writes one Pod per file)"
                    ));
                }
                continue;
            }
            Event::Alias(_) => return Err(format!("line {at}: a YAML alias")),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("line {at}: nested deeper than {MAX_DEPTH}"));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new())
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        keys: BTreeSet::new(),
                        key: None,
                    }
                });
                continue;
            }
            Event::Scalar(text, ..) => Node::Scalar(text),
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items)) => Node::Seq(items),
                Some(Frame::Map { entries, .. }) => Node::Map(entries),
                None => return Err(format!("line {at}: unbalanced YAML")),
            },
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} YAML nodes"));
        }
        match stack.last_mut() {
            None if root.is_none() => root = Some(node),
            None => return Err(format!("line {at}: a second YAML document")),
            Some(Frame::Seq(items)) => items.push(node),
            Some(Frame::Map { entries, keys, key }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    let Node::Scalar(k) = node else {
                        return Err(format!("line {at}: a mapping key that is not a string"));
                    };
                    if !keys.insert(k.clone()) {
                        return Err(format!("line {at}: the key {} twice", escape(&k)));
                    }
                    *key = Some(k);
                }
            },
        }
    }
    root.ok_or_else(|| "empty: no YAML document".to_string())
}

/// The value of `key` in a mapping.
fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match node {
        Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

/// The text of a scalar.
fn scalar(node: Option<&Node>) -> Option<&str> {
    match node {
        Some(Node::Scalar(text)) => Some(text),
        _ => None,
    }
}

/// The items of an optional list; anything but a list (or nothing, or YAML null) is an error.
fn list<'a>(node: Option<&'a Node>, what: &str) -> std::result::Result<&'a [Node], String> {
    match node {
        None => Ok(&[]),
        Some(Node::Scalar(text)) if text.is_empty() || text == "null" || text == "~" => Ok(&[]),
        Some(Node::Seq(items)) => Ok(items),
        Some(_) => Err(format!("{what} is not a list")),
    }
}

/// The container's `field` (`command` or `args`): a list of strings.
fn strings<'a>(container: &'a Node, field: &str) -> std::result::Result<Vec<&'a str>, String> {
    list(get(container, field), field)?
        .iter()
        .map(|item| scalar(Some(item)).ok_or_else(|| format!("an item of {field} is not a string")))
        .collect()
}

/// `(a, b)` of every item of the container's list `field` that has both scalars.
fn pairs<'a>(
    container: &'a Node,
    field: &str,
    a: &str,
    b: &str,
) -> std::result::Result<Vec<(&'a str, &'a str)>, String> {
    Ok(list(get(container, field), field)?
        .iter()
        .filter_map(|item| Some((scalar(get(item, a))?, scalar(get(item, b))?)))
        .collect())
}

/// The flags of a command line, as etcd's and the API server's flag parsers read them for flags
/// with values (see the module documentation); the last occurrence wins.
fn flags(items: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let item = items[i];
        i += 1;
        let Some(body) = item
            .strip_prefix("--")
            .or_else(|| item.strip_prefix('-'))
            .filter(|b| !b.is_empty() && !b.starts_with(['-', '=']))
        else {
            continue;
        };
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, value),
            None => match items.get(i) {
                Some(next) if !next.starts_with('-') => {
                    i += 1;
                    (body, *next)
                }
                _ => (body, "true"),
            },
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => out.push((name.to_string(), value.to_string())),
        }
    }
    out
}

/// The host path of `value`, a path inside the container, through the longest covering mount.
fn host_path(
    value: &str,
    mounts: &[(&str, &str)],
    volumes: &[(&str, Option<&str>)],
) -> Option<String> {
    if !value.starts_with('/') {
        return None;
    }
    let (mount, name) = mounts
        .iter()
        .map(|(path, name)| (trim_slash(path), *name))
        .filter(|(path, _)| {
            value == *path
                || value
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|(path, _)| path.len())?;
    let host = volumes.iter().find(|(n, _)| *n == name)?.1?;
    if host.is_empty() {
        return None;
    }
    Some(format!("{}{}", trim_slash(host), &value[mount.len()..]))
}

/// `path` without its trailing slashes (`/` itself becomes empty, so that `/x` is under it).
fn trim_slash(path: &str) -> &str {
    path.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/node";

    /// A manifest of tests/kubeadm/manifests with its placeholders filled in.
    fn fixture(text: &str) -> String {
        text.replace("@ROOT@", ROOT)
            .replace("@CLIENT_PORT@", "2379")
            .replace("@PEER_PORT@", "2380")
            .replace("@METRICS_PORT@", "2381")
            .replace("@API_PORT@", "6443")
    }

    fn etcd_yaml() -> String {
        fixture(include_str!("../../../tests/kubeadm/manifests/etcd.yaml"))
    }

    fn apiserver_yaml() -> String {
        fixture(include_str!(
            "../../../tests/kubeadm/manifests/kube-apiserver.yaml"
        ))
    }

    fn flag<'a>(m: &'a Manifest, name: &str) -> Option<&'a str> {
        m.flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn host<'a>(m: &'a Manifest, name: &str) -> Option<&'a str> {
        m.host_paths
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The reason `text` is refused.
    fn refusal(text: &str) -> String {
        match parse(text) {
            Ok(m) => panic!("accepted: {m:?}"),
            Err(why) => why,
        }
    }

    #[test]
    fn kubeadm_etcd_yaml() {
        let m = parse(&etcd_yaml()).unwrap();
        assert_eq!((m.pod.as_str(), m.container.as_str()), ("etcd", "etcd"));
        assert_eq!(flag(&m, "name"), Some("cp1"));
        assert_eq!(flag(&m, "data-dir"), Some("/node/var/lib/etcd"));
        assert_eq!(
            flag(&m, "initial-cluster"),
            Some("cp1=https://127.0.0.1:2380")
        );
        assert_eq!(
            flag(&m, "listen-client-urls"),
            Some("https://127.0.0.1:2379")
        );
        assert_eq!(flag(&m, "client-cert-auth"), Some("true"));
        assert_eq!(flag(&m, "wal-dir"), None);
        assert_eq!(m.flags.len(), 19, "{:?}", m.flags);
        assert_eq!(host(&m, "data-dir"), Some("/node/var/lib/etcd"));
        assert_eq!(
            host(&m, "trusted-ca-file"),
            Some("/node/etc/kubernetes/pki/etcd/ca.crt")
        );
        // Not under any mount.
        assert_eq!(host(&m, "listen-client-urls"), None);
        let facts = m.facts();
        assert!(facts.starts_with("pod\tetcd\ncontainer\tetcd\nflag.advertise-client-urls\t"));
        assert!(facts.contains("\nflag.name\tcp1\n"));
        assert!(facts.contains("\nhost.data-dir\t/node/var/lib/etcd\n"));
        assert_eq!(
            facts.lines().count(),
            2 + m.flags.len() + m.host_paths.len()
        );
        assert!(facts.lines().all(|l| l.matches('\t').count() == 1));
    }

    #[test]
    fn kubeadm_apiserver_yaml() {
        let m = parse(&apiserver_yaml()).unwrap();
        assert_eq!(m.container, "kube-apiserver");
        assert_eq!(flag(&m, "secure-port"), Some("6443"));
        assert_eq!(flag(&m, "advertise-address"), Some("127.0.0.1"));
        assert_eq!(flag(&m, "authorization-mode"), Some("Node,RBAC"));
        assert_eq!(
            host(&m, "tls-cert-file"),
            Some("/node/etc/kubernetes/pki/apiserver.crt")
        );
    }

    #[test]
    fn the_data_dir_is_the_host_path_behind_its_mount() {
        let moved = etcd_yaml().replace(
            "      path: /node/var/lib/etcd\n",
            "      path: /srv/etcd-disk/\n",
        );
        let m = parse(&moved).unwrap();
        assert_eq!(flag(&m, "data-dir"), Some("/node/var/lib/etcd"));
        assert_eq!(host(&m, "data-dir"), Some("/srv/etcd-disk"));
        // Below the mount point, and the longest mount wins.
        let deeper = etcd_yaml()
            .replace(
                "--data-dir=/node/var/lib/etcd",
                "--data-dir=/node/var/lib/etcd/m1",
            )
            .replace(
                "    - mountPath: /node/var/lib/etcd\n",
                "    - mountPath: /node/var/lib/etcd/\n",
            );
        let m = parse(&deeper).unwrap();
        assert_eq!(host(&m, "data-dir"), Some("/node/var/lib/etcd/m1"));
        // A prefix that is not a path component is not covered.
        let sibling = etcd_yaml().replace(
            "--data-dir=/node/var/lib/etcd",
            "--data-dir=/node/var/lib/etcd2",
        );
        assert_eq!(host(&parse(&sibling).unwrap(), "data-dir"), None);
        // A mount whose volume is not a hostPath gives no host path.
        let empty_dir = etcd_yaml().replace(
            "  - hostPath:\n      path: /node/var/lib/etcd\n      type: DirectoryOrCreate\n",
            "  - emptyDir: {}\n",
        );
        assert_ne!(empty_dir, etcd_yaml());
        assert_eq!(host(&parse(&empty_dir).unwrap(), "data-dir"), None);
    }

    #[test]
    fn hand_edited_space_separated_quoted_crlf_and_a_sidecar_first() {
        let sidecar = "  containers:\n  - name: log-shipper\n    command:\n    - sh\n    - -c\n    \
                       - sleep infinity --name=shipper\n    args:\n    - --data-dir=/logs\n  - command:\n    - etcd\n";
        let edited = etcd_yaml()
            .replace("  containers:\n  - command:\n    - etcd\n", sidecar)
            .replace("    - --name=cp1\n", "    - --name\n    - cp1\n")
            .replace(
                "    - --data-dir=/node/var/lib/etcd\n",
                "    - \"--data-dir\"\n    - '/node/var/lib/etcd'\n",
            )
            .replace("\n", "\r\n");
        let m = parse(&edited).unwrap();
        assert_eq!(m.container, "etcd");
        assert_eq!(flag(&m, "name"), Some("cp1"));
        assert_eq!(flag(&m, "data-dir"), Some("/node/var/lib/etcd"));
        assert_eq!(host(&m, "data-dir"), Some("/node/var/lib/etcd"));
    }

    #[test]
    fn duplicate_flags_the_last_wins_and_is_printed_once() {
        let twice = etcd_yaml().replace(
            "    - --name=cp1\n",
            "    - --name=cp1\n    - -name=evil\n    - --name\n    - cp2\n",
        );
        let m = parse(&twice).unwrap();
        assert_eq!(flag(&m, "name"), Some("cp2"));
        assert_eq!(m.facts().matches("flag.name\t").count(), 1);
        // In args after command: args come last, so they win.
        let args = etcd_yaml().replace(
            "    image: registry",
            "    args:\n    - --name=from-args\n    image: registry",
        );
        assert_eq!(flag(&parse(&args).unwrap(), "name"), Some("from-args"));
        // A flag without a value before another flag is a boolean, not the next flag's name.
        let bare = etcd_yaml().replace("    - --name=cp1\n", "    - --name\n    - --x=1\n");
        let m = parse(&bare).unwrap();
        assert_eq!(flag(&m, "name"), Some("true"));
        assert_eq!(flag(&m, "x"), Some("1"));
    }

    #[test]
    fn without_the_etcd_container_or_with_two() {
        let renamed = etcd_yaml().replace(
            "    name: etcd\n    readinessProbe",
            "    name: db\n    readinessProbe",
        );
        assert_ne!(renamed, etcd_yaml());
        assert!(refusal(&renamed).contains("no container named etcd"));
        let no_containers =
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers: []\n";
        assert_eq!(refusal(no_containers), "no spec.containers list");
        let two = "kind: Pod\nmetadata: {name: etcd}\nspec:\n  containers:\n  - name: etcd\n  - name: etcd\n";
        assert_eq!(refusal(two), "two containers named etcd");
        let one = "kind: Pod\nmetadata: {name: etcd}\nspec:\n  containers:\n  - name: etcd\n";
        let m = parse(one).unwrap();
        assert!(m.flags.is_empty() && m.host_paths.is_empty());
        assert_eq!(m.facts(), "pod\tetcd\ncontainer\tetcd\n");
    }

    #[test]
    fn not_a_pod_or_not_one_document() {
        let deployment = etcd_yaml().replace("kind: Pod\n", "kind: Deployment\n");
        assert_eq!(
            refusal(&deployment),
            "not a Pod manifest (kind: Deployment)"
        );
        assert_eq!(refusal("a: b\n"), "not a Pod manifest (kind: missing)");
        assert_eq!(refusal(""), "empty: no YAML document");
        assert_eq!(refusal("- kind\n"), "not a Pod manifest (kind: missing)");
        let two = format!("{}---\n{}", etcd_yaml(), apiserver_yaml());
        assert!(
            refusal(&two).contains("a second YAML document"),
            "{}",
            refusal(&two)
        );
        // A leading --- and a trailing ... are one document.
        assert!(parse(&format!("---\n{}...\n", etcd_yaml())).is_ok());
        assert!(parse(&format!("\u{feff}{}", etcd_yaml())).is_ok());
    }

    #[test]
    fn malformed_yaml_duplicate_keys_aliases_and_wrong_shapes() {
        assert!(refusal("kind: [Pod\n").starts_with("not YAML: "));
        let dup = etcd_yaml().replace("kind: Pod\n", "kind: Pod\nkind: Pod\n");
        assert!(refusal(&dup).contains("the key kind twice"));
        let alias = "kind: &k Pod\nother: *k\n";
        assert!(refusal(alias).contains("a YAML alias"));
        let not_list = "kind: Pod\nmetadata: {name: etcd}\nspec:\n  containers:\n  - name: etcd\n    command: etcd --name=x\n";
        assert_eq!(refusal(not_list), "command is not a list");
        let nested = "kind: Pod\nmetadata: {name: etcd}\nspec:\n  containers:\n  - name: etcd\n    command: [etcd, [x]]\n";
        assert_eq!(refusal(nested), "an item of command is not a string");
        let key = "kind: Pod\n? [a]\n: b\n";
        assert!(refusal(key).contains("not a string"));
    }

    #[test]
    fn deep_nesting_and_many_nodes_are_bounded() {
        let deep = format!("kind: Pod\nx: {}{}\n", "[".repeat(200), "]".repeat(200));
        assert!(
            refusal(&deep).ends_with("nested deeper than 32"),
            "{}",
            refusal(&deep)
        );
        let deep_block = format!("kind: Pod\nx:\n{}x\n", "- ".repeat(5000));
        assert!(
            refusal(&deep_block).ends_with("nested deeper than 32"),
            "{}",
            refusal(&deep_block)
        );
        // 32 deep is fine.
        let ok = format!(
            "kind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{{name: p}}]}}\nx:\n{}x\n",
            "- ".repeat(30)
        );
        assert!(parse(&ok).is_ok(), "{:?}", parse(&ok));
        let many = format!("kind: Pod\nx: [{}]\n", "a,".repeat(MAX_NODES));
        assert_eq!(refusal(&many), format!("more than {MAX_NODES} YAML nodes"));
    }

    #[test]
    fn newlines_tabs_and_controls_in_values_and_names_cannot_add_lines() {
        let hostile = etcd_yaml().replace(
            "    - --name=cp1\n",
            "    - \"--name=cp1\\nflag.data-dir\\t/etc\"\n    - \"--evil\\tkey=a\\u001b[2J\\\\b\\r\"\n",
        );
        let m = parse(&hostile).unwrap();
        assert_eq!(flag(&m, "name"), Some("cp1\nflag.data-dir\t/etc"));
        let facts = m.facts();
        assert!(
            facts.contains("\nflag.name\tcp1\\nflag.data-dir\\t/etc\n"),
            "{facts}"
        );
        assert!(
            facts.contains("\nflag.evil\\tkey\ta\\u{1b}[2J\\\\b\\r\n"),
            "{facts}"
        );
        assert_eq!(facts.matches("flag.data-dir\t").count(), 1);
        assert!(facts.lines().all(|l| l.matches('\t').count() == 1));
        assert!(!facts
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'));
        assert_eq!(escape("a\u{85}b\u{7f}"), "a\\u{85}b\\u{7f}");
    }

    #[test]
    fn files_too_large_unreadable_or_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcd.yaml");
        std::fs::write(&path, etcd_yaml()).unwrap();
        assert_eq!(read(&path).unwrap().container, "etcd");
        let mut big = etcd_yaml();
        big.push_str(&format!("# {}\n", "x".repeat(MAX_MANIFEST_BYTES as usize)));
        std::fs::write(&path, big).unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(err.code, ExitCode::Integrity);
        assert!(
            err.message.contains("larger than 1048576 bytes"),
            "{}",
            err.message
        );
        std::fs::write(&path, b"kind: Pod\xff\n").unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(err.code, ExitCode::Integrity);
        assert!(
            err.message.ends_with(
                "etcd.yaml: not UTF-8 text: not a static-pod manifest as kubeadm writes it"
            ),
            "{}",
            err.message
        );
        let err = read(&dir.path().join("missing.yaml")).unwrap_err();
        assert_eq!(err.code, ExitCode::LocalIo);
        let err = read(dir.path()).unwrap_err();
        assert_eq!(err.code, ExitCode::LocalIo, "{}", err.message);
    }

    #[test]
    fn the_flag_takes_one_file_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcd.yaml");
        std::fs::write(&path, etcd_yaml()).unwrap();
        let file = path.to_str().unwrap();
        let run = |argv: &[&str]| {
            let args =
                Args::from_vec(std::iter::once("etcd-snap-restore").chain(argv.iter().copied()));
            crate::cli::parse(args, &etcd_common::args::Env::from_pairs([]))
        };
        match run(&["--read-manifest", file]) {
            Ok(crate::cli::Parsed::Exit(text)) => assert!(text.contains("\nflag.name\tcp1\n")),
            other => panic!("{other:?}"),
        }
        let err = run(&["--read-manifest", file, "snap.db"]).unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
        let err = run(&["--read-manifest"]).unwrap_err();
        assert_eq!(err.code, ExitCode::Usage);
    }
}
