//! `meta/storageVersion` as etcd's tools read and print it: `github.com/coreos/go-semver`'s
//! `NewVersion` followed by `Version.String()`, which is what `etcdutl snapshot status` 3.6+
//! shows in its `version` column (`server/storage/schema/version.go`,
//! `ReadStorageVersionFromSnapshot`). A value go-semver rejects is shown as the empty string.

/// A version as go-semver holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSemver {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
    /// Patch version.
    pub patch: i64,
    /// After the first `-` (before any `+`), possibly empty.
    pub pre_release: String,
    /// After the first `+`, possibly empty.
    pub metadata: String,
}

impl GoSemver {
    /// Parses `text` exactly as go-semver's `Version.Set` does: metadata after the first `+`,
    /// pre-release after the first `-` of the rest, both `[0-9A-Za-z-]+` identifiers joined by
    /// dots (or empty), then exactly three dot-separated `int64`s (Go's `strconv.ParseInt`,
    /// base 10: an optional sign, then digits). Anything else is `None`.
    pub fn parse(text: &[u8]) -> Option<GoSemver> {
        let text = std::str::from_utf8(text).ok()?;
        let (rest, metadata) = text.split_once('+').unwrap_or((text, ""));
        let (core, pre_release) = rest.split_once('-').unwrap_or((rest, ""));
        let mut parts = core.splitn(3, '.');
        let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
        if !valid_identifier(pre_release) || !valid_identifier(metadata) {
            return None;
        }
        Some(GoSemver {
            major: parse_int(major)?,
            minor: parse_int(minor)?,
            patch: parse_int(patch)?,
            pre_release: pre_release.to_string(),
            metadata: metadata.to_string(),
        })
    }
}

impl std::fmt::Display for GoSemver {
    /// go-semver's `String()`: `MAJOR.MINOR.PATCH[-PRE][+META]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre_release.is_empty() {
            write!(f, "-{}", self.pre_release)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

/// go-semver's `reIdentifier` (`^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$`), or empty.
fn valid_identifier(id: &str) -> bool {
    id.is_empty()
        || id.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional `+` or `-`, then one or more ASCII digits,
/// within `i64`.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::GoSemver;

    fn shown(text: &str) -> Option<String> {
        GoSemver::parse(text.as_bytes()).map(|v| v.to_string())
    }

    #[test]
    fn what_etcd_writes_prints_unchanged() {
        assert_eq!(shown("3.6.0").as_deref(), Some("3.6.0"));
        assert_eq!(shown("3.7.0").as_deref(), Some("3.7.0"));
    }

    #[test]
    fn normalised_like_go_semver() {
        assert_eq!(shown("03.6.0").as_deref(), Some("3.6.0"));
        assert_eq!(shown("3.6.0+").as_deref(), Some("3.6.0"));
        assert_eq!(
            shown("3.6.0-rc.1+build-5").as_deref(),
            Some("3.6.0-rc.1+build-5")
        );
        assert_eq!(shown("3.6.0-").as_deref(), Some("3.6.0"));
        assert_eq!(shown("3.6.0+a-b").as_deref(), Some("3.6.0+a-b"));
    }

    #[test]
    fn rejected_like_go_semver() {
        for bad in [
            "",
            "3.6",
            "3.6.0.1",
            "3.6.x",
            "3..0",
            "3.6.0-a..b",
            "+3.6.0",
            "-3.6.0",
            "3.6.0-é",
            "9223372036854775808.0.0",
            " 3.6.0",
        ] {
            assert_eq!(shown(bad), None, "{bad:?}");
        }
        assert_eq!(GoSemver::parse(b"3.6.\xff"), None);
    }
}
