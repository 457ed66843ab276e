//! Connection settings: the global flags etcdctl has, each also read from `ETCDCTL_<FLAG>`, resolved
//! and validated before any network traffic so that a bad value is a usage error (exit 2).

use crate::args::{parse_bool, Args, Env, Opt};
use crate::duration;
use crate::error::{Error, Result};
use crate::tls::{self, TlsConfig};
use std::fmt;
use std::time::Duration;

/// The connection flags as given, before defaults, variables and validation.
#[derive(Debug, Default, Clone)]
pub struct ConnFlags {
    endpoints: Option<String>,
    cacert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    insecure_skip_tls_verify: Option<bool>,
    insecure_transport: Option<bool>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<String>,
    dial_timeout: Option<String>,
    command_timeout: Option<String>,
    keepalive_time: Option<String>,
    keepalive_timeout: Option<String>,
}

/// `--help` text for the connection flags, shared by every networked tool.
pub const CONNECTION_HELP: &str = "\
CONNECTION (every flag also reads ETCDCTL_<FLAG>, e.g. ETCDCTL_ENDPOINTS; a flag wins):
      --endpoints LIST           comma-separated gRPC endpoints [default: 127.0.0.1:2379]
      --cacert FILE              verify servers with this CA bundle (PEM)
      --cert FILE                client certificate (PEM)
      --key FILE                 client key (PEM: PKCS#8, SEC1 or RSA)
      --insecure-skip-tls-verify accept any server certificate (prints a warning)
      --insecure-transport BOOL  plain text for endpoints without a scheme when no
                                 --cacert/--cert/--key is given [default: true]
      --user NAME[:PASSWORD]     authenticate as NAME
      --password PASSWORD        password for --user (prefer ETCDCTL_PASSWORD or
                                 --password-file: a command line is visible in ps)
      --password-file FILE       read the password for --user from FILE
      --dial-timeout DURATION    time to connect to an endpoint [default: 2s]
      --command-timeout DURATION time for one request [default: 5s]
      --keepalive-time DURATION  HTTP/2 keepalive interval [default: 2s]
      --keepalive-timeout DURATION keepalive answer deadline [default: 6s]
An endpoint without a scheme uses TLS when --cacert, --cert or --key is given.";

impl ConnFlags {
    /// Takes `opt` if it is a connection flag, reading its value; `Ok(false)` if it is not one.
    pub fn take(&mut self, opt: &Opt, args: &mut Args) -> Result<bool> {
        let Opt::Long(name) = opt else {
            return Ok(false);
        };
        let slot = match name.as_str() {
            "endpoints" => &mut self.endpoints,
            "cacert" => &mut self.cacert,
            "cert" => &mut self.cert,
            "key" => &mut self.key,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "password-file" => &mut self.password_file,
            "dial-timeout" => &mut self.dial_timeout,
            "command-timeout" => &mut self.command_timeout,
            "keepalive-time" => &mut self.keepalive_time,
            "keepalive-timeout" => &mut self.keepalive_timeout,
            "insecure-skip-tls-verify" => {
                self.insecure_skip_tls_verify = Some(args.bool_value(opt)?);
                return Ok(true);
            }
            "insecure-transport" => {
                self.insecure_transport = Some(args.bool_value(opt)?);
                return Ok(true);
            }
            _ => return Ok(false),
        };
        *slot = Some(args.value(opt)?);
        Ok(true)
    }

    /// Applies variables and defaults, validates every value and loads the TLS files.
    pub fn resolve(self, env: &Env) -> Result<ConnConfig> {
        let pick = |flag: Option<String>, name: &str| -> Option<(String, String)> {
            match flag {
                Some(v) => Some((v, format!("--{name}"))),
                None => env
                    .for_flag(name)
                    .map(|v| (v.to_string(), crate::args::env_name(name))),
            }
        };
        let pick_bool = |flag: Option<bool>, name: &str| -> Result<Option<bool>> {
            match flag {
                Some(v) => Ok(Some(v)),
                None => match env.for_flag(name) {
                    Some(v) => parse_bool(&crate::args::env_name(name), v).map(Some),
                    None => Ok(None),
                },
            }
        };
        let timeout = |flag: Option<String>, name: &str, default: Duration| -> Result<Duration> {
            match pick(flag, name) {
                None => Ok(default),
                Some((text, source)) => {
                    let d = duration::parse(&text)
                        .map_err(|e| Error::usage(format!("{source}: {e}")))?;
                    if d.is_zero() {
                        return Err(Error::usage(format!("{source}: must be greater than zero")));
                    }
                    Ok(d)
                }
            }
        };

        let dial_timeout = timeout(self.dial_timeout, "dial-timeout", Duration::from_secs(2))?;
        let command_timeout = timeout(
            self.command_timeout,
            "command-timeout",
            Duration::from_secs(5),
        )?;
        let keepalive_time = timeout(
            self.keepalive_time,
            "keepalive-time",
            Duration::from_secs(2),
        )?;
        let keepalive_timeout = timeout(
            self.keepalive_timeout,
            "keepalive-timeout",
            Duration::from_secs(6),
        )?;

        let cacert = pick(self.cacert, "cacert");
        let cert = pick(self.cert, "cert");
        let key = pick(self.key, "key");
        let skip_verify =
            pick_bool(self.insecure_skip_tls_verify, "insecure-skip-tls-verify")?.unwrap_or(false);
        let insecure_transport =
            pick_bool(self.insecure_transport, "insecure-transport")?.unwrap_or(true);
        let tls_files_given = cacert.is_some() || cert.is_some() || key.is_some();
        let default_tls = tls_files_given || !insecure_transport;

        let endpoints_text = pick(self.endpoints, "endpoints")
            .map(|(v, _)| v)
            .unwrap_or_else(|| "127.0.0.1:2379".to_string());
        let endpoints = parse_endpoints(&endpoints_text, default_tls)?;

        let tls = if tls_files_given || endpoints.iter().any(|e| e.tls) {
            Some(tls::load(tls::TlsFiles {
                cacert: cacert.map(|(v, _)| v),
                cert: cert.map(|(v, _)| v),
                key: key.map(|(v, _)| v),
                skip_verify,
            })?)
        } else {
            None
        };

        let password = match pick(self.password, "password") {
            Some((p, _)) => Some(p),
            None => match pick(self.password_file, "password-file") {
                Some((path, source)) => Some(read_password_file(&path, &source)?),
                None => None,
            },
        };
        let credentials = match pick(self.user, "user") {
            None => {
                if password.is_some() {
                    return Err(Error::usage(
                        "a password was given without a user: add --user NAME (or ETCDCTL_USER)",
                    ));
                }
                None
            }
            Some((user, source)) => Some(split_credentials(&user, password, &source)?),
        };

        Ok(ConnConfig {
            endpoints,
            tls,
            credentials,
            skip_verify,
            dial_timeout,
            command_timeout,
            keepalive_time,
            keepalive_timeout,
        })
    }
}

fn read_password_file(path: &str, source: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "{source}: cannot read {path}: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn split_credentials(user: &str, password: Option<String>, source: &str) -> Result<Credentials> {
    if user.is_empty() {
        return Err(Error::usage(format!("{source}: empty user name")));
    }
    let (name, password) = match password {
        Some(password) => (user.to_string(), password),
        None => match user.split_once(':') {
            Some((name, password)) if !name.is_empty() => (name.to_string(), password.to_string()),
            _ => {
                return Err(Error::usage(format!(
                    "no password for user {user:?}: give NAME:PASSWORD, ETCDCTL_PASSWORD or --password-file (this tool never prompts)"
                )))
            }
        },
    };
    Ok(Credentials {
        name,
        password: Secret(password),
    })
}

/// Splits and validates `--endpoints`: `host:port`, `http://host:port`, `https://host:port`, `[::1]:port`.
pub fn parse_endpoints(text: &str, default_tls: bool) -> Result<Vec<Endpoint>> {
    let endpoints = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| Endpoint::parse(e, default_tls))
        .collect::<Result<Vec<_>>>()?;
    if endpoints.is_empty() {
        return Err(Error::usage("--endpoints: no endpoint given"));
    }
    Ok(endpoints)
}

/// One etcd client endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint exactly as the user wrote it; output names endpoints this way, like etcdctl.
    pub text: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the connection uses TLS.
    pub tls: bool,
}

impl Endpoint {
    /// Parses one endpoint; `default_tls` applies when it has no scheme.
    pub fn parse(text: &str, default_tls: bool) -> Result<Endpoint> {
        let bad =
            |why: &str| Error::usage(format!("--endpoints: invalid endpoint {text:?}: {why}"));
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if text.contains("://") {
            return Err(bad("only http:// and https:// endpoints are supported"));
        } else {
            (default_tls, text)
        };
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') || authority.contains('@') {
            return Err(bad("expected host:port"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("missing port (e.g. [::1]:2379)"))?;
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| bad("missing port (e.g. 127.0.0.1:2379)"))?
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("port must be a number from 1 to 65535"))?;
        Ok(Endpoint {
            text: text.to_string(),
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// The same endpoint written as a URL with its scheme, e.g. for member client URLs.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// `host:port` for TCP connect (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// User name and password for etcd authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The etcd user.
    pub name: String,
    /// Its password.
    pub password: Secret,
}

/// Validated connection settings.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// The endpoints, in the order given.
    pub endpoints: Vec<Endpoint>,
    /// The TLS client configuration, when any endpoint uses TLS or TLS files were given.
    pub tls: Option<TlsConfig>,
    /// Credentials for etcd authentication.
    pub credentials: Option<Credentials>,
    /// Whether server certificates go unverified (`--insecure-skip-tls-verify`).
    pub skip_verify: bool,
    /// Time to establish a connection.
    pub dial_timeout: Duration,
    /// Time for one request.
    pub command_timeout: Duration,
    /// HTTP/2 keepalive ping interval.
    pub keepalive_time: Duration,
    /// Deadline for a keepalive answer.
    pub keepalive_timeout: Duration,
}

impl ConnConfig {
    /// Settings for other endpoints (e.g. found by `--cluster`), keeping TLS, credentials and timeouts.
    pub fn with_endpoints(&self, endpoints: Vec<Endpoint>) -> ConnConfig {
        ConnConfig {
            endpoints,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<ConnConfig> {
        let mut argv = vec!["prog"];
        argv.extend_from_slice(args);
        let mut parsed = Args::from_vec(argv);
        let mut flags = ConnFlags::default();
        while let Some(opt) = parsed.next_opt()? {
            if !flags.take(&opt, &mut parsed)? {
                return Err(opt.unexpected());
            }
        }
        flags.resolve(&Env::from_pairs(env.iter().copied()))
    }

    #[test]
    fn defaults_follow_etcdctl() {
        let cfg = resolve(&[], &[]).ok();
        let cfg = cfg.as_ref();
        assert_eq!(
            cfg.map(|c| c.endpoints[0].authority()),
            Some("127.0.0.1:2379".into())
        );
        assert_eq!(cfg.map(|c| c.endpoints[0].tls), Some(false));
        assert_eq!(cfg.map(|c| c.dial_timeout), Some(Duration::from_secs(2)));
        assert_eq!(cfg.map(|c| c.command_timeout), Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_flag_overrides_its_variable() {
        let cfg = resolve(
            &["--endpoints", "a:1,https://b:2", "--command-timeout=1s"],
            &[
                ("ETCDCTL_ENDPOINTS", "c:3"),
                ("ETCDCTL_COMMAND_TIMEOUT", "9s"),
                ("ETCDCTL_DIAL_TIMEOUT", "3s"),
                ("ETCDCTL_API", "3"),
                ("ETCDCTL_WHATEVER", "x"),
            ],
        );
        let cfg = cfg.ok();
        let eps: Option<Vec<_>> = cfg.as_ref().map(|c| {
            c.endpoints
                .iter()
                .map(|e| (e.text.clone(), e.tls))
                .collect()
        });
        assert_eq!(
            eps,
            Some(vec![("a:1".into(), false), ("https://b:2".into(), true)])
        );
        assert_eq!(
            cfg.as_ref().map(|c| c.command_timeout),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            cfg.as_ref().map(|c| c.dial_timeout),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for (args, needle) in [
            (vec!["--endpoints", "127.0.0.1"], "missing port"),
            (vec!["--endpoints", "unix://x"], "only http"),
            (vec!["--endpoints", "a:99999"], "port must be"),
            (vec!["--dial-timeout", "-1s"], "negative"),
            (vec!["--command-timeout", "0s"], "greater than zero"),
            (
                vec!["--cacert", "/nonexistent/ca.pem"],
                "/nonexistent/ca.pem",
            ),
            (vec!["--user", "root"], "no password"),
            (vec!["--password", "x"], "without a user"),
            (vec!["--insecure-transport=maybe"], "invalid boolean"),
        ] {
            let err = resolve(&args, &[]).err();
            assert_eq!(
                err.as_ref().map(|e| e.code),
                Some(crate::ExitCode::Usage),
                "{args:?}"
            );
            let message = err.map(|e| e.message).unwrap_or_default();
            assert!(message.contains(needle), "{args:?}: {message}");
        }
        let err = resolve(&[], &[("ETCDCTL_DIAL_TIMEOUT", "soon")]).err();
        assert!(err
            .map(|e| e.message)
            .unwrap_or_default()
            .starts_with("ETCDCTL_DIAL_TIMEOUT"));
    }

    #[test]
    fn credentials_split_and_never_print() {
        let cfg = resolve(&["--user", "root:pa:ss"], &[]).ok();
        let creds = cfg.and_then(|c| c.credentials);
        assert_eq!(creds.as_ref().map(|c| c.name.as_str()), Some("root"));
        assert_eq!(creds.as_ref().map(|c| c.password.0.as_str()), Some("pa:ss"));
        assert!(!format!("{creds:?}").contains("pa:ss"));
        let cfg = resolve(&["--user", "a:b"], &[("ETCDCTL_PASSWORD", "envpw")]).ok();
        let creds = cfg.and_then(|c| c.credentials);
        assert_eq!(
            creds.map(|c| (c.name, c.password.0)),
            Some(("a:b".into(), "envpw".into()))
        );
    }

    #[test]
    fn ipv6_endpoints_parse() {
        let ep = Endpoint::parse("[::1]:2379", false).ok();
        assert_eq!(ep.as_ref().map(|e| e.host.as_str()), Some("::1"));
        assert_eq!(ep.map(|e| e.url()), Some("http://[::1]:2379".into()));
    }
}
