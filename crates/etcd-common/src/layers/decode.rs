//! Reading a snapshot in whatever layers it arrives: raw bbolt, zstd, age (binary or armored), in any
//! nesting such as age(zstd(db)). The input is recognised by its first bytes, never by its name, so a
//! pipe works as well as a file.

use crate::error::{io_reason, Error, Result};
use crate::ExitCode;
use std::fmt;
use std::io::{self, BufReader, Cursor, Read};

/// The zstd frame magic.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The first line of a binary age file.
const AGE_BINARY: &[u8] = b"age-encryption.org/v1\n";
/// The first line of an armored age file.
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// bbolt's meta magic, little-endian, right after the first page's 16-byte header.
const BBOLT_MAGIC: [u8; 4] = [0xed, 0xda, 0x0c, 0xed];
/// How many bytes decide what the input is.
const PEEK: usize = 64;
/// More layers than this is not a backup but an attack.
const MAX_LAYERS: usize = 8;

/// One layer peeled off the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// zstd compression.
    Zstd,
    /// age encryption, binary.
    Age,
    /// age encryption, ASCII-armored.
    AgeArmored,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Zstd => "zstd",
            Layer::Age => "age",
            Layer::AgeArmored => "age (armored)",
        })
    }
}

/// An age identity to decrypt with.
pub type Identity = Box<dyn age::Identity + Send + Sync>;

/// Loads `-i/--identity` files: age identity files (`AGE-SECRET-KEY-…` lines) and unencrypted ssh
/// private keys (ed25519, RSA), as the `age` CLI takes them.
pub fn load_identities(paths: &[String]) -> Result<Vec<Identity>> {
    let mut identities = Vec::new();
    for path in paths {
        let data = std::fs::read(path).map_err(|e| {
            Error::usage(format!(
                "-i/--identity {path}: cannot read: {}",
                io_reason(&e)
            ))
        })?;
        let text = String::from_utf8_lossy(&data);
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
            || text.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            let key =
                age::ssh::Identity::from_buffer(&data[..], Some(path.clone())).map_err(|e| {
                    Error::usage(format!("-i/--identity {path}: not a usable ssh key: {e}"))
                })?;
            match key {
                age::ssh::Identity::Unencrypted(_) => identities.push(Box::new(key) as Identity),
                age::ssh::Identity::Encrypted(_) => {
                    return Err(Error::usage(format!(
                        "-i/--identity {path}: the ssh key is passphrase-protected; use an unprotected copy (ssh-keygen -p -N '' -f COPY)"
                    )))
                }
                age::ssh::Identity::Unsupported(_) => {
                    return Err(Error::usage(format!(
                        "-i/--identity {path}: unsupported ssh key type (age takes ed25519 and RSA keys)"
                    )))
                }
            }
            continue;
        }
        let file = age::IdentityFile::from_buffer(&data[..])
            .map_err(|e| Error::usage(format!("-i/--identity {path}: {e}")))?;
        let parsed = file
            .into_identities()
            .map_err(|e| Error::usage(format!("-i/--identity {path}: {e}")))?;
        if parsed.is_empty() {
            return Err(Error::usage(format!(
                "-i/--identity {path}: no identity in the file (expected AGE-SECRET-KEY-… or an ssh private key)"
            )));
        }
        identities.extend(parsed);
    }
    Ok(identities)
}

/// Standard input for reading a snapshot: when it is a pipe, the pipe buffer is widened to 1 MiB
/// (Linux's default 64 KiB makes a GiB-sized stream cost tens of thousands of wake-ups).
pub fn stdin() -> Box<dyn Read> {
    let stdin = io::stdin();
    // Best effort: not a pipe, or the limit is lower, and it stays as it was.
    let _ = rustix::pipe::fcntl_setpipe_size(&stdin, 1 << 20);
    Box::new(stdin)
}

/// The input with every layer peeled off.
pub struct Decoded {
    /// The raw snapshot bytes.
    pub reader: Box<dyn Read>,
    /// The layers found, outermost first.
    pub layers: Vec<Layer>,
}

/// Reads up to `n` bytes without losing them: returns them and a reader that yields them again.
fn peek(mut reader: Box<dyn Read>, n: usize) -> io::Result<(Vec<u8>, Box<dyn Read>)> {
    let mut prefix = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    prefix.truncate(filled);
    let again: Box<dyn Read> = Box::new(Cursor::new(prefix.clone()).chain(reader));
    Ok((prefix, again))
}

/// Whether the first bytes are those of a raw etcd database (bbolt), not of an encoding that
/// happens to carry the same magic (a zstd frame may store page 0 verbatim).
pub fn is_raw_database(prefix: &[u8]) -> bool {
    classify(prefix) == Some(None)
}

/// What the first bytes say the input is.
fn classify(prefix: &[u8]) -> Option<Option<Layer>> {
    let trimmed = prefix
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |at| &prefix[at..]);
    if prefix.starts_with(&ZSTD_MAGIC) {
        Some(Some(Layer::Zstd))
    } else if prefix.starts_with(AGE_BINARY) {
        Some(Some(Layer::Age))
    } else if trimmed.starts_with(AGE_ARMOR) {
        Some(Some(Layer::AgeArmored))
    } else if prefix.len() >= 20 && prefix[16..20] == BBOLT_MAGIC {
        Some(None)
    } else {
        None
    }
}

/// Peels every layer off `input`, decrypting with `identities`. `name` names the input in errors.
pub fn peel(input: Box<dyn Read>, identities: &[Identity], name: &str) -> Result<Decoded> {
    let integrity = |what: String| Error::new(ExitCode::Integrity, format!("{name}: {what}"));
    let mut reader = input;
    let mut layers = Vec::new();
    loop {
        let (prefix, again) = peek(reader, PEEK).map_err(|e| read_error(name, &layers, &e))?;
        reader = again;
        let layer = match classify(&prefix) {
            Some(None) => return Ok(Decoded { reader, layers }),
            Some(Some(layer)) => layer,
            None if prefix.is_empty() => {
                return Err(integrity(if layers.is_empty() {
                    "the input is empty".into()
                } else {
                    format!("nothing inside the {}", describe(&layers))
                }))
            }
            None => {
                return Err(integrity(format!(
                    "not a snapshot: {}neither an etcd database (bbolt) nor zstd or age data",
                    if layers.is_empty() {
                        String::new()
                    } else {
                        format!("inside the {}, ", describe(&layers))
                    }
                )))
            }
        };
        if layers.len() >= MAX_LAYERS {
            return Err(integrity(format!(
                "more than {MAX_LAYERS} layers of compression and encryption"
            )));
        }
        layers.push(layer);
        reader = match layer {
            Layer::Zstd => Box::new(
                zstd::stream::read::Decoder::new(reader)
                    .map_err(|e| integrity(format!("corrupt zstd data: {}", io_reason(&e))))?,
            ),
            Layer::Age | Layer::AgeArmored => {
                if identities.is_empty() {
                    return Err(Error::usage(format!(
                        "{name}: the input is age-encrypted: did you forget -i/--identity KEYFILE?"
                    )));
                }
                let armored = age::armor::ArmoredReader::new(BufReader::new(reader));
                let decryptor = age::Decryptor::new(armored)
                    .map_err(|e| integrity(format!("corrupt age header: {e}")))?;
                let decrypted = decryptor
                    .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                    .map_err(|e| match e {
                        age::DecryptError::NoMatchingKeys => integrity(
                            "no -i/--identity key can decrypt this age file (wrong key?)".into(),
                        ),
                        other => integrity(format!("cannot decrypt the age file: {other}")),
                    })?;
                Box::new(decrypted)
            }
        };
    }
}

/// "zstd inside age" for messages.
pub fn describe(layers: &[Layer]) -> String {
    layers
        .iter()
        .rev()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" inside ")
}

/// The error for a failed read of the (possibly decoded) input: inside a layer, a read error means
/// corrupt or truncated data (exit 4); on the raw input it is a local I/O error (exit 6).
pub fn read_error(name: &str, layers: &[Layer], err: &io::Error) -> Error {
    if layers.is_empty() {
        Error::io(format!("reading {name}"), err)
    } else {
        Error::new(
            ExitCode::Integrity,
            format!(
                "{name}: corrupt or truncated {}: {}",
                describe(layers),
                io_reason(err)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::encode::{wrap, Encoding};

    fn fake_db() -> Vec<u8> {
        let mut db = vec![0u8; 8192];
        db[16..20].copy_from_slice(&BBOLT_MAGIC);
        db[100] = 42;
        db
    }

    fn encode(
        data: &[u8],
        compress: bool,
        recipient: Option<&age::x25519::Identity>,
        armor: bool,
    ) -> Vec<u8> {
        let encoding = Encoding {
            compress_level: compress.then_some(3),
            compress_threads: 0,
            recipients: recipient
                .map(|r| Box::new(r.to_public()) as _)
                .into_iter()
                .collect(),
            armor,
        };
        let mut out = Vec::new();
        let mut w = wrap(&mut out, &encoding)
            .ok()
            .unwrap_or_else(|| panic!("wrap"));
        assert!(std::io::Write::write_all(&mut w, data).is_ok());
        assert!(w.finish().is_ok());
        out
    }

    fn read_all(input: Vec<u8>, ids: &[Identity]) -> Result<(Vec<u8>, Vec<Layer>)> {
        let mut decoded = peel(Box::new(Cursor::new(input)), ids, "test")?;
        let mut out = Vec::new();
        decoded
            .reader
            .read_to_end(&mut out)
            .map_err(|e| read_error("test", &decoded.layers, &e))?;
        Ok((out, decoded.layers))
    }

    #[test]
    fn peels_any_layering() {
        let db = fake_db();
        let key = age::x25519::Identity::generate();
        let ids: Vec<Identity> = vec![Box::new(key.clone())];
        assert_eq!(read_all(db.clone(), &ids).ok(), Some((db.clone(), vec![])));
        let zstd = encode(&db, true, None, false);
        assert_eq!(
            read_all(zstd.clone(), &ids).ok(),
            Some((db.clone(), vec![Layer::Zstd]))
        );
        let both = encode(&db, true, Some(&key), false);
        assert_eq!(
            read_all(both, &ids).ok(),
            Some((db.clone(), vec![Layer::Age, Layer::Zstd]))
        );
        let armored = encode(&db, false, Some(&key), true);
        assert_eq!(
            read_all(armored, &ids).ok(),
            Some((db.clone(), vec![Layer::AgeArmored]))
        );
        // zstd of age: the other order, as a pipe `age | zstd` makes it.
        let age_then_zstd = encode(&encode(&db, false, Some(&key), false), true, None, false);
        assert_eq!(
            read_all(age_then_zstd, &ids).ok(),
            Some((db, vec![Layer::Zstd, Layer::Age]))
        );
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let db = fake_db();
        let key = age::x25519::Identity::generate();
        let other: Vec<Identity> = vec![Box::new(age::x25519::Identity::generate())];
        let encrypted = encode(&db, false, Some(&key), false);

        let err = read_all(encrypted.clone(), &[]).err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(ExitCode::Usage));
        assert!(err.is_some_and(|e| e.message.contains("did you forget -i/--identity")));

        let err = read_all(encrypted, &other).err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(ExitCode::Integrity));
        assert!(err.is_some_and(|e| e.message.contains("wrong key")));

        let mut zstd = encode(&db, true, None, false);
        let len = zstd.len();
        zstd.truncate(len - 10);
        let err = read_all(zstd, &[]).err();
        assert_eq!(err.map(|e| e.code), Some(ExitCode::Integrity));

        for junk in [&b""[..], b"hello world, this is not a snapshot at all"] {
            let err = read_all(junk.to_vec(), &[]).err();
            assert_eq!(err.map(|e| e.code), Some(ExitCode::Integrity));
        }
    }
}
