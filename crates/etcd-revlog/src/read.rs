//! Reading a log back, from a directory of segments or one stream of them, checking every
//! byte as it passes: record CRCs, segment hashes, the chain between segments, one cluster,
//! revisions strictly consecutive. Memory is one record at a time.

use crate::format::{
    decode_body, parse_segment_name, record_crc, Header, Trailer, HEADER_LEN, HEADER_MAGIC,
    MAX_RECORD_BYTES, RECORD_TAG, SEGMENT_SUFFIX, TRAILER_HASHED, TRAILER_TAG,
};
use crate::{Error, ErrorKind, LogInfo, Revision};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where the segments come from.
enum Input {
    /// One stream holding segments back to back.
    Stream(BufReader<Box<dyn Read + Send>>),
    /// Segment files still to read, in name order, and the one being read.
    Dir {
        dir: PathBuf,
        names: VecDeque<String>,
        current: Option<(String, BufReader<std::fs::File>)>,
    },
}

/// The segment being read.
struct Open {
    header: Header,
    /// For messages: the file name, or "segment N of the stream".
    label: String,
    hasher: Sha256,
    records: u64,
    events: u64,
    first_unix_nanos: i64,
    last_unix_nanos: i64,
}

/// Reads a log revision by revision ([`Iterator`]), verifying as it goes. The first error
/// ends the iteration; the revisions yielded before it were intact.
pub struct Reader {
    input: Input,
    open: Option<Open>,
    /// SHA-256 of the last trailer read (zero before the first segment).
    chain: [u8; 32],
    /// The next revision expected, once a segment has been read.
    next_revision: Option<i64>,
    info: LogInfo,
    done: bool,
    body: Vec<u8>,
}

impl Reader {
    /// Opens the log in `dir`: every `*.revlog` file in name order. `.part` files (segments a
    /// killed writer never closed) are skipped and listed in [`LogInfo::partial_files`].
    pub fn open_dir(dir: &Path) -> Result<Reader, Error> {
        let what = || format!("cannot read the log directory {}", dir.display());
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(what(), &e))?;
        let mut names = Vec::new();
        let mut partial = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(what(), &e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.ends_with(".part") {
                partial.push(name);
            } else if name.ends_with(SEGMENT_SUFFIX) {
                if parse_segment_name(&name).is_none() {
                    return Err(Error::integrity(format!(
                        "{}: not a segment name (<cluster id>-<first revision>{SEGMENT_SUFFIX}); \
                         move it out of the log directory",
                        dir.join(&name).display()
                    )));
                }
                names.push(name);
            }
        }
        names.sort();
        partial.sort();
        Ok(Reader::new(
            Input::Dir {
                dir: dir.to_path_buf(),
                names: names.into(),
                current: None,
            },
            partial,
        ))
    }

    /// Reads a log from one stream of concatenated segments (stdin, a pipe).
    pub fn from_stream(r: Box<dyn Read + Send>) -> Result<Reader, Error> {
        Ok(Reader::new(
            Input::Stream(BufReader::with_capacity(1 << 16, r)),
            Vec::new(),
        ))
    }

    fn new(input: Input, partial_files: Vec<String>) -> Reader {
        Reader {
            input,
            open: None,
            chain: [0; 32],
            next_revision: None,
            info: LogInfo {
                partial_files,
                ..LogInfo::default()
            },
            done: false,
            body: Vec::new(),
        }
    }

    /// What has been read and verified so far: after the iteration ended without an error,
    /// the whole log.
    pub fn info_so_far(&self) -> LogInfo {
        self.info.clone()
    }

    /// The SHA-256 of the last trailer read: what the next segment's header must chain to.
    pub(crate) fn chain_hash(&self) -> [u8; 32] {
        self.chain
    }

    /// The last-good position, for messages.
    fn intact(&self) -> String {
        if self.info.revisions == 0 {
            "no revision of it can be trusted".into()
        } else {
            format!("it is intact up to revision {}", self.info.last_revision)
        }
    }

    fn fail(&self, label: &str, what: impl std::fmt::Display) -> Error {
        Error::integrity(format!(
            "revision log {label}: {what}; {}; use an intact copy of the log",
            self.intact()
        ))
    }

    /// Reads exactly `buf.len()` bytes, or returns how many there were before the end.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r: &mut dyn Read = match &mut self.input {
            Input::Stream(r) => r,
            Input::Dir { current, .. } => match current {
                Some((_, r)) => r,
                None => return Ok(0),
            },
        };
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn read_error(&self, label: &str, e: &io::Error) -> Error {
        match &self.input {
            Input::Dir { dir, .. } => {
                Error::io(format!("cannot read {}", dir.join(label).display()), e)
            }
            // A stream that fails mid-way (a decompressor or decryptor in front of it
            // reporting damage) is a damaged log.
            Input::Stream(_) => Error::new(
                ErrorKind::Integrity,
                format!(
                    "cannot read the revision log stream ({label}): {}; {}",
                    etcd_common::error::io_reason(e),
                    self.intact()
                ),
            ),
        }
    }

    /// Reads exactly `buf.len()` bytes of the open segment, or fails as truncated.
    fn read_segment_bytes(&mut self, buf: &mut [u8], label: &str, what: &str) -> Result<(), Error> {
        let n = self
            .read_full(buf)
            .map_err(|e| self.read_error(label, &e))?;
        if n < buf.len() {
            return Err(self.fail(label, format!("truncated inside {what}")));
        }
        Ok(())
    }

    /// Starts the next segment; `Ok(false)` at the clean end of the log.
    fn open_next(&mut self) -> Result<bool, Error> {
        let label = match &mut self.input {
            Input::Stream(_) => format!("segment {} of the stream", self.info.segments + 1),
            Input::Dir {
                dir,
                names,
                current,
            } => {
                let Some(name) = names.pop_front() else {
                    return Ok(false);
                };
                let path = dir.join(&name);
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(&path)
                    .map_err(|e| Error::io(format!("cannot open {}", path.display()), &e))?;
                let meta = file
                    .metadata()
                    .map_err(|e| Error::io(format!("cannot stat {}", path.display()), &e))?;
                if !meta.is_file() {
                    return Err(Error::integrity(format!(
                        "{} is not a regular file; move it out of the log directory",
                        path.display()
                    )));
                }
                *current = Some((name.clone(), BufReader::with_capacity(1 << 16, file)));
                format!("segment {name}")
            }
        };
        let mut hb = [0u8; HEADER_LEN];
        let n = self
            .read_full(&mut hb)
            .map_err(|e| self.read_error(&label, &e))?;
        if n == 0 && matches!(self.input, Input::Stream(_)) {
            return Ok(false);
        }
        if n < HEADER_LEN {
            let m = n.min(HEADER_MAGIC.len());
            if hb[..m] != HEADER_MAGIC[..m] {
                return Err(self.fail(&label, "not a revision log segment (bad magic)"));
            }
            return Err(self.fail(&label, "truncated inside the segment header"));
        }
        let header = Header::decode(&hb).map_err(|why| self.fail(&label, why))?;
        if let Input::Dir {
            current: Some((name, _)),
            ..
        } = &self.input
        {
            if parse_segment_name(name) != Some((header.cluster_id, header.first_revision)) {
                return Err(self.fail(
                    &label,
                    format!(
                        "the name does not match its header (cluster {:016x}, first revision \
                         {}): renamed or moved",
                        header.cluster_id, header.first_revision
                    ),
                ));
            }
        }
        if self.info.segments > 0 && header.cluster_id != self.info.cluster_id {
            return Err(self.fail(
                &label,
                format!(
                    "belongs to cluster {:016x}, the log to cluster {:016x}",
                    header.cluster_id, self.info.cluster_id
                ),
            ));
        }
        if let Some(next) = self.next_revision {
            if header.first_revision != next {
                let why = if header.first_revision > next {
                    format!(
                        "starts at revision {}, the previous segment ended at {}: a segment is \
                         missing",
                        header.first_revision,
                        next - 1
                    )
                } else {
                    format!(
                        "starts at revision {}, the previous segment ended at {}: segments out \
                         of order or duplicated",
                        header.first_revision,
                        next - 1
                    )
                };
                return Err(self.fail(&label, why));
            }
        }
        if header.prev_hash != self.chain {
            let why = if self.info.segments == 0 {
                "chains to a previous segment, but is the first: the log's first segment is \
                 missing"
            } else {
                "does not chain to the previous segment: a segment is missing, reordered or \
                 replaced"
            };
            return Err(self.fail(&label, why));
        }
        let mut hasher = Sha256::new();
        hasher.update(hb);
        self.open = Some(Open {
            header,
            label,
            hasher,
            records: 0,
            events: 0,
            first_unix_nanos: 0,
            last_unix_nanos: 0,
        });
        Ok(true)
    }

    /// Reads the next record or trailer of the open segment: `Some(revision)` for a record,
    /// `None` after the trailer (the segment is closed and verified).
    fn read_item(&mut self) -> Result<Option<Revision>, Error> {
        let Some(label) = self.open.as_ref().map(|o| o.label.clone()) else {
            return Ok(None);
        };
        let mut tag = [0u8; 1];
        self.read_segment_bytes(&mut tag, &label, "the segment (no trailer)")?;
        match tag[0] {
            RECORD_TAG => {
                let mut len = [0u8; 4];
                self.read_segment_bytes(&mut len, &label, "a record")?;
                let n = u32::from_le_bytes(len) as usize;
                if n > MAX_RECORD_BYTES {
                    return Err(self.fail(
                        &label,
                        format!("a record of {n} bytes, above the limit: damaged"),
                    ));
                }
                let mut body = std::mem::take(&mut self.body);
                body.resize(n, 0);
                let mut crc = [0u8; 4];
                let res = self
                    .read_segment_bytes(&mut body, &label, "a record")
                    .and_then(|()| self.read_segment_bytes(&mut crc, &label, "a record"));
                if let Err(e) = res {
                    self.body = body;
                    return Err(e);
                }
                if u32::from_le_bytes(crc) != record_crc(len, &body) {
                    self.body = body;
                    let after = self.info.last_revision;
                    return Err(self.fail(
                        &label,
                        format!("the record after revision {after} fails its checksum: damaged"),
                    ));
                }
                let decoded = decode_body(&body);
                if let Some(open) = self.open.as_mut() {
                    open.hasher.update(tag);
                    open.hasher.update(len);
                    open.hasher.update(&body);
                    open.hasher.update(crc);
                }
                self.body = body;
                if self.body.capacity() > 1 << 20 {
                    self.body = Vec::new();
                }
                let rev = decoded.map_err(|why| self.fail(&label, why))?;
                let Some(open) = self.open.as_mut() else {
                    return Ok(None);
                };
                let expected = self.next_revision.unwrap_or(open.header.first_revision);
                let expected = if open.records == 0 {
                    open.header.first_revision
                } else {
                    expected
                };
                if rev.revision != expected {
                    let why = if rev.revision < expected {
                        format!(
                            "revision {} after revision {}: duplicated or out of order",
                            rev.revision,
                            expected - 1
                        )
                    } else {
                        format!(
                            "revision {} follows revision {}: revisions missing",
                            rev.revision,
                            expected - 1
                        )
                    };
                    return Err(self.fail(&label, why));
                }
                if open.records == 0 {
                    open.first_unix_nanos = rev.observed_unix_nanos;
                }
                open.records += 1;
                open.events += rev.events.len() as u64;
                open.last_unix_nanos = rev.observed_unix_nanos;
                if self.info.revisions == 0 {
                    self.info.cluster_id = open.header.cluster_id;
                    self.info.first_revision = rev.revision;
                    self.info.first_unix_nanos = rev.observed_unix_nanos;
                }
                self.info.revisions += 1;
                self.info.events += rev.events.len() as u64;
                self.info.last_revision = rev.revision;
                self.info.last_unix_nanos = rev.observed_unix_nanos;
                self.next_revision = Some(rev.revision + 1);
                Ok(Some(rev))
            }
            TRAILER_TAG => {
                let mut fields = [0u8; TRAILER_HASHED];
                fields[0] = TRAILER_TAG;
                self.read_segment_bytes(&mut fields[1..], &label, "the trailer")?;
                let mut hash = [0u8; 32];
                self.read_segment_bytes(&mut hash, &label, "the trailer")?;
                let Some(mut open) = self.open.take() else {
                    return Ok(None);
                };
                open.hasher.update(fields);
                let computed: [u8; 32] = open.hasher.finalize().into();
                if computed != hash {
                    return Err(self.fail(&label, "the segment's SHA-256 does not match: damaged"));
                }
                let t = Trailer::decode_fields(&fields);
                if open.records == 0 {
                    return Err(self.fail(&label, "the segment holds no revision"));
                }
                if t.last_revision != self.info.last_revision
                    || t.records != open.records
                    || t.events != open.events
                    || t.first_unix_nanos != open.first_unix_nanos
                    || t.last_unix_nanos != open.last_unix_nanos
                {
                    return Err(self.fail(&label, "the trailer does not match the records"));
                }
                let mut chain = Sha256::new();
                chain.update(fields);
                chain.update(hash);
                self.chain = chain.finalize().into();
                self.info.segments += 1;
                if let Input::Dir { current, .. } = &mut self.input {
                    if let Some((_, mut r)) = current.take() {
                        let mut extra = [0u8; 1];
                        let n = r
                            .read(&mut extra)
                            .map_err(|e| self.read_error(&label, &e))?;
                        if n != 0 {
                            return Err(self.fail(&label, "bytes after the trailer"));
                        }
                    }
                }
                Ok(None)
            }
            other => Err(self.fail(
                &label,
                format!(
                    "unexpected byte 0x{other:02x} after revision {}: damaged",
                    self.info.last_revision
                ),
            )),
        }
    }

    fn step(&mut self) -> Result<Option<Revision>, Error> {
        loop {
            if self.open.is_none() && !self.open_next()? {
                if self.info.segments == 0 {
                    let what = match &self.input {
                        Input::Dir { dir, .. } => format!("{}", dir.display()),
                        Input::Stream(_) => "the stream".into(),
                    };
                    return Err(Error::integrity(format!(
                        "revision log {what}: holds no complete segment; check the path, or \
                         wait until the follower closes its first segment"
                    )));
                }
                return Ok(None);
            }
            if let Some(rev) = self.read_item()? {
                return Ok(Some(rev));
            }
        }
    }
}

impl Iterator for Reader {
    type Item = Result<Revision, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(rev)) => Some(Ok(rev)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads the whole log in `dir` and verifies it: what it covers, or the first problem.
pub fn verify_dir(dir: &Path) -> Result<LogInfo, Error> {
    drain(Reader::open_dir(dir)?)
}

/// Reads a whole log stream and verifies it: what it covers, or the first problem.
pub fn verify_stream(r: impl Read) -> Result<LogInfo, Error> {
    // The reader owns its stream ('static, Send); `r` is borrowed and maybe not Send. So `r`
    // is read on this thread and handed over in chunks through a bounded channel (memory
    // stays bounded) to the reader, verifying on a scoped thread.
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
        let verifier = s.spawn(move || {
            let reader = Reader::new(
                Input::Stream(BufReader::with_capacity(
                    1 << 16,
                    Box::new(ChannelRead {
                        rx,
                        chunk: Vec::new(),
                        at: 0,
                    }),
                )),
                Vec::new(),
            );
            drain(reader)
        });
        let mut r = r;
        loop {
            let mut chunk = vec![0u8; 1 << 16];
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.send(Ok(chunk)).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
        drop(tx);
        verifier.join().unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Io,
                "the log verifier stopped unexpectedly; run again",
            ))
        })
    })
}

/// Chunks from a bounded channel as a `Read`, so that a borrowed stream can feed a reader that
/// wants an owned one (the channel holds at most four chunks: memory stays bounded).
struct ChannelRead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads every revision, keeping none: the log's info, or the first problem.
fn drain(mut reader: Reader) -> Result<LogInfo, Error> {
    for rev in reader.by_ref() {
        rev?;
    }
    Ok(reader.info_so_far())
}
