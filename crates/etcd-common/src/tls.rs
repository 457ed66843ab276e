//! TLS client configuration from PEM files (`--cacert`, `--cert`, `--key`), with rustls.
//!
//! PEM is read with `rustls-pki-types`' own PEM API, the maintained successor of the archived
//! rustls-pemfile. Every file is read and checked here, before any connection, so that a missing or
//! malformed file is a usage error (exit 2) naming the file.

use crate::error::{io_reason, Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
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
            let key = read_key(key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::usage(format!(
                    "--cert {cert} and --key {}: do not match or are not usable: {e}",
                    files.key.as_deref().unwrap_or_default()
                ))
            })?
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
