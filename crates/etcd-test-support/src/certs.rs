//! A throw-away test PKI, made with rcgen: a CA, an etcd server certificate for the loopback
//! addresses, client certificates for the users `root` and `reader`, an unrelated CA, and the
//! client key in several PEM formats (PKCS#8, SEC1, and RSA PKCS#1/PKCS#8 via `openssl`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::der;
use crate::must::Must;

/// The PEM files of a test PKI, all in one directory.
///
/// Every certificate is valid from 1975 to 4096. Keys are ECDSA P-256 unless named `rsa`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The directory holding every file below.
    pub dir: PathBuf,
    /// The CA certificate (`ca.crt`) that signed the server and client certificates.
    pub ca: PathBuf,
    /// The CA's private key (`ca.key`, PKCS#8), for tests that sign more certificates.
    pub ca_key: PathBuf,
    /// The server certificate (`server.crt`): SANs `localhost`, `127.0.0.1`, `::1`; CN
    /// `etcd-server`; extended key usages serverAuth and clientAuth (etcd's gateway dials itself).
    pub server_cert: PathBuf,
    /// The server key (`server.key`, PKCS#8).
    pub server_key: PathBuf,
    /// A client certificate with CN `root` (`client.crt`, clientAuth). With auth enabled, etcd
    /// takes the CN as the user name when no `--user` is given.
    pub client_cert: PathBuf,
    /// The key of [`client_cert`](Self::client_cert) in PKCS#8 (`client.key`, `PRIVATE KEY`).
    pub client_key: PathBuf,
    /// The same key as [`client_key`](Self::client_key) in SEC1 (`client-sec1.key`,
    /// `EC PRIVATE KEY`, names its curve), as `openssl ec` and cfssl write it.
    pub client_key_sec1: PathBuf,
    /// A client certificate with CN `reader` (`reader.crt`).
    pub reader_cert: PathBuf,
    /// The key of [`reader_cert`](Self::reader_cert) (`reader.key`, PKCS#8).
    pub reader_key: PathBuf,
    /// An unrelated CA (`other-ca.crt`) that signed nothing the server knows: for wrong-CA tests.
    pub other_ca: PathBuf,
    /// A client certificate with CN `root` signed by [`other_ca`](Self::other_ca)
    /// (`other-client.crt`): the server must refuse it.
    pub other_client_cert: PathBuf,
    /// The key of [`other_client_cert`](Self::other_client_cert) (`other-client.key`, PKCS#8).
    pub other_client_key: PathBuf,
    /// A client certificate with CN `root` and an RSA 2048 key (`client-rsa.crt`).
    pub client_rsa_cert: PathBuf,
    /// The RSA key of [`client_rsa_cert`](Self::client_rsa_cert) in PKCS#1
    /// (`client-rsa.key`, `RSA PRIVATE KEY`).
    pub client_rsa_key: PathBuf,
    /// The same RSA key in PKCS#8 (`client-rsa-pkcs8.key`, `PRIVATE KEY`).
    pub client_rsa_key_pkcs8: PathBuf,
}

/// Writes `contents` to `dir/name` (mode 0600 for keys) and returns the path.
fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, contents).must(|| format!("cannot write {}", p.display()));
    if name.ends_with(".key") {
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600))
            .must(|| format!("cannot chmod 0600 {}", p.display()));
    }
    p
}

/// Certificate parameters with just a CN.
fn params(cn: &str, sans: &[&str]) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).must(|| format!("bad test certificate SANs for {cn}"));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p
}

/// A new self-signed CA: its certificate PEM and the issuer to sign leaves with.
fn new_ca(cn: &str) -> (String, String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().must(|| "cannot generate a test CA key".into());
    let mut p = params(cn, &[]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p
        .self_signed(&key)
        .must(|| format!("cannot self-sign test CA {cn}"));
    let key_pem = key.serialize_pem();
    (cert.pem(), key_pem, Issuer::new(p, key))
}

/// A leaf certificate for `key`, signed by `issuer`.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    key: &KeyPair,
    cn: &str,
    sans: &[&str],
    ekus: Vec<ExtendedKeyUsagePurpose>,
) -> String {
    let mut p = params(cn, sans);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = ekus;
    p.signed_by(key, issuer)
        .must(|| format!("cannot sign test certificate {cn}"))
        .pem()
}

/// A fresh ECDSA P-256 key.
fn new_key() -> KeyPair {
    KeyPair::generate().must(|| "cannot generate a test key".into())
}

/// Runs `openssl` with `args`; panics with its stderr on failure.
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .must(|| "cannot run openssl (needed for the RSA test keys): run scripts/setup".into());
    if !out.status.success() {
        panic!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

impl TlsFiles {
    /// Generates a fresh PKI into `dir` (created if missing). Takes well under a second; the RSA
    /// key needs the `openssl` command that `scripts/setup` installs.
    pub fn generate(dir: &Path) -> TlsFiles {
        fs::create_dir_all(dir).must(|| format!("cannot create {}", dir.display()));
        let (ca_pem, ca_key_pem, ca) = new_ca("etcd-snap test CA");
        let (other_ca_pem, _, other_ca) = new_ca("etcd-snap unrelated test CA");
        let client_eku = || vec![ExtendedKeyUsagePurpose::ClientAuth];

        let server_key = new_key();
        let server_pem = leaf(
            &ca,
            &server_key,
            "etcd-server",
            &["localhost", "127.0.0.1", "::1"],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        let client_key = new_key();
        let client_pem = leaf(&ca, &client_key, "root", &[], client_eku());
        let sec1 =
            der::pkcs8_p256_to_sec1(client_key.serialized_der(), client_key.public_key_raw())
                .must(|| "rcgen's PKCS#8 P-256 key does not have the expected shape".into());
        let reader_key = new_key();
        let reader_pem = leaf(&ca, &reader_key, "reader", &[], client_eku());
        let other_key = new_key();
        let other_pem = leaf(&other_ca, &other_key, "root", &[], client_eku());

        let files = TlsFiles {
            dir: dir.to_path_buf(),
            ca: write(dir, "ca.crt", &ca_pem),
            ca_key: write(dir, "ca.key", &ca_key_pem),
            server_cert: write(dir, "server.crt", &server_pem),
            server_key: write(dir, "server.key", &server_key.serialize_pem()),
            client_cert: write(dir, "client.crt", &client_pem),
            client_key: write(dir, "client.key", &client_key.serialize_pem()),
            client_key_sec1: write(dir, "client-sec1.key", &der::pem("EC PRIVATE KEY", &sec1)),
            reader_cert: write(dir, "reader.crt", &reader_pem),
            reader_key: write(dir, "reader.key", &reader_key.serialize_pem()),
            other_ca: write(dir, "other-ca.crt", &other_ca_pem),
            other_client_cert: write(dir, "other-client.crt", &other_pem),
            other_client_key: write(dir, "other-client.key", &other_key.serialize_pem()),
            client_rsa_cert: dir.join("client-rsa.crt"),
            client_rsa_key: dir.join("client-rsa.key"),
            client_rsa_key_pkcs8: dir.join("client-rsa-pkcs8.key"),
        };

        // RSA: ring cannot generate RSA keys, so openssl makes one and rcgen signs it.
        let pkcs8 = files.client_rsa_key_pkcs8.to_string_lossy().into_owned();
        let pkcs1 = files.client_rsa_key.to_string_lossy().into_owned();
        openssl(&[
            "genpkey",
            "-quiet",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &pkcs8,
        ]);
        openssl(&["pkey", "-in", &pkcs8, "-traditional", "-out", &pkcs1]);
        for p in [&files.client_rsa_key, &files.client_rsa_key_pkcs8] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o600))
                .must(|| format!("cannot chmod 0600 {}", p.display()));
        }
        let rsa_pem =
            fs::read_to_string(&files.client_rsa_key_pkcs8).must(|| format!("cannot read {pkcs8}"));
        let rsa_key = KeyPair::from_pem(&rsa_pem).must(|| format!("rcgen cannot load {pkcs8}"));
        write(
            dir,
            "client-rsa.crt",
            &leaf(&ca, &rsa_key, "root", &[], client_eku()),
        );
        files
    }
}
