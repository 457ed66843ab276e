//! PKIs made by the real `openssl` command line, the way etcd TLS guides and kubeadm make them.
//!
//! [`TlsFiles`](crate::TlsFiles) is one tidy rcgen PKI; users have others: a CA from `openssl req
//! -x509`, leaves from `openssl x509 -req` with or without an extension file (without one the
//! leaf is an X.509 v1 certificate), keys from `genpkey`, `genrsa` or `ecparam -genkey`,
//! intermediates, bundles. The tools must accept every client certificate that etcd accepts, so
//! tests build these shapes with the same commands at test time and compare the tools' verdicts
//! with etcdctl's. Each method runs `openssl` and panics with its stderr when it fails (that is
//! how a test fails; `openssl` is installed by `scripts/setup`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::must::Must;

/// How a private key is made (all but the `Traditional`/`EcParam` forms write PKCS#8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` (`PRIVATE KEY`).
    EcP256,
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384` (`PRIVATE KEY`).
    EcP384,
    /// `openssl ecparam -genkey -name prime256v1`: an `EC PARAMETERS` block, then the SEC1
    /// `EC PRIVATE KEY`, as many older guides make it.
    EcParamP256,
    /// `openssl genpkey -algorithm ED25519` (`PRIVATE KEY`).
    Ed25519,
    /// `openssl genrsa 2048` (`PRIVATE KEY` with OpenSSL 3).
    Rsa2048,
    /// `openssl genrsa -traditional 2048` (`RSA PRIVATE KEY`, PKCS#1, as OpenSSL 1.x wrote it).
    Rsa2048Traditional,
}

/// A certificate file and its key file.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// Extensions of an intermediate CA (`openssl x509 -req -extfile`).
pub const EXT_CA: &str = "basicConstraints=critical,CA:TRUE
keyUsage=critical,digitalSignature,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
";

/// Extensions of an etcd server certificate that etcd can serve on 127.0.0.1 (and use as a
/// client of itself): SANs `localhost` and `127.0.0.1`, serverAuth and clientAuth.
pub const EXT_SERVER: &str = "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
";

/// Extensions of a client certificate: clientAuth only.
pub const EXT_CLIENT: &str = "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
";

/// A directory of PEM files made with `openssl`; every file is named after what the caller asks.
#[derive(Debug, Clone)]
pub struct OpensslPki {
    dir: PathBuf,
}

impl OpensslPki {
    /// A PKI in `dir` (created if missing). Panics when `openssl` cannot run.
    pub fn new(dir: &Path) -> OpensslPki {
        fs::create_dir_all(dir).must(|| format!("cannot create {}", dir.display()));
        openssl(dir, &["version"]);
        OpensslPki {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A new private key `DIR/<name>.key` (mode 0600), made as `alg` says.
    pub fn key(&self, name: &str, alg: KeyAlg) -> PathBuf {
        let file = format!("{name}.key");
        let args: Vec<&str> = match alg {
            KeyAlg::EcP256 => vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &file,
            ],
            KeyAlg::EcP384 => vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
                &file,
            ],
            KeyAlg::EcParamP256 => vec!["ecparam", "-genkey", "-name", "prime256v1", "-out", &file],
            KeyAlg::Ed25519 => vec!["genpkey", "-algorithm", "ED25519", "-out", &file],
            KeyAlg::Rsa2048 => vec!["genrsa", "-out", &file, "2048"],
            KeyAlg::Rsa2048Traditional => vec!["genrsa", "-traditional", "-out", &file, "2048"],
        };
        openssl(&self.dir, &args);
        let path = self.path(&file);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .must(|| format!("cannot chmod 0600 {}", path.display()));
        path
    }

    /// A self-signed CA as the guides make it: `openssl req -x509 -new -key <name>.key -subj
    /// SUBJECT -days 3650 -out <name>.crt` (X.509 v3; openssl's default configuration adds
    /// `basicConstraints=critical,CA:TRUE` and the key identifiers).
    pub fn ca(&self, name: &str, subject: &str, alg: KeyAlg) -> Issued {
        let key = self.key(name, alg);
        let cert = format!("{name}.crt");
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                subject,
                "-days",
                "3650",
                "-out",
                &cert,
            ],
        );
        Issued {
            cert: self.path(&cert),
            key,
        }
    }

    /// A self-signed X.509 v1 CA, as old guides make one: `openssl req -new` then `openssl x509
    /// -req -signkey` (no extensions at all, so no `basicConstraints` either).
    pub fn v1_ca(&self, name: &str, subject: &str, alg: KeyAlg) -> Issued {
        let key = self.key(name, alg);
        let csr = self.csr(name, subject);
        let cert = format!("{name}.crt");
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-signkey",
                &format!("{name}.key"),
                "-days",
                "3650",
                "-out",
                &cert,
            ],
        );
        Issued {
            cert: self.path(&cert),
            key,
        }
    }

    /// A certificate for a new key, signed by `issuer`: `openssl req -new -key <name>.key -subj
    /// SUBJECT`, then `openssl x509 -req -CA -CAkey -days 3650`, with `-extfile <name>.ext`
    /// holding `extensions` when given. Without extensions openssl writes an X.509 v1
    /// certificate; with them, v3.
    pub fn sign(
        &self,
        name: &str,
        subject: &str,
        alg: KeyAlg,
        issuer: &Issued,
        extensions: Option<&str>,
    ) -> Issued {
        let key = self.key(name, alg);
        let csr = self.csr(name, subject);
        let cert = format!("{name}.crt");
        let ca = issuer.cert.to_string_lossy().into_owned();
        let ca_key = issuer.key.to_string_lossy().into_owned();
        let serial = format!("{name}.srl");
        let ext_file = format!("{name}.ext");
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAserial",
            &serial,
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            &cert,
        ];
        if let Some(text) = extensions {
            let p = self.path(&ext_file);
            fs::write(&p, text).must(|| format!("cannot write {}", p.display()));
            args.extend(["-extfile", &ext_file]);
        }
        openssl(&self.dir, &args);
        Issued {
            cert: self.path(&cert),
            key,
        }
    }

    /// `cat parts... > DIR/name`: a certificate chain or a CA bundle.
    pub fn bundle(&self, name: &str, parts: &[&Path]) -> PathBuf {
        let mut text = Vec::new();
        for p in parts {
            text.extend(fs::read(p).must(|| format!("cannot read {}", p.display())));
        }
        let path = self.path(name);
        fs::write(&path, text).must(|| format!("cannot write {}", path.display()));
        path
    }

    /// The X.509 version of a certificate (1 or 3), from `openssl x509 -noout -text`.
    pub fn version(&self, cert: &Path) -> u32 {
        let text = openssl(
            &self.dir,
            &["x509", "-noout", "-text", "-in", &cert.to_string_lossy()],
        );
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Version: "))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .must(|| format!("no version in openssl's text of {}", cert.display()))
    }

    /// `openssl req -new -key <name>.key -subj SUBJECT -out <name>.csr`; the CSR's file name.
    fn csr(&self, name: &str, subject: &str) -> String {
        let csr = format!("{name}.csr");
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                subject,
                "-out",
                &csr,
            ],
        );
        csr
    }
}

/// Runs `openssl ARGS` in `dir` with a clean configuration environment; its stdout. Panics with
/// the command and stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env_remove("OPENSSL_CONF")
        .output()
        .must(|| {
            "cannot run openssl (needed for the openssl-made test PKIs): run scripts/setup".into()
        });
    if !out.status.success() {
        panic!(
            "openssl {} (in {}) failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}
