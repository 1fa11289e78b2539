//! Following the tar framing of a byte stream as it passes, the way the tar crate frames it:
//! 512-byte headers, GNU long names and links, PAX records (whose `size`, `path` and `linkpath`
//! apply to the next entry), GNU sparse maps, padding and the end marker. A [`TarWatcher`]
//! sees every real entry with the names that apply to it, and may keep its data.
//!
//! Metadata bodies are kept to read them, so they are bounded: one larger than
//! [`EXTENSION_LIMIT`] is refused before it is read (the tar crate would read it whole into
//! memory, and a few megabytes of gzip can claim gigabytes).

use std::io;

use tar::{EntryType, Header, PaxExtensions};

/// The largest PAX extension or GNU long name/link entry accepted (long names, links and
/// extended attributes of real archives stay far below it).
pub const EXTENSION_LIMIT: u64 = 16 << 20;

const BLOCK: usize = 512;

/// A real entry, with any long name, long link and PAX records before it applied.
pub struct EntryHead<'a> {
    pub header: &'a Header,
    pub kind: EntryType,
    pub path: &'a [u8],
    pub link: Option<&'a [u8]>,
    /// The data size (a PAX `size` wins over the header's field).
    pub size: u64,
}

/// Why the framing cannot go on as the tar crate would.
#[derive(Debug)]
pub enum FramingTrouble {
    /// A header the tar crate rejects (its size field is unreadable).
    BadHeader(io::Error),
    /// A PAX `size` record that is not a number.
    BadPaxSize,
    /// A long name, long link or PAX record of this many bytes.
    Oversized(u64),
}

pub trait TarWatcher {
    type Error;
    /// A real entry's header; `Ok(true)` keeps its data for [`TarWatcher::data`].
    fn entry(&mut self, head: &EntryHead<'_>) -> Result<bool, Self::Error>;
    /// The data of an entry [`TarWatcher::entry`] asked to keep.
    fn data(&mut self, _data: Vec<u8>) {}
    /// `Some(error)` stops the stream; `None` stops only the watching (the tar crate reports
    /// the trouble itself).
    fn trouble(&mut self, trouble: FramingTrouble) -> Option<Self::Error>;
}

enum State {
    Header,
    /// GNU extended sparse map blocks follow the header before the data.
    SparseExt {
        data: u64,
        sink: Sink,
    },
    /// An entry's data and its padding.
    Body {
        left: u64,
        pad: u64,
        sink: Sink,
    },
    /// After the end marker, or once the watching stopped.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    Skip,
    LongName,
    LongLink,
    Pax,
    Watcher,
}

pub struct TarFraming {
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    captured: Vec<u8>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Default for TarFraming {
    fn default() -> Self {
        TarFraming {
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            captured: Vec::new(),
            long_name: None,
            long_link: None,
            pax: None,
        }
    }
}

impl TarFraming {
    /// Follow `data`, the next bytes of the stream. After an error nothing more is looked at.
    pub fn feed<W: TarWatcher>(
        &mut self,
        mut data: &[u8],
        watcher: &mut W,
    ) -> Result<(), W::Error> {
        while !data.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Header | State::SparseExt { .. } => {
                    let take = (BLOCK - self.filled).min(data.len());
                    self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
                    self.filled += take;
                    data = &data[take..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        match std::mem::replace(&mut self.state, State::Done) {
                            // `isextended` of a GNU extended sparse block is its byte 504.
                            State::SparseExt { data, sink } if self.block[504] != 0 => {
                                self.state = State::SparseExt { data, sink };
                            }
                            State::SparseExt { data, sink } => self.body(data, sink, watcher),
                            _ => {
                                if let Err(trouble) = self.header(watcher) {
                                    self.state = State::Done;
                                    return match trouble {
                                        Stop::Watcher(e) => Err(e),
                                        Stop::Trouble(t) => watcher.trouble(t).map_or(Ok(()), Err),
                                    };
                                }
                            }
                        }
                    }
                }
                State::Body { left, pad, sink } => {
                    let sink = *sink;
                    if *left > 0 {
                        let take = usize::try_from(*left).map_or(data.len(), |l| l.min(data.len()));
                        if sink != Sink::Skip {
                            self.captured.extend_from_slice(&data[..take]);
                        }
                        *left -= take as u64;
                        data = &data[take..];
                        if *left == 0 {
                            let body = std::mem::take(&mut self.captured);
                            self.keep(sink, body, watcher);
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
        Ok(())
    }

    /// A complete header block, handled as the tar crate's `Entries` does.
    fn header<W: TarWatcher>(&mut self, watcher: &mut W) -> Result<(), Stop<W::Error>> {
        if self.block.iter().all(|b| *b == 0) {
            return Ok(()); // the end marker: State::Done
        }
        let header = Header::from_byte_slice(&self.block).clone();
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = header
            .entry_size()
            .map_err(|e| Stop::Trouble(FramingTrouble::BadHeader(e)))?;
        if !extension {
            match self.pax.as_deref().map_or(PaxSize::Absent, pax_size) {
                PaxSize::Absent => {}
                PaxSize::Value(n) => size = n,
                // The tar crate keeps the header's size then; so do we, unless the watcher
                // refuses the stream.
                PaxSize::Unparsable => {
                    if let Some(e) = watcher.trouble(FramingTrouble::BadPaxSize) {
                        return Err(Stop::Watcher(e));
                    }
                }
            }
        }
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let ext_sink = match kind {
            k if recognized && k.is_gnu_longname() => Some(Sink::LongName),
            k if recognized && k.is_gnu_longlink() => Some(Sink::LongLink),
            k if recognized && k.is_pax_local_extensions() => Some(Sink::Pax),
            _ => None,
        };
        if let Some(sink) = ext_sink {
            if size > EXTENSION_LIMIT {
                return Err(Stop::Trouble(FramingTrouble::Oversized(size)));
            }
            self.body(size, sink, watcher);
            return Ok(());
        }

        let pax = self.pax.take();
        let path = match self.long_name.take() {
            Some(n) => strip_nul(n),
            None => pax
                .as_deref()
                .and_then(|p| pax_value(p, b"path"))
                .unwrap_or_else(|| header.path_bytes().into_owned()),
        };
        let link = match self.long_link.take() {
            Some(n) => Some(strip_nul(n)),
            None => pax
                .as_deref()
                .and_then(|p| pax_value(p, b"linkpath"))
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned())),
        };
        let keep = watcher
            .entry(&EntryHead {
                header: &header,
                kind,
                path: &path,
                link: link.as_deref(),
                size,
            })
            .map_err(Stop::Watcher)?;
        let sink = if keep { Sink::Watcher } else { Sink::Skip };
        let sparse_ext = kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended());
        if sparse_ext {
            self.state = State::SparseExt { data: size, sink };
        } else {
            self.body(size, sink, watcher);
        }
        Ok(())
    }

    fn body<W: TarWatcher>(&mut self, size: u64, sink: Sink, watcher: &mut W) {
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.captured.clear();
        if size == 0 {
            self.keep(sink, Vec::new(), watcher);
            self.state = State::Header;
        } else {
            self.state = State::Body {
                left: size,
                pad,
                sink,
            };
        }
    }

    fn keep<W: TarWatcher>(&mut self, sink: Sink, body: Vec<u8>, watcher: &mut W) {
        match sink {
            Sink::Skip => {}
            Sink::LongName => self.long_name = Some(body),
            Sink::LongLink => self.long_link = Some(body),
            Sink::Pax => self.pax = Some(body),
            Sink::Watcher => watcher.data(body),
        }
    }
}

enum Stop<E> {
    Watcher(E),
    Trouble(FramingTrouble),
}

fn strip_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

enum PaxSize {
    Absent,
    Value(u64),
    Unparsable,
}

/// The `size` record exactly as the tar crate reads it for framing: the first one, and none at
/// all when a malformed record comes before it.
fn pax_size(records: &[u8]) -> PaxSize {
    for record in PaxExtensions::new(records) {
        let Ok(record) = record else {
            return PaxSize::Absent;
        };
        if record.key() != Ok("size") {
            continue;
        }
        return match record.value().ok().and_then(|v| v.parse().ok()) {
            Some(n) => PaxSize::Value(n),
            None => PaxSize::Unparsable,
        };
    }
    PaxSize::Absent
}

/// The first value of `key` in PAX records, as the tar crate takes `path` and `linkpath`.
fn pax_value(records: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    PaxExtensions::new(records)
        .filter_map(Result::ok)
        .find(|e| e.key_bytes() == key)
        .map(|e| e.value_bytes().to_vec())
}
