//! From a URL and the environment to an object store: `s3://`, `gs://`, `az://` (and the
//! spellings object_store parses: `https://…amazonaws.com/…`, `abfs://…`, `gcs://…`), the
//! credentials each cloud's users already have in their environment, and the mapping of the
//! library's errors onto the tools' exit codes with messages that never carry a secret.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use etcd_common::{Error, ExitCode, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreScheme};

/// The largest AWS config or credentials file read (they are a few hundred bytes).
const MAX_AWS_FILE: u64 = 1 << 20;

/// Which service a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// S3 or an S3-compatible server.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

/// A parsed object URL: the store, the key, and what is needed for messages.
pub struct Location {
    /// The store holding the bucket.
    pub store: Arc<dyn ObjectStore>,
    /// The key (may be empty for a bucket-wide prefix).
    pub key: Path,
    /// `scheme://bucket/` as the user wrote it, to build URLs of other keys.
    pub base: String,
    /// Which service.
    pub cloud: Cloud,
    /// Secret values that must never appear in a message.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("base", &self.base)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Location {
    /// The URL of `key` in the same bucket.
    pub fn url_of(&self, key: &Path) -> String {
        format!("{}{}", self.base, key)
    }

    /// The URL of this location's own key.
    pub fn url(&self) -> String {
        self.url_of(&self.key)
    }

    /// Maps a library error on `url` to an exit code and a one-line message without secrets.
    pub fn error(&self, what: &str, url: &str, e: &object_store::Error) -> Error {
        let (code, message) = classify(self.cloud, what, url, e);
        let mut message = message;
        for s in &self.secrets {
            if !s.is_empty() {
                message = message.replace(s.as_str(), "<redacted>");
            }
        }
        Error::new(code, message)
    }
}

/// The process environment, read once (tests pass their own).
pub type EnvMap = BTreeMap<String, String>;

/// The process environment as a map (non-UTF-8 values are ignored).
pub fn process_env() -> EnvMap {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Parses `url` and builds the store for it from `env`. Bad URLs and bad configuration are
/// usage errors (exit 2).
pub fn open(url: &str, env: &EnvMap) -> Result<Location> {
    // rustls is built without a default provider (no aws-lc): ring, as the other online tools.
    // An error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parsed = url::Url::parse(url).map_err(|e| {
        Error::usage(format!(
            "{url:?} is not an object URL ({e}): use s3://BUCKET/KEY, gs://BUCKET/KEY or az://CONTAINER/KEY"
        ))
    })?;
    let (scheme, key) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        Error::usage(format!(
            "{url:?}: unsupported URL scheme {:?}: use s3://BUCKET/KEY, gs://BUCKET/KEY or az://CONTAINER/KEY",
            parsed.scheme()
        ))
    })?;
    let bucket = parsed.host_str().unwrap_or("").to_string();
    let base = {
        let key_text = key.as_ref();
        let trimmed = url.trim_end_matches('/');
        match trimmed.strip_suffix(key_text) {
            Some(b) if !key_text.is_empty() => b.to_string(),
            _ => format!("{trimmed}/"),
        }
    };
    let mut secrets = Vec::new();
    let (store, cloud): (Arc<dyn ObjectStore>, Cloud) = match scheme {
        ObjectStoreScheme::AmazonS3 => (s3(&parsed, env, &mut secrets)?, Cloud::S3),
        ObjectStoreScheme::MicrosoftAzure => (azure(&parsed, env, &mut secrets)?, Cloud::Azure),
        ObjectStoreScheme::GoogleCloudStorage => (gcs(&parsed, env, &mut secrets)?, Cloud::Gcs),
        _ => {
            return Err(Error::usage(format!(
                "{url:?}: not an object storage URL: use s3://BUCKET/KEY, gs://BUCKET/KEY or az://CONTAINER/KEY"
            )))
        }
    };
    if bucket.is_empty() {
        return Err(Error::usage(format!("{url:?} names no bucket")));
    }
    Ok(Location {
        store,
        key,
        base,
        cloud,
        secrets,
    })
}

/// Client options: http only when the endpoint the user gave is http://; bounded timeouts.
fn client(endpoint: Option<&str>) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(300))
}

/// Retries: a few, quickly, so an unreachable endpoint is reported in seconds (exit 3).
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
    }
}

/// An S3 store: `AWS_*` variables as the AWS CLI reads them, `AWS_PROFILE` from
/// `~/.aws/credentials` and `~/.aws/config`, path-style for custom endpoints.
fn s3(url: &url::Url, env: &EnvMap, secrets: &mut Vec<String>) -> Result<Arc<dyn ObjectStore>> {
    let mut b = AmazonS3Builder::new();
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    let mut key_id = get("AWS_ACCESS_KEY_ID");
    let mut secret = get("AWS_SECRET_ACCESS_KEY");
    let mut token = get("AWS_SESSION_TOKEN");
    let mut region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
    let mut endpoint = get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL"));
    if key_id.is_none() {
        if let Some(profile) = aws_profile(env)? {
            key_id = profile.get("aws_access_key_id").cloned();
            secret = profile.get("aws_secret_access_key").cloned();
            token = profile.get("aws_session_token").cloned();
            region = region.or_else(|| profile.get("region").cloned());
            endpoint = endpoint.or_else(|| profile.get("endpoint_url").cloned());
        }
    }
    if let (Some(k), Some(s)) = (&key_id, &secret) {
        secrets.push(s.clone());
        b = b.with_access_key_id(k).with_secret_access_key(s);
        if let Some(t) = &token {
            secrets.push(t.clone());
            b = b.with_token(t);
        }
    } else if key_id.is_some() != secret.is_some() {
        return Err(Error::usage(
            "AWS credentials are incomplete: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
        ));
    }
    // Web identity (EKS/IRSA) and container credentials, read by the library itself.
    for (var, key) in [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "aws_web_identity_token_file"),
        ("AWS_ROLE_ARN", "aws_role_arn"),
        ("AWS_ROLE_SESSION_NAME", "aws_role_session_name"),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "aws_container_credentials_relative_uri",
        ),
    ] {
        if let (Some(v), Ok(k)) = (get(var), key.parse::<AmazonS3ConfigKey>()) {
            b = b.with_config(k, v);
        }
    }
    b = b
        .with_region(region.unwrap_or_else(|| "us-east-1".into()))
        .with_bucket_name(url.host_str().unwrap_or(""))
        .with_client_options(client(endpoint.as_deref()))
        .with_retry(retry());
    if let Some(e) = &endpoint {
        b = b
            .with_endpoint(e.trim_end_matches('/'))
            .with_virtual_hosted_style_request(false);
    }
    let store = b.build().map_err(|e| {
        Error::usage(format!(
            "S3 configuration: {}",
            redact(&e.to_string(), secrets)
        ))
    })?;
    Ok(Arc::new(store))
}

/// An Azure store: `AZURE_STORAGE_ACCOUNT_NAME`/`_KEY` (or `AZURE_STORAGE_SAS_TOKEN`,
/// `AZURE_CLIENT_*`), `AZURE_STORAGE_USE_EMULATOR` with `AZURITE_BLOB_STORAGE_URL`.
fn azure(url: &url::Url, env: &EnvMap, secrets: &mut Vec<String>) -> Result<Arc<dyn ObjectStore>> {
    let mut b = MicrosoftAzureBuilder::new();
    for (var, value) in env {
        let lower = var.to_ascii_lowercase();
        if !lower.starts_with("azure_") {
            continue;
        }
        if let Ok(key) = lower.parse::<AzureConfigKey>() {
            if lower.contains("key") || lower.contains("secret") || lower.contains("token") {
                secrets.push(value.clone());
            }
            b = b.with_config(key, value);
        }
    }
    let emulator = env
        .get("AZURE_STORAGE_USE_EMULATOR")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"));
    let endpoint = if emulator {
        Some(
            env.get("AZURITE_BLOB_STORAGE_URL")
                .cloned()
                .unwrap_or_else(|| "http://127.0.0.1:10000".into()),
        )
    } else {
        env.get("AZURE_STORAGE_ENDPOINT").cloned()
    };
    b = b
        .with_url(url.as_str())
        .with_client_options(client(endpoint.as_deref()))
        .with_retry(retry());
    let store = b.build().map_err(|e| {
        Error::usage(format!(
            "Azure configuration: {} (set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY)",
            redact(&e.to_string(), secrets)
        ))
    })?;
    Ok(Arc::new(store))
}

/// A GCS store: `GOOGLE_SERVICE_ACCOUNT` (or `GOOGLE_SERVICE_ACCOUNT_PATH`, a key file),
/// `GOOGLE_SERVICE_ACCOUNT_KEY` (the key itself), else `GOOGLE_APPLICATION_CREDENTIALS`, else the
/// metadata server; `GOOGLE_STORAGE_ENDPOINT` for a GCS-compatible server (an emulator, on-prem).
/// A key file with `"disable_oauth": true` sends no token (what GCS emulators take).
fn gcs(url: &url::Url, env: &EnvMap, secrets: &mut Vec<String>) -> Result<Arc<dyn ObjectStore>> {
    let mut b = GoogleCloudStorageBuilder::new().with_url(url.as_str());
    let set = |k: &str| env.get(k).filter(|v| !v.is_empty());
    if let Some(path) = set("GOOGLE_SERVICE_ACCOUNT").or_else(|| set("GOOGLE_SERVICE_ACCOUNT_PATH"))
    {
        b = b.with_service_account_path(path);
    } else if let Some(key) = set("GOOGLE_SERVICE_ACCOUNT_KEY") {
        secrets.push(key.clone());
        b = b.with_service_account_key(key);
    } else if let Some(path) = set("GOOGLE_APPLICATION_CREDENTIALS") {
        b = b.with_application_credentials(path);
    }
    let endpoint = set("GOOGLE_STORAGE_ENDPOINT").cloned();
    if let Some(e) = &endpoint {
        b = b.with_base_url(e.trim_end_matches('/'));
    }
    let store = b
        .with_client_options(client(endpoint.as_deref()))
        .with_retry(retry())
        .build()
        .map_err(|e| {
            Error::usage(format!(
                "GCS configuration: {} (set GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT to a service account key file)",
                redact(&e.to_string(), secrets)
            ))
        })?;
    Ok(Arc::new(store))
}

/// Replaces every secret in `text`.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

/// The settings of `AWS_PROFILE` (or `default` when a credentials file exists and no key is in
/// the environment): the credentials file's `[NAME]` merged over the config file's
/// `[profile NAME]` (`[default]`). `None` when neither file has the profile and none was named.
fn aws_profile(env: &EnvMap) -> Result<Option<BTreeMap<String, String>>> {
    let named = env.get("AWS_PROFILE").filter(|p| !p.is_empty()).cloned();
    let profile = named.clone().unwrap_or_else(|| "default".into());
    let home = env.get("HOME").map(PathBuf::from);
    let file = |var: &str, rel: &str| -> Option<PathBuf> {
        env.get(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(rel)))
    };
    let mut merged = BTreeMap::new();
    let mut found = false;
    if let Some(p) = file("AWS_CONFIG_FILE", "config") {
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        if let Some(s) = read_ini_section(&p, &section)? {
            found = true;
            merged.extend(s);
        }
    }
    if let Some(p) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
        if let Some(s) = read_ini_section(&p, &profile)? {
            found = true;
            merged.extend(s);
        }
    }
    match (found, named) {
        (true, _) => Ok(Some(merged)),
        (false, Some(p)) => Err(Error::usage(format!(
            "AWS_PROFILE={p}: no such profile in ~/.aws/credentials or ~/.aws/config"
        ))),
        (false, None) => Ok(None),
    }
}

/// The `key = value` lines of `[section]` in an INI file; `None` when the file or the section
/// does not exist. Files larger than 1 MiB are refused.
fn read_ini_section(
    path: &std::path::Path,
    section: &str,
) -> Result<Option<BTreeMap<String, String>>> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), &e)),
    };
    let mut text = String::new();
    f.take(MAX_AWS_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(format!("reading {}", path.display()), &e))?;
    if text.len() as u64 > MAX_AWS_FILE {
        return Err(Error::usage(format!(
            "{} is larger than 1 MiB: not an AWS config file",
            path.display()
        )));
    }
    Ok(parse_ini_section(&text, section))
}

/// The `key = value` pairs of `[section]` (keys lowercased; comments and blank lines skipped).
fn parse_ini_section(text: &str, section: &str) -> Option<BTreeMap<String, String>> {
    let mut out = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            if inside {
                out.get_or_insert_with(BTreeMap::new);
            }
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.get_or_insert_with(BTreeMap::new)
                    .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    out
}

/// Exit code and message for a library error.
fn classify(cloud: Cloud, what: &str, url: &str, e: &object_store::Error) -> (ExitCode, String) {
    use object_store::Error as E;
    let creds = match cloud {
        Cloud::S3 => "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), the bucket policy and the endpoint",
        Cloud::Azure => "AZURE_STORAGE_ACCOUNT_NAME/AZURE_STORAGE_ACCOUNT_KEY and the container's access",
        Cloud::Gcs => "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS and the bucket's IAM",
    };
    let chain = chain_text(e);
    if ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"]
        .iter()
        .any(|m| chain.contains(m))
    {
        return (
            ExitCode::Usage,
            format!("{what} {url}: no such bucket or container: check the URL and the endpoint"),
        );
    }
    match e {
        E::NotFound { .. } => (ExitCode::Refused, format!("{what} {url}: no such object")),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (
            ExitCode::Usage,
            format!("{what} {url}: access denied: check {creds}"),
        ),
        E::AlreadyExists { .. } | E::Precondition { .. } => (
            ExitCode::Refused,
            format!("{what} {url}: the object already exists (--force replaces it)"),
        ),
        _ => {
            if let Some(status) = status_in(&chain) {
                if status == 401 || status == 403 {
                    return (
                        ExitCode::Usage,
                        format!("{what} {url}: access denied: check {creds}"),
                    );
                }
                if (400..500).contains(&status) {
                    let code = s3_code(&chain).unwrap_or_default();
                    return (
                        ExitCode::Usage,
                        format!(
                            "{what} {url}: the server refused the request (HTTP {status}{}{code}): check the bucket name and the endpoint",
                            if code.is_empty() { "" } else { " " }
                        ),
                    );
                }
                return (
                    ExitCode::Transient,
                    format!("{what} {url}: the server failed (HTTP {status}) after retries: try again later"),
                );
            }
            (
                ExitCode::Transient,
                format!(
                    "{what} {url}: cannot reach the object store ({}): check the endpoint and the network, then retry",
                    short_cause(e)
                ),
            )
        }
    }
}

/// The error and all its sources as one string.
fn chain_text(e: &object_store::Error) -> String {
    let mut out = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = cur {
        out.push_str(" | ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The innermost cause, shortened (no URLs with query strings, at most 160 characters).
fn short_cause(e: &object_store::Error) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    let text = cur.to_string();
    let text: String = text.chars().take(160).collect();
    text
}

/// The HTTP status in object_store's "non-2xx status code: NNN" text.
fn status_in(chain: &str) -> Option<u16> {
    for marker in ["status code: ", "error response: "] {
        if let Some(at) = chain.find(marker) {
            let digits: String = chain[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

/// The S3/Azure error code (`<Code>NoSuchBucket</Code>`) in a response body, if any.
fn s3_code(chain: &str) -> Option<String> {
    let at = chain.find("<Code>")? + 6;
    let end = chain[at..].find("</Code>")?;
    let code: String = chain[at..at + end]
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    Some(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections() {
        let text = "[default]\naws_access_key_id = A\n# c\n[profile prod]\nregion=eu-west-1\n\
                    endpoint_url = http://127.0.0.1:9000\n[prod]\nAWS_SECRET_ACCESS_KEY = S\n";
        let d = parse_ini_section(text, "default").unwrap();
        assert_eq!(d.get("aws_access_key_id").unwrap(), "A");
        let p = parse_ini_section(text, "profile prod").unwrap();
        assert_eq!(p.get("region").unwrap(), "eu-west-1");
        assert_eq!(p.get("endpoint_url").unwrap(), "http://127.0.0.1:9000");
        assert_eq!(
            parse_ini_section(text, "prod")
                .unwrap()
                .get("aws_secret_access_key")
                .unwrap(),
            "S"
        );
        assert!(parse_ini_section(text, "nope").is_none());
    }

    #[test]
    fn statuses_and_codes() {
        assert_eq!(
            status_in("x | Server returned non-2xx status code: 503 Service"),
            Some(503)
        );
        assert_eq!(status_in("nothing"), None);
        assert_eq!(
            s3_code("<Error><Code>NoSuchBucket</Code>").unwrap(),
            "NoSuchBucket"
        );
    }

    #[test]
    fn urls() {
        let env: EnvMap = [
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let l = open("s3://b/dir/x.db", &env).unwrap();
        assert_eq!(l.key.as_ref(), "dir/x.db");
        assert_eq!(l.base, "s3://b/");
        assert_eq!(l.url(), "s3://b/dir/x.db");
        let l = open("s3://b", &env).unwrap();
        assert_eq!(l.key.as_ref(), "");
        assert_eq!(l.url_of(&Path::from("k")), "s3://b/k");
        for bad in ["/tmp/x", "ftp://b/k", "nonsense"] {
            assert_eq!(open(bad, &env).unwrap_err().code, ExitCode::Usage, "{bad}");
        }
        let half: EnvMap = [("AWS_ACCESS_KEY_ID".to_string(), "AK".to_string())].into();
        assert_eq!(open("s3://b/k", &half).unwrap_err().code, ExitCode::Usage);
    }

    #[test]
    fn gcs_key_errors_are_usage_errors_without_the_key() {
        let key = r#"{"private_key": "not-a-key-SECRET-1234", "broken"#;
        let env: EnvMap = [
            ("GOOGLE_SERVICE_ACCOUNT", ""), // empty: unset, so the key below is used
            ("GOOGLE_SERVICE_ACCOUNT_KEY", key),
            ("GOOGLE_STORAGE_ENDPOINT", "http://127.0.0.1:1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = open("gs://b/k", &env).unwrap_err();
        assert_eq!(e.code, ExitCode::Usage);
        assert!(!e.to_string().contains("SECRET-1234"), "{e}");
        assert!(e.to_string().contains("GCS configuration"), "{e}");
    }
}
