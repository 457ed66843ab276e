//! `--hashkv`: etcd's `HashKV` of the snapshot, printed exactly as `etcdutl hashkv` prints it
//! (`etcdutl/etcdutl/printer*.go`, `DBHashKV`, 3.6 and 3.7; etcdutl 3.5 has no such command).
//!
//! Why a separate report: it is what a backup is proven with (equal to `etcdctl endpoint hashkv
//! --rev R` of the live member), and scripts that already parse etcdutl's line or JSON must parse
//! ours unchanged. The hash itself comes from `etcd_db::hashkv`.

use crate::cli::Options;
use crate::etcdutl::Etcdutl;
use crate::Described;
use etcd_common::output::{json, print_stdout, table, Format};
use etcd_common::Result;
use etcd_db::HashKv;
use serde::Serialize;

/// etcdutl's JSON, its keys in its order (`hash`, `hashRevision`, `compactRevision`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HashKvJson {
    hash: u32,
    hash_revision: i64,
    compact_revision: i64,
}

/// The table's headers, as etcdutl passes them to its table writer.
const HEADERS: [&str; 3] = ["hash", "hash revision", "compact revision"];

/// The report in `format`, the table drawn as `etcdutl`'s version draws it (3.7: box drawing).
pub fn render(hash: &HashKv, format: Format, etcdutl: Etcdutl) -> String {
    let cells = vec![
        hash.hash.to_string(),
        hash.hash_revision.to_string(),
        hash.compact_revision.to_string(),
    ];
    match format {
        Format::Simple => format!("{}\n", cells.join(", ")),
        Format::Json => json::to_line(&HashKvJson {
            hash: hash.hash,
            hash_revision: hash.hash_revision,
            compact_revision: hash.compact_revision,
        }),
        Format::Table => match etcdutl {
            Etcdutl::V3_7 => crate::etcdutl::box_table(&HEADERS, &cells),
            Etcdutl::V3_5 | Etcdutl::V3_6 => table::render(&HEADERS, &[cells]),
        },
    }
}

/// Prints the report for `options`: the etcdutl of `--as-etcdutl`, else of the snapshot's version.
pub fn print(hash: &HashKv, described: &Described, options: &Options) -> Result<()> {
    let etcdutl = options
        .as_etcdutl
        .unwrap_or_else(|| Etcdutl::detect(&described.analysis));
    print_stdout(&render(hash, options.format, etcdutl))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes etcdutl 3.6.x and 3.7.x printed for `crates/etcd-test-support/fixtures/good.db`.
    #[test]
    fn like_etcdutl() {
        let h = HashKv {
            hash: 3054774702,
            compact_revision: -1,
            hash_revision: 51,
        };
        assert_eq!(
            render(&h, Format::Simple, Etcdutl::V3_6),
            "3054774702, 51, -1\n"
        );
        assert_eq!(
            render(&h, Format::Json, Etcdutl::V3_7),
            "{\"hash\":3054774702,\"hashRevision\":51,\"compactRevision\":-1}\n"
        );
        assert_eq!(
            render(&h, Format::Table, Etcdutl::V3_6),
            "\
+------------+---------------+------------------+
|    HASH    | HASH REVISION | COMPACT REVISION |
+------------+---------------+------------------+
| 3054774702 |            51 |               -1 |
+------------+---------------+------------------+
"
        );
        assert_eq!(
            render(&h, Format::Table, Etcdutl::V3_7),
            "\
┌────────────┬───────────────┬──────────────────┐
│    HASH    │ HASH REVISION │ COMPACT REVISION │
├────────────┼───────────────┼──────────────────┤
│ 3054774702 │            51 │               -1 │
└────────────┴───────────────┴──────────────────┘
"
        );
    }
}
