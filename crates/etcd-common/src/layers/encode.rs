//! The writer stack that save puts between the snapshot and its destination: zstd, then age (optionally
//! ASCII-armored), so one process does what `| zstd | age -r KEY` does, with the same bytes on the wire
//! format level (the CLIs read it back).

use super::recipients::Recipient;
use crate::error::{Error, Result};
use std::io::{self, Write};

/// How to encode the output.
#[derive(Default)]
pub struct Encoding {
    /// zstd level (1..=19), or `None` for no compression.
    pub compress_level: Option<i32>,
    /// zstd worker threads (0 = compress on the calling thread).
    pub compress_threads: u32,
    /// age recipients; empty for no encryption.
    pub recipients: Vec<Recipient>,
    /// Write age's ASCII armor instead of binary.
    pub armor: bool,
}

impl Encoding {
    /// Whether anything is done to the bytes.
    pub fn is_identity(&self) -> bool {
        self.compress_level.is_none() && self.recipients.is_empty()
    }
}

/// A writer that must be finished (trailers written, inner writers finished) to be complete.
pub trait FinishWrite: Write {
    /// Writes what the format needs at the end and finishes the layers below.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

struct Plain<W: Write>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite for Plain<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

type Armored<'a> = age::armor::ArmoredWriter<Box<dyn FinishWrite + 'a>>;

struct Age<'a>(age::stream::StreamWriter<Armored<'a>>);

impl Write for Age<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FinishWrite for Age<'_> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.finish()?.finish()
    }
}

struct Zstd<'a>(zstd::stream::write::Encoder<'static, Box<dyn FinishWrite + 'a>>);

impl Write for Zstd<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FinishWrite for Zstd<'_> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.finish()
    }
}

/// Wraps `base` in the layers `encoding` asks for: data written to the result is compressed, then
/// encrypted, then written to `base`. Call [`FinishWrite::finish`] at the end.
pub fn wrap<'a, W: Write + 'a>(base: W, encoding: &Encoding) -> Result<Box<dyn FinishWrite + 'a>> {
    let mut writer: Box<dyn FinishWrite + 'a> = Box::new(Plain(base));
    if !encoding.recipients.is_empty() {
        let format = if encoding.armor {
            age::armor::Format::AsciiArmor
        } else {
            age::armor::Format::Binary
        };
        let armored = age::armor::ArmoredWriter::wrap_output(writer, format)
            .map_err(|e| Error::io("starting age output", &e))?;
        let encryptor = age::Encryptor::with_recipients(
            encoding
                .recipients
                .iter()
                .map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| Error::usage(format!("age recipients: {e}")))?;
        let stream = encryptor
            .wrap_output(armored)
            .map_err(|e| Error::io("writing the age header", &e))?;
        writer = Box::new(Age(stream));
    }
    if let Some(level) = encoding.compress_level {
        let mut encoder = zstd::stream::write::Encoder::new(writer, level)
            .map_err(|e| Error::usage(format!("zstd level {level}: {e}")))?;
        encoder
            .include_checksum(true)
            .map_err(|e| Error::usage(format!("zstd: {e}")))?;
        if encoding.compress_threads > 0 {
            encoder
                .multithread(encoding.compress_threads)
                .map_err(|e| Error::usage(format!("zstd threads: {e}")))?;
        }
        writer = Box::new(Zstd(encoder));
    }
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn zstd_then_age_round_trips() {
        let identity = age::x25519::Identity::generate();
        let encoding = Encoding {
            compress_level: Some(3),
            compress_threads: 0,
            recipients: vec![Box::new(identity.to_public())],
            armor: true,
        };
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut out = Vec::new();
        let mut w = wrap(&mut out, &encoding)
            .map_err(|e| e.message)
            .unwrap_or_else(|m| panic!("{m}"));
        w.write_all(&data).ok();
        assert!(w.finish().is_ok());
        assert!(out.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));

        let armored = age::armor::ArmoredReader::new(&out[..]);
        let decryptor = age::Decryptor::new(armored).ok();
        let mut reader = decryptor
            .and_then(|d| {
                d.decrypt(std::iter::once(&identity as &dyn age::Identity))
                    .ok()
            })
            .and_then(|r| zstd::stream::read::Decoder::new(r).ok());
        let mut back = Vec::new();
        assert!(reader.as_mut().map(|r| r.read_to_end(&mut back).is_ok()) == Some(true));
        assert_eq!(back, data);
    }
}
