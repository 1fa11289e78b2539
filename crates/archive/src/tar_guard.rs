//! Tar streams with bounded metadata.
//!
//! The tar crate reads a PAX extension or a GNU long name entry whole into memory, whatever size
//! its header claims. A few megabytes of gzip can hold gigabytes of such an entry, so a hostile
//! archive or layer could exhaust memory before any name is checked. [`TarGuard`] follows the
//! tar framing of the bytes it passes on and fails the stream as soon as a metadata entry is
//! larger than [`EXTENSION_LIMIT`]. Every tar stream the tool reads goes through
//! [`guarded_archive`]. The framing itself is [`crate::tar_framing`].

use std::io::{self, Read};

use crate::tar_framing::{EntryHead, FramingTrouble, TarFraming, TarWatcher, EXTENSION_LIMIT};

/// A tar archive over `reader` whose metadata entries are bounded by [`EXTENSION_LIMIT`].
pub fn guarded_archive<R: Read>(reader: R) -> tar::Archive<TarGuard<R>> {
    tar::Archive::new(TarGuard::new(reader))
}

pub struct TarGuard<R> {
    inner: R,
    framing: TarFraming,
    refused: Option<String>,
}

/// Lets every entry pass; only oversized metadata stops the stream.
struct Bounds;

impl TarWatcher for Bounds {
    type Error = String;

    fn entry(&mut self, head: &EntryHead<'_>) -> Result<bool, String> {
        // The tar crate passes a global PAX header on as an entry instead of reading it, but
        // no real archive has one this large either.
        if head.kind.is_pax_global_extensions() && head.size > EXTENSION_LIMIT {
            return Err(oversized(head.size));
        }
        Ok(false)
    }

    fn trouble(&mut self, trouble: FramingTrouble) -> Option<String> {
        match trouble {
            FramingTrouble::Oversized(size) => Some(oversized(size)),
            // The tar crate reports a bad header itself, and keeps the header's size when a
            // PAX size is unreadable.
            FramingTrouble::BadHeader(_) | FramingTrouble::BadPaxSize => None,
        }
    }
}

fn oversized(size: u64) -> String {
    format!(
        "a long name or PAX record of {size} bytes (more than {EXTENSION_LIMIT}); \
         the archive is malformed or hostile"
    )
}

impl<R> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            framing: TarFraming::default(),
            refused: None,
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.refused.is_none() {
            let n = self.inner.read(buf)?;
            match self.framing.feed(&buf[..n], &mut Bounds) {
                Ok(()) => return Ok(n),
                Err(why) => self.refused = Some(why),
            }
        }
        let why = self.refused.clone().unwrap_or_default();
        Err(io::Error::new(io::ErrorKind::InvalidData, why))
    }
}

#[cfg(test)]
mod tests {
    use tar::Header;

    use super::*;

    fn names_of(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut archive = guarded_archive(bytes);
        let mut names = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            io::copy(&mut entry, &mut io::sink())?;
            names.push(entry.path()?.display().to_string());
        }
        Ok(names)
    }

    /// `"<len> <key>=<value>\n"`, where len counts its own digits too.
    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let rest = format!(" {key}={value}\n");
        let mut len = rest.len() + 1;
        while (len.to_string().len() + rest.len()) != len {
            len += 1;
        }
        format!("{len}{rest}").into_bytes()
    }

    fn header(name: &[u8], size: u64, kind: tar::EntryType) -> Header {
        let mut h = Header::new_ustar();
        h.set_path(std::str::from_utf8(name).unwrap()).unwrap();
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    #[test]
    fn ordinary_archives_pass_unchanged() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/file", "d".repeat(300));
        let mut h = Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut h = Header::new_ustar();
        h.set_size(5000);
        h.set_mode(0o644);
        b.append_data(&mut h, "big", &vec![7u8; 5000][..]).unwrap();
        // A PAX size record that differs from the header's field decides the framing.
        let pax = [pax_record("size", "4"), pax_record("path", "pax-named")].concat();
        let mut x = header(b"PaxHeaders/x", pax.len() as u64, tar::EntryType::XHeader);
        b.append(&x, &pax[..]).unwrap();
        x = header(b"short-field", 0, tar::EntryType::Regular);
        b.append(&x, &b"wxyz"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let names = names_of(&bytes).unwrap();
        assert_eq!(
            names,
            vec![long, "big".to_string(), "pax-named".to_string()]
        );
    }

    /// A malformed PAX record before `size` makes the tar crate ignore that size; the guard
    /// must frame the same way, or it would lose track and let what follows through.
    #[test]
    fn framing_follows_the_tar_crate_past_a_malformed_pax_record() {
        let pax = [b"5 ab\n".to_vec(), pax_record("size", "1000")].concat();
        let mut bytes = header(b"PaxHeaders/x", pax.len() as u64, tar::EntryType::XHeader)
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(&pax);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        let file = header(b"file", 8, tar::EntryType::Regular);
        bytes.extend_from_slice(file.as_bytes());
        bytes.extend_from_slice(b"12345678");
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        let bomb = header(
            b"././@LongLink",
            EXTENSION_LIMIT + 1,
            tar::EntryType::GNULongName,
        );
        bytes.extend_from_slice(bomb.as_bytes());
        let err = names_of(&bytes).unwrap_err();
        assert!(err.to_string().contains("malformed or hostile"), "{err}");
    }

    #[test]
    fn oversized_metadata_entries_are_refused_before_they_are_read() {
        for kind in [
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
        ] {
            let h = header(b"././@LongLink", EXTENSION_LIMIT + 1, kind);
            // Only the header: the claimed body never has to exist for the refusal.
            let mut bytes = h.as_bytes().to_vec();
            bytes.extend_from_slice(&[b'a'; 4096]);
            let err = names_of(&bytes).unwrap_err();
            assert!(
                err.to_string().contains("malformed or hostile"),
                "{kind:?}: {err}"
            );
        }
    }
}
