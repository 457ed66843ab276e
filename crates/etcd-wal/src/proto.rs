//! A tiny protobuf encoder and decoder for the handful of raft/etcd messages a restore writes
//! (docs/formats.md §7). The encoder reproduces gogoproto's bytes exactly: fields in ascending
//! number order, non-nullable fields always emitted (even when zero), nullable `bytes` emitted
//! iff present, repeated scalars unpacked. The decoder accepts any valid encoding (packed
//! repeated fields, unknown fields, any order) so that tests can compare decoded structures. The
//! wire format itself (varints, tags, bounds) is the `protowire` crate's; this module knows the
//! messages.

use protowire::{put_int32_field, put_len_field, put_varint_field, ErrorKind, Reader, Value};

use crate::error::{Error, Result};

/// `raftpb.EntryType` `EntryNormal`.
pub const ENTRY_NORMAL: i32 = 0;
/// `raftpb.EntryType` `EntryConfChange`.
pub const ENTRY_CONF_CHANGE: i32 = 1;
/// `raftpb.ConfChangeType` `ConfChangeAddNode`.
pub const CONF_CHANGE_ADD_NODE: i32 = 0;

/// Appends a nullable bytes field when present.
fn put_opt_bytes(out: &mut Vec<u8>, field: u32, b: Option<&[u8]>) {
    if let Some(b) = b {
        put_len_field(out, field, b);
    }
}

/// Iterates over the fields of one encoded message, naming it in errors.
struct Fields<'a> {
    /// The wire reader over the message bytes.
    r: Reader<'a>,
    /// The message name, for errors.
    msg: &'static str,
}

impl<'a> Fields<'a> {
    /// Starts reading `buf` as message `msg`.
    fn new(buf: &'a [u8], msg: &'static str) -> Self {
        Fields {
            r: Reader::new(buf),
            msg,
        }
    }

    /// An error about this message at byte `pos`.
    fn err_at(&self, what: &str, pos: usize) -> Error {
        Error::corrupt(format!("{}: {what} at byte {pos}", self.msg))
    }

    /// An error about this message at the read position.
    fn err(&self, what: &str) -> Error {
        self.err_at(what, self.r.position())
    }

    /// A wire-format error about this message, in this crate's words.
    fn wire_err(&self, e: protowire::Error) -> Error {
        let what = match e.kind {
            ErrorKind::TruncatedVarint => "truncated varint".to_string(),
            ErrorKind::VarintOverflow => "varint too long".to_string(),
            ErrorKind::FieldNumber { tag } if tag >> 3 == 0 => "field number 0".to_string(),
            ErrorKind::FieldNumber { .. } => "bad field number".to_string(),
            ErrorKind::TruncatedPayload { .. } => "truncated field".to_string(),
            ErrorKind::WireType { wire_type, .. } => format!("unsupported wire type {wire_type}"),
        };
        self.err_at(&what, e.offset)
    }

    /// The next field, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        self.r.field().map_err(|e| self.wire_err(e))
    }

    /// `v` as a varint, or an error naming `field`.
    fn uint(&self, field: u32, v: Value<'_>) -> Result<u64> {
        v.as_varint()
            .ok_or_else(|| self.err(&format!("field {field} is not a varint")))
    }

    /// `v` as bytes, or an error naming `field`.
    fn bytes(&self, field: u32, v: Value<'a>) -> Result<&'a [u8]> {
        v.as_len()
            .ok_or_else(|| self.err(&format!("field {field} is not length-delimited")))
    }

    /// Appends a repeated uint64 element, accepting the packed form too.
    fn repeated(&self, field: u32, v: Value<'a>, out: &mut Vec<u64>) -> Result<()> {
        match v {
            Value::Varint(x) => out.push(x),
            Value::Len(b) => {
                let mut packed = Fields::new(b, self.msg);
                while !packed.r.is_empty() {
                    let x = packed.r.varint().map_err(|e| packed.wire_err(e))?;
                    out.push(x);
                }
            }
            Value::Fixed32(_) | Value::Fixed64(_) => {
                return Err(self.err(&format!("field {field} has a fixed wire type")))
            }
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
        put_int32_field(&mut out, 1, self.entry_type);
        put_varint_field(&mut out, 2, self.term);
        put_varint_field(&mut out, 3, self.index);
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
        put_varint_field(&mut out, 1, self.term);
        put_varint_field(&mut out, 2, self.vote);
        put_varint_field(&mut out, 3, self.commit);
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
                put_varint_field(&mut out, field, id);
            }
        }
        put_varint_field(&mut out, 5, u64::from(self.auto_leave));
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
        put_varint_field(&mut out, 1, self.id);
        put_int32_field(&mut out, 2, self.change_type);
        put_varint_field(&mut out, 3, self.node_id);
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
        put_len_field(&mut out, 1, &self.conf_state.encode());
        put_varint_field(&mut out, 2, self.index);
        put_varint_field(&mut out, 3, self.term);
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
        put_len_field(&mut out, 2, &self.metadata.encode());
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
        put_varint_field(&mut out, 1, self.node_id);
        put_varint_field(&mut out, 2, self.cluster_id);
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
        put_varint_field(&mut out, 1, u64::from(self.crc));
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
        put_varint_field(&mut out, 1, self.record_type as u64);
        put_varint_field(&mut out, 2, u64::from(self.crc));
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
        put_varint_field(&mut out, 1, self.index);
        put_varint_field(&mut out, 2, self.term);
        if let Some(cs) = &self.conf_state {
            put_len_field(&mut out, 3, &cs.encode());
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
        // An overflowing 10th varint byte is refused (this reader used to drop the high bits).
        let mut overflow = vec![0x10];
        overflow.extend_from_slice(&[0xff; 9]);
        overflow.push(0x02);
        assert_eq!(
            Entry::decode(&overflow).err().map(|e| e.to_string()),
            Some("raftpb.Entry: varint too long at byte 11".into())
        );
        let mut packed = vec![0x0a, 10];
        packed.extend_from_slice(&[0x80; 9]);
        packed.push(0x7f);
        assert_eq!(
            ConfState::decode(&packed).err().map(|e| e.to_string()),
            Some("raftpb.ConfState: varint too long at byte 10".into())
        );
        // The other errors keep their wording and offsets.
        for (bad, want) in [
            (&[0x08][..], "truncated varint at byte 1"),
            (&[0x22, 0x05, 1], "truncated field at byte 2"),
            (&[0x00], "field number 0 at byte 1"),
            (&[0x0b], "unsupported wire type 3 at byte 1"),
            (
                &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                "bad field number at byte 6",
            ),
            (&[0x10, 0x01, 0x22, 0x05, 1], "truncated field at byte 4"),
            (&[0x12, 0x00], "field 2 is not a varint at byte 2"),
        ] {
            assert_eq!(
                Entry::decode(bad).err().map(|e| e.to_string()),
                Some(format!("raftpb.Entry: {want}")),
                "{bad:?}"
            );
        }
        // A length of u64::MAX is refused against the input, not allocated.
        let mut huge = vec![0x22];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x01);
        assert!(Entry::decode(&huge).is_err());
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
