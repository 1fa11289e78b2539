//! A reader that reports progress and stops on Ctrl-C: every long read of an install goes
//! through it.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::report::Progress;

pub(crate) fn is_cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
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
            // Not `ErrorKind::Interrupted`: `read_exact` and `io::copy` would retry that forever.
            return Err(io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.set_position(self.done);
        Ok(n)
    }
}
