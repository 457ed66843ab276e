//! Hostile input end to end (issue 12 items 5 and 6): a sparse file whose page claims a run as
//! large as the file, and a stream that keeps going past the database its meta page declares.
//!
//! Why it exists: both made `etcd-snap-status` spend what the input asked for (64 GiB of memory,
//! a temporary directory filled with zeros). Each case must end in one `Error:` line, exit 4, a
//! small peak RSS, and nothing left in `TMPDIR`. Snapshots are made by a real etcd 3.5.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::*;
use etcd_test_support::{Cluster, Version};
use std::fs;
use std::path::Path;

/// Peak RSS bound of docs/design.md ("Performance targets") for status.
const MAX_RSS_KIB: u64 = 64 << 10;

/// Runs `script` under `/usr/bin/time -f %M` and returns (its output, peak RSS in KiB): `time`
/// writes the RSS as the last line of stderr, which is taken off.
fn with_rss(script: &str) -> (Out, u64) {
    let mut out = sh(&format!(
        "/usr/bin/time -q -f %M -o /dev/fd/3 bash -c '{script}' 3>&2"
    ));
    let mut lines: Vec<&str> = out.stderr.lines().collect();
    let rss = lines
        .pop()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS from /usr/bin/time: {out:?}"));
    out.stderr = lines.iter().map(|l| format!("{l}\n")).collect();
    (out, rss)
}

/// The FNV-1a checksum bbolt keeps in a meta page, over magic..txid.
fn reseal(img: &mut [u8], meta_off: usize) {
    let sum = bbolt::fnv1a64(&img[meta_off + 16..meta_off + 72]);
    img[meta_off + 72..meta_off + 80].copy_from_slice(&sum.to_le_bytes());
}

/// Turns a real snapshot into the head of a sparse file of `size` bytes: both metas count every
/// page of it, and the root bucket's page claims every page after it as overflow.
fn sparse_case(snapshot: &Path, out: &Path, size: u64) {
    let bytes = fs::read(snapshot).unwrap();
    let ps = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let mut img = bytes[..bytes.len() / ps * ps].to_vec();
    let pgid = size / ps as u64;
    for m in 0..2 {
        img[m * ps + 56..m * ps + 64].copy_from_slice(&pgid.to_le_bytes());
        reseal(&mut img, m * ps);
    }
    let root = u64::from_le_bytes(img[32..40].try_into().unwrap());
    let overflow = u32::try_from(pgid - root - 1).unwrap();
    let at = root as usize * ps + 12;
    img[at..at + 4].copy_from_slice(&overflow.to_le_bytes());
    fs::write(out, &img).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(out)
        .unwrap()
        .set_len(size)
        .unwrap();
}

#[test]
fn hostile_sparse_file_and_endless_stream() {
    let cluster = Cluster::builder(Version::V3_5).start();
    let dir = cluster.dir().join("snaps");
    let tmp = cluster.dir().join("tmpdir");
    fs::create_dir(&dir).unwrap();
    fs::create_dir(&tmp).unwrap();
    let gw = cluster.gateway();
    for i in 0..20 {
        gw.put(format!("/h/{i}").as_bytes(), b"value");
    }
    let snap = save(&cluster, &dir, "h.db");
    let snap_len = fs::metadata(&snap).unwrap().len();

    // Item 5: a 64 GiB sparse file (a few KiB on disk) whose root page claims the whole file.
    let sparse = dir.join("sparse64g.db");
    sparse_case(&snap, &sparse, 64 << 30);
    let (out, rss) = with_rss(&format!("{STATUS} --skip-hash-check {}", s(&sparse)));
    out.clone()
        .named("64 GiB sparse file")
        .fails(4)
        .one_line_error("");
    assert!(
        out.stderr.contains("leaf page claims")
            && out.stderr.contains("more than a leaf page can span"),
        "{out:?}"
    );
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");

    // Item 6: a valid snapshot followed by 2 GiB of zeros, all in zstd (a few MiB), on stdin.
    for (flags, extra) in [
        ("", "the 32-byte SHA-256 trailer"),
        ("--skip-hash-check", "16777216 bytes bbolt may preallocate"),
    ] {
        let script = format!(
            "{{ cat {snap}; head -c 2G /dev/zero; }} | zstd -q -1 -c | TMPDIR={tmp} {STATUS} {flags} -",
            snap = s(&snap),
            tmp = s(&tmp),
        );
        let (out, rss) = with_rss(&script);
        out.clone()
            .named("endless stream")
            .fails(4)
            .one_line_error("");
        let db_len = snap_len - 32;
        assert!(
            out.stderr.contains(&format!(
                "Error: stdin: the data goes on past the {db_len} bytes its meta page declares (+ {extra}): not a snapshot; stopped spooling"
            )),
            "{out:?}"
        );
        assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "TMPDIR must stay empty"
        );
    }

    // The same snapshot without the zeros still reads, from the pipe, with and without the flag.
    for flags in ["", "--skip-hash-check"] {
        let out = sh(&format!(
            "zstd -q -c {} | TMPDIR={} {STATUS} {flags} -",
            s(&snap),
            s(&tmp)
        ));
        assert_eq!(out.code, 0, "{out:?}");
    }
}
