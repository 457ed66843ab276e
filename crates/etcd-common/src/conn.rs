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

        let credentials = resolve_credentials(self.user, self.password, self.password_file, env)?;

        Ok(ConnConfig {
            endpoints,
            tls,
            credentials,
            skip_verify,
            dial_timeout,
            command_timeout,
            keepalive_time,
            keepalive_timeout,
            require_leader: false,
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

/// The credentials from `--user`, `--password`, `--password-file` and their variables. Every
/// flag beats every variable, also across the three: the flags are settled first and a variable
/// is consulted only for what no flag says.
///
/// The password comes from the first of: `--password`, `--password-file`, the `:PASSWORD` of
/// `--user NAME:PASSWORD`, `ETCDCTL_PASSWORD`, `ETCDCTL_PASSWORD_FILE`, the `:PASSWORD` of
/// `ETCDCTL_USER`. The user is `--user`, else `ETCDCTL_USER`. A password from the same level as
/// the user (both flags, or both variables) makes the whole user value the name, as etcdctl does
/// (`--user a:b --password x` is user `a:b`); a password flag over `ETCDCTL_USER=NAME:PASSWORD`
/// replaces that variable's password and keeps its name. A file is read only when it is used.
fn resolve_credentials(
    user_flag: Option<String>,
    password_flag: Option<String>,
    password_file_flag: Option<String>,
    env: &Env,
) -> Result<Option<Credentials>> {
    let flag_password = match (password_flag, password_file_flag) {
        (Some(password), _) => Some(password),
        (None, Some(path)) => Some(read_password_file(&path, "--password-file")?),
        (None, None) => None,
    };
    let env_password = || -> Result<Option<String>> {
        match (env.for_flag("password"), env.for_flag("password-file")) {
            (Some(password), _) => Ok(Some(password.to_string())),
            (None, Some(path)) => {
                read_password_file(path, &crate::args::env_name("password-file")).map(Some)
            }
            (None, None) => Ok(None),
        }
    };
    let (user, source, user_is_flag) = match (user_flag, env.for_flag("user")) {
        (Some(user), _) => (user, "--user".to_string(), true),
        (None, Some(user)) => (user.to_string(), crate::args::env_name("user"), false),
        (None, None) => {
            let any_password = flag_password.is_some()
                || env.for_flag("password").is_some()
                || env.for_flag("password-file").is_some();
            if any_password {
                return Err(Error::usage(
                    "a password was given without a user: add --user NAME (or ETCDCTL_USER)",
                ));
            }
            return Ok(None);
        }
    };
    let password = match flag_password {
        Some(password) if user_is_flag => Some((password, UserValue::WholeName)),
        Some(password) => Some((password, UserValue::NameBeforeColon)),
        // `--user NAME:PASSWORD` is a flag: its password beats the variables.
        None if user_is_flag && user.contains(':') => None,
        None => env_password()?.map(|password| {
            let shape = if user_is_flag {
                UserValue::NameBeforeColon // has no ':' here
            } else {
                UserValue::WholeName
            };
            (password, shape)
        }),
    };
    split_credentials(&user, password, &source).map(Some)
}

/// How much of a user value is the name when the password comes from elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserValue {
    /// All of it (etcdctl: a password of the same level leaves the user value whole).
    WholeName,
    /// What comes before a `:`; the rest was a password that a flag overrides.
    NameBeforeColon,
}

fn split_credentials(
    user: &str,
    password: Option<(String, UserValue)>,
    source: &str,
) -> Result<Credentials> {
    if user.is_empty() {
        return Err(Error::usage(format!("{source}: empty user name")));
    }
    let (name, password) = match password {
        Some((password, UserValue::WholeName)) => (user.to_string(), password),
        Some((password, UserValue::NameBeforeColon)) => match user.split_once(':') {
            Some(("", _)) => {
                return Err(Error::usage(format!(
                    "{source}: empty user name before ':' (give NAME:PASSWORD, or NAME with ETCDCTL_PASSWORD or --password-file)"
                )))
            }
            Some((name, _)) => (name.to_string(), password),
            None => (user.to_string(), password),
        },
        None => match user.split_once(':') {
            Some((name, password)) if !name.is_empty() => (name.to_string(), password.to_string()),
            // Never echo the value: what follows the ':' is a password.
            Some(_) => {
                return Err(Error::usage(format!(
                    "{source}: empty user name before ':' (give NAME:PASSWORD, or NAME with ETCDCTL_PASSWORD or --password-file)"
                )))
            }
            None => {
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
        let bad = |why: &str| {
            Error::usage(format!(
                "--endpoints: invalid endpoint {:?}: {why}",
                redact_url(text)
            ))
        };
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
        if authority.contains('@') {
            return Err(bad(
                "credentials in the URL are not supported: give --user NAME with ETCDCTL_PASSWORD or --password-file",
            ));
        }
        if authority.contains('/') {
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

/// `text` for a message: everything between the scheme and the last `@` (a URL's user
/// information, `user:password@`) replaced by `***`, so that a password given in an endpoint
/// never reaches output, errors or logs. Endpoints never hold an `@` otherwise.
pub fn redact_url(text: &str) -> String {
    let (scheme, rest) = match text.find("://") {
        Some(i) => text.split_at(i + 3),
        None => ("", text),
    };
    // The last '@' anywhere: a password may hold '/', '?' or '#' unescaped.
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => text.to_string(),
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
    /// Send etcd's `hasleader` metadata with every request (off unless a tool sets it): a
    /// member cut off from the quorum then refuses requests and new watches, and cancels open
    /// watches after a few election timeouts, with "etcdserver: no leader", instead of serving
    /// a stale or silent answer. For long watches that must move to a healthy member.
    pub require_leader: bool,
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
        assert_eq!(cfg.map(|c| c.require_leader), Some(false));
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
        // Both from variables, as etcdctl: the password variable leaves the user value whole.
        let cfg = resolve(
            &[],
            &[("ETCDCTL_USER", "a:b"), ("ETCDCTL_PASSWORD", "envpw")],
        )
        .ok();
        let creds = cfg.and_then(|c| c.credentials);
        assert_eq!(
            creds.map(|c| (c.name, c.password.0)),
            Some(("a:b".into(), "envpw".into()))
        );
    }

    /// A temporary directory with `name` holding `text`; the path.
    fn temp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).ok();
        path.to_string_lossy().into_owned()
    }

    /// (name, password) that `args` and `env` resolve to, or the error message.
    fn creds(args: &[&str], env: &[(&str, &str)]) -> std::result::Result<(String, String), String> {
        match resolve(args, env) {
            Ok(cfg) => cfg
                .credentials
                .map(|c| (c.name, c.password.0))
                .ok_or_else(|| "no credentials".to_string()),
            Err(e) => Err(e.message),
        }
    }

    /// Flags, variables, and the (name, password) or error message they resolve to.
    type Case<'a> = (
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        std::result::Result<(String, String), String>,
    );

    #[test]
    fn any_password_or_user_flag_beats_any_variable() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else {
            panic!("no temp dir")
        };
        let right = temp_file(&dir, "right", "right\n");
        let missing = dir.path().join("missing").to_string_lossy().into_owned();
        let ok = |name: &str, password: &str| Ok((name.to_string(), password.to_string()));
        let cases: Vec<Case> = vec![
            // --password-file vs ETCDCTL_PASSWORD: the case.
            (
                vec!["--user", "root", "--password-file", &right],
                vec![("ETCDCTL_PASSWORD", "wrong")],
                ok("root", "right"),
            ),
            (
                vec!["--user", "root", "--password", "right"],
                vec![("ETCDCTL_PASSWORD", "wrong")],
                ok("root", "right"),
            ),
            // An unreadable ETCDCTL_PASSWORD_FILE is never read when a flag gives the password.
            (
                vec!["--user", "root", "--password", "right"],
                vec![("ETCDCTL_PASSWORD_FILE", &missing)],
                ok("root", "right"),
            ),
            (
                vec!["--user", "root", "--password-file", &right],
                vec![("ETCDCTL_PASSWORD_FILE", &missing)],
                ok("root", "right"),
            ),
            // --user NAME:PASSWORD is a flag too.
            (
                vec!["--user", "root:right"],
                vec![("ETCDCTL_PASSWORD", "wrong")],
                ok("root", "right"),
            ),
            (
                vec!["--user", "root:right"],
                vec![("ETCDCTL_PASSWORD_FILE", &missing), ("ETCDCTL_USER", "x:y")],
                ok("root", "right"),
            ),
            (
                vec!["--user", "root:right"],
                vec![("ETCDCTL_USER", "other:wrong")],
                ok("root", "right"),
            ),
            // A password flag over ETCDCTL_USER=NAME:PASSWORD keeps the name, replaces the password.
            (
                vec!["--password", "right"],
                vec![("ETCDCTL_USER", "root:wrong")],
                ok("root", "right"),
            ),
            (
                vec!["--password-file", &right],
                vec![
                    ("ETCDCTL_USER", "root:wrong"),
                    ("ETCDCTL_PASSWORD", "wrong"),
                ],
                ok("root", "right"),
            ),
            // Same level: etcdctl's reading (the user value is the whole name).
            (
                vec!["--user", "a:b", "--password", "right"],
                vec![],
                ok("a:b", "right"),
            ),
            (
                vec![
                    "--user",
                    "root",
                    "--password",
                    "right",
                    "--password-file",
                    &missing,
                ],
                vec![],
                ok("root", "right"),
            ),
            // No flag for the password: the variables, in their order.
            (
                vec!["--user", "root"],
                vec![
                    ("ETCDCTL_PASSWORD", "right"),
                    ("ETCDCTL_PASSWORD_FILE", &missing),
                ],
                ok("root", "right"),
            ),
            (
                vec!["--user", "root"],
                vec![
                    ("ETCDCTL_PASSWORD_FILE", &right),
                    ("ETCDCTL_USER", "x:wrong"),
                ],
                ok("root", "right"),
            ),
            (
                vec![],
                vec![("ETCDCTL_USER", "root:right")],
                ok("root", "right"),
            ),
            // A --user without a password does not borrow ETCDCTL_USER's.
            (
                vec!["--user", "root"],
                vec![("ETCDCTL_USER", "root:wrong")],
                Err("no password for user \"root\"".to_string()),
            ),
            (
                vec!["--password", "right"],
                vec![("ETCDCTL_USER", ":wrong")],
                Err("ETCDCTL_USER: empty user name before ':'".to_string()),
            ),
            (
                vec!["--user", "root"],
                vec![("ETCDCTL_PASSWORD_FILE", &missing)],
                Err("ETCDCTL_PASSWORD_FILE: cannot read".to_string()),
            ),
        ];
        for (args, env, want) in cases {
            let got = creds(&args, &env);
            match (&got, &want) {
                (Err(got), Err(want)) => {
                    assert!(got.contains(want.as_str()), "{args:?} {env:?}: {got}")
                }
                _ => assert_eq!(got, want, "{args:?} {env:?}"),
            }
            if let Err(message) = got {
                assert!(
                    !message.contains("wrong") && !message.contains("right"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn every_connection_flag_beats_its_variable_even_a_bad_one() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else {
            panic!("no temp dir")
        };
        let cert = temp_file(&dir, "client.crt", crate::tls::fixtures::V1_CERT);
        let key = temp_file(&dir, "client.key", crate::tls::fixtures::V1_KEY);
        let missing = dir.path().join("missing").to_string_lossy().into_owned();
        let tls = ["--cacert", &cert, "--cert", &cert, "--key", &key];

        // Each variable holds a value that would fail; the flag's value is used instead.
        let secs = Duration::from_secs;
        for (flag, value, var, check) in [
            ("--dial-timeout", "1s", "ETCDCTL_DIAL_TIMEOUT", secs(1)),
            (
                "--command-timeout",
                "2s",
                "ETCDCTL_COMMAND_TIMEOUT",
                secs(2),
            ),
            ("--keepalive-time", "3s", "ETCDCTL_KEEPALIVE_TIME", secs(3)),
            (
                "--keepalive-timeout",
                "4s",
                "ETCDCTL_KEEPALIVE_TIMEOUT",
                secs(4),
            ),
        ] {
            let cfg = resolve(&[flag, value], &[(var, "soon")]);
            let got = cfg.map(|c| {
                [
                    c.dial_timeout,
                    c.command_timeout,
                    c.keepalive_time,
                    c.keepalive_timeout,
                ]
            });
            assert!(
                got.as_ref().is_ok_and(|t| t.contains(&check)),
                "{flag}: {got:?}"
            );
        }
        for (flag, var) in [
            ("--cacert", "ETCDCTL_CACERT"),
            ("--cert", "ETCDCTL_CERT"),
            ("--key", "ETCDCTL_KEY"),
        ] {
            let cfg = resolve(&tls, &[(var, missing.as_str())]);
            assert!(cfg.is_ok_and(|c| c.tls.is_some()), "{flag} over {var}");
        }
        let cfg = resolve(&["--endpoints", "a:1"], &[("ETCDCTL_ENDPOINTS", "no port")]);
        assert_eq!(
            cfg.map(|c| c.endpoints[0].text.clone()).ok(),
            Some("a:1".into())
        );
        let cfg = resolve(&["--user", "u:p"], &[("ETCDCTL_USER", ":")]);
        assert_eq!(
            cfg.ok().and_then(|c| c.credentials).map(|c| c.name),
            Some("u".into())
        );

        // Booleans: the flag, either way, over the variable (even one that does not parse).
        for (args, env, skip) in [
            (vec!["--insecure-skip-tls-verify=false"], "true", false),
            (vec!["--insecure-skip-tls-verify"], "false", true),
            (vec!["--insecure-skip-tls-verify=true"], "maybe", true),
        ] {
            let env = [("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", env)];
            let mut argv = tls.to_vec();
            argv.extend(args.iter().copied());
            let cfg = resolve(&argv, &env);
            assert_eq!(
                cfg.map(|c| c.skip_verify).ok(),
                Some(skip),
                "{args:?} {env:?}"
            );
        }
        for (args, env, tls_on) in [
            (vec!["--insecure-transport=true"], "false", false),
            (
                vec!["--insecure-transport=false", "--cacert", &cert],
                "true",
                true,
            ),
            (vec!["--insecure-transport=true"], "maybe", false),
        ] {
            let env = [("ETCDCTL_INSECURE_TRANSPORT", env)];
            let cfg = resolve(&args, &env);
            assert_eq!(
                cfg.map(|c| c.endpoints[0].tls).ok(),
                Some(tls_on),
                "{args:?} {env:?}"
            );
        }
        // And without the flag, the variable applies (so the cases above prove something).
        for (env, needle) in [
            (("ETCDCTL_DIAL_TIMEOUT", "soon"), "ETCDCTL_DIAL_TIMEOUT"),
            (("ETCDCTL_CACERT", missing.as_str()), "missing"),
            (
                ("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "maybe"),
                "ETCDCTL_INSECURE_SKIP_TLS_VERIFY",
            ),
            (
                ("ETCDCTL_INSECURE_TRANSPORT", "maybe"),
                "ETCDCTL_INSECURE_TRANSPORT",
            ),
            (("ETCDCTL_ENDPOINTS", "no port"), "missing port"),
        ] {
            let message = resolve(&[], &[env])
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(message.contains(needle), "{env:?}: {message}");
        }
    }

    #[test]
    fn errors_name_users_and_endpoints_without_their_passwords() {
        for (args, env, needle) in [
            (
                vec!["--user", ":s3cret-pw"],
                vec![],
                "--user: empty user name",
            ),
            (
                vec![],
                vec![("ETCDCTL_USER", ":s3cret-pw")],
                "ETCDCTL_USER: empty user name",
            ),
            (
                vec!["--endpoints", "http://root:s3cret-pw@127.0.0.1:2379"],
                vec![],
                "\"http://***@127.0.0.1:2379\": credentials in the URL",
            ),
            (
                vec!["--endpoints", "a:1,root:s3cret-pw@[::1]:2379/"],
                vec![],
                "\"***@[::1]:2379/\"",
            ),
            (
                vec![],
                vec![("ETCDCTL_ENDPOINTS", "https://s3cret-pw@h:1")],
                "\"https://***@h:1\"",
            ),
        ] {
            let err = resolve(&args, &env).err();
            assert_eq!(
                err.as_ref().map(|e| e.code),
                Some(crate::ExitCode::Usage),
                "{args:?} {env:?}"
            );
            let message = err.map(|e| e.message).unwrap_or_default();
            assert!(message.contains(needle), "{args:?} {env:?}: {message}");
            assert!(!message.contains("s3cret"), "{args:?} {env:?}: {message}");
        }
        // A name alone is named (it is not a secret).
        let err = resolve(&["--user", "backup"], &[]).err();
        assert!(err
            .map(|e| e.message)
            .unwrap_or_default()
            .contains("no password for user \"backup\""));
    }

    #[test]
    fn redact_url_keeps_everything_but_the_user_information() {
        assert_eq!(redact_url("https://u:p@h:1/x"), "https://***@h:1/x");
        assert_eq!(redact_url("u:p@h:1"), "***@h:1");
        assert_eq!(redact_url("a@b:c@h:1"), "***@h:1");
        assert_eq!(redact_url("http://u:pa/ss@h:1"), "http://***@h:1");
        assert_eq!(redact_url("127.0.0.1:2379"), "127.0.0.1:2379");
    }

    #[test]
    fn ipv6_endpoints_parse() {
        let ep = Endpoint::parse("[::1]:2379", false).ok();
        assert_eq!(ep.as_ref().map(|e| e.host.as_str()), Some("::1"));
        assert_eq!(ep.map(|e| e.url()), Some("http://[::1]:2379".into()));
    }
}
