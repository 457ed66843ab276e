//! Writes a synthetic revision log for the point-in-time restore benchmark (BENCHMARKS.md):
//! `COUNT` revisions after `FROM` of one small put each, over `KEYS` keys (created, then
//! overwritten round-robin, with consistent create revisions and versions), for cluster
//! `CLUSTER` (hex). Also prints the same puts as JSON lines for a replay through etcd.
//!
//! `cargo run --release --example synthetic_log -- DIR CLUSTER FROM COUNT KEYS [REPLAY_FILE]`
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark helper fails by panicking

use etcd_revlog::{Event, EventKind, Revision, Writer, WriterOptions};
use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let cluster = u64::from_str_radix(&args[2], 16).unwrap();
    let from: i64 = args[3].parse().unwrap();
    let count: i64 = args[4].parse().unwrap();
    let keys: i64 = args[5].parse().unwrap();
    let mut replay = args
        .get(6)
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).unwrap()));
    let mut writer = Writer::create_dir(dir, cluster, WriterOptions::default()).unwrap();
    let mut created = vec![0i64; keys as usize];
    let mut versions = vec![0i64; keys as usize];
    let start = 1_700_000_000_000_000_000i64;
    for i in 0..count {
        let rev = from + 1 + i;
        let k = (i % keys) as usize;
        if created[k] == 0 {
            created[k] = rev;
        }
        versions[k] += 1;
        let key = format!("/bench/{k:08}").into_bytes();
        let value = format!("{rev:0100}").into_bytes();
        if let Some(out) = replay.as_mut() {
            writeln!(
                out,
                "{}\t{}",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value)
            )
            .unwrap();
        }
        writer
            .write(&Revision {
                revision: rev,
                observed_unix_nanos: start + i * 1000,
                events: vec![Event {
                    kind: EventKind::Put,
                    key,
                    value,
                    create_revision: created[k],
                    mod_revision: rev,
                    version: versions[k],
                    lease: 0,
                }],
                leases: Vec::new(),
            })
            .unwrap();
    }
    writer.finish().unwrap();
}
