//! Revision keys of the `key` bucket: `main` (8 bytes BE) `_` `sub` (8 bytes BE), plus `t` for a
//! deletion (tombstone).

use std::fmt;

/// A revision key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revision {
    /// The store revision of the transaction.
    pub main: i64,
    /// The index of the change within the transaction.
    pub sub: i64,
    /// Whether the key marks a deletion.
    pub tombstone: bool,
}

/// Why a revision key does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRevision(pub String);

impl fmt::Display for BadRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Revision {
    /// Decodes a 17- or 18-byte revision key, as etcd 3.6 validates it.
    pub fn parse(key: &[u8]) -> Result<Revision, BadRevision> {
        let tombstone = match key.len() {
            17 => false,
            18 if key[17] == b't' => true,
            18 => {
                return Err(BadRevision(format!(
                    "18-byte revision key not ending in 't' ({:02x})",
                    key[17]
                )))
            }
            n => {
                return Err(BadRevision(format!(
                    "revision key of {n} bytes (expected 17 or 18)"
                )))
            }
        };
        if key[8] != b'_' {
            return Err(BadRevision(format!(
                "revision key separator {:02x}, expected '_'",
                key[8]
            )));
        }
        let main = i64::from_be_bytes(
            key[0..8]
                .try_into()
                .map_err(|_| BadRevision("short key".into()))?,
        );
        let sub = i64::from_be_bytes(
            key[9..17]
                .try_into()
                .map_err(|_| BadRevision("short key".into()))?,
        );
        if main < 0 || sub < 0 {
            return Err(BadRevision(format!("negative revision {main}_{sub}")));
        }
        Ok(Revision {
            main,
            sub,
            tombstone,
        })
    }

    /// The main revision of a key, read as etcdutl 3.5 does: the first 8 bytes, no validation.
    pub fn main_of(key: &[u8]) -> Option<i64> {
        key.get(0..8)?.try_into().ok().map(i64::from_be_bytes)
    }

    /// Encodes the key (17 bytes, or 18 with the tombstone mark).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18);
        out.extend_from_slice(&self.main.to_be_bytes());
        out.push(b'_');
        out.extend_from_slice(&self.sub.to_be_bytes());
        if self.tombstone {
            out.push(b't');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let rev = Revision {
            main: 5,
            sub: 1,
            tombstone: true,
        };
        assert_eq!(Revision::parse(&rev.encode()), Ok(rev));
        let live = Revision {
            main: 1 << 40,
            sub: 0,
            tombstone: false,
        };
        assert_eq!(Revision::parse(&live.encode()), Ok(live));
        assert!(Revision::parse(b"short").is_err());
        let mut bad = live.encode();
        bad[8] = b'-';
        assert!(Revision::parse(&bad).is_err());
        assert_eq!(Revision::main_of(&live.encode()), Some(1 << 40));
    }
}
