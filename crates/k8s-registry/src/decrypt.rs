//! Offline decryption of values the API server encrypted at rest, with the user's own
//! `EncryptionConfiguration` (`apiserver.config.k8s.io/v1`, the file given to kube-apiserver's
//! `--encryption-provider-config`).
//!
//! Why it exists: a backup of a cluster that encrypts secrets holds only ciphertext; restoring
//! one secret from it (or checking what it held) needs the same keys the API server has. The
//! local providers are decrypted exactly as `k8s.io/apiserver/pkg/storage/value/encrypt` does:
//!
//! * `aescbc`: `k8s:enc:aescbc:v1:<name>:` + 16-byte IV + AES-CBC ciphertext, PKCS#7 padded;
//! * `aesgcm`: `k8s:enc:aesgcm:v1:<name>:` + 12-byte nonce + AES-GCM ciphertext and tag, with the
//!   object's etcd key (prefix included) as additional authenticated data;
//! * `secretbox`: `k8s:enc:secretbox:v1:<name>:` + 24-byte nonce + XSalsa20-Poly1305 box;
//! * `identity`: the value as stored.
//!
//! A value is matched to a key by its whole prefix, as the API server's prefix transformers do,
//! trying the rules that cover the object's resource first. KMS (v1 and v2) keeps its keys in an
//! external service: offline decryption of those values is impossible, and says so.
//!
//! Key material never leaves this module: it is held in zeroized buffers, `Debug` shows key
//! names only, and no error quotes a key or a decrypted byte.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use std::fmt;
use std::io::Read;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};
use zeroize::Zeroizing;

/// The largest configuration file read (kube-apiserver's own files are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A local provider's key.
struct NamedKey {
    /// The key's name, as in the value's prefix.
    name: String,
    /// The decoded secret, zeroed on drop.
    secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedKey({:?}, {} bytes)", self.name, self.secret.len())
    }
}

/// The providers of an `EncryptionConfiguration`.
#[derive(Debug)]
enum Provider {
    /// `aescbc` keys.
    AesCbc(Vec<NamedKey>),
    /// `aesgcm` keys.
    AesGcm(Vec<NamedKey>),
    /// `secretbox` keys.
    Secretbox(Vec<NamedKey>),
    /// `identity`: plaintext.
    Identity,
    /// `kms` (v1 or v2): nothing to decrypt with offline.
    Kms,
}

impl Provider {
    /// The provider's name in value prefixes.
    fn label(&self) -> &'static str {
        match self {
            Provider::AesCbc(_) => "aescbc",
            Provider::AesGcm(_) => "aesgcm",
            Provider::Secretbox(_) => "secretbox",
            Provider::Identity => "identity",
            Provider::Kms => "kms",
        }
    }
}

/// One `resources:` entry: which resources, and their providers in order.
#[derive(Debug)]
struct Rule {
    /// `secrets`, `configmaps`, `deployments.apps`, `*.apps`, `*.*`, ...
    resources: Vec<String>,
    /// In order; the first one encrypts new writes, all of them decrypt.
    providers: Vec<Provider>,
}

/// A parsed `EncryptionConfiguration`: the keys to decrypt stored values with.
#[derive(Debug)]
pub struct EncryptionConfig {
    rules: Vec<Rule>,
}

/// Why a value cannot be decrypted. Never holds key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptError {
    /// Encrypted by a KMS provider (`kms-v1` or `kms-v2`, and its name).
    Kms {
        /// `kms-v1` or `kms-v2`.
        provider: String,
        /// The KMS provider's name from the value's prefix.
        name: String,
    },
    /// No key of the configuration has the value's prefix.
    NoKey {
        /// `aescbc`, `aesgcm`, `secretbox`, or the provider as found.
        provider: String,
        /// The key name from the value's prefix.
        name: String,
    },
    /// A key with the right name does not decrypt the value (another key of the same name,
    /// or damaged data).
    Failed {
        /// `aescbc`, `aesgcm` or `secretbox`.
        provider: String,
        /// The key name.
        name: String,
        /// What failed (`authentication failed`, `invalid padding`, ...).
        why: &'static str,
    },
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecryptError::Kms { provider, name } => write!(
                f,
                "encrypted by KMS provider {name:?} ({provider}): offline decryption of KMS-encrypted values is impossible (the key never leaves the KMS; read it through the API server)"
            ),
            DecryptError::NoKey { provider, name } => write!(
                f,
                "encrypted with {provider} key {name:?}, which the encryption config does not have"
            ),
            DecryptError::Failed {
                provider,
                name,
                why,
            } => write!(
                f,
                "{provider} key {name:?} of the encryption config does not decrypt it ({why}): a different key of the same name?"
            ),
        }
    }
}

impl std::error::Error for DecryptError {}

/// Why an encryption configuration file cannot be used; the message names the file and never
/// holds key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// It cannot be opened or read.
    Io(String),
    /// It is not an `EncryptionConfiguration` this module can use.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io(m) | ConfigError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The prefix of values encrypted by a KMS provider.
const KMS_PREFIXES: [(&[u8], &str); 2] = [
    (b"k8s:enc:kms:v1:", "kms-v1"),
    (b"k8s:enc:kms:v2:", "kms-v2"),
];

impl EncryptionConfig {
    /// Reads and parses the file at `path`, refusing one larger than [`MAX_CONFIG_BYTES`].
    /// Errors name the file and what is wrong, never a key.
    pub fn from_file(path: &Path) -> Result<EncryptionConfig, ConfigError> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| ConfigError::Io(format!("cannot open {shown}: {e}")))?;
        let mut text = Zeroizing::new(Vec::new());
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| ConfigError::Io(format!("cannot read {shown}: {e}")))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid(format!(
                "{shown} is larger than {MAX_CONFIG_BYTES} bytes: not an EncryptionConfiguration"
            )));
        }
        let text = std::str::from_utf8(&text)
            .map_err(|_| ConfigError::Invalid(format!("{shown} is not UTF-8")))?;
        EncryptionConfig::parse(text).map_err(|e| ConfigError::Invalid(format!("{shown}: {e}")))
    }

    /// Parses an `EncryptionConfiguration` (YAML or JSON).
    pub fn parse(text: &str) -> Result<EncryptionConfig, String> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| {
            // The scanner's message quotes no input, only its position.
            format!("not YAML: {}", e.info())
        })?;
        let [doc] = docs.as_slice() else {
            return Err(format!("expected one YAML document, found {}", docs.len()));
        };
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind != "EncryptionConfiguration" {
            return Err(format!(
                "kind is {kind:?}, expected EncryptionConfiguration"
            ));
        }
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        if !api_version.starts_with("apiserver.config.k8s.io/") {
            return Err(format!(
                "apiVersion is {api_version:?}, expected apiserver.config.k8s.io/v1"
            ));
        }
        let Some(entries) = doc["resources"].as_vec() else {
            return Err("no resources list".into());
        };
        let mut rules = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("resources[{i}]");
            let resources: Vec<String> = entry["resources"]
                .as_vec()
                .ok_or_else(|| format!("{at}.resources is not a list"))?
                .iter()
                .map(|r| r.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{at}.resources holds a non-string"))?;
            let providers = entry["providers"]
                .as_vec()
                .ok_or_else(|| format!("{at}.providers is not a list"))?
                .iter()
                .enumerate()
                .map(|(j, p)| provider(p, &format!("{at}.providers[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                resources,
                providers,
            });
        }
        Ok(EncryptionConfig { rules })
    }

    /// The plaintext of `value`, stored at etcd key `key` (prefix included: `aesgcm`
    /// authenticates it) for `resource` of `group` (`""` for the core group, `None` when
    /// unknown), as the API server would read it. An unencrypted value is returned as it is.
    pub fn decrypt(
        &self,
        key: &[u8],
        resource: &str,
        group: Option<&str>,
        value: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let Some(encryption) = crate::encryption::parse(value) else {
            return Ok(Zeroizing::new(value.to_vec()));
        };
        for (prefix, provider) in KMS_PREFIXES {
            if value.starts_with(prefix) {
                return Err(DecryptError::Kms {
                    provider: provider.to_string(),
                    name: encryption.key,
                });
            }
        }
        let mut first_failure = None;
        for rule in self.ordered(resource, group) {
            for provider in &rule.providers {
                let (keys, open): (&[NamedKey], Opener) = match provider {
                    Provider::AesCbc(k) => (k, open_cbc),
                    Provider::AesGcm(k) => (k, open_gcm),
                    Provider::Secretbox(k) => (k, open_secretbox),
                    Provider::Identity | Provider::Kms => continue,
                };
                for k in keys {
                    let prefix = format!("k8s:enc:{}:v1:{}:", provider.label(), k.name);
                    let Some(data) = value.strip_prefix(prefix.as_bytes()) else {
                        continue;
                    };
                    match open(&k.secret, data, key) {
                        Ok(plain) => return Ok(plain),
                        Err(why) => {
                            first_failure.get_or_insert(DecryptError::Failed {
                                provider: provider.label().to_string(),
                                name: k.name.clone(),
                                why,
                            });
                        }
                    }
                }
            }
        }
        Err(first_failure.unwrap_or(DecryptError::NoKey {
            provider: encryption.provider,
            name: encryption.key,
        }))
    }

    /// The rules covering `resource` first (in file order), then the others.
    fn ordered(&self, resource: &str, group: Option<&str>) -> Vec<&Rule> {
        let covers = |r: &Rule| r.resources.iter().any(|e| covers(e, resource, group));
        let (mut first, rest): (Vec<&Rule>, Vec<&Rule>) =
            self.rules.iter().partition(|r| covers(r));
        first.extend(rest);
        first
    }
}

/// Whether a `resources:` entry (`secrets`, `deployments.apps`, `*.apps`, `*.`, `*.*`) covers
/// `resource` of `group`.
fn covers(entry: &str, resource: &str, group: Option<&str>) -> bool {
    let (r, g) = entry.split_once('.').unwrap_or((entry, ""));
    let group_ok = match group {
        Some(group) => g == "*" || g == group,
        None => true,
    };
    (r == "*" || r == resource) && group_ok
}

/// Decrypts the bytes after a key's prefix; `Err` says what failed, in words with no data.
type Opener = fn(&[u8], &[u8], &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str>;

/// `aescbc`: IV, then CBC ciphertext with PKCS#7 padding.
fn open_cbc(secret: &[u8], data: &[u8], _key: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    const BLOCK: usize = 16;
    if data.len() < BLOCK {
        return Err("the stored data is shorter than the IV");
    }
    let (iv, body) = data.split_at(BLOCK);
    if body.len() % BLOCK != 0 {
        return Err("the stored data is not a multiple of the block size");
    }
    let mut buf = Zeroizing::new(body.to_vec());
    let len = match secret.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(secret, iv)
            .map_err(|_| "bad key length")?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(secret, iv)
            .map_err(|_| "bad key length")?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(secret, iv)
            .map_err(|_| "bad key length")?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        _ => return Err("bad key length"),
    }
    .map_err(|_| "invalid padding")?;
    buf.truncate(len);
    Ok(buf)
}

/// `aesgcm`: 12-byte nonce, then ciphertext and tag; the etcd key is the additional data.
fn open_gcm(secret: &[u8], data: &[u8], key: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    const NONCE: usize = 12;
    if data.len() < NONCE {
        return Err("the stored data is shorter than the nonce");
    }
    let (nonce, body) = data.split_at(NONCE);
    let nonce = aes_gcm::Nonce::from_slice(nonce);
    let payload = Payload {
        msg: body,
        aad: key,
    };
    let plain = match secret.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(secret)
            .map_err(|_| "bad key length")?
            .decrypt(nonce, payload),
        24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(secret)
            .map_err(|_| "bad key length")?
            .decrypt(nonce, payload),
        32 => aes_gcm::Aes256Gcm::new_from_slice(secret)
            .map_err(|_| "bad key length")?
            .decrypt(nonce, payload),
        _ => return Err("bad key length"),
    };
    plain
        .map(Zeroizing::new)
        .map_err(|_| "authentication failed")
}

/// `secretbox`: 24-byte nonce, then the XSalsa20-Poly1305 box.
fn open_secretbox(
    secret: &[u8],
    data: &[u8],
    _key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    const NONCE: usize = 24;
    if data.len() < NONCE + 16 {
        return Err("the stored data is shorter than the nonce and tag");
    }
    let (nonce, body) = data.split_at(NONCE);
    let cipher =
        crypto_secretbox::XSalsa20Poly1305::new_from_slice(secret).map_err(|_| "bad key length")?;
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(nonce), body)
        .map(Zeroizing::new)
        .map_err(|_| "authentication failed")
}

/// One `providers:` entry.
fn provider(p: &Yaml, at: &str) -> Result<Provider, String> {
    let Some(map) = p.as_hash() else {
        return Err(format!("{at} is not a mapping"));
    };
    let [(name, body)] = map.iter().collect::<Vec<_>>()[..] else {
        return Err(format!("{at} must name exactly one provider"));
    };
    let name = name.as_str().unwrap_or_default();
    let keys = |sizes: &[usize]| keys(body, &format!("{at}.{name}"), sizes);
    Ok(match name {
        "aescbc" => Provider::AesCbc(keys(&[16, 24, 32])?),
        "aesgcm" => Provider::AesGcm(keys(&[16, 24, 32])?),
        "secretbox" => Provider::Secretbox(keys(&[32])?),
        "identity" => Provider::Identity,
        "kms" => Provider::Kms,
        other => return Err(format!("{at}: unknown provider {other:?}")),
    })
}

/// A provider's `keys:` list; each secret base64 of one of `sizes` bytes.
fn keys(body: &Yaml, at: &str, sizes: &[usize]) -> Result<Vec<NamedKey>, String> {
    let Some(list) = body["keys"].as_vec() else {
        return Err(format!("{at}.keys is not a list"));
    };
    if list.is_empty() {
        return Err(format!("{at}.keys is empty"));
    }
    list.iter()
        .enumerate()
        .map(|(i, k)| {
            let at = format!("{at}.keys[{i}]");
            let name = k["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("{at}.name is missing"))?;
            let encoded = k["secret"]
                .as_str()
                .ok_or_else(|| format!("{at} ({name:?}): secret is missing"))?;
            let secret = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| format!("{at} ({name:?}): secret is not base64"))?,
            );
            if !sizes.contains(&secret.len()) {
                return Err(format!(
                    "{at} ({name:?}): secret is {} bytes, expected {}",
                    secret.len(),
                    sizes
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok(NamedKey {
                name: name.to_string(),
                secret,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    const KEY16: &str = "MDEyMzQ1Njc4OWFiY2RlZg=="; // "0123456789abcdef"
    const KEY32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // twice that

    fn config() -> EncryptionConfig {
        EncryptionConfig::parse(&format!(
            "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys: [{{name: k1, secret: {KEY32}}}, {{name: short, secret: {KEY16}}}]
      - aesgcm:
          keys: [{{name: g1, secret: {KEY16}}}]
      - secretbox:
          keys: [{{name: s1, secret: {KEY32}}}]
      - kms: {{apiVersion: v2, name: vault, endpoint: unix:///kms.sock}}
      - identity: {{}}
"
        ))
        .unwrap()
    }

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    const KEY: &[u8] = b"/registry/secrets/default/s";

    #[test]
    fn round_trips_each_provider_and_refuses_the_rest() {
        let c = config();
        let plain = b"k8s\0secret bytes of any length".to_vec();
        // aescbc, as Go writes it.
        let iv = [7u8; 16];
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(&b64(KEY32), &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(&plain);
        let mut v = b"k8s:enc:aescbc:v1:k1:".to_vec();
        v.extend_from_slice(&iv);
        v.extend_from_slice(&ct);
        assert_eq!(
            &c.decrypt(KEY, "secrets", Some(""), &v).unwrap()[..],
            &plain[..]
        );
        // The same bytes under the 16-byte key's name: the key does not fit.
        let mut wrong = b"k8s:enc:aescbc:v1:short:".to_vec();
        wrong.extend_from_slice(&v[21..]);
        assert!(matches!(
            c.decrypt(KEY, "secrets", Some(""), &wrong),
            Err(DecryptError::Failed { .. })
        ));
        // aesgcm with the key as additional data.
        let gcm = aes_gcm::Aes128Gcm::new_from_slice(&b64(KEY16)).unwrap();
        let nonce = [3u8; 12];
        let sealed = gcm
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: KEY,
                },
            )
            .unwrap();
        let mut v = b"k8s:enc:aesgcm:v1:g1:".to_vec();
        v.extend_from_slice(&nonce);
        v.extend_from_slice(&sealed);
        assert_eq!(
            &c.decrypt(KEY, "secrets", Some(""), &v).unwrap()[..],
            &plain[..]
        );
        // Moved to another key: authentication fails.
        let e = c
            .decrypt(b"/registry/secrets/default/other", "secrets", Some(""), &v)
            .unwrap_err();
        assert_eq!(
            e,
            DecryptError::Failed {
                provider: "aesgcm".into(),
                name: "g1".into(),
                why: "authentication failed"
            }
        );
        // secretbox.
        let sb = crypto_secretbox::XSalsa20Poly1305::new_from_slice(&b64(KEY32)).unwrap();
        let nonce = [9u8; 24];
        let sealed = sb
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), &plain[..])
            .unwrap();
        let mut v = b"k8s:enc:secretbox:v1:s1:".to_vec();
        v.extend_from_slice(&nonce);
        v.extend_from_slice(&sealed);
        assert_eq!(
            &c.decrypt(KEY, "secrets", Some(""), &v).unwrap()[..],
            &plain[..]
        );
        let last = v.len() - 1;
        v[last] ^= 1;
        assert!(c.decrypt(KEY, "secrets", Some(""), &v).is_err());
        // identity, KMS, unknown keys.
        assert_eq!(
            &c.decrypt(KEY, "secrets", Some(""), &plain).unwrap()[..],
            &plain[..]
        );
        let kms = c
            .decrypt(KEY, "secrets", Some(""), b"k8s:enc:kms:v2:vault:\x0a\x01")
            .unwrap_err();
        assert!(
            kms.to_string().contains("offline decryption of KMS"),
            "{kms}"
        );
        assert_eq!(
            c.decrypt(
                KEY,
                "secrets",
                Some(""),
                b"k8s:enc:aesgcm:v1:gone:xxxxxxxxxxxxxxxx"
            ),
            Err(DecryptError::NoKey {
                provider: "aesgcm".into(),
                name: "gone".into()
            })
        );
    }

    #[test]
    fn bad_configs_are_refused_without_showing_keys() {
        let bad = [
            "kind: Other\napiVersion: apiserver.config.k8s.io/v1\nresources: []\n",
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys: [{name: a, secret: c2hvcnQ=}]\n",
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys: [{name: a, secret: '%%%SECRETVALUE'}]\n",
            "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - rot13: {}\n",
            "{[",
        ];
        for text in bad {
            let e = EncryptionConfig::parse(text).unwrap_err();
            assert!(!e.contains("c2hvcnQ") && !e.contains("SECRETVALUE"), "{e}");
        }
        let dbg = format!("{:?}", config());
        assert!(
            !dbg.contains("48, 49, 50") && dbg.contains("\"k1\""),
            "{dbg}"
        );
    }

    #[test]
    fn rules_for_the_resource_come_first() {
        assert!(covers("secrets", "secrets", Some("")));
        assert!(covers("*.*", "secrets", Some("")));
        assert!(covers("*.", "secrets", Some("")));
        assert!(covers("deployments.apps", "deployments", Some("apps")));
        assert!(!covers("deployments.apps", "deployments", Some("")));
        assert!(covers("*.apps", "deployments", None));
        assert!(!covers("configmaps", "secrets", Some("")));
    }
}
