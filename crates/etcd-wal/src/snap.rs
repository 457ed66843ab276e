//! etcd's raft snapshot files, `member/snap/<term>-<index>.snap` (docs/formats.md §5.4): a
//! `snappb.snapshot` envelope holding a CRC-32C and the encoded `raftpb.Snapshot`. Writing,
//! naming, and reading back with the CRC checked.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::proto::{RaftSnapshot, SnapFile};
use crate::wal::sync_dir;

/// The file name etcd's snapshotter gives a snapshot: `%016x-%016x.snap` of term and index.
pub fn file_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

/// The bytes of a `.snap` file holding `snap`.
pub fn encode(snap: &RaftSnapshot) -> Vec<u8> {
    let data = snap.encode();
    SnapFile {
        crc: crc32c::crc32c(&data),
        data: Some(data),
    }
    .encode()
}

/// Decodes a `.snap` file and checks its CRC, like etcd's `snap.Read`.
pub fn decode(bytes: &[u8]) -> Result<RaftSnapshot> {
    if bytes.is_empty() {
        return Err(Error::corrupt("snap: empty snapshot file"));
    }
    let file = SnapFile::decode(bytes)?;
    let data = file
        .data
        .ok_or_else(|| Error::corrupt("snap: snapshot file holds no data"))?;
    let crc = crc32c::crc32c(&data);
    if crc != file.crc {
        return Err(Error::corrupt(format!(
            "snap: crc mismatch: file says {:#010x}, data gives {crc:#010x}",
            file.crc
        )));
    }
    RaftSnapshot::decode(&data)
}

/// Writes `snap` into directory `dir` under its etcd name, mode 0600 (etcd uses 0666 less the
/// umask; the restore tool keeps every file private), fsyncs it and then `dir`. Fails if the
/// file exists. Returns its path.
pub fn write(dir: &Path, snap: &RaftSnapshot) -> Result<PathBuf> {
    let path = dir.join(file_name(snap.metadata.term, snap.metadata.index));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(&path, "create", e))?;
    f.write_all(&encode(snap))
        .map_err(|e| Error::io(&path, "write", e))?;
    f.sync_all().map_err(|e| Error::io(&path, "fsync", e))?;
    drop(f);
    sync_dir(dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ConfState, SnapshotMetadata};

    #[test]
    fn round_trip_and_crc() {
        let snap = RaftSnapshot {
            data: Some(b"{}".to_vec()),
            metadata: SnapshotMetadata {
                conf_state: ConfState {
                    voters: vec![1, 2],
                    ..ConfState::default()
                },
                index: 2,
                term: 1,
            },
        };
        let bytes = encode(&snap);
        // crc=1 first, always emitted, then data=2.
        assert_eq!(bytes[0], 0x08);
        assert_eq!(decode(&bytes).ok(), Some(snap));
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(decode(&[]).is_err());
        assert_eq!(file_name(1, 3), "0000000000000001-0000000000000003.snap");
    }
}
