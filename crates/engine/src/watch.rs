//! Readers and writers that report progress and stop on Ctrl-C: every long stream of an
//! install, a backup or a restore goes through one.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::report::Progress;

pub(crate) fn is_cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

fn interrupted() -> io::Error {
    // Not `ErrorKind::Interrupted`: `read_exact`, `write_all` and `io::copy` retry that forever.
    io::Error::other("interrupted")
}

pub(crate) struct WatchedReader<'a, R> {
    inner: R,
    done: u64,
    progress: &'a dyn Progress,
    cancel: Option<&'a AtomicBool>,
}

impl<'a, R> WatchedReader<'a, R> {
    pub(crate) fn new(
        inner: R,
        progress: &'a dyn Progress,
        cancel: Option<&'a AtomicBool>,
    ) -> Self {
        WatchedReader {
            inner,
            done: 0,
            progress,
            cancel,
        }
    }
}

impl<R: Read> Read for WatchedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if is_cancelled(self.cancel) {
            return Err(interrupted());
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.set_position(self.done);
        Ok(n)
    }
}

/// The writing twin of [`WatchedReader`]; owns its progress bar so it can be handed to threads.
pub(crate) struct WatchedWriter<W> {
    inner: W,
    done: u64,
    progress: Box<dyn Progress>,
    cancel: Option<&'static AtomicBool>,
}

impl<W> WatchedWriter<W> {
    pub(crate) fn new(
        inner: W,
        progress: Box<dyn Progress>,
        cancel: Option<&'static AtomicBool>,
    ) -> Self {
        WatchedWriter {
            inner,
            done: 0,
            progress,
            cancel,
        }
    }

    /// The inner writer, with the bar completed at what was actually written (its total may
    /// have been an estimate).
    pub(crate) fn into_inner(self) -> W {
        self.progress.set_total(self.done);
        self.progress.finish();
        self.inner
    }
}

impl<W: Write> Write for WatchedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if is_cancelled(self.cancel) {
            return Err(interrupted());
        }
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        self.progress.set_position(self.done);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
