//! Client certificates as users really have them, made by the real `openssl` at test time, each
//! judged by every tool that connects (etcd-health, etcd-snap-save, scripts/etcd-backup) and by
//! etcdctl 3.5 on the same files against the same etcd 3.5 server: the verdicts (accepted or
//! refused) must be the same.
//!
//! Why: etcdctl accepts every client certificate/key pair that the server accepts, and the tools
//! must too. rustls' own key check parsed the certificate with webpki and refused the X.509 v1
//! leaves that `openssl x509 -req` makes without an extension file (issue 11), which etcd and
//! etcdctl accept. The shapes: a guide's `openssl req -x509` CA with v1 and v3 leaves (ECDSA
//! P-256/P-384 and RSA keys, PKCS#8, SEC1 with EC PARAMETERS, PKCS#1), an old-style v1 CA, a root
//! and intermediate CA with the chain in the certificate file or in the trusted bundle, kubeadm's
//! `/etc/kubernetes/pki/etcd`, and the refusals (a key of another certificate, a chain in the
//! wrong order, a leaf without its intermediate, a serverAuth-only leaf, a foreign CA).
//!
//! One etcd server per PKI (its shapes share it); the shapes of one server run in parallel.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use etcd_snap_e2e::support::{
    self, Cluster, Issued, KeyAlg, OpensslPki, Run, ServerTls, Tool, Version, EXT_CA, EXT_CLIENT,
    EXT_SERVER,
};
use etcd_snap_e2e::{age_keygen, ours, path_with_tools, program, script};

/// What etcd (and so etcdctl) does with a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The handshake succeeds: every tool must work.
    Accepted,
    /// Refused before any connection (etcdctl: "private key does not match public key"): our
    /// tools must say so in one line naming both files, exit 2.
    RefusedLocally,
    /// The server refuses the client certificate, or the client cannot verify the server.
    RefusedInHandshake,
}

/// How `scripts/etcd-backup` is run for a shape (it runs etcd-health and etcd-snap-save).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backup {
    /// Not run for this shape.
    No,
    /// `etcd-backup --no-encrypt --cacert --cert --key DEST`.
    NoEncrypt,
    /// `etcd-backup -r AGE-RECIPIENT --cacert --cert --key DEST`.
    Age,
    /// `etcd-backup --no-encrypt --pki-dir DIR DEST`: the kubeadm files found by the script.
    PkiDir(PathBuf),
}

/// One client certificate shape: the three files a user passes, and what to expect.
#[derive(Debug, Clone)]
struct Shape {
    /// Says what the shape is, in failure messages.
    name: &'static str,
    /// `--cacert`.
    cacert: PathBuf,
    /// `--cert`.
    cert: PathBuf,
    /// `--key`.
    key: PathBuf,
    /// etcd's (and etcdctl's) verdict, written down so that a server that is simply down does
    /// not pass as "both refused".
    expect: Expect,
    /// Whether and how etcd-backup runs too.
    backup: Backup,
}

impl Shape {
    fn new(name: &'static str, cacert: &Path, cert: &Path, key: &Path, expect: Expect) -> Shape {
        Shape {
            name,
            cacert: cacert.to_path_buf(),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            expect,
            backup: Backup::No,
        }
    }

    fn with_backup(mut self, backup: Backup) -> Shape {
        self.backup = backup;
        self
    }

    /// `--cacert C --cert C --key K`.
    fn tls_args(&self) -> Vec<String> {
        let p = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "--cacert".into(),
            p(&self.cacert),
            "--cert".into(),
            p(&self.cert),
            "--key".into(),
            p(&self.key),
        ]
    }
}

/// An etcd server's TLS files and the shapes tried against it.
struct Group {
    /// What the server serves and trusts.
    server: ServerTls,
    /// The server's version.
    version: Version,
    /// Extra etcd flags.
    server_args: Vec<&'static str>,
    /// The shapes, each judged by every program.
    shapes: Vec<Shape>,
}

impl Group {
    /// A group served by etcd 3.5 with no extra flags.
    fn new(server: ServerTls, shapes: Vec<Shape>) -> Group {
        Group {
            server,
            version: Version::V3_5,
            server_args: Vec::new(),
            shapes,
        }
    }
}

use Expect::{Accepted, RefusedInHandshake, RefusedLocally};

/// `#[test] fn NAME` that builds a PKI with `GROUP(&OpensslPki)`, starts one etcd 3.5 serving it
/// and checks every shape of the group with [`verdicts_match_etcdctl`].
macro_rules! client_cert_test {
    ($name:ident, $group:path) => {
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let pki = OpensslPki::new(&dir.path().join("pki"));
            verdicts_match_etcdctl(&$group(&pki), dir.path());
        }
    };
}

client_cert_test!(a_guides_ca_with_v1_and_v3_leaves, guide_pki);
client_cert_test!(an_old_style_v1_ca, v1_ca_pki);
client_cert_test!(an_intermediate_ca_sent_in_the_cert_file, chain_in_cert_file);
client_cert_test!(
    an_intermediate_ca_in_the_trusted_bundle,
    chain_in_trusted_bundle
);
client_cert_test!(kubeadm_etcd_pki, kubeadm_pki);
client_cert_test!(a_guides_ca_over_tls_1_2, guide_pki_over_tls_1_2);

/// The guide's shapes against a server that speaks TLS 1.2 at most (etcd 3.5.1 has no
/// `--tls-max-version`; Debian sid's 3.5 has): client authentication signs differently there
/// (TLS 1.2 allows RSA PKCS#1 signatures and any ECDSA hash; TLS 1.3 needs RSA-PSS and the
/// curve's own hash).
fn guide_pki_over_tls_1_2(pki: &OpensslPki) -> Group {
    Group {
        version: Version::V3_5Sid,
        server_args: vec!["--tls-max-version=TLS1.2"],
        ..guide_pki(pki)
    }
}

/// The guides' recipe: `openssl req -x509` makes the CA, `openssl x509 -req` the leaves, with an
/// extension file for the server (SANs) and with or without one for the clients.
fn guide_pki(pki: &OpensslPki) -> Group {
    let ca = pki.ca("ca", "/CN=etcd-ca", KeyAlg::Rsa2048);
    let server = pki.sign(
        "server",
        "/CN=etcd-server",
        KeyAlg::Rsa2048,
        &ca,
        Some(EXT_SERVER),
    );
    let l = GuideLeaves::issue(pki, &ca);
    for (cert, version) in [(&l.v1_rsa, 1), (&l.v1_ec, 1), (&l.v3_rsa, 3), (&server, 3)] {
        assert_eq!(pki.version(&cert.cert), version, "{}", cert.cert.display());
    }
    let mut shapes = guide_accepted_shapes(&ca.cert, &l);
    shapes.extend(guide_refused_shapes(&ca.cert, &l));
    Group::new(server_tls(&ca.cert, &server, &ca.cert, &l.v3_ec), shapes)
}

/// The client certificates the guides' recipe makes (and a few it must not accept), all for
/// `root`, signed by the guides' CA unless named foreign.
struct GuideLeaves {
    v1_rsa: Issued,
    v1_rsa_pkcs1: Issued,
    v1_ec: Issued,
    v1_ecparam: Issued,
    v3_rsa: Issued,
    v3_ec: Issued,
    v3_p384: Issued,
    v1_ed25519: Issued,
    server_only_eku: Issued,
    foreign_ca: Issued,
    foreign: Issued,
    /// The CA's certificate, then `v3_ec`'s, in one file.
    ca_first: PathBuf,
}

impl GuideLeaves {
    /// Issues them in the guides' order.
    fn issue(pki: &OpensslPki, ca: &Issued) -> GuideLeaves {
        let leaf = |name, alg, ext| pki.sign(name, "/CN=root", alg, ca, ext);
        let v1_rsa = leaf("v1-rsa", KeyAlg::Rsa2048, None);
        let v1_rsa_pkcs1 = leaf("v1-rsa-pkcs1", KeyAlg::Rsa2048Traditional, None);
        let v1_ec = leaf("v1-ec", KeyAlg::EcP256, None);
        let v1_ecparam = leaf("v1-ecparam", KeyAlg::EcParamP256, None);
        let v3_rsa = leaf("v3-rsa", KeyAlg::Rsa2048, Some(EXT_CLIENT));
        let v3_ec = leaf("v3-ec", KeyAlg::EcP256, Some(EXT_CLIENT));
        let v3_p384 = leaf("v3-p384", KeyAlg::EcP384, Some(EXT_CLIENT));
        let v1_ed25519 = leaf("v1-ed25519", KeyAlg::Ed25519, None);
        let server_only_eku = leaf(
            "server-auth-only",
            KeyAlg::EcP256,
            Some("extendedKeyUsage=serverAuth\n"),
        );
        let foreign_ca = pki.ca("foreign-ca", "/CN=someone-else", KeyAlg::EcP256);
        let foreign = pki.sign("foreign", "/CN=root", KeyAlg::EcP256, &foreign_ca, None);
        let ca_first = pki.bundle("ca-then-leaf.crt", &[&ca.cert, &v3_ec.cert]);
        GuideLeaves {
            v1_rsa,
            v1_rsa_pkcs1,
            v1_ec,
            v1_ecparam,
            v3_rsa,
            v3_ec,
            v3_p384,
            v1_ed25519,
            server_only_eku,
            foreign_ca,
            foreign,
            ca_first,
        }
    }
}

/// The guides' shapes etcd accepts (CA `c`): every tool must work with each.
fn guide_accepted_shapes(c: &Path, l: &GuideLeaves) -> Vec<Shape> {
    vec![
        Shape::new(
            "v1 leaf, RSA (genrsa, PKCS#8)",
            c,
            &l.v1_rsa.cert,
            &l.v1_rsa.key,
            Accepted,
        )
        .with_backup(Backup::Age),
        Shape::new(
            "v1 leaf, RSA (genrsa -traditional, PKCS#1)",
            c,
            &l.v1_rsa_pkcs1.cert,
            &l.v1_rsa_pkcs1.key,
            Accepted,
        ),
        Shape::new(
            "v1 leaf, ECDSA P-256 (genpkey)",
            c,
            &l.v1_ec.cert,
            &l.v1_ec.key,
            Accepted,
        )
        .with_backup(Backup::NoEncrypt),
        Shape::new(
            "v1 leaf, ECDSA P-256 (ecparam -genkey: EC PARAMETERS + SEC1)",
            c,
            &l.v1_ecparam.cert,
            &l.v1_ecparam.key,
            Accepted,
        ),
        Shape::new(
            "v3 leaf, RSA, clientAuth",
            c,
            &l.v3_rsa.cert,
            &l.v3_rsa.key,
            Accepted,
        ),
        Shape::new(
            "v3 leaf, ECDSA P-256, clientAuth",
            c,
            &l.v3_ec.cert,
            &l.v3_ec.key,
            Accepted,
        ),
        Shape::new(
            "v3 leaf, ECDSA P-384, clientAuth",
            c,
            &l.v3_p384.cert,
            &l.v3_p384.key,
            Accepted,
        ),
        Shape::new(
            "v1 leaf, Ed25519",
            c,
            &l.v1_ed25519.cert,
            &l.v1_ed25519.key,
            Accepted,
        ),
    ]
}

/// The guides' shapes etcd refuses (CA `c`), locally or in the handshake.
fn guide_refused_shapes(c: &Path, l: &GuideLeaves) -> Vec<Shape> {
    vec![
        Shape::new(
            "v1 leaf with the key of another leaf",
            c,
            &l.v1_rsa.cert,
            &l.v1_ec.key,
            RefusedLocally,
        )
        .with_backup(Backup::NoEncrypt),
        Shape::new(
            "v3 leaf with an RSA key of another leaf",
            c,
            &l.v3_rsa.cert,
            &l.v1_rsa.key,
            RefusedLocally,
        ),
        Shape::new(
            "CA before the leaf in the cert file",
            c,
            &l.ca_first,
            &l.v3_ec.key,
            RefusedLocally,
        ),
        Shape::new(
            "v3 leaf with serverAuth only",
            c,
            &l.server_only_eku.cert,
            &l.server_only_eku.key,
            RefusedInHandshake,
        ),
        Shape::new(
            "v1 leaf of a CA the server does not trust",
            c,
            &l.foreign.cert,
            &l.foreign.key,
            RefusedInHandshake,
        ),
        Shape::new(
            "a CA the server was not signed by (--cacert)",
            &l.foreign_ca.cert,
            &l.v1_ec.cert,
            &l.v1_ec.key,
            RefusedInHandshake,
        ),
    ]
}

/// An old recipe: the CA itself is a v1 certificate (`openssl x509 -req -signkey`), so it has no
/// basicConstraints; as a trust anchor that is fine for etcd and etcdctl.
fn v1_ca_pki(pki: &OpensslPki) -> Group {
    let ca = pki.v1_ca("ca", "/CN=old-etcd-ca", KeyAlg::EcParamP256);
    assert_eq!(pki.version(&ca.cert), 1);
    let server = pki.sign(
        "server",
        "/CN=etcd-server",
        KeyAlg::Rsa2048,
        &ca,
        Some(EXT_SERVER),
    );
    let v1 = pki.sign("v1", "/CN=root", KeyAlg::Rsa2048, &ca, None);
    let v3 = pki.sign("v3", "/CN=root", KeyAlg::EcP256, &ca, Some(EXT_CLIENT));
    let c = &ca.cert;
    Group::new(
        server_tls(&ca.cert, &server, &ca.cert, &v3),
        vec![
            Shape::new("v1 CA, v1 RSA leaf", c, &v1.cert, &v1.key, Accepted)
                .with_backup(Backup::NoEncrypt),
            Shape::new("v1 CA, v3 ECDSA leaf", c, &v3.cert, &v3.key, Accepted),
        ],
    )
}

/// Root → intermediate → leaves, every leaf signed by the intermediate.
struct Chain {
    root: Issued,
    intermediate: Issued,
    server: Issued,
    v3: Issued,
    v1: Issued,
}

fn chain(pki: &OpensslPki) -> Chain {
    let root = pki.ca("root", "/CN=etcd-root-ca", KeyAlg::EcP256);
    let intermediate = pki.sign(
        "intermediate",
        "/CN=etcd-intermediate-ca",
        KeyAlg::EcP256,
        &root,
        Some(EXT_CA),
    );
    let server = pki.sign(
        "server",
        "/CN=etcd-server",
        KeyAlg::EcP256,
        &intermediate,
        Some(EXT_SERVER),
    );
    let v3 = pki.sign(
        "v3",
        "/CN=root",
        KeyAlg::EcP256,
        &intermediate,
        Some(EXT_CLIENT),
    );
    let v1 = pki.sign("v1", "/CN=root", KeyAlg::Rsa2048, &intermediate, None);
    Chain {
        root,
        intermediate,
        server,
        v3,
        v1,
    }
}

/// The server trusts the root only and sends its intermediate; clients must send theirs.
fn chain_in_cert_file(pki: &OpensslPki) -> Group {
    let ch = chain(pki);
    let with_int = |i: &Issued, name| pki.bundle(name, &[&i.cert, &ch.intermediate.cert]);
    let server_chain = with_int(&ch.server, "server-chain.crt");
    let v3_chain = with_int(&ch.v3, "v3-chain.crt");
    let v1_chain = with_int(&ch.v1, "v1-chain.crt");
    let full = pki.bundle(
        "v3-full-chain.crt",
        &[&ch.v3.cert, &ch.intermediate.cert, &ch.root.cert],
    );
    let root = &ch.root.cert;
    let server = Issued {
        cert: server_chain,
        key: ch.server.key.clone(),
    };
    let probe = Issued {
        cert: v3_chain.clone(),
        key: ch.v3.key.clone(),
    };
    Group::new(
        server_tls(root, &server, root, &probe),
        vec![
            Shape::new(
                "v3 leaf + intermediate",
                root,
                &v3_chain,
                &ch.v3.key,
                Accepted,
            ),
            Shape::new(
                "v1 leaf + intermediate",
                root,
                &v1_chain,
                &ch.v1.key,
                Accepted,
            )
            .with_backup(Backup::NoEncrypt),
            Shape::new(
                "v3 leaf + intermediate + root",
                root,
                &full,
                &ch.v3.key,
                Accepted,
            ),
            Shape::new(
                "v3 leaf without its intermediate",
                root,
                &ch.v3.cert,
                &ch.v3.key,
                RefusedInHandshake,
            )
            .with_backup(Backup::NoEncrypt),
        ],
    )
}

/// The server trusts a bundle of intermediate and root and sends its leaf alone.
fn chain_in_trusted_bundle(pki: &OpensslPki) -> Group {
    let ch = chain(pki);
    let bundle = pki.bundle("ca-bundle.crt", &[&ch.intermediate.cert, &ch.root.cert]);
    let v3_chain = pki.bundle("v3-chain.crt", &[&ch.v3.cert, &ch.intermediate.cert]);
    Group::new(
        server_tls(&bundle, &ch.server, &bundle, &ch.v3),
        vec![
            Shape::new(
                "v3 leaf, CA bundle",
                &bundle,
                &ch.v3.cert,
                &ch.v3.key,
                Accepted,
            ),
            Shape::new(
                "v1 leaf, CA bundle",
                &bundle,
                &ch.v1.cert,
                &ch.v1.key,
                Accepted,
            )
            .with_backup(Backup::NoEncrypt),
            Shape::new(
                "v3 leaf + intermediate, CA bundle",
                &bundle,
                &v3_chain,
                &ch.v3.key,
                Accepted,
            ),
            Shape::new(
                "v3 leaf, the intermediate alone as --cacert",
                &ch.intermediate.cert,
                &ch.v3.cert,
                &ch.v3.key,
                Accepted,
            ),
            Shape::new(
                "v3 leaf, the root alone as --cacert (the server sends no intermediate)",
                &ch.root.cert,
                &ch.v3.cert,
                &ch.v3.key,
                RefusedInHandshake,
            ),
        ],
    )
}

/// kubeadm's `/etc/kubernetes/pki/etcd` as `kubeadm init phase certs` lays it out: `ca` (CN
/// etcd-ca), `server` and `peer` (CN the node name, SANs localhost, 127.0.0.1, ::1 and the node
/// address, serverAuth and clientAuth), `healthcheck-client` (O=system:masters, clientAuth), and
/// the apiserver's etcd client in the parent directory. RSA 2048, kubeadm's default.
fn kubeadm_pki(pki: &OpensslPki) -> Group {
    let dir = pki.dir();
    let node = "DNS:cp-1,DNS:localhost,IP:10.0.0.10,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1";
    let serving = format!(
        "keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         basicConstraints=critical,CA:FALSE\n\
         authorityKeyIdentifier=keyid\n\
         subjectAltName={node}\n"
    );
    let client = "keyUsage=critical,digitalSignature,keyEncipherment\n\
                  extendedKeyUsage=clientAuth\n\
                  basicConstraints=critical,CA:FALSE\n\
                  authorityKeyIdentifier=keyid\n";
    let ca = pki.ca("ca", "/CN=etcd-ca", KeyAlg::Rsa2048);
    let server = pki.sign("server", "/CN=cp-1", KeyAlg::Rsa2048, &ca, Some(&serving));
    let peer = pki.sign("peer", "/CN=cp-1", KeyAlg::Rsa2048, &ca, Some(&serving));
    let healthcheck = pki.sign(
        "healthcheck-client",
        "/O=system:masters/CN=kube-etcd-healthcheck-client",
        KeyAlg::Rsa2048,
        &ca,
        Some(client),
    );
    let apiserver = pki.sign(
        "apiserver-etcd-client",
        "/O=system:masters/CN=kube-apiserver-etcd-client",
        KeyAlg::Rsa2048,
        &ca,
        Some(client),
    );
    let ecdsa = pki.sign(
        "healthcheck-client-ecdsa",
        "/O=system:masters/CN=kube-etcd-healthcheck-client",
        KeyAlg::EcP256,
        &ca,
        Some(client),
    );
    let c = &ca.cert;
    Group::new(
        server_tls(&ca.cert, &server, &ca.cert, &healthcheck),
        vec![
            Shape::new(
                "kubeadm server.crt as the client (etcd-backup's default)",
                c,
                &server.cert,
                &server.key,
                Accepted,
            )
            .with_backup(Backup::PkiDir(dir.to_path_buf())),
            Shape::new("kubeadm peer.crt", c, &peer.cert, &peer.key, Accepted),
            Shape::new(
                "kubeadm healthcheck-client.crt",
                c,
                &healthcheck.cert,
                &healthcheck.key,
                Accepted,
            )
            .with_backup(Backup::Age),
            Shape::new(
                "kubeadm apiserver-etcd-client.crt",
                c,
                &apiserver.cert,
                &apiserver.key,
                Accepted,
            ),
            Shape::new(
                "kubeadm-shaped healthcheck client with an ECDSA key",
                c,
                &ecdsa.cert,
                &ecdsa.key,
                Accepted,
            ),
            Shape::new(
                "kubeadm healthcheck-client.crt with peer.key",
                c,
                &healthcheck.cert,
                &peer.key,
                RefusedLocally,
            ),
        ],
    )
}

/// The server files of a group: what etcd serves and trusts, and the client the harness probes
/// with.
fn server_tls(trusted_ca: &Path, server: &Issued, probe_ca: &Path, probe: &Issued) -> ServerTls {
    ServerTls {
        trusted_ca: trusted_ca.to_path_buf(),
        cert: server.cert.clone(),
        key: server.key.clone(),
        client_cacert: probe_ca.to_path_buf(),
        client_cert: probe.cert.clone(),
        client_key: probe.key.clone(),
    }
}

/// What each program made of one shape.
struct Verdicts {
    shape: Shape,
    /// Where the snapshots went (`etcdctl.db`, `ours.db`).
    dir: PathBuf,
    etcdctl_health: Run,
    health: Run,
    etcdctl_save: Run,
    save: Run,
    backup: Option<Run>,
}

/// Time limits for both clients: generous for a loaded 2-core machine, short enough that a
/// refused shape costs seconds.
const TIMEOUTS: [&str; 4] = ["--dial-timeout", "3s", "--command-timeout", "10s"];

/// Starts one etcd 3.5 serving `group.server`, runs every program on every shape (shapes in
/// parallel), and fails with a table of every verdict when any differs.
fn verdicts_match_etcdctl(group: &Group, work: &Path) {
    // Debian sid's etcd is optional (a loud SKIP line in CI); 3.5.1 is required.
    if support::etcd_bin_optional(group.version, "etcd").is_none() {
        return;
    }
    let mut builder = Cluster::builder(group.version).tls_from(group.server.clone());
    for arg in &group.server_args {
        builder = builder.arg(arg);
    }
    let cluster = builder.start();
    cluster.put("/app/k", "v");
    let endpoint = cluster.host_ports()[0].clone();
    if group.server_args.contains(&"--tls-max-version=TLS1.2") {
        let tls13 = program("openssl")
            .args(["s_client", "-tls1_3", "-connect", &endpoint])
            .run();
        assert!(
            !tls13.success(),
            "the server still speaks TLS 1.3: {tls13:?}"
        );
    }
    let recipient = age_keygen(&work.join("backup.agekey"));
    let verdicts: Vec<Verdicts> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .shapes
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let out = work.join(format!("shape-{i}"));
                let (endpoint, recipient) = (&endpoint, &recipient);
                s.spawn(move || judge(shape, endpoint, &out, recipient))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut problems = String::new();
    let mut table = String::new();
    for v in &verdicts {
        let shape = &v.shape;
        let want = shape.expect == Accepted;
        let mut row = vec![
            ("etcdctl endpoint health", &v.etcdctl_health, want),
            ("etcd-health", &v.health, want),
            ("etcdctl snapshot save", &v.etcdctl_save, want),
            ("etcd-snap-save", &v.save, want),
        ];
        if let Some(b) = &v.backup {
            row.push(("etcd-backup", b, want));
        }
        let codes: Vec<String> = row
            .iter()
            .map(|(what, out, _)| format!("{what} {}", out.code))
            .collect();
        writeln!(table, "{:<70} {}", shape.name, codes.join(", ")).unwrap();
        for (what, out, want) in row {
            if out.success() != want {
                writeln!(
                    problems,
                    "{}: {what} {} (expected {:?}):\n{}{}",
                    shape.name,
                    if out.success() { "accepted" } else { "refused" },
                    shape.expect,
                    out.stdout,
                    out.stderr
                )
                .unwrap();
            }
            for marker in ["panicked", "RUST_BACKTRACE"] {
                if out.stderr.contains(marker) {
                    writeln!(problems, "{}: {what} panicked: {}", shape.name, out.stderr).unwrap();
                }
            }
        }
        if shape.expect == RefusedLocally {
            // One line, exit 2, both files named; the same from save.
            for (what, out) in [("etcd-health", &v.health), ("etcd-snap-save", &v.save)] {
                let cert = shape.cert.to_string_lossy();
                let key = shape.key.to_string_lossy();
                let line = format!("Error: --cert {cert} and --key {key}: do not match");
                if out.code != 2
                    || !out.stderr.starts_with(&line)
                    || out.stderr.lines().count() != 1
                {
                    writeln!(
                        problems,
                        "{}: {what} should exit 2 with one line naming both files: {} {}",
                        shape.name, out.code, out.stderr
                    )
                    .unwrap();
                }
            }
        }
        if shape.expect == Accepted {
            let ours = fs::read(v.dir.join("ours.db")).unwrap_or_default();
            let theirs = fs::read(v.dir.join("etcdctl.db")).unwrap_or_default();
            if ours.len() < 4096 || theirs.len() < 4096 {
                writeln!(problems, "{}: a saved snapshot is missing", shape.name).unwrap();
            }
        }
    }
    eprintln!("verdicts (exit codes):\n{table}");
    assert!(problems.is_empty(), "{problems}\nall verdicts:\n{table}");
}

/// Runs etcdctl and our tools on one shape, in `out` (created).
fn judge(shape: &Shape, endpoint: &str, out: &Path, recipient: &str) -> Verdicts {
    fs::create_dir_all(out.join("backups")).unwrap();
    let tls = shape.tls_args();
    let etcdctl_health = etcdctl()
        .args(["--endpoints", endpoint])
        .args(&tls)
        .args(TIMEOUTS)
        .args(["endpoint", "health"])
        .run();
    let health = ours("etcd-health")
        .args(["--endpoints", endpoint])
        .args(&tls)
        .args(TIMEOUTS)
        .run();
    let etcdctl_save = etcdctl()
        .args(["--endpoints", endpoint])
        .args(&tls)
        .args(TIMEOUTS)
        .args(["snapshot", "save"])
        .arg(out.join("etcdctl.db"))
        .run();
    let save = ours("etcd-snap-save")
        .args(["--endpoints", endpoint])
        .args(&tls)
        .args(TIMEOUTS)
        .arg(out.join("ours.db"))
        .run();
    let backup = match &shape.backup {
        Backup::No => None,
        Backup::NoEncrypt => Some(
            etcd_backup(endpoint)
                .arg("--no-encrypt")
                .args(&tls)
                .arg(out.join("backups"))
                .run(),
        ),
        Backup::Age => Some(
            etcd_backup(endpoint)
                .args(["-r", recipient])
                .args(&tls)
                .arg(out.join("backups"))
                .run(),
        ),
        Backup::PkiDir(dir) => Some(
            etcd_backup(endpoint)
                .arg("--no-encrypt")
                .arg("--pki-dir")
                .arg(dir)
                .arg(out.join("backups"))
                .run(),
        ),
    };
    Verdicts {
        shape: shape.clone(),
        dir: out.to_path_buf(),
        etcdctl_health,
        health,
        etcdctl_save,
        save,
        backup,
    }
}

/// etcdctl 3.5 with `ETCDCTL_API=3` and nothing else inherited.
fn etcdctl() -> Tool {
    let mut cmd = Tool::new(support::etcd_bin(Version::V3_5, "etcdctl"));
    cmd.env("ETCDCTL_API", "3");
    cmd
}

/// `scripts/etcd-backup` with the tools in `PATH` and `ETCDCTL_ENDPOINTS` set, as a cron job
/// would run it.
fn etcd_backup(endpoint: &str) -> Tool {
    let mut cmd = Tool::new(script("etcd-backup"));
    cmd.env("PATH", path_with_tools())
        .env("ETCDCTL_ENDPOINTS", endpoint);
    cmd
}
