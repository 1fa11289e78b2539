//! Compression of backup streams: chosen from a name or a file extension when writing, sniffed
//! from the magic bytes when reading.
//!
//! Interim home: the `archive` crate owns codecs (with a parallel gzip encoder); once its API
//! lands, these functions become thin calls into it. zstd already compresses on all cores.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupCompression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl BackupCompression {
    /// `-c gzip|bzip2|xz|zstd|none`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "gzip" | "gz" => Self::Gzip,
            "bzip2" | "bz2" => Self::Bzip2,
            "xz" => Self::Xz,
            "zstd" | "zst" => Self::Zstd,
            _ => return None,
        })
    }

    /// `.tar.gz .tgz .tar.bz2 .tar.xz .tar.zst .tar`; `None` for anything else.
    pub fn from_extension(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        [
            (".tar.gz", Self::Gzip),
            (".tgz", Self::Gzip),
            (".tar.bz2", Self::Bzip2),
            (".tbz2", Self::Bzip2),
            (".tar.xz", Self::Xz),
            (".txz", Self::Xz),
            (".tar.zst", Self::Zstd),
            (".tar.zstd", Self::Zstd),
            (".tzst", Self::Zstd),
            (".tar", Self::None),
        ]
        .into_iter()
        .find(|(ext, _)| name.ends_with(ext))
        .map(|(_, c)| c)
    }
}

/// A compressing writer that must be finished to write its trailer.
pub trait FinishWrite: Write {
    fn finish_stream(self: Box<Self>) -> io::Result<()>;
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
    fn finish_stream(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

macro_rules! finish_via {
    ($ty:ty, $finish:ident) => {
        impl<W: Write> FinishWrite for $ty {
            fn finish_stream(self: Box<Self>) -> io::Result<()> {
                let mut inner = (*self).$finish()?;
                inner.flush()
            }
        }
    };
}
finish_via!(flate2::write::GzEncoder<W>, finish);
finish_via!(bzip2::write::BzEncoder<W>, finish);
finish_via!(liblzma::write::XzEncoder<W>, finish);
finish_via!(zstd::stream::write::Encoder<'static, W>, finish);

/// Wrap `out` in the encoder for `c`.
pub fn encoder<W: Write + 'static>(
    out: W,
    c: BackupCompression,
) -> io::Result<Box<dyn FinishWrite>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(match c {
        BackupCompression::None => Box::new(Plain(out)),
        BackupCompression::Gzip => Box::new(flate2::write::GzEncoder::new(
            out,
            flate2::Compression::new(6),
        )),
        BackupCompression::Bzip2 => Box::new(bzip2::write::BzEncoder::new(
            out,
            bzip2::Compression::new(6),
        )),
        BackupCompression::Xz => Box::new(liblzma::write::XzEncoder::new(out, 6)),
        BackupCompression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, 3)?;
            // zstd's own worker threads; they are joined when the encoder finishes.
            enc.multithread(u32::try_from(threads).unwrap_or(1))?;
            Box::new(enc)
        }
    })
}

/// A reader that decompresses whatever `input` holds, told apart by its magic bytes.
pub fn sniffing_decoder<'a, R: Read + 'a>(input: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, input);
    let head = buf.fill_buf()?.to_vec();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(buf))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_choose_compression() {
        let c = |p: &str| BackupCompression::from_extension(Path::new(p));
        assert_eq!(c("a.tar.gz"), Some(BackupCompression::Gzip));
        assert_eq!(c("a.TGZ"), Some(BackupCompression::Gzip));
        assert_eq!(c("a.tar.bz2"), Some(BackupCompression::Bzip2));
        assert_eq!(c("a.tar.xz"), Some(BackupCompression::Xz));
        assert_eq!(c("a.tar.zst"), Some(BackupCompression::Zstd));
        assert_eq!(c("a.tar"), Some(BackupCompression::None));
        assert_eq!(c("a.bak"), None);
    }

    #[test]
    fn every_codec_round_trips_through_the_sniffer() {
        for c in [
            BackupCompression::None,
            BackupCompression::Gzip,
            BackupCompression::Bzip2,
            BackupCompression::Xz,
            BackupCompression::Zstd,
        ] {
            let path = tempfile::NamedTempFile::new().unwrap();
            let file = path.reopen().unwrap();
            let mut enc = encoder(file, c).unwrap();
            enc.write_all(b"hello backup").unwrap();
            enc.finish_stream().unwrap();
            let mut out = Vec::new();
            sniffing_decoder(std::fs::File::open(path.path()).unwrap())
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, b"hello backup", "{c:?}");
        }
    }
}
