//! Writing a log: revisions appended one record each, segments closed on size or age. In a
//! directory a segment is written as `NAME.part`, fsynced, renamed to its final name and the
//! directory fsynced, so a segment file that exists is complete; on a stream segments follow
//! each other, each closed by its trailer.

use crate::format::{
    encode_body, record_crc, segment_name, Header, Trailer, HEADER_LEN, RECORD_TAG, SEGMENT_SUFFIX,
    TRAILER_LEN,
};
use crate::read::Reader;
use crate::{Error, ErrorKind, Revision};
use etcd_common::safe_fs::{Claim, Dir};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The lock a writer holds on its directory, so that two followers never write one log.
const LOCK_NAME: &str = ".etcd-snap-log.lock";

/// When a writer closes a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Close the segment once it holds at least this many bytes.
    pub segment_bytes: u64,
    /// Close the segment once it has been open this long (checked by [`Writer::due`]).
    pub segment_age: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_bytes: 64 << 20,
            segment_age: Duration::from_secs(600),
        }
    }
}

/// Where segments go.
enum Sink {
    Dir { dir: Dir, lock: File },
    Stream(Box<dyn Write + Send>),
}

/// The segment being written.
struct Segment {
    /// In a directory: the `.part` file, its name, and the final name.
    file: Option<(BufWriter<File>, OsString, String)>,
    hasher: Sha256,
    bytes: u64,
    opened: Instant,
    trailer: Trailer,
}

/// Appends revisions to a log. Revisions must be consecutive.
pub struct Writer {
    sink: Sink,
    cluster_id: u64,
    opts: WriterOptions,
    chain: [u8; 32],
    last_revision: Option<i64>,
    segment: Option<Segment>,
    body: Vec<u8>,
    segments_closed: u64,
}

impl Writer {
    /// A writer adding segments to the log in `dir` (which must exist), for cluster
    /// `cluster_id`. The log already there is verified in full and continued: the next
    /// revision written must be [`Writer::last_revision`] + 1. Refused when the directory holds
    /// another cluster's log or another writer is running on it; `.part` files of a killed
    /// writer are removed when their name comes up again.
    pub fn create_dir(dir: &Path, cluster_id: u64, opts: WriterOptions) -> Result<Writer, Error> {
        let handle = Dir::open(dir).map_err(|e| {
            Error::io(
                format!("cannot open the log directory {}", dir.display()),
                &e,
            )
        })?;
        let lock = match handle.claim(LOCK_NAME.as_ref(), 0o600) {
            Ok(Claim::Created(f)) => f,
            Ok(Claim::Busy) => {
                return Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "another etcd-snap-log is writing {}; stop it first, or give another \
                         directory",
                        dir.display()
                    ),
                ))
            }
            Ok(Claim::Foreign(what)) => {
                return Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "{} is {what}, not left by etcd-snap-log; remove it or give another \
                         directory",
                        handle.display(LOCK_NAME.as_ref())
                    ),
                ))
            }
            Err(e) => {
                return Err(Error::io(
                    format!("cannot create {}", handle.display(LOCK_NAME.as_ref())),
                    &e,
                ))
            }
        };
        let has_segments = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("cannot read {}", dir.display()), &e))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(SEGMENT_SUFFIX));
        let mut chain = [0u8; 32];
        let mut last_revision = None;
        if has_segments {
            let mut reader = Reader::open_dir(dir)?;
            for rev in reader.by_ref() {
                rev.map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!("cannot continue the log in {}: {e}", dir.display()),
                    )
                })?;
            }
            let info = reader.info_so_far();
            if info.cluster_id != cluster_id {
                return Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "{} holds the log of cluster {:016x}, not of this cluster \
                         ({cluster_id:016x}); give another directory",
                        dir.display(),
                        info.cluster_id
                    ),
                ));
            }
            chain = reader.chain_hash();
            last_revision = Some(info.last_revision);
        }
        Ok(Writer {
            sink: Sink::Dir { dir: handle, lock },
            cluster_id,
            opts,
            chain,
            last_revision,
            segment: None,
            body: Vec::new(),
            segments_closed: 0,
        })
    }

    /// A writer of a new log to a stream (stdout, a pipe), for cluster `cluster_id`.
    pub fn to_stream(w: Box<dyn Write + Send>, cluster_id: u64, opts: WriterOptions) -> Writer {
        Writer {
            sink: Sink::Stream(w),
            cluster_id,
            opts,
            chain: [0; 32],
            last_revision: None,
            segment: None,
            body: Vec::new(),
            segments_closed: 0,
        }
    }

    /// The last revision in the log (written now or found in the directory), if any.
    pub fn last_revision(&self) -> Option<i64> {
        self.last_revision
    }

    /// Segments closed by this writer.
    pub fn segments_closed(&self) -> u64 {
        self.segments_closed
    }

    /// When the open segment is due to close on age (`None` when no segment is open).
    pub fn deadline(&self) -> Option<Instant> {
        self.segment
            .as_ref()
            .map(|s| s.opened + self.opts.segment_age)
    }

    /// Whether the open segment is due to close on age at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let res = match (&mut self.sink, &mut self.segment) {
            (
                _,
                Some(Segment {
                    file: Some((w, _, _)),
                    ..
                }),
            ) => w.write_all(bytes),
            (Sink::Stream(w), _) => w.write_all(bytes),
            (Sink::Dir { .. }, _) => Ok(()),
        };
        if let Err(e) = res {
            return Err(Error::io(format!("cannot write {}", self.where_to()), &e));
        }
        if let Some(s) = self.segment.as_mut() {
            s.hasher.update(bytes);
            s.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    fn where_to(&self) -> String {
        match (&self.sink, &self.segment) {
            (
                Sink::Dir { dir, .. },
                Some(Segment {
                    file: Some((_, part, _)),
                    ..
                }),
            ) => dir.display(part),
            (Sink::Dir { dir, .. }, _) => dir.path().display().to_string(),
            (Sink::Stream(_), _) => "the log to the output".into(),
        }
    }

    fn open_segment(&mut self, first_revision: i64) -> Result<(), Error> {
        let file = match &self.sink {
            Sink::Stream(_) => None,
            Sink::Dir { dir, .. } => {
                let name = segment_name(self.cluster_id, first_revision);
                let part = OsString::from(format!("{name}.part"));
                let f = match dir.claim(&part, 0o600) {
                    Ok(Claim::Created(f)) => f,
                    Ok(Claim::Busy) | Ok(Claim::Foreign(_)) => {
                        return Err(Error::new(
                            ErrorKind::Refused,
                            format!(
                                "{} is in use or not ours; remove it or give another directory",
                                dir.display(&part)
                            ),
                        ))
                    }
                    Err(e) => {
                        return Err(Error::io(
                            format!("cannot create {}", dir.display(&part)),
                            &e,
                        ))
                    }
                };
                Some((BufWriter::with_capacity(1 << 20, f), part, name))
            }
        };
        self.segment = Some(Segment {
            file,
            hasher: Sha256::new(),
            bytes: 0,
            opened: Instant::now(),
            trailer: Trailer {
                last_revision: 0,
                records: 0,
                events: 0,
                first_unix_nanos: 0,
                last_unix_nanos: 0,
            },
        });
        let header = Header {
            cluster_id: self.cluster_id,
            first_revision,
            prev_hash: self.chain,
        }
        .encode();
        debug_assert_eq!(header.len(), HEADER_LEN);
        self.write_bytes(&header)
    }

    /// Appends one revision (the next one: the last + 1 once the log holds any), opening a
    /// segment if none is open and closing it once it reaches the size limit.
    pub fn write(&mut self, rev: &Revision) -> Result<(), Error> {
        if let Some(last) = self.last_revision {
            if rev.revision != last + 1 {
                return Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "revision {} cannot follow revision {last} in the log: it would leave a \
                         gap or a duplicate",
                        rev.revision
                    ),
                ));
            }
        }
        let mut body = std::mem::take(&mut self.body);
        encode_body(rev, &mut body)?;
        if self.segment.is_none() {
            self.open_segment(rev.revision)?;
        }
        let len = (body.len() as u32).to_le_bytes();
        let crc = record_crc(len, &body);
        self.write_bytes(&[RECORD_TAG])?;
        self.write_bytes(&len)?;
        self.write_bytes(&body)?;
        self.write_bytes(&crc.to_le_bytes())?;
        self.body = body;
        if self.body.capacity() > 1 << 20 {
            self.body = Vec::new();
        }
        self.last_revision = Some(rev.revision);
        let full = match self.segment.as_mut() {
            Some(s) => {
                let t = &mut s.trailer;
                if t.records == 0 {
                    t.first_unix_nanos = rev.observed_unix_nanos;
                }
                t.records += 1;
                t.events += rev.events.len() as u64;
                t.last_revision = rev.revision;
                t.last_unix_nanos = rev.observed_unix_nanos;
                s.bytes >= self.opts.segment_bytes
            }
            None => false,
        };
        if full {
            self.close_segment()?;
        }
        Ok(())
    }

    /// Closes the open segment, if any: trailer written, and in a directory fsynced and
    /// renamed into place.
    pub fn close_segment(&mut self) -> Result<(), Error> {
        let Some(trailer) = self.segment.as_ref().map(|s| s.trailer) else {
            return Ok(());
        };
        let fields = trailer.encode_fields();
        self.write_bytes(&fields)?;
        let Some(mut seg) = self.segment.take() else {
            return Ok(());
        };
        let hash: [u8; 32] = seg.hasher.finalize_reset().into();
        let mut chain = Sha256::new();
        chain.update(fields);
        chain.update(hash);
        let next_chain: [u8; 32] = chain.finalize().into();
        match (&mut self.sink, seg.file.take()) {
            (Sink::Dir { dir, .. }, Some((mut w, part, name))) => {
                let what = dir.display(&part);
                w.write_all(&hash)
                    .and_then(|()| w.flush())
                    .map_err(|e| Error::io(format!("cannot write {what}"), &e))?;
                let f = w
                    .into_inner()
                    .map_err(|e| Error::io(format!("cannot write {what}"), e.error()))?;
                f.sync_all()
                    .map_err(|e| Error::io(format!("cannot sync {what}"), &e))?;
                dir.install(&part, name.as_ref(), false)
                    .map_err(|e| Error::io(format!("cannot rename {what} to {name}"), &e))?;
                dir.sync()
                    .map_err(|e| Error::io(format!("cannot sync {}", dir.path().display()), &e))?;
            }
            (Sink::Stream(w), _) => {
                w.write_all(&hash)
                    .map_err(|e| Error::io("cannot write the log to the output", &e))?;
            }
            (Sink::Dir { .. }, None) => {}
        }
        debug_assert_eq!(fields.len() + 32, TRAILER_LEN);
        self.chain = next_chain;
        self.segments_closed += 1;
        Ok(())
    }

    /// Pushes what was written to the stream through (a no-op for a directory, whose open
    /// segment becomes visible only when closed).
    pub fn flush(&mut self) -> Result<(), Error> {
        if let Sink::Stream(w) = &mut self.sink {
            w.flush()
                .map_err(|e| Error::io("cannot write the log to the output", &e))?;
        }
        Ok(())
    }

    /// Closes the open segment and flushes: the log is complete up to the last revision.
    pub fn finish(mut self) -> Result<(), Error> {
        self.close_segment()?;
        self.flush()?;
        if let Sink::Dir { dir, lock } = &self.sink {
            let _ = dir.remove_if_holds(LOCK_NAME.as_ref(), lock);
        }
        Ok(())
    }
}
