//! TLS client configuration from PEM files (`--cacert`, `--cert`, `--key`), with rustls.
//!
//! PEM is read with `rustls-pki-types`' own PEM API, the maintained successor of the archived
//! rustls-pemfile. Every file is read and checked here, before any connection, so that a missing or
//! malformed file is a usage error (exit 2) naming the file. The client certificate chain is sent
//! as given, whatever its X.509 version: the server judges it, as it does etcdctl's; only a key
//! that is certainly not the certificate's is refused here.

use crate::error::{io_reason, Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Where the system's trusted CAs live on Debian, used for TLS when no `--cacert` is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS files and options as given.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA bundle (PEM, one or more certificates).
    pub cacert: Option<String>,
    /// Client certificate chain (PEM).
    pub cert: Option<String>,
    /// Client private key (PEM: PKCS#8, SEC1 or PKCS#1 RSA).
    pub key: Option<String>,
    /// Accept any server certificate.
    pub skip_verify: bool,
}

/// A ready rustls client configuration.
#[derive(Clone)]
pub struct TlsConfig {
    /// The configuration handed to every TLS connection.
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

/// Reads and checks the files, and builds the client configuration.
pub fn load(files: TlsFiles) -> Result<TlsConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS setup: {e}")))?;
    let builder = if files.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
                provider: provider.clone(),
            }))
    } else {
        let (path, flag) = match &files.cacert {
            Some(path) => (path.as_str(), "--cacert"),
            None => (SYSTEM_CA_BUNDLE, "system CA bundle (give --cacert)"),
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(path, flag)? {
            roots.add(cert).map_err(|e| {
                Error::usage(format!("{flag} {path}: not a usable CA certificate: {e}"))
            })?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "--cert")?;
            let certified = certified_key(&provider, chain, read_key(key)?).map_err(|why| {
                Error::usage(format!(
                    "--cert {cert} and --key {key}: do not match or are not usable: {why}"
                ))
            })?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(Error::usage("--cert needs --key (the client key)")),
        (None, Some(_)) => return Err(Error::usage("--key needs --cert (the client certificate)")),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsConfig {
        client: Arc::new(config),
    })
}

fn read_file(path: &str, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::usage(format!("{flag} {path}: cannot read: {}", io_reason(&e))))
}

fn read_certs(path: &str, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let data = read_file(path, flag)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, pem::Error>>()
        .map_err(|e| Error::usage(format!("{flag} {path}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::usage(format!(
            "{flag} {path}: no CERTIFICATE found in this PEM file"
        )));
    }
    Ok(certs)
}

fn read_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    let data = read_file(path, "--key")?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::usage(format!(
            "--key {path}: no private key found (expected PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"
        )),
        other => Error::usage(format!("--key {path}: not a valid PEM key: {other}")),
    })
}

/// The client certificate chain with its key, ready for the handshake, or why not.
///
/// Not `ClientConfig::with_client_auth_cert`: it checks the key against the certificate by
/// parsing the certificate with webpki, which refuses certificates that servers accept, such as
/// the X.509 v1 certificates `openssl x509 -req` makes without an extension file (etcd, like every
/// Go server, accepts them; so does etcdctl). The handshake only needs the key, to sign, and the
/// certificate's bytes, to send: judging the certificate is the server's job. So the check here
/// only compares public keys, and refuses only a key that is certainly not the certificate's.
/// The signature scheme is chosen per handshake from those the server offers for the protocol
/// version (TLS 1.3: ECDSA with the curve's own hash, RSA-PSS; TLS 1.2 also RSA PKCS#1), by the
/// key itself, as with `with_client_auth_cert`.
fn certified_key(
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> std::result::Result<CertifiedKey, String> {
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
        format!("cannot use the key (RSA, ECDSA P-256 or P-384, or Ed25519 are supported): {e}")
    })?;
    if let (Some(key_spki), Some(leaf)) = (signing_key.public_key(), chain.first()) {
        let cert_spki = certificate_spki(leaf).ok_or(
            "the first certificate of the --cert file is not an X.509 certificate (no public key found)",
        )?;
        if public_keys_differ(key_spki.as_ref(), cert_spki) {
            return Err(
                "the key is not the private key of the first certificate of the --cert file"
                    .to_string(),
            );
        }
    }
    Ok(CertifiedKey::new(chain, signing_key))
}

/// Whether two DER SubjectPublicKeyInfos certainly hold different public keys: their key bits
/// differ. Equal bits under differently encoded algorithm parameters are not a proof, and a
/// structure that does not parse proves nothing either (the server will judge).
fn public_keys_differ(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return false;
    }
    match (spki_key_bits(a), spki_key_bits(b)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// The `subjectPublicKey` BIT STRING contents of a DER SubjectPublicKeyInfo.
fn spki_key_bits(spki: &[u8]) -> Option<&[u8]> {
    let (body, _) = der_expect(spki, TAG_SEQUENCE)?;
    let (_algorithm, rest) = der_expect(body, TAG_SEQUENCE)?;
    let (bits, _) = der_expect(rest, TAG_BIT_STRING)?;
    Some(bits)
}

/// The DER SubjectPublicKeyInfo (tag and length included) of a certificate, of any X.509
/// version: found by walking the TBSCertificate, with no opinion on anything else in it.
fn certificate_spki(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der_expect(cert, TAG_SEQUENCE)?;
    let (tbs, _) = der_expect(certificate, TAG_SEQUENCE)?;
    // version [0] EXPLICIT (absent in v1), serialNumber, signature, issuer, validity, subject.
    let mut rest = tbs;
    if rest.first() == Some(&TAG_VERSION) {
        rest = der_next(rest)?.2;
    }
    rest = der_expect(rest, TAG_INTEGER)?.1;
    for _ in 0..4 {
        rest = der_expect(rest, TAG_SEQUENCE)?.1;
    }
    let (tag, _, after) = der_next(rest)?;
    (tag == TAG_SEQUENCE).then(|| &rest[..rest.len() - after.len()])
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;

/// The contents and what follows of the DER element at the start of `input`, if it has `tag`.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = der_next(input)?;
    (found == tag).then_some((contents, rest))
}

/// One DER element at the start of `input`: its tag, its contents, and what follows it.
/// Single-byte tags and definite lengths of up to four bytes (all X.509 needs); `None` otherwise.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// `--insecure-skip-tls-verify`: trusts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// PEM test material shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod fixtures {
    /// A self-signed X.509 v1 certificate (`openssl x509 -req -signkey`, no extensions) with a
    /// P-256 key: test material only.
    pub(crate) const V1_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBGjCBwQIUFGVHVhVwbPvaVT6N6w4ymadtjgQwCgYIKoZIzj0EAwIwDzENMAsG
A1UEAwwEdW5pdDAgFw0yNjEyMDQwMzU3MjFaGA8yMTI2MTExMDAzNTcyMVowDzEN
MAsGA1UEAwwEdW5pdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFdKqlfd/0Sr
K0Y8C+AG5cD38ks0Ut7OGRb206OnUWtqMNaYBQwixDcng3ML7WeGVAVCIBKci24q
kgeZ+7CYj7QwCgYIKoZIzj0EAwIDSAAwRQIhAN7NzPDz1KEPIQPrwJVdJ6d2gQJo
Lsi9+jcj+Bmi3Nz3AiA1TCP7vEjKF2lLX8mkhdMwccS1k7zCQlN5FImLxvVGBg==
-----END CERTIFICATE-----
";
    /// The PKCS#8 key of [`V1_CERT`].
    pub(crate) const V1_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqMdl23FCkCQbv2z7
pCkP0A320if4FXZtPluz/VgKLHehRANCAARXSqpX3f9EqytGPAvgBuXA9/JLNFLe
zhkW9tOjp1FrajDWmAUMIsQ3J4NzC+1nhlQFQiASnItuKpIHmfuwmI+0
-----END PRIVATE KEY-----
";
    /// An unrelated P-256 key (PKCS#8).
    pub(crate) const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXeAyHOs1OXzVucwb
i5SeXR/8aimVkeJun6At/Bh4kzuhRANCAATaworEboA80V1ix4qKDXy+dpu0fix/
Dybq/WD1CHwH1ERuoeuqlLxVV1CxRbq8TJFwhIps6NAVRDPe/1ow2psU
-----END PRIVATE KEY-----
";
}

#[cfg(test)]
mod tests {
    use super::fixtures::{OTHER_KEY, V1_CERT, V1_KEY};
    use super::*;

    fn cert() -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(V1_CERT.as_bytes())
            .unwrap_or_else(|_| CertificateDer::from(Vec::new()))
    }

    fn key(pem: &str) -> Option<PrivateKeyDer<'static>> {
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()
    }

    fn certify(key_pem: &str) -> std::result::Result<CertifiedKey, String> {
        let provider = rustls::crypto::ring::default_provider();
        let key = key(key_pem).ok_or("test key does not parse")?;
        certified_key(&provider, vec![cert()], key)
    }

    #[test]
    fn the_public_key_of_a_v1_certificate_is_found_and_matches_its_key() {
        let cert = cert();
        let spki = certificate_spki(&cert);
        assert_eq!(spki.map(|s| s.len()), Some(0x59 + 2));
        assert!(webpki_rejects_v1(&cert), "the reason for certified_key");
        assert!(certify(V1_KEY).is_ok());
    }

    /// rustls' own check (webpki) refuses the certificate that etcd accepts.
    fn webpki_rejects_v1(cert: &CertificateDer<'static>) -> bool {
        let provider = rustls::crypto::ring::default_provider();
        let Some(key) = key(V1_KEY) else { return false };
        CertifiedKey::from_der(vec![cert.clone()], key, &provider).is_err()
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let err = certify(OTHER_KEY).err().unwrap_or_default();
        assert!(err.contains("not the private key"), "{err}");
    }

    #[test]
    fn a_first_certificate_that_is_not_x509_is_refused_and_nothing_panics() {
        let provider = rustls::crypto::ring::default_provider();
        let der = cert();
        for cut in 0..der.len() {
            let truncated = CertificateDer::from(der[..cut].to_vec());
            assert_eq!(certificate_spki(&truncated), None, "cut at {cut}");
            if let Some(key) = key(V1_KEY) {
                let err = certified_key(&provider, vec![truncated], key).err();
                assert!(err.unwrap_or_default().contains("not an X.509"), "{cut}");
            }
        }
        // Indefinite and over-long lengths, high tag numbers: not DER.
        for bad in [
            &[0x30, 0x80, 0, 0][..],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x3f, 0],
        ] {
            assert_eq!(der_next(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn equal_key_bits_under_other_parameters_are_not_a_proven_mismatch() {
        let cert = cert();
        let Some(spki) = certificate_spki(&cert) else {
            panic!("no SPKI")
        };
        assert!(!public_keys_differ(spki, spki));
        // The same bits with the curve OID's last byte changed: undecided, not refused.
        let mut other_params = spki.to_vec();
        other_params[0x16] ^= 1;
        assert!(!public_keys_differ(spki, &other_params));
        let mut other_bits = spki.to_vec();
        let last = other_bits.len() - 1;
        other_bits[last] ^= 1;
        assert!(public_keys_differ(spki, &other_bits));
        assert!(!public_keys_differ(spki, b"not der"));
    }

    #[test]
    fn load_accepts_a_v1_client_certificate_and_names_both_files_on_a_mismatch() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else {
            panic!("no temp dir")
        };
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).ok();
            p.to_string_lossy().into_owned()
        };
        let (ca, cert, good, other) = (
            write("ca.crt", V1_CERT),
            write("client.crt", V1_CERT),
            write("client.key", V1_KEY),
            write("other.key", OTHER_KEY),
        );
        let files = |key: &str| TlsFiles {
            cacert: Some(ca.clone()),
            cert: Some(cert.clone()),
            key: Some(key.to_string()),
            skip_verify: false,
        };
        assert!(load(files(&good)).is_ok());
        let err = load(files(&other)).err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(crate::ExitCode::Usage));
        let message = err.map(|e| e.message).unwrap_or_default();
        assert!(
            message.starts_with(&format!("--cert {cert} and --key {other}: do not match")),
            "{message}"
        );
        assert_eq!(message.lines().count(), 1);
    }
}
