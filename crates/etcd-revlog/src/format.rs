//! The byte layout of segments, records and trailers (docs/revision-log.md), shared by the
//! writer and the reader so that both agree on every offset.

use crate::{Error, Event, EventKind, Lease, Revision};

/// The first 8 bytes of every segment.
pub(crate) const HEADER_MAGIC: &[u8; 8] = b"ETCDRLOG";
/// The format version this crate writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Header: magic 8, version 4, reserved 4, cluster ID 8, first revision 8, chain hash 32.
pub(crate) const HEADER_LEN: usize = 64;
/// The byte that starts a record.
pub(crate) const RECORD_TAG: u8 = b'R';
/// The byte that starts a trailer.
pub(crate) const TRAILER_TAG: u8 = b'T';
/// Trailer: tag 1, last revision 8, records 8, events 8, first and last observed time 8 + 8,
/// SHA-256 32.
pub(crate) const TRAILER_LEN: usize = 73;
/// The trailer bytes the segment hash covers (all but the hash itself).
pub(crate) const TRAILER_HASHED: usize = TRAILER_LEN - 32;
/// The fixed part of a record body: revision 8, observed time 8, event count 4, lease count 4.
const BODY_FIXED: usize = 24;
/// The smallest encoded event: kind 1, four i64 fields, two u32 lengths.
const EVENT_MIN: usize = 1 + 32 + 8;
/// An encoded lease.
const LEASE_LEN: usize = 16;

/// The largest record body written or read: far above etcd's request limit (1.5 MiB by
/// default, `--max-request-bytes`), and the bound of the reader's memory.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// The file name suffix of a closed segment in a directory.
pub const SEGMENT_SUFFIX: &str = ".revlog";

/// The name of a segment in a directory: cluster ID in hex, first revision in 20 digits, so
/// that `ls` sorts segments in log order.
pub(crate) fn segment_name(cluster_id: u64, first_revision: i64) -> String {
    format!("{cluster_id:016x}-{first_revision:020}{SEGMENT_SUFFIX}")
}

/// The cluster ID and first revision a segment name states; `None` for another name.
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, i64)> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    let (cluster, rev) = stem.split_once('-')?;
    if cluster.len() != 16 || rev.len() != 20 || !rev.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        u64::from_str_radix(cluster, 16).ok()?,
        rev.parse::<i64>().ok()?,
    ))
}

/// A segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub cluster_id: u64,
    pub first_revision: i64,
    pub prev_hash: [u8; 32],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(HEADER_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // 12..16 reserved, zero.
        b[16..24].copy_from_slice(&self.cluster_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_revision.to_le_bytes());
        b[32..64].copy_from_slice(&self.prev_hash);
        b
    }

    /// Decodes a header, or says in a few words why these bytes are not one.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, String> {
        if &b[0..8] != HEADER_MAGIC {
            return Err("not a revision log segment (bad magic)".into());
        }
        let version = u32::from_le_bytes(arr(&b[8..12]));
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            ));
        }
        if b[12..16] != [0u8; 4] {
            return Err("reserved header bytes are not zero".into());
        }
        let first_revision = i64::from_le_bytes(arr(&b[24..32]));
        if first_revision < 1 {
            return Err(format!("first revision {first_revision} is not positive"));
        }
        Ok(Header {
            cluster_id: u64::from_le_bytes(arr(&b[16..24])),
            first_revision,
            prev_hash: arr(&b[32..64]),
        })
    }
}

/// A segment trailer, without its tag and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub last_revision: i64,
    pub records: u64,
    pub events: u64,
    pub first_unix_nanos: i64,
    pub last_unix_nanos: i64,
}

impl Trailer {
    /// The hashed part: tag and fields.
    pub fn encode_fields(&self) -> [u8; TRAILER_HASHED] {
        let mut b = [0u8; TRAILER_HASHED];
        b[0] = TRAILER_TAG;
        b[1..9].copy_from_slice(&self.last_revision.to_le_bytes());
        b[9..17].copy_from_slice(&self.records.to_le_bytes());
        b[17..25].copy_from_slice(&self.events.to_le_bytes());
        b[25..33].copy_from_slice(&self.first_unix_nanos.to_le_bytes());
        b[33..41].copy_from_slice(&self.last_unix_nanos.to_le_bytes());
        b
    }

    /// Decodes the fields after the tag (`b` is the whole hashed part, tag included).
    pub fn decode_fields(b: &[u8; TRAILER_HASHED]) -> Trailer {
        Trailer {
            last_revision: i64::from_le_bytes(arr(&b[1..9])),
            records: u64::from_le_bytes(arr(&b[9..17])),
            events: u64::from_le_bytes(arr(&b[17..25])),
            first_unix_nanos: i64::from_le_bytes(arr(&b[25..33])),
            last_unix_nanos: i64::from_le_bytes(arr(&b[33..41])),
        }
    }
}

/// A fixed-size array from a slice of exactly that length (the callers slice constant ranges).
fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}

/// The CRC-32C of a record: over its tag, length and body.
pub(crate) fn record_crc(len: [u8; 4], body: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&[RECORD_TAG]);
    let crc = crc32c::crc32c_append(crc, &len);
    crc32c::crc32c_append(crc, body)
}

/// Encodes a revision's record body into `out` (cleared first).
pub(crate) fn encode_body(rev: &Revision, out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    out.extend_from_slice(&rev.revision.to_le_bytes());
    out.extend_from_slice(&rev.observed_unix_nanos.to_le_bytes());
    out.extend_from_slice(&len32(rev.events.len())?.to_le_bytes());
    out.extend_from_slice(&len32(rev.leases.len())?.to_le_bytes());
    for e in &rev.events {
        out.push(match e.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        for v in [e.create_revision, e.mod_revision, e.version, e.lease] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&len32(e.key.len())?.to_le_bytes());
        out.extend_from_slice(&e.key);
        out.extend_from_slice(&len32(e.value.len())?.to_le_bytes());
        out.extend_from_slice(&e.value);
        if out.len() > MAX_RECORD_BYTES {
            break;
        }
    }
    for l in &rev.leases {
        out.extend_from_slice(&l.id.to_le_bytes());
        out.extend_from_slice(&l.granted_ttl.to_le_bytes());
    }
    if out.len() > MAX_RECORD_BYTES {
        return Err(Error::new(
            crate::ErrorKind::Refused,
            format!(
                "revision {} holds more than {} MiB of events, above the log's record limit",
                rev.revision,
                MAX_RECORD_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

fn len32(n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| {
        Error::new(
            crate::ErrorKind::Refused,
            "a field is larger than 4 GiB, above the log's record limit",
        )
    })
}

/// A cursor over a record body; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("record body ends inside a field".into());
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(arr(self.take(8)?)))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(arr(self.take(4)?)))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// Decodes a record body, checking that it is self-consistent: at least one event, every
/// event of this revision, nothing left over. Allocations are bounded by the body's length.
pub(crate) fn decode_body(body: &[u8]) -> Result<Revision, String> {
    let mut c = Cursor { b: body };
    let revision = c.i64()?;
    let observed_unix_nanos = c.i64()?;
    let n_events = c.u32()? as usize;
    let n_leases = c.u32()? as usize;
    let room = body.len().saturating_sub(BODY_FIXED);
    if n_events == 0 {
        return Err(format!("revision {revision} holds no event"));
    }
    if n_events > room / EVENT_MIN || n_leases > room / LEASE_LEN {
        return Err(format!("revision {revision}: counts exceed the record"));
    }
    let mut events = Vec::with_capacity(n_events);
    for _ in 0..n_events {
        let kind = match c.take(1)?[0] {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            k => return Err(format!("revision {revision}: unknown event kind {k}")),
        };
        let create_revision = c.i64()?;
        let mod_revision = c.i64()?;
        let version = c.i64()?;
        let lease = c.i64()?;
        let key = c.bytes()?;
        let value = c.bytes()?;
        if mod_revision != revision {
            return Err(format!(
                "revision {revision}: an event has mod revision {mod_revision}"
            ));
        }
        events.push(Event {
            kind,
            key,
            value,
            create_revision,
            mod_revision,
            version,
            lease,
        });
    }
    let mut leases = Vec::with_capacity(n_leases);
    for _ in 0..n_leases {
        leases.push(Lease {
            id: c.i64()?,
            granted_ttl: c.i64()?,
        });
    }
    if !c.b.is_empty() {
        return Err(format!(
            "revision {revision}: {} bytes after the last field",
            c.b.len()
        ));
    }
    Ok(Revision {
        revision,
        observed_unix_nanos,
        events,
        leases,
    })
}
