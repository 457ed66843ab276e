//! The format's guarantees, offline: what is written reads back identically, in a directory
//! and as a stream, and every damage the format promises to detect is detected (every single
//! byte flipped, every truncation, a segment removed, reordered, duplicated or foreign).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use etcd_revlog::{
    verify_dir, verify_stream, Event, EventKind, Lease, Reader, Revision, Writer, WriterOptions,
};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A varied history: puts, overwrites, deletes, multi-event txns, leases, empty and binary keys.
fn history(first: i64, n: i64) -> Vec<Revision> {
    (first..first + n)
        .map(|r| {
            let mut events = vec![Event {
                kind: EventKind::Put,
                key: format!("k{}", r % 7).into_bytes(),
                value: vec![(r % 251) as u8; (r % 5) as usize * 10],
                create_revision: r - (r % 3),
                mod_revision: r,
                version: 1 + r % 3,
                lease: if r % 4 == 0 { 0x7000 + r } else { 0 },
            }];
            if r % 3 == 0 {
                events.push(Event {
                    kind: EventKind::Delete,
                    key: vec![0, 255, b'x'],
                    value: Vec::new(),
                    create_revision: 0,
                    mod_revision: r,
                    version: 0,
                    lease: 0,
                });
            }
            Revision {
                revision: r,
                observed_unix_nanos: 1_700_000_000_000_000_000 + r * 1000,
                events,
                leases: if r % 4 == 0 {
                    vec![Lease {
                        id: 0x7000 + r,
                        granted_ttl: 30,
                    }]
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// A `Write` whose bytes the test keeps.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn small_segments() -> WriterOptions {
    WriterOptions {
        segment_bytes: 600,
        segment_age: Duration::from_secs(3600),
    }
}

fn stream_of(revs: &[Revision], opts: WriterOptions) -> Vec<u8> {
    let out = Shared::default();
    let mut w = Writer::to_stream(Box::new(out.clone()), 0xabcd, opts);
    for r in revs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    let bytes = out.0.lock().unwrap().clone();
    bytes
}

fn read_stream(bytes: Vec<u8>) -> Result<Vec<Revision>, etcd_revlog::Error> {
    Reader::from_stream(Box::new(Cursor::new(bytes)))?.collect()
}

#[test]
fn stream_round_trip_over_several_segments() {
    let revs = history(101, 40);
    let bytes = stream_of(&revs, small_segments());
    assert_eq!(read_stream(bytes.clone()).unwrap(), revs);
    let info = verify_stream(&bytes[..]).unwrap();
    assert_eq!(info.cluster_id, 0xabcd);
    assert_eq!((info.first_revision, info.last_revision), (101, 140));
    assert_eq!(info.revisions, 40);
    assert_eq!(
        info.events,
        revs.iter().map(|r| r.events.len() as u64).sum::<u64>()
    );
    assert!(info.segments > 3, "{} segments", info.segments);
    assert_eq!(info.first_unix_nanos, revs[0].observed_unix_nanos);
    assert_eq!(info.last_unix_nanos, revs[39].observed_unix_nanos);
}

#[test]
fn every_flipped_byte_is_detected() {
    let revs = history(5, 12);
    let bytes = stream_of(&revs, small_segments());
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let err = read_stream(bad.clone()).expect_err(&format!("flip at byte {i} missed"));
            assert!(err.is_integrity(), "byte {i}: {err}");
            assert!(verify_stream(&bad[..]).is_err());
        }
    }
}

#[test]
fn every_truncation_inside_a_segment_is_detected() {
    let revs = history(5, 12);
    let bytes = stream_of(&revs, small_segments());
    // Where segments end: a cut there is a shorter, valid log (the format cannot know more
    // was to come); a cut anywhere else is refused.
    let mut boundaries = Vec::new();
    for cut in 0..bytes.len() {
        match verify_stream(&bytes[..cut]) {
            Ok(info) => {
                assert!(cut > 0);
                boundaries.push((cut, info.last_revision));
            }
            Err(e) => assert!(e.is_integrity(), "cut at {cut}: {e}"),
        }
    }
    let full = verify_stream(&bytes[..]).unwrap();
    assert!(
        boundaries.len() as u64 == full.segments - 1,
        "{boundaries:?}"
    );
    assert!(verify_stream(&[][..]).unwrap_err().is_integrity());
}

#[test]
fn garbage_after_the_last_segment_is_refused() {
    let mut bytes = stream_of(&history(1, 3), WriterOptions::default());
    bytes.push(0);
    assert!(read_stream(bytes).unwrap_err().is_integrity());
}

#[test]
fn a_removed_or_reordered_or_duplicated_segment_in_a_stream_is_refused() {
    let revs = history(1, 30);
    let bytes = stream_of(&revs, small_segments());
    // Split the stream at segment boundaries.
    let mut cuts = vec![0];
    for cut in 1..=bytes.len() {
        if verify_stream(&bytes[..cut]).is_ok() {
            cuts.push(cut);
        }
    }
    let segs: Vec<&[u8]> = cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
    assert!(segs.len() >= 4);
    let join =
        |order: &[usize]| -> Vec<u8> { order.iter().flat_map(|&i| segs[i].to_vec()).collect() };
    let all: Vec<usize> = (0..segs.len()).collect();
    assert!(verify_stream(&join(&all)[..]).is_ok());
    let mut removed = all.clone();
    removed.remove(1);
    let e = verify_stream(&join(&removed)[..]).unwrap_err();
    assert!(e.message().contains("missing"), "{e}");
    let mut first_removed = all.clone();
    first_removed.remove(0);
    let e = verify_stream(&join(&first_removed)[..]).unwrap_err();
    assert!(e.message().contains("first segment is missing"), "{e}");
    let mut swapped = all.clone();
    swapped.swap(1, 2);
    assert!(verify_stream(&join(&swapped)[..])
        .unwrap_err()
        .is_integrity());
    let mut dup = all.clone();
    dup.insert(2, 1);
    assert!(verify_stream(&join(&dup)[..]).unwrap_err().is_integrity());
}

fn dir_log(revs: &[Revision]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Writer::create_dir(tmp.path(), 0xabcd, small_segments()).unwrap();
    for r in revs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    tmp
}

fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".revlog"))
        .collect();
    names.sort();
    names
}

#[test]
fn directory_round_trip_and_continuation() {
    let revs = history(1000, 50);
    let tmp = dir_log(&revs[..20]);
    // A second writer continues the same log.
    let mut w = Writer::create_dir(tmp.path(), 0xabcd, small_segments()).unwrap();
    assert_eq!(w.last_revision(), Some(1019));
    assert!(w.write(&revs[21]).is_err(), "a gap must be refused");
    for r in &revs[20..] {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    let read: Vec<Revision> = Reader::open_dir(tmp.path())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read, revs);
    let names = segment_files(tmp.path());
    assert!(names[0].starts_with("000000000000abcd-00000000000000001000"));
    // Another cluster's writer is refused.
    let e = Writer::create_dir(tmp.path(), 0x1234, small_segments())
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), etcd_common::ExitCode::Refused);
    assert!(verify_dir(tmp.path()).unwrap().partial_files.is_empty());
}

#[test]
fn directory_damage_is_refused() {
    let revs = history(1, 40);
    let tmp = dir_log(&revs);
    let dir = tmp.path();
    let names = segment_files(dir);
    assert!(names.len() >= 4);
    assert_eq!(verify_dir(dir).unwrap().last_revision, 40);

    // A removed middle segment.
    let moved = dir.join("aside");
    std::fs::rename(dir.join(&names[2]), &moved).unwrap();
    let e = verify_dir(dir).unwrap_err();
    assert!(e.is_integrity() && e.message().contains(&names[3]), "{e}");
    std::fs::rename(&moved, dir.join(&names[2])).unwrap();

    // Two segments' contents swapped under their names.
    let a = std::fs::read(dir.join(&names[1])).unwrap();
    let b = std::fs::read(dir.join(&names[2])).unwrap();
    std::fs::write(dir.join(&names[1]), &b).unwrap();
    std::fs::write(dir.join(&names[2]), &a).unwrap();
    assert!(verify_dir(dir).unwrap_err().is_integrity());
    std::fs::write(dir.join(&names[1]), &a).unwrap();
    std::fs::write(dir.join(&names[2]), &b).unwrap();

    // A flipped byte in the last segment.
    let mut c = std::fs::read(dir.join(names.last().unwrap())).unwrap();
    let mid = c.len() / 2;
    c[mid] ^= 4;
    std::fs::write(dir.join(names.last().unwrap()), &c).unwrap();
    let e = verify_dir(dir).unwrap_err();
    assert!(e.message().contains(names.last().unwrap()), "{e}");
    c[mid] ^= 4;
    std::fs::write(dir.join(names.last().unwrap()), &c).unwrap();

    // A truncated segment.
    std::fs::write(dir.join(&names[1]), &a[..a.len() - 1]).unwrap();
    assert!(verify_dir(dir).unwrap_err().message().contains("truncated"));
    std::fs::write(dir.join(&names[1]), &a).unwrap();

    // A segment of another cluster's log dropped in (named as ours).
    let other = tempfile::tempdir().unwrap();
    let mut w = Writer::create_dir(other.path(), 0x9999, small_segments()).unwrap();
    for r in &revs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    let foreign = segment_files(other.path());
    std::fs::copy(other.path().join(&foreign[1]), dir.join(&names[1])).unwrap();
    assert!(verify_dir(dir).unwrap_err().is_integrity());
    std::fs::write(dir.join(&names[1]), &a).unwrap();

    // A .part of a killed writer is reported, not read.
    std::fs::write(
        dir.join("000000000000abcd-00000000000000000041.revlog.part"),
        b"x",
    )
    .unwrap();
    let info = verify_dir(dir).unwrap();
    assert_eq!(info.last_revision, 40);
    assert_eq!(info.partial_files.len(), 1);
}

#[test]
fn an_empty_directory_is_not_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(verify_dir(tmp.path()).unwrap_err().is_integrity());
}
