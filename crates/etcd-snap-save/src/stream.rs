//! Checking the snapshot stream as it arrives: the first message announces the database size, data
//! follows, and the last message carries the SHA-256 of the data. etcdctl copies the stream blindly;
//! we verify every byte against the trailer before calling the snapshot good.

use sha2::{Digest, Sha256};
use std::fmt;

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing received yet.
    Start,
    /// Receiving database bytes.
    Data,
    /// All database bytes received; the 32-byte hash is next.
    Trailer,
    /// The hash arrived and matched.
    Done,
}

/// A defect in the stream: the server's answer is not a valid snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The data does not hash to the trailer.
    HashMismatch {
        /// SHA-256 of the data received, hex.
        computed: String,
        /// The trailer the server sent, hex.
        trailer: String,
    },
    /// The messages contradict each other (sizes, counts).
    Malformed(String),
    /// The stream ended before the trailer.
    EndedEarly {
        /// Database bytes received.
        received: u64,
        /// Database bytes announced.
        total: u64,
    },
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::HashMismatch { computed, trailer } => write!(
                f,
                "SHA-256 mismatch: the data hashes to {computed} but the server's trailer says {trailer}"
            ),
            StreamError::Malformed(why) => write!(f, "malformed snapshot stream: {why}"),
            StreamError::EndedEarly { received, total } => write!(
                f,
                "the stream ended before the SHA-256 trailer ({received} of {total} database bytes received)"
            ),
        }
    }
}

/// The verifier of one snapshot stream.
#[derive(Debug, Clone)]
pub struct StreamCheck {
    state: State,
    total: u64,
    received: u64,
    hasher: Sha256,
    sha256: [u8; 32],
}

impl Default for StreamCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamCheck {
    /// A verifier waiting for the first message.
    pub fn new() -> Self {
        StreamCheck {
            state: State::Start,
            total: 0,
            received: 0,
            hasher: Sha256::new(),
            sha256: [0; 32],
        }
    }

    /// The database size announced by the first message, once known.
    pub fn total(&self) -> Option<u64> {
        (self.state != State::Start).then_some(self.total)
    }

    /// Database bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Checks one message (`remaining_bytes`, `blob`). Every blob, the trailer included, belongs in
    /// the output: the saved file is the database followed by its hash, as etcdctl writes it.
    pub fn feed(&mut self, remaining: u64, blob: &[u8]) -> Result<(), StreamError> {
        let len = blob.len() as u64;
        if self.state == State::Start {
            self.total = remaining
                .checked_add(len)
                .ok_or_else(|| StreamError::Malformed("announced size overflows".into()))?;
            if self.total == 0 {
                return Err(StreamError::Malformed(
                    "the server announced an empty database".into(),
                ));
            }
            self.state = State::Data;
        }
        match self.state {
            State::Start => Err(StreamError::Malformed("internal state".into())),
            State::Data => {
                let received = self.received + len;
                if received > self.total {
                    return Err(StreamError::Malformed(format!(
                        "{received} database bytes received but {} announced",
                        self.total
                    )));
                }
                if remaining != self.total - received {
                    return Err(StreamError::Malformed(format!(
                        "remaining_bytes {remaining} after {received} of {} bytes",
                        self.total
                    )));
                }
                self.hasher.update(blob);
                self.received = received;
                if received == self.total {
                    self.state = State::Trailer;
                }
                Ok(())
            }
            State::Trailer => {
                let trailer: [u8; 32] = blob.try_into().map_err(|_| {
                    StreamError::Malformed(format!(
                        "expected the 32-byte SHA-256 trailer, got {len} bytes"
                    ))
                })?;
                if remaining != 0 {
                    return Err(StreamError::Malformed(format!(
                        "trailer with remaining_bytes {remaining}"
                    )));
                }
                let computed: [u8; 32] = self.hasher.clone().finalize().into();
                if computed != trailer {
                    return Err(StreamError::HashMismatch {
                        computed: hex(&computed),
                        trailer: hex(&trailer),
                    });
                }
                self.sha256 = computed;
                self.state = State::Done;
                Ok(())
            }
            State::Done => Err(StreamError::Malformed(format!(
                "{len} more bytes after the SHA-256 trailer"
            ))),
        }
    }

    /// Called at the end of the stream: the verified SHA-256, or why the snapshot is incomplete.
    pub fn finish(&self) -> Result<[u8; 32], StreamError> {
        match self.state {
            State::Done => Ok(self.sha256),
            _ => Err(StreamError::EndedEarly {
                received: self.received,
                total: self.total,
            }),
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> Vec<u8> {
        Sha256::digest(data).to_vec()
    }

    #[test]
    fn accepts_a_well_formed_stream() {
        let data = vec![7u8; 100_000];
        let mut check = StreamCheck::new();
        let mut sent = 0;
        for chunk in data.chunks(32 * 1024) {
            sent += chunk.len();
            assert_eq!(check.feed((data.len() - sent) as u64, chunk), Ok(()));
        }
        assert_eq!(check.total(), Some(100_000));
        assert!(check.finish().is_err(), "not done before the trailer");
        assert_eq!(check.feed(0, &sha(&data)), Ok(()));
        assert_eq!(check.finish().map(|h| h.to_vec()), Ok(sha(&data)));
        assert!(check.feed(0, b"x").is_err());
    }

    #[test]
    fn rejects_bad_streams() {
        let data = vec![1u8; 1000];
        let mut check = StreamCheck::new();
        assert_eq!(check.feed(0, &data), Ok(()));
        let mut wrong = sha(&data);
        wrong[0] ^= 1;
        assert!(matches!(
            check.feed(0, &wrong),
            Err(StreamError::HashMismatch { .. })
        ));

        let mut check = StreamCheck::new();
        assert_eq!(check.feed(500, &data[..500]), Ok(()));
        assert!(matches!(
            check.feed(0, &data[..600]),
            Err(StreamError::Malformed(_))
        ));

        let mut check = StreamCheck::new();
        assert_eq!(check.feed(500, &data[..500]), Ok(()));
        assert_eq!(
            check.finish(),
            Err(StreamError::EndedEarly {
                received: 500,
                total: 1000
            })
        );

        let mut check = StreamCheck::new();
        assert_eq!(check.feed(0, &data), Ok(()));
        assert!(matches!(
            check.feed(0, &[0u8; 31]),
            Err(StreamError::Malformed(_))
        ));
    }
}
