//! A tiny protobuf encoder and decoder for the handful of raft/etcd messages a restore writes
//! (etcd-formats.md §7). The encoder reproduces gogoproto's bytes exactly: fields in ascending
//! number order, non-nullable fields always emitted (even when zero), nullable `bytes` emitted
//! iff present, repeated scalars unpacked. The decoder accepts any valid encoding (packed
//! repeated fields, unknown fields, any order) so that tests can compare decoded structures.

use crate::error::{Error, Result};

/// Wire type of varint fields.
const VARINT: u8 = 0;
/// Wire type of fixed 64-bit fields.
const FIXED64: u8 = 1;
/// Wire type of length-delimited fields.
const LEN: u8 = 2;
/// Wire type of fixed 32-bit fields.
const FIXED32: u8 = 5;

/// `raftpb.EntryType` `EntryNormal`.
pub const ENTRY_NORMAL: i32 = 0;
/// `raftpb.EntryType` `EntryConfChange`.
pub const ENTRY_CONF_CHANGE: i32 = 1;
/// `raftpb.ConfChangeType` `ConfChangeAddNode`.
pub const CONF_CHANGE_ADD_NODE: i32 = 0;

/// Appends `v` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key.
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Appends a varint field (always, even when zero: gogo's non-nullable scalars).
fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, VARINT);
    put_varint(out, v);
}

/// Appends an enum/int32 field as Go does (negative values sign-extended to 64 bits).
fn put_int32(out: &mut Vec<u8>, field: u32, v: i32) {
    put_uint(out, field, i64::from(v) as u64);
}

/// Appends a length-delimited field.
fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a nullable bytes field when present.
fn put_opt_bytes(out: &mut Vec<u8>, field: u32, b: Option<&[u8]>) {
    if let Some(b) = b {
        put_bytes(out, field, b);
    }
}

/// One decoded field value.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    /// A varint.
    Varint(u64),
    /// A length-delimited payload.
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value (unused by these messages; skipped).
    Fixed,
}

/// Iterates over the fields of one encoded message.
struct Fields<'a> {
    /// The message bytes.
    buf: &'a [u8],
    /// Read position.
    pos: usize,
    /// The message name, for errors.
    msg: &'static str,
}

impl<'a> Fields<'a> {
    /// Starts reading `buf` as message `msg`.
    fn new(buf: &'a [u8], msg: &'static str) -> Self {
        Fields { buf, pos: 0, msg }
    }

    /// An error about this message.
    fn err(&self, what: &str) -> Error {
        Error::corrupt(format!("{}: {what} at byte {}", self.msg, self.pos))
    }

    /// Reads a varint.
    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }

    /// Reads `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("truncated field"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    /// The next field, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| self.err("bad field number"))?;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        let v = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| self.err("bad length"))?;
                Value::Bytes(self.take(n)?)
            }
            FIXED64 => {
                self.take(8)?;
                Value::Fixed
            }
            FIXED32 => {
                self.take(4)?;
                Value::Fixed
            }
            w => return Err(self.err(&format!("unsupported wire type {w}"))),
        };
        Ok(Some((field, v)))
    }

    /// `v` as a varint, or an error naming `field`.
    fn uint(&self, field: u32, v: Value<'_>) -> Result<u64> {
        match v {
            Value::Varint(x) => Ok(x),
            _ => Err(self.err(&format!("field {field} is not a varint"))),
        }
    }

    /// `v` as bytes, or an error naming `field`.
    fn bytes(&self, field: u32, v: Value<'a>) -> Result<&'a [u8]> {
        match v {
            Value::Bytes(b) => Ok(b),
            _ => Err(self.err(&format!("field {field} is not length-delimited"))),
        }
    }

    /// Appends a repeated uint64 element, accepting the packed form too.
    fn repeated(&self, field: u32, v: Value<'a>, out: &mut Vec<u64>) -> Result<()> {
        match v {
            Value::Varint(x) => out.push(x),
            Value::Bytes(b) => {
                let mut packed = Fields::new(b, self.msg);
                while packed.pos < b.len() {
                    out.push(packed.varint()?);
                }
            }
            Value::Fixed => return Err(self.err(&format!("field {field} has a fixed wire type"))),
        }
        Ok(())
    }
}

/// `raftpb.Entry`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// `Type` (`ENTRY_NORMAL`, `ENTRY_CONF_CHANGE`, ...).
    pub entry_type: i32,
    /// `Term`.
    pub term: u64,
    /// `Index`.
    pub index: u64,
    /// `Data` (nullable).
    pub data: Option<Vec<u8>>,
}

impl Entry {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_int32(&mut out, 1, self.entry_type);
        put_uint(&mut out, 2, self.term);
        put_uint(&mut out, 3, self.index);
        put_opt_bytes(&mut out, 4, self.data.as_deref());
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<Entry> {
        let mut f = Fields::new(buf, "raftpb.Entry");
        let mut m = Entry::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.entry_type = f.uint(n, v)? as i32,
                2 => m.term = f.uint(n, v)?,
                3 => m.index = f.uint(n, v)?,
                4 => m.data = Some(f.bytes(n, v)?.to_vec()),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `raftpb.HardState`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    /// `term`.
    pub term: u64,
    /// `vote`.
    pub vote: u64,
    /// `commit`.
    pub commit: u64,
}

impl HardState {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.term);
        put_uint(&mut out, 2, self.vote);
        put_uint(&mut out, 3, self.commit);
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<HardState> {
        let mut f = Fields::new(buf, "raftpb.HardState");
        let mut m = HardState::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.term = f.uint(n, v)?,
                2 => m.vote = f.uint(n, v)?,
                3 => m.commit = f.uint(n, v)?,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `raftpb.ConfState`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfState {
    /// `voters`.
    pub voters: Vec<u64>,
    /// `learners`.
    pub learners: Vec<u64>,
    /// `voters_outgoing`.
    pub voters_outgoing: Vec<u64>,
    /// `learners_next`.
    pub learners_next: Vec<u64>,
    /// `auto_leave` (always emitted).
    pub auto_leave: bool,
}

impl ConfState {
    /// gogo's encoding (repeated fields unpacked).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (field, list) in [
            (1, &self.voters),
            (2, &self.learners),
            (3, &self.voters_outgoing),
            (4, &self.learners_next),
        ] {
            for &id in list {
                put_uint(&mut out, field, id);
            }
        }
        put_uint(&mut out, 5, u64::from(self.auto_leave));
        out
    }

    /// Decodes any valid encoding (packed or not).
    pub fn decode(buf: &[u8]) -> Result<ConfState> {
        let mut f = Fields::new(buf, "raftpb.ConfState");
        let mut m = ConfState::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => f.repeated(n, v, &mut m.voters)?,
                2 => f.repeated(n, v, &mut m.learners)?,
                3 => f.repeated(n, v, &mut m.voters_outgoing)?,
                4 => f.repeated(n, v, &mut m.learners_next)?,
                5 => m.auto_leave = f.uint(n, v)? != 0,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `raftpb.ConfChange`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfChange {
    /// `ID`.
    pub id: u64,
    /// `Type` (`CONF_CHANGE_ADD_NODE`, ...).
    pub change_type: i32,
    /// `NodeID`.
    pub node_id: u64,
    /// `Context` (nullable).
    pub context: Option<Vec<u8>>,
}

impl ConfChange {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.id);
        put_int32(&mut out, 2, self.change_type);
        put_uint(&mut out, 3, self.node_id);
        put_opt_bytes(&mut out, 4, self.context.as_deref());
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<ConfChange> {
        let mut f = Fields::new(buf, "raftpb.ConfChange");
        let mut m = ConfChange::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.id = f.uint(n, v)?,
                2 => m.change_type = f.uint(n, v)? as i32,
                3 => m.node_id = f.uint(n, v)?,
                4 => m.context = Some(f.bytes(n, v)?.to_vec()),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `raftpb.SnapshotMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMetadata {
    /// `conf_state` (non-nullable).
    pub conf_state: ConfState,
    /// `index`.
    pub index: u64,
    /// `term`.
    pub term: u64,
}

impl SnapshotMetadata {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &self.conf_state.encode());
        put_uint(&mut out, 2, self.index);
        put_uint(&mut out, 3, self.term);
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<SnapshotMetadata> {
        let mut f = Fields::new(buf, "raftpb.SnapshotMetadata");
        let mut m = SnapshotMetadata::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.conf_state = ConfState::decode(f.bytes(n, v)?)?,
                2 => m.index = f.uint(n, v)?,
                3 => m.term = f.uint(n, v)?,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `raftpb.Snapshot`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftSnapshot {
    /// `data` (nullable): the v2 store JSON.
    pub data: Option<Vec<u8>>,
    /// `metadata` (non-nullable).
    pub metadata: SnapshotMetadata,
}

impl RaftSnapshot {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_opt_bytes(&mut out, 1, self.data.as_deref());
        put_bytes(&mut out, 2, &self.metadata.encode());
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<RaftSnapshot> {
        let mut f = Fields::new(buf, "raftpb.Snapshot");
        let mut m = RaftSnapshot::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.data = Some(f.bytes(n, v)?.to_vec()),
                2 => m.metadata = SnapshotMetadata::decode(f.bytes(n, v)?)?,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `etcdserverpb.Metadata`: the WAL's metadata record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `NodeID`: the local member.
    pub node_id: u64,
    /// `ClusterID`.
    pub cluster_id: u64,
}

impl Metadata {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.node_id);
        put_uint(&mut out, 2, self.cluster_id);
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<Metadata> {
        let mut f = Fields::new(buf, "etcdserverpb.Metadata");
        let mut m = Metadata::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.node_id = f.uint(n, v)?,
                2 => m.cluster_id = f.uint(n, v)?,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `snappb.snapshot`: the envelope of a `.snap` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapFile {
    /// `crc`: CRC-32C of `data`.
    pub crc: u32,
    /// `data` (nullable): an encoded [`RaftSnapshot`].
    pub data: Option<Vec<u8>>,
}

impl SnapFile {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, u64::from(self.crc));
        put_opt_bytes(&mut out, 2, self.data.as_deref());
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<SnapFile> {
        let mut f = Fields::new(buf, "snappb.snapshot");
        let mut m = SnapFile::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.crc = f.uint(n, v)? as u32,
                2 => m.data = Some(f.bytes(n, v)?.to_vec()),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `walpb.Record`: one WAL record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// `type` (see [`crate::wal::RecordType`]).
    pub record_type: i64,
    /// `crc`: the running CRC-32C after this record's data.
    pub crc: u32,
    /// `data` (nullable).
    pub data: Option<Vec<u8>>,
}

impl Record {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.record_type as u64);
        put_uint(&mut out, 2, u64::from(self.crc));
        put_opt_bytes(&mut out, 3, self.data.as_deref());
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<Record> {
        let mut f = Fields::new(buf, "walpb.Record");
        let mut m = Record::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.record_type = f.uint(n, v)? as i64,
                2 => m.crc = f.uint(n, v)? as u32,
                3 => m.data = Some(f.bytes(n, v)?.to_vec()),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// `walpb.Snapshot`: a WAL snapshot marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalSnapshot {
    /// `index`.
    pub index: u64,
    /// `term`.
    pub term: u64,
    /// `conf_state` (3.5+, nullable).
    pub conf_state: Option<ConfState>,
}

impl WalSnapshot {
    /// gogo's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.index);
        put_uint(&mut out, 2, self.term);
        if let Some(cs) = &self.conf_state {
            put_bytes(&mut out, 3, &cs.encode());
        }
        out
    }

    /// Decodes any valid encoding.
    pub fn decode(buf: &[u8]) -> Result<WalSnapshot> {
        let mut f = Fields::new(buf, "walpb.Snapshot");
        let mut m = WalSnapshot::default();
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => m.index = f.uint(n, v)?,
                2 => m.term = f.uint(n, v)?,
                3 => m.conf_state = Some(ConfState::decode(f.bytes(n, v)?)?),
                _ => {}
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default member ID, `8e9e05c52164694d`.
    const ID: u64 = 0x8e9e_05c5_2164_694d;
    /// Its varint bytes.
    const ID_VARINT: [u8; 10] = [0xcd, 0xd2, 0x91, 0x8b, 0xd2, 0xb8, 0x81, 0xcf, 0x8e, 0x01];

    #[test]
    fn conf_change_example() {
        let cc = ConfChange {
            id: 0,
            change_type: CONF_CHANGE_ADD_NODE,
            node_id: ID,
            context: Some(b"ctx".to_vec()),
        };
        let mut want = vec![0x08, 0x00, 0x10, 0x00, 0x18];
        want.extend_from_slice(&ID_VARINT);
        want.extend_from_slice(&[0x22, 3, b'c', b't', b'x']);
        assert_eq!(cc.encode(), want);
        assert_eq!(ConfChange::decode(&want).ok(), Some(cc));
    }

    #[test]
    fn entry_example() {
        let e = Entry {
            entry_type: ENTRY_CONF_CHANGE,
            term: 1,
            index: 2,
            data: Some(vec![9, 9]),
        };
        let want = [0x08, 0x01, 0x10, 0x01, 0x18, 0x02, 0x22, 0x02, 9, 9];
        assert_eq!(e.encode(), want);
        assert_eq!(Entry::decode(&want).ok(), Some(e));
        // Data absent vs empty.
        let none = Entry {
            data: None,
            ..Entry::default()
        };
        assert_eq!(none.encode(), [0x08, 0, 0x10, 0, 0x18, 0]);
        let empty = Entry {
            data: Some(Vec::new()),
            ..Entry::default()
        };
        assert_eq!(empty.encode(), [0x08, 0, 0x10, 0, 0x18, 0, 0x22, 0]);
    }

    #[test]
    fn hard_state_and_conf_state_examples() {
        let hs = HardState {
            term: 1,
            vote: 5,
            commit: 3,
        };
        assert_eq!(hs.encode(), [0x08, 0x01, 0x10, 0x05, 0x18, 0x03]);
        let cs = ConfState {
            voters: vec![ID],
            ..ConfState::default()
        };
        let mut want = vec![0x08];
        want.extend_from_slice(&ID_VARINT);
        want.extend_from_slice(&[0x28, 0x00]);
        assert_eq!(cs.encode(), want);
        assert_eq!(ConfState::default().encode(), [0x28, 0x00]);
        // Packed input decodes too.
        let packed = [0x0a, 0x02, 0x01, 0x02, 0x28, 0x01];
        let d = ConfState::decode(&packed).ok();
        assert_eq!(d.as_ref().map(|c| c.voters.clone()), Some(vec![1, 2]));
        assert_eq!(d.map(|c| c.auto_leave), Some(true));
    }

    #[test]
    fn wal_snapshot_and_metadata() {
        assert_eq!(WalSnapshot::default().encode(), [0x08, 0x00, 0x10, 0x00]);
        let md = Metadata {
            node_id: ID,
            cluster_id: 0xcdf8_1819_4e3a_8c32,
        };
        let want = [
            0x08, 0xcd, 0xd2, 0x91, 0x8b, 0xd2, 0xb8, 0x81, 0xcf, 0x8e, 0x01, 0x10, 0xb2, 0x98,
            0xea, 0xf1, 0x94, 0x83, 0x86, 0xfc, 0xcd, 0x01,
        ];
        assert_eq!(md.encode(), want);
        assert_eq!(Metadata::decode(&want).ok(), Some(md));
    }

    #[test]
    fn decoder_rejects_garbage_without_panicking() {
        for bad in [&[0x08][..], &[0x22, 0x05, 1], &[0x00], &[0x0b], &[0xff; 11]] {
            assert!(Entry::decode(bad).is_err(), "{bad:?}");
        }
        // Unknown fields are skipped.
        assert_eq!(
            HardState::decode(&[0x48, 0x01, 0x08, 0x07]).ok(),
            Some(HardState {
                term: 7,
                ..HardState::default()
            })
        );
    }
}
