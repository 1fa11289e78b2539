//! One pass over a local archive file: decompressed (format sniffed from the bytes, never the
//! file name), counted for the progress bar, stopped by Ctrl-C, and watched for an end of data
//! that comes before the tar end-of-archive marker.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use cd_archive::Compression;

use crate::archive_kind::brief_reason;
use crate::error::EngineError;
use crate::report::Progress;
use crate::watch::{is_cancelled, WatchedReader};

/// The decompressed tar stream of an archive file.
pub struct TarStream<'a> {
    inner: Box<dyn Read + 'a>,
    /// A read returned no data: the tar parser ran out of input. A complete archive ends with
    /// zero blocks, after which the parser stops reading, so this means the file is cut short
    /// (an uncompressed tar cut at a block boundary parses as a shorter, valid-looking one).
    ended: bool,
    pub compression: Compression,
}

impl<'a> TarStream<'a> {
    pub fn open(
        path: &Path,
        progress: &'a dyn Progress,
        cancel: Option<&'a AtomicBool>,
    ) -> Result<TarStream<'a>, EngineError> {
        let file = File::open(path).map_err(|e| {
            EngineError::io(format!("cannot open the archive {}", path.display()), e)
        })?;
        let watched = WatchedReader::new(file, progress, cancel);
        let (compression, inner) = cd_archive::sniffing_decoder(watched).map_err(|e| {
            EngineError::Other(format!("cannot read the archive {}: {e}", path.display()))
        })?;
        Ok(TarStream {
            inner,
            ended: false,
            compression,
        })
    }

    /// Fails when the data ended before the tar end-of-archive marker.
    pub fn check_complete(&self) -> Result<(), EngineError> {
        if self.ended {
            return Err(EngineError::Other(
                "the archive is truncated (its data ends before the tar end-of-archive marker); \
                 copy or download it again"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

impl Read for TarStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        Ok(n)
    }
}

/// The one line for an error while reading the archive: Ctrl-C, or damaged input.
pub fn read_error(e: &dyn std::fmt::Display, cancel: Option<&AtomicBool>) -> EngineError {
    if is_cancelled(cancel) {
        return EngineError::Interrupted;
    }
    EngineError::Other(format!(
        "the archive is truncated or corrupt ({}); copy or download it again",
        brief_reason(e)
    ))
}
