//! Connecting to one etcd endpoint: our own TCP + rustls dial (so failures read clearly and
//! `--insecure-skip-tls-verify` works), handed to etcd-client as a raw channel, then authentication.
//!
//! Every tool talks to one endpoint per client, like etcdctl's health check does; tools that accept
//! several endpoints try them one after the other.

use crate::conn::{ConnConfig, Endpoint};
use crate::error::Error;
use crate::exit::ExitCode;
use hyper_util::rt::TokioIo;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use etcd_client::Client;

/// Why talking to an endpoint failed, so tools can report and map each case differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// TCP connect failed or timed out, or the connection broke.
    Unreachable,
    /// The TLS handshake failed (wrong CA, missing or rejected client certificate).
    Tls,
    /// The server rejected the user name or password.
    Auth,
    /// The user lacks permission for the request.
    PermissionDenied,
    /// No answer within the command timeout.
    Timeout,
    /// Any other error the server answered with.
    Server,
}

/// A failure to reach or use an endpoint, with a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// The class of failure.
    pub kind: FailureKind,
    /// One line saying what went wrong.
    pub message: String,
}

impl ClientError {
    fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: message.into(),
        }
    }

    /// The exit code a tool uses when this failure ends its run.
    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            FailureKind::Unreachable | FailureKind::Timeout | FailureKind::Server => {
                ExitCode::Transient
            }
            FailureKind::Tls | FailureKind::Auth | FailureKind::PermissionDenied => ExitCode::Usage,
        }
    }

    /// This failure as a tool error naming the endpoint.
    pub fn into_error(self, endpoint: &Endpoint) -> Error {
        let code = self.exit_code();
        Error::new(code, format!("{}: {}", endpoint.text, self.message))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Classifies an etcd-client error (a gRPC status or a transport failure).
pub fn classify(err: &etcd_client::Error) -> ClientError {
    match err {
        etcd_client::Error::GRpcStatus(status) => classify_status(status),
        etcd_client::Error::TransportError(e) => {
            ClientError::new(FailureKind::Unreachable, error_chain(e))
        }
        other => ClientError::new(FailureKind::Server, other.to_string()),
    }
}

fn classify_status(status: &tonic::Status) -> ClientError {
    use tonic::Code;
    let message = status.message().to_string();
    let lower = message.to_ascii_lowercase();
    let kind = if lower.contains("authentication failed") || status.code() == Code::Unauthenticated
    {
        FailureKind::Auth
    } else if lower.contains("permission denied") || status.code() == Code::PermissionDenied {
        FailureKind::PermissionDenied
    } else if lower.contains("certificate") || lower.contains("tls") {
        FailureKind::Tls
    } else if status.code() == Code::DeadlineExceeded {
        FailureKind::Timeout
    } else if status.code() == Code::Unavailable || status.code() == Code::Unknown {
        FailureKind::Unreachable
    } else {
        FailureKind::Server
    };
    let message = if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        message
    };
    ClientError::new(kind, message)
}

/// The messages of an error and its sources, joined with ": ", duplicates dropped.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Runs a request under the command timeout, classifying its error.
pub async fn with_timeout<T, F>(timeout: Duration, request: F) -> Result<T, ClientError>
where
    F: Future<Output = Result<T, etcd_client::Error>>,
{
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify(&err)),
        Err(_) => Err(ClientError::new(
            FailureKind::Timeout,
            format!(
                "no answer within {} (--command-timeout)",
                crate::duration::format_go(timeout)
            ),
        )),
    }
}

/// Something a connection can be: a TCP stream, plain or wrapped in TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type BoxedIo = Box<dyn Io>;

/// Opens a TCP (and TLS) connection to `endpoint` within the dial timeout.
async fn dial(endpoint: &Endpoint, cfg: &ConnConfig) -> Result<BoxedIo, ClientError> {
    let authority = endpoint.authority();
    let timeout = cfg.dial_timeout;
    let work = async {
        let tcp = TcpStream::connect(&authority).await.map_err(|e| {
            ClientError::new(
                FailureKind::Unreachable,
                format!(
                    "cannot connect to {authority}: {}",
                    crate::error::io_reason(&e)
                ),
            )
        })?;
        // Latency matters more than packet count for gRPC; a failure here only costs speed.
        let _ = tcp.set_nodelay(true);
        if !endpoint.tls {
            return Ok(Box::new(tcp) as BoxedIo);
        }
        let Some(tls) = &cfg.tls else {
            return Err(ClientError::new(
                FailureKind::Tls,
                "TLS endpoint but no TLS configuration",
            ));
        };
        let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| {
            ClientError::new(
                FailureKind::Tls,
                format!("invalid TLS server name {:?}: {e}", endpoint.host),
            )
        })?;
        let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::new(FailureKind::Tls, tls_failure(&authority, &e)))?;
        Ok(Box::new(stream) as BoxedIo)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::new(
            FailureKind::Unreachable,
            format!(
                "cannot connect to {authority}: no answer within {} (--dial-timeout)",
                crate::duration::format_go(timeout)
            ),
        )),
    }
}

fn tls_failure(authority: &str, err: &std::io::Error) -> String {
    let reason = error_chain(err);
    let hint = if reason.contains("UnknownIssuer") || reason.contains("BadSignature") {
        " (is --cacert the CA that signed the server's certificate?)"
    } else if reason.contains("NotValidForName") {
        " (the certificate does not name this host; use the name or IP it was issued for)"
    } else if reason.contains("Expired") {
        " (the server's certificate has expired)"
    } else if reason.contains("CertificateRequired") || reason.contains("certificate required") {
        " (the server wants a client certificate: give --cert and --key)"
    } else {
        ""
    };
    format!("TLS handshake with {authority} failed: {reason}{hint}")
}

/// Connects to one endpoint and authenticates when credentials are set.
pub async fn connect(endpoint: &Endpoint, cfg: &ConnConfig) -> Result<Client, ClientError> {
    let first = dial(endpoint, cfg).await?;
    // The first connection is the one dialled above; later reconnects dial again.
    let ready = Arc::new(Mutex::new(Some(first)));
    let endpoint_for_dial = endpoint.clone();
    let cfg_for_dial = cfg.clone();
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let ready = ready.lock().ok().and_then(|mut slot| slot.take());
        let endpoint = endpoint_for_dial.clone();
        let cfg = cfg_for_dial.clone();
        async move {
            let io = match ready {
                Some(io) => io,
                None => dial(&endpoint, &cfg)
                    .await
                    .map_err(|e| std::io::Error::other(e.message))?,
            };
            Ok::<_, std::io::Error>(TokioIo::new(io))
        }
    });
    // The scheme here only labels requests: TLS, if any, is already inside the connection.
    let uri = format!("http://{}", endpoint.authority());
    let channel = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| ClientError::new(FailureKind::Unreachable, e.to_string()))?
        .http2_keep_alive_interval(cfg.keepalive_time)
        .keep_alive_timeout(cfg.keepalive_timeout)
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
        .map_err(|e| ClientError::new(FailureKind::Unreachable, error_chain(&e)))?;
    let mut options = etcd_client::ConnectOptions::new().with_require_leader(cfg.require_leader);
    if let Some(creds) = &cfg.credentials {
        options = options.with_user(creds.name.clone(), creds.password.0.clone());
    }
    let client = with_timeout(
        cfg.command_timeout,
        Client::from_channel(etcd_client::Channel::Tonic(channel), Some(options)),
    )
    .await;
    client.map_err(|mut e| {
        if e.kind == FailureKind::Auth {
            let user = cfg.credentials.as_ref().map(|c| c.name.as_str()).unwrap_or("");
            e.message = format!(
                "authentication failed for user {user:?}: {} (check --user/--password or ETCDCTL_USER/ETCDCTL_PASSWORD)",
                e.message
            );
        }
        e
    })
}
