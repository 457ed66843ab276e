//! One test body, run on every etcd version: the server-version matrix of docs/design.md, in the
//! spirit of ripgrep's `rgtest!`. A body is a plain `fn(Version)`; [`etcd_matrix!`] defines one
//! `#[test]` per version in a module named after the body, so a failure names both
//! (`put_get::V3_6`) and `cargo nextest run V3_7` runs one version across the suite.

use crate::{bins, Version};

/// Runs `body` on `v`. Debian sid's build is optional: when it is missing the test returns after
/// the `SKIP` line of [`etcd_bin_optional`](crate::etcd_bin_optional); every other version
/// must be installed (a missing one panics naming `scripts/setup`).
pub fn run_on(v: Version, body: fn(Version)) {
    if v == Version::V3_5Sid && bins::etcd_bin_optional(v, "etcd").is_none() {
        return;
    }
    body(v);
}

/// `etcd_matrix!(body)` defines `mod body { #[test] fn V3_4() .. fn V3_7() }`, each calling
/// `body(Version::..)` through [`run_on`]; `etcd_matrix!(body: V3_5, V3_6)` picks versions.
///
/// Every version by default: 3.4.23, 3.5.1, Debian sid's 3.5.x (when installed), 3.6.x, 3.7.x.
#[macro_export]
macro_rules! etcd_matrix {
    ($body:ident) => {
        $crate::etcd_matrix!($body: V3_4, V3_5, V3_5Sid, V3_6, V3_7);
    };
    ($body:ident: $($v:ident),+ $(,)?) => {
        mod $body {
            $(
                #[test]
                #[allow(non_snake_case)]
                fn $v() {
                    $crate::run_on($crate::Version::$v, super::$body);
                }
            )+
        }
    };
}
