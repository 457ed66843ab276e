//! `etcd-snap-status --log`: a revision log (written here with `etcd-revlog`'s writer, the one
//! `etcd-snap-log` uses) is verified and described, from a directory, a file or stdin; a log
//! with a segment removed, reordered, corrupted, truncated or from another cluster exits 4 with
//! one line naming the segment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use etcd_revlog::{Event, EventKind, Revision, Writer, WriterOptions};
use etcd_test_support::Tool;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-snap-status");

/// Revision `r` observed at 2025-12-04T10:00:00Z + r ms.
fn rev(r: i64) -> Revision {
    Revision {
        revision: r,
        observed_unix_nanos: 1_764_842_400_000_000_000 + r * 1_000_000,
        events: vec![
            Event {
                kind: EventKind::Put,
                key: format!("/k/{}", r % 5).into_bytes(),
                value: vec![b'v'; 100],
                create_revision: r,
                mod_revision: r,
                version: 1,
                lease: 0,
            },
            Event {
                kind: EventKind::Delete,
                key: b"/gone".to_vec(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: r,
                version: 0,
                lease: 0,
            },
        ],
        leases: Vec::new(),
    }
}

const OPTS: WriterOptions = WriterOptions {
    segment_bytes: 1000,
    segment_age: Duration::from_secs(3600),
};

fn write_dir(dir: &Path, cluster: u64, revs: std::ops::RangeInclusive<i64>) {
    let mut w = Writer::create_dir(dir, cluster, OPTS).unwrap();
    for r in revs {
        w.write(&rev(r)).unwrap();
    }
    w.finish().unwrap();
}

fn segments(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".revlog"))
        .collect();
    n.sort();
    n
}

fn status(args: &[&str]) -> etcd_test_support::Run {
    Tool::new(BIN).args(args).run()
}

#[test]
fn describes_a_directory_a_file_and_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    write_dir(&dir, 0xc0ffee, 101..=160);
    let n = segments(&dir).len();
    assert!(n > 3);
    let d = dir.to_str().unwrap();
    status(&["--log", d]).succeeds().stdout_is(format!(
        "c0ffee, 101, 160, 2025-12-04T10:00:00.101Z, 2025-12-04T10:00:00.16Z, {n}, 60, 120\n"
    ));
    let v = status(&["--log", d, "-w", "json"]).succeeds().stdout_json();
    assert_eq!(v["clusterId"], "c0ffee");
    assert_eq!(v["lastRevision"], 160);
    assert_eq!(v["events"], 120);
    status(&["--log", d, "-w", "table"])
        .succeeds()
        .stdout_contains("LAST REVISION");

    // The same segments concatenated: a stream, from a file and from stdin.
    let stream: Vec<u8> = segments(&dir)
        .iter()
        .flat_map(|s| std::fs::read(dir.join(s)).unwrap())
        .collect();
    let file = tmp.path().join("log.stream");
    std::fs::write(&file, &stream).unwrap();
    status(&["--log", file.to_str().unwrap()])
        .succeeds()
        .stdout_contains("c0ffee, 101, 160,");
    Tool::new(BIN)
        .args(["--log", "-"])
        .stdin_file(&file)
        .run()
        .succeeds()
        .stdout_contains(", 60, 120\n");
    // Cut inside the last segment: refused.
    Tool::new(BIN)
        .args(["--log", "-"])
        .stdin_bytes(stream[..stream.len() - 10].to_vec())
        .run()
        .fails(4)
        .one_line_error("truncated inside the trailer");

    // A .part of a killed follower is reported on stderr, not read.
    std::fs::write(
        dir.join("0000000000c0ffee-00000000000000000161.revlog.part"),
        b"x",
    )
    .unwrap();
    status(&["--log", d])
        .succeeds()
        .stdout_contains(", 160, ")
        .stderr_contains("never closed");
}

#[test]
fn damaged_logs_exit_4_naming_the_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_dir(dir, 0xc0ffee, 1..=40);
    let names = segments(dir);
    let d = dir.to_str().unwrap();
    let path = |i: usize| dir.join(&names[i]);

    // Removed.
    let saved = std::fs::read(path(2)).unwrap();
    std::fs::remove_file(path(2)).unwrap();
    status(&["--log", d])
        .fails(4)
        .one_line_error(&format!("segment {}: starts at revision", names[3]));
    std::fs::write(path(2), &saved).unwrap();

    // Reordered: two segments' contents exchanged.
    let other = std::fs::read(path(1)).unwrap();
    std::fs::write(path(1), &saved).unwrap();
    std::fs::write(path(2), &other).unwrap();
    status(&["--log", d])
        .fails(4)
        .one_line_error(&format!("segment {}: the name does not match", names[1]));
    std::fs::write(path(1), &other).unwrap();
    std::fs::write(path(2), &saved).unwrap();

    // One byte flipped in a value.
    let mut bad = saved.clone();
    bad[100] ^= 0x20;
    std::fs::write(path(2), &bad).unwrap();
    status(&["--log", d])
        .fails(4)
        .one_line_error(&format!("segment {}: the record after revision", names[2]));
    std::fs::write(path(2), &saved).unwrap();

    // Truncated.
    std::fs::write(path(2), &saved[..saved.len() / 2]).unwrap();
    status(&["--log", d])
        .fails(4)
        .one_line_error(&format!("segment {}: truncated", names[2]));
    std::fs::write(path(2), &saved).unwrap();

    // Another cluster's segment under our name.
    let foreign = tempfile::tempdir().unwrap();
    write_dir(foreign.path(), 0xbad, 1..=40);
    let theirs = segments(foreign.path());
    std::fs::copy(foreign.path().join(&theirs[2]), path(2)).unwrap();
    status(&["--log", d])
        .fails(4)
        .one_line_error(&format!("segment {}: the name does not match", names[2]));
    std::fs::write(path(2), &saved).unwrap();

    // Intact again.
    status(&["--log", d])
        .succeeds()
        .stdout_contains(", 1, 40, ");

    // Not a log at all; an empty directory.
    let empty = tempfile::tempdir().unwrap();
    status(&["--log", empty.path().to_str().unwrap()])
        .fails(4)
        .one_line_error("holds no complete segment");
    Tool::new(BIN)
        .args(["--log", "-"])
        .stdin_bytes(b"hello, not a log".to_vec())
        .run()
        .fails(4)
        .one_line_error("bad magic");
    status(&["--log", d, "--hashkv"]).fails(2);
}
