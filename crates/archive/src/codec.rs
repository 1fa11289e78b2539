//! Which compression a stream uses: by magic bytes, by file name, by user-facing name.

use std::fmt;
use std::path::Path;

/// A compression format of a tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    /// The legacy `.lzma` ("lzma-alone") format.
    Lzma,
    Zstd,
}

/// A compression name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression '{0}'; use one of gzip, bzip2, xz, zstd, none")]
pub struct UnknownCompression(pub String);

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How many leading bytes [`Compression::sniff`] wants to see to recognise every format.
pub const SNIFF_LEN: usize = 13;

impl Compression {
    /// Recognise a stream by its first bytes. Anything unrecognised is `None` (a plain tar).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(XZ_MAGIC) {
            Compression::Xz
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.len() >= 4
            && head.starts_with(BZIP2_MAGIC)
            && (b'1'..=b'9').contains(&head[3])
        {
            Compression::Bzip2
        } else if looks_like_lzma_alone(head) {
            Compression::Lzma
        } else {
            Compression::None
        }
    }

    /// Guess from a file name: `.tar.gz`, `.tgz`, `.tar.zst`, ... A bare `.gz`, `.xz`, `.zst`,
    /// `.bz2` or `.lzma` counts too; anything else is `None`.
    pub fn from_extension(path: impl AsRef<Path>) -> Compression {
        let name = path
            .as_ref()
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let table: &[(&str, Compression)] = &[
            (".tgz", Compression::Gzip),
            (".gz", Compression::Gzip),
            (".tbz2", Compression::Bzip2),
            (".tbz", Compression::Bzip2),
            (".bz2", Compression::Bzip2),
            (".txz", Compression::Xz),
            (".xz", Compression::Xz),
            (".tzst", Compression::Zstd),
            (".zst", Compression::Zstd),
            (".tlz", Compression::Lzma),
            (".lzma", Compression::Lzma),
        ];
        table
            .iter()
            .find(|(ext, _)| name.ends_with(ext))
            .map_or(Compression::None, |&(_, c)| c)
    }

    /// Parse a user-facing name (`--compression zstd`).
    pub fn from_name(name: &str) -> Result<Compression, UnknownCompression> {
        match name.to_ascii_lowercase().as_str() {
            "gzip" | "gz" => Ok(Compression::Gzip),
            "bzip2" | "bz2" => Ok(Compression::Bzip2),
            "xz" => Ok(Compression::Xz),
            "lzma" => Ok(Compression::Lzma),
            "zstd" | "zst" => Ok(Compression::Zstd),
            "none" | "tar" => Ok(Compression::None),
            _ => Err(UnknownCompression(name.to_string())),
        }
    }

    /// The user-facing name, as accepted by [`Compression::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
        }
    }

    /// The usual tarball suffix: `.tar.gz`, `.tar.zst`, `.tar`.
    pub fn tar_extension(self) -> &'static str {
        match self {
            Compression::None => ".tar",
            Compression::Gzip => ".tar.gz",
            Compression::Bzip2 => ".tar.bz2",
            Compression::Xz => ".tar.xz",
            Compression::Lzma => ".tar.lzma",
            Compression::Zstd => ".tar.zst",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = UnknownCompression;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::from_name(s)
    }
}

/// lzma-alone has no magic: a properties byte, a little-endian dictionary size and a
/// little-endian uncompressed size (all ones when unknown). `xz --format=lzma` always writes
/// properties 0x5d (lc=3, lp=0, pb=2), which is the only value we accept. liblzma and the LZMA
/// SDK round the dictionary to 2^n or 2^n + 2^(n-1); demanding that, and a sane length, keeps a
/// plain tar whose first name starts with `]` from being mistaken for it.
fn looks_like_lzma_alone(head: &[u8]) -> bool {
    if head.len() < SNIFF_LEN || head[0] != 0x5d {
        return false;
    }
    let dict = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let mut size_bytes = [0u8; 8];
    size_bytes.copy_from_slice(&head[5..13]);
    let size = u64::from_le_bytes(size_bytes);
    let rounded = |d: u32| {
        let high = 1u32 << (31 - d.leading_zeros());
        d == high || d == high + high / 2
    };
    let dict_ok = dict == u32::MAX || ((1 << 12..=1 << 30).contains(&dict) && rounded(dict));
    let size_ok = size == u64::MAX || size < 1 << 48;
    dict_ok && size_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_each_magic() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"BZh91AY&SY"), Compression::Bzip2);
        assert_eq!(
            Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4]),
            Compression::Xz
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0x04]),
            Compression::Zstd
        );
        let lzma = [
            0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(Compression::sniff(&lzma), Compression::Lzma);
        assert_eq!(Compression::sniff(b"etc/passwd\0\0\0\0"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
        assert_eq!(Compression::sniff(b"BZ"), Compression::None);
    }

    #[test]
    fn a_tar_named_with_a_bracket_is_not_lzma() {
        let mut head = [0u8; 16];
        head[..4].copy_from_slice(b"]abc");
        assert_eq!(Compression::sniff(&head), Compression::None);
    }

    #[test]
    fn extensions_map_to_codecs() {
        let cases = [
            ("a.tar.gz", Compression::Gzip),
            ("a.TGZ", Compression::Gzip),
            ("/x/a.tar.bz2", Compression::Bzip2),
            ("a.tbz2", Compression::Bzip2),
            ("a.tar.xz", Compression::Xz),
            ("a.txz", Compression::Xz),
            ("a.tar.zst", Compression::Zstd),
            ("a.tzst", Compression::Zstd),
            ("a.tar.lzma", Compression::Lzma),
            ("a.tar", Compression::None),
            ("noext", Compression::None),
        ];
        for (name, want) in cases {
            assert_eq!(Compression::from_extension(name), want, "{name}");
        }
    }

    #[test]
    fn names_round_trip_through_display() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Lzma,
            Compression::Zstd,
        ] {
            assert_eq!(Compression::from_name(&c.to_string()), Ok(c));
        }
        let err = Compression::from_name("rar").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown compression 'rar'; use one of gzip, bzip2, xz, zstd, none"
        );
    }
}
