//! Tar streams with bounded metadata.
//!
//! The tar crate reads a PAX extension or a GNU long name entry whole into memory, whatever size
//! its header claims. A few megabytes of gzip can hold gigabytes of such an entry, so a hostile
//! archive or layer could exhaust memory before any name is checked. [`TarGuard`] follows the
//! tar framing of the bytes it passes on and fails the stream as soon as a metadata entry is
//! larger than [`EXTENSION_LIMIT`]. Every tar stream the tool reads goes through
//! [`guarded_archive`].

use std::io::{self, Read};

use tar::Header;

/// The largest PAX extension or GNU long name/link entry accepted (long names, links and
/// extended attributes of real archives stay far below it).
pub const EXTENSION_LIMIT: u64 = 16 << 20;

const BLOCK: usize = 512;

/// A tar archive over `reader` whose metadata entries are bounded by [`EXTENSION_LIMIT`].
pub fn guarded_archive<R: Read>(reader: R) -> tar::Archive<TarGuard<R>> {
    tar::Archive::new(TarGuard::new(reader))
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    /// The body of the PAX extension being read, for a `size` record.
    pax: Vec<u8>,
    /// `size` of the last PAX extension: it replaces the next entry's header size.
    pax_size: Option<u64>,
    refused: Option<String>,
}

enum State {
    Header,
    /// GNU sparse extension blocks follow the header before the data.
    SparseExt {
        data: u64,
    },
    Body {
        left: u64,
        pad: u64,
        pax: bool,
    },
    /// The end marker, or a header the tar crate will reject itself: nothing more to follow.
    Done,
}

impl<R> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            pax: Vec::new(),
            pax_size: None,
            refused: None,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.refused.is_none() {
            match &mut self.state {
                State::Done => return,
                State::Header | State::SparseExt { .. } => {
                    let take = (BLOCK - self.filled).min(data.len());
                    self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
                    self.filled += take;
                    data = &data[take..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        match std::mem::replace(&mut self.state, State::Done) {
                            // `isextended` of a GNU extended sparse block is its byte 504.
                            State::SparseExt { data } if self.block[504] != 0 => {
                                self.state = State::SparseExt { data };
                            }
                            State::SparseExt { data } => self.body(data, false),
                            _ => self.header(),
                        }
                    }
                }
                State::Body { left, pad, pax } => {
                    if *left > 0 {
                        let take = usize::try_from(*left).map_or(data.len(), |l| l.min(data.len()));
                        if *pax {
                            self.pax.extend_from_slice(&data[..take]);
                        }
                        *left -= take as u64;
                        data = &data[take..];
                        if *left == 0 && *pax {
                            self.pax_size = pax_size(&self.pax);
                        }
                    } else {
                        let take = usize::try_from(*pad).map_or(data.len(), |p| p.min(data.len()));
                        *pad -= take as u64;
                        data = &data[take..];
                    }
                    if let State::Body {
                        left: 0, pad: 0, ..
                    } = self.state
                    {
                        self.state = State::Header;
                    }
                }
            }
        }
    }

    /// A complete header block, framed as the tar crate frames it.
    fn header(&mut self) {
        if self.block.iter().all(|b| *b == 0) {
            return; // the end marker: State::Done
        }
        let header = Header::from_byte_slice(&self.block);
        let Ok(size) = header.entry_size() else {
            return; // the tar crate reports the bad header
        };
        let kind = header.entry_type();
        let metadata = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if metadata {
            if size > EXTENSION_LIMIT {
                self.refused = Some(format!(
                    "a long name or PAX record of {size} bytes (more than {EXTENSION_LIMIT}); \
                     the archive is malformed or hostile"
                ));
                return;
            }
            self.pax.clear();
            self.body(size, kind.is_pax_local_extensions());
            return;
        }
        let size = self.pax_size.take().unwrap_or(size);
        let extended_sparse =
            kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended());
        if extended_sparse {
            self.state = State::SparseExt { data: size };
        } else {
            self.body(size, false);
        }
    }

    fn body(&mut self, size: u64, pax: bool) {
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.state = if size == 0 {
            if pax {
                self.pax_size = None;
            }
            State::Header
        } else {
            State::Body {
                left: size,
                pad,
                pax,
            }
        };
    }
}

fn pax_size(records: &[u8]) -> Option<u64> {
    tar::PaxExtensions::new(records)
        .filter_map(Result::ok)
        .find(|e| e.key_bytes() == b"size")
        .and_then(|e| e.value().ok()?.parse().ok())
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.refused {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.clone()));
        }
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        match &self.refused {
            Some(why) => Err(io::Error::new(io::ErrorKind::InvalidData, why.clone())),
            None => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
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
