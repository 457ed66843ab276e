#!/usr/bin/env python3
"""Generate crates/k8s-codec/schema/k8s.schema, the compact protobuf schema of Kubernetes' built-in types.

Why: the offline tools decode the protobuf values that kube-apiserver stores in etcd without protoc,
network or a giant generated Rust module at build time. This script reads, from pinned upstream git
commits, every `generated.proto` (field numbers and protobuf types) and the Go `types.go` files next to
them (JSON names, pointer-ness, omitempty, inline, the top-level kinds and group names), and writes one
line-oriented text table that the crate embeds with include_str!. CI never runs it; its output is
committed. Run it again to pick up new Kubernetes types:

    python3 crates/k8s-codec/gen/gen_schema.py \
        --api DIR_OF_k8s.io/api --apimachinery DIR --apiextensions DIR --aggregator DIR \
        > crates/k8s-codec/schema/k8s.schema

Each DIR is a git directory (a clone or bare mirror); the commit read is the one pinned in PINS below
(override with DIR@COMMIT). No protoc is needed: go-to-protobuf writes very regular proto2 files.

Output format (documented in src/schema.rs, which parses it):
    # comment
    P <idx> <proto package>                          package alias
    K <apiVersion> <Kind> <idx>.<Message>            a top-level kind stored in etcd
    M <idx>.<Message> <special> [t]                  a message; special is '-' or a letter (below);
                                                     t: the Go struct embeds TypeMeta (JSON may
                                                     carry apiVersion/kind, protobuf does not)
    <num> <jsonName> <card><flags> <type> [<type>]   a field of the message above
card: o optional, r repeated, m map (two types: key, value); flags: p Go pointer or nil-able
([]byte), e json omitempty, i inline (a Go embedded struct without a JSON name). Types are scalar names or <idx>.<Message>.
special: T meta.v1.Time, U MicroTime, D Duration, I IntOrString, Q Quantity, R raw JSON
(RawExtension, apiextensions JSON, FieldsV1), A JSONSchemaPropsOrArray, B JSONSchemaPropsOrBool,
S JSONSchemaPropsOrStringArray, L a Go named slice wrapped as {repeated items = 1} (ExtraValue, Verbs).
"""
import argparse
import re
import subprocess
import sys

PINS = {
    "api": "10b39a39bcee995dfe7cd5e8e7b922be5e46f1e2",
    "apimachinery": "eed236ceee2c19c2753a3d93ac0631dc20750454",
    "apiextensions": "1aa2717a552ee6ca1e2a18f1f8ffccde981db923",
    "aggregator": "232ca687ab24bc9f9a378cba74716b5f7d6b82eb",
}
# (repo key, directory prefix in repo, Go import path prefix)
APIMACHINERY_DIRS = ["pkg/apis/meta/v1", "pkg/runtime", "pkg/util/intstr", "pkg/api/resource"]
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float",
           "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
SPECIAL = {
    META + "Time": "T", META + "MicroTime": "U", META + "Duration": "D", META + "FieldsV1": "R",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "I",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Q",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "R",
}
for v in ("v1", "v1beta1"):
    p = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.%s." % v
    SPECIAL.update({p + "JSON": "R", p + "JSONSchemaPropsOrArray": "A",
                    p + "JSONSchemaPropsOrBool": "B", p + "JSONSchemaPropsOrStringArray": "S"})


def git(repo, commit, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout


def show(repo, commit, path):
    return git(repo, commit, "show", "%s:%s" % (commit, path))


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def parse_proto(text):
    """Messages of one generated.proto: package, {name: [(card, types, name, num)]}."""
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    messages = {}
    body = strip_comments(text)
    for m in re.finditer(r"^message (\w+) \{(.*?)^\}", body, re.M | re.S):
        fields = []
        for line in m.group(2).splitlines():
            line = line.strip()
            f = re.match(r"(optional|repeated) (\S+) (\w+) = (\d+)", line)
            if f:
                fields.append(("o" if f.group(1) == "optional" else "r", [f.group(2)],
                               f.group(3), int(f.group(4))))
                continue
            f = re.match(r"map<(\S+), (\S+)> (\w+) = (\d+)", line)
            if f:
                fields.append(("m", [f.group(1), f.group(2)], f.group(3), int(f.group(4))))
                continue
            if line and not line.startswith(("reserved", "option")):
                sys.exit("unparsed proto line in %s.%s: %r" % (package, m.group(1), line))
        messages[m.group(1)] = fields
    return package, messages


def parse_go(texts):
    """Go facts of one package: {struct: {num: (gotype, json tag)}}, named slices, kinds, group."""
    structs, slices, kinds, group, typemeta = {}, set(), [], None, set()
    for text in texts:
        g = re.search(r'GroupName\s*=\s*"([^"]*)"', text)
        if g:
            group = g.group(1)
        lines = text.splitlines()
        for i, line in enumerate(lines):
            s = re.match(r"type (\w+) \[\]", line)
            if s:
                slices.add(s.group(1))
            s = re.match(r"type (\w+) struct \{", line)
            if not s:
                continue
            name = s.group(1)
            j = i - 1
            comment = []
            while j >= 0 and (lines[j].startswith("//") or not lines[j].strip()):
                comment.append(lines[j])
                j -= 1
            if any("+k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object" in c
                   for c in comment):
                kinds.append(name)
            fields = {}
            depth = 1
            for fl in lines[i + 1:]:
                if re.match(r"\s*(metav1\.|v1\.)?TypeMeta\s+`", fl):
                    typemeta.add(name)
                code = re.sub(r"`[^`]*`", "", fl.split("//", 1)[0])  # braces in comments/tags
                depth += code.count("{") - code.count("}")
                if depth <= 0:
                    break
                f = re.match(r'\s*(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`', fl)
                if not f or 'protobuf:"' not in f.group(3):
                    continue
                tags = dict(re.findall(r'(\w+):"([^"]*)"', f.group(3)))
                pb = tags["protobuf"].split(",")
                if pb[0] == "-" or len(pb) < 2:
                    continue
                # An embedded struct without a JSON name is inlined by encoding/json.
                embedded = f.group(1) is None
                fields[int(pb[1])] = (f.group(2), tags.get("json", ""), embedded)
            structs[name] = fields
    return structs, slices, kinds, group, typemeta


def go_files(repo, commit, d):
    out = []
    for path in git(repo, commit, "ls-tree", "--name-only", "%s:%s" % (commit, d)).split():
        if path.endswith(".go") and not path.endswith("_test.go") and not path.startswith(
                ("zz_generated", "generated.pb")) and "swagger_doc" not in path:
            out.append(show(repo, commit, "%s/%s" % (d, path)))
    return out


def sources(args):
    """(repo dir, commit, package dir, is API group with kinds) for every proto package."""
    def split(spec, key):
        repo, _, commit = spec.partition("@")
        return repo, commit or PINS[key]
    out = []
    repo, commit = split(args.api, "api")
    for path in git(repo, commit, "ls-tree", "-r", "--name-only", commit).split():
        if path.endswith("/generated.proto"):
            out.append((repo, commit, path.rsplit("/", 1)[0], True))
    repo, commit = split(args.apimachinery, "apimachinery")
    out += [(repo, commit, d, False) for d in APIMACHINERY_DIRS]
    repo, commit = split(args.apiextensions, "apiextensions")
    out += [(repo, commit, "pkg/apis/apiextensions/" + v, True) for v in ("v1", "v1beta1")]
    repo, commit = split(args.aggregator, "aggregator")
    out += [(repo, commit, "pkg/apis/apiregistration/" + v, True) for v in ("v1", "v1beta1")]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("api", "apimachinery", "apiextensions", "aggregator"):
        ap.add_argument("--" + k, required=True)
    args = ap.parse_args()
    packages, all_messages, kinds = [], {}, []
    for repo, commit, d, has_kinds in sources(args):
        package, messages = parse_proto(show(repo, commit, d + "/generated.proto"))
        structs, slices, kind_names, group, typemeta = parse_go(go_files(repo, commit, d))
        version = d.rsplit("/", 1)[1]
        packages.append(package)
        for name, fields in messages.items():
            all_messages[package + "." + name] = (package, fields, structs.get(name, {}),
                                                 name in slices, name in typemeta)
        if has_kinds:
            if group is None:
                sys.exit("no GroupName in " + d)
            api_version = "%s/%s" % (group, version) if group else version
            for k in kind_names:
                if k in messages:
                    kinds.append((api_version, k, package + "." + k))
    alias = {p: str(i) for i, p in enumerate(packages)}

    def ref(t, package):
        if t in SCALARS:
            return t
        full = t[1:] if t.startswith(".") else package + "." + t
        if full not in all_messages:
            sys.exit("unknown type " + full)
        p, _, n = full.rpartition(".")
        return alias[p] + "." + n

    print("# Kubernetes protobuf schema for k8s-codec, generated by gen/gen_schema.py; do not edit.")
    print("# Derived from Apache-2.0 Kubernetes sources: k8s.io/api@%s," % PINS["api"])
    print("# k8s.io/apimachinery@%s, k8s.io/apiextensions-apiserver@%s," % (
        PINS["apimachinery"], PINS["apiextensions"]))
    print("# k8s.io/kube-aggregator@%s." % PINS["aggregator"])
    for p in packages:
        print("P %s %s" % (alias[p], p))
    for api_version, kind, full in sorted(kinds):
        print("K %s %s %s" % (api_version, kind, ref("." + full, "")))
    for full, (package, fields, go, is_slice, has_typemeta) in all_messages.items():
        special = SPECIAL.get(full, "L" if is_slice else "-")
        if not go and special == "-" and fields:
            print("note: no Go struct for %s (zero values treated as unset)" % full, file=sys.stderr)
        print("M %s %s%s" % (ref("." + full, ""), special, " t" if has_typemeta else ""))
        for card, types, name, num in fields:
            if go and num not in go:
                print("warning: no Go field for %s.%s" % (full, name), file=sys.stderr)
            gotype, jtag, embedded = go.get(num, ("", "", False))
            parts = jtag.split(",")
            flags = ""
            if gotype.startswith("*") or gotype == "[]byte":
                flags += "p"
            if "omitempty" in parts[1:]:
                flags += "e"
            if embedded and not parts[0]:
                flags += "i"
            json_name = parts[0] if parts[0] and parts[0] != "-" else name
            if not go and not special.strip("-"):
                flags += "e"  # no Go facts (runtime.Unknown etc.): treat zero as unset
            print("%d %s %s%s %s" % (num, json_name, card, flags,
                                     " ".join(ref(t, package) for t in types)))


if __name__ == "__main__":
    main()
