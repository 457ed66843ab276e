//! Encryption at rest: the API server prefixes an encrypted value with
//! `k8s:enc:<provider>:v1:<key name>:` (aescbc, aesgcm, secretbox, kms v1) or
//! `k8s:enc:kms:v2:<provider name>:`; an unprefixed value is stored in plaintext (the `identity`
//! provider). Why it matters here: a backup holding plaintext secrets must be guarded like the
//! secrets, and an encrypted value cannot be shown without the API server's keys.

use serde::Serialize;
use std::fmt;

/// The prefix every encrypted value starts with.
pub const PREFIX: &[u8] = b"k8s:enc:";

/// Which provider encrypted a value, and with which key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Encryption {
    /// `aescbc`, `aesgcm`, `secretbox`, `kms-v1`, `kms-v2`, or the provider string as found.
    pub provider: String,
    /// The key name (kms: the provider's name) from the EncryptionConfiguration.
    pub key: String,
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key {}", self.provider, self.key)
    }
}

/// Reads the encryption prefix of a stored value; `None` when it is not encrypted.
pub fn parse(value: &[u8]) -> Option<Encryption> {
    let rest = value.strip_prefix(PREFIX)?;
    let mut parts = rest.splitn(4, |b| *b == b':');
    let provider = parts.next()?;
    let version = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or_default();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let provider = match (provider, version) {
        (b"kms", b"v1") => "kms-v1".to_string(),
        (b"kms", b"v2") => "kms-v2".to_string(),
        (p @ (b"aescbc" | b"aesgcm" | b"secretbox"), b"v1") => text(p),
        (p, v) => format!("{}:{}", text(p), text(v)),
    };
    Some(Encryption {
        provider,
        key: text(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_provider() {
        let e = |p: &str, k: &str| {
            Some(Encryption {
                provider: p.into(),
                key: k.into(),
            })
        };
        assert_eq!(
            parse(b"k8s:enc:aescbc:v1:key1:\x00\xff"),
            e("aescbc", "key1")
        );
        assert_eq!(parse(b"k8s:enc:aesgcm:v1:k2:abc"), e("aesgcm", "k2"));
        assert_eq!(parse(b"k8s:enc:secretbox:v1:sb:"), e("secretbox", "sb"));
        assert_eq!(parse(b"k8s:enc:kms:v1:vault:xyz"), e("kms-v1", "vault"));
        assert_eq!(parse(b"k8s:enc:kms:v2:aws:\n"), e("kms-v2", "aws"));
        assert_eq!(parse(b"k8s:enc:new:v9:n:"), e("new:v9", "n"));
        assert_eq!(parse(b"k8s:enc:"), e(":", ""));
        assert_eq!(parse(b"k8s\x00\x0a"), None);
        assert_eq!(parse(b"{\"kind\":\"Secret\"}"), None);
    }
}
