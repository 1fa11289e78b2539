//! Waiting on the network without ignoring Ctrl-C.
//!
//! A blocked socket read or connect only returns at its timeout (a minute), so a cancel flag
//! checked between reads is not enough against a stalled server. With a flag, the blocking call
//! runs on its own thread and the caller waits in short slices; when the flag is set the caller
//! returns at once and leaves that thread behind, blocked until its timeout. That only happens
//! when the process is on its way out; otherwise every such thread is joined before returning,
//! so callers may still fork or `setns` afterwards (ARCHITECTURE.md, decision 1).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting caller looks at the flag.
const SLICE: Duration = Duration::from_millis(50);

fn is_set(flag: Option<&AtomicBool>) -> bool {
    flag.is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Run `f`, returning `None` as soon as `flag` is set instead of waiting for it to finish.
pub fn unless_cancelled<T: Send + 'static>(
    flag: Option<&'static AtomicBool>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if flag.is_none() {
        return Some(f());
    }
    if is_set(flag) {
        return None;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match wait(&rx, flag) {
        Waited::Got(v) => {
            let _ = handle.join();
            Some(v)
        }
        Waited::Cancelled => None,
        Waited::Gone => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => None,
        },
    }
}

/// Sleep for `d`; `false` when `flag` was set meanwhile (the sleep is cut short).
pub fn sleep_unless_cancelled(d: Duration, flag: Option<&AtomicBool>) -> bool {
    let end = Instant::now() + d;
    loop {
        if is_set(flag) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(SLICE));
    }
}

enum Waited<T> {
    Got(T),
    Cancelled,
    Gone,
}

fn wait<T>(rx: &Receiver<T>, flag: Option<&AtomicBool>) -> Waited<T> {
    loop {
        match rx.recv_timeout(SLICE) {
            Ok(v) => return Waited::Got(v),
            Err(RecvTimeoutError::Timeout) if is_set(flag) => return Waited::Cancelled,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Waited::Gone,
        }
    }
}

/// The error a [`CancellableReader`] returns once the flag is set.
pub fn is_cancel_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
}

#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// A reader whose `read` returns a cancel error (see [`is_cancel_error`]) as soon as the flag
/// is set, even while the underlying read is blocked. Without a flag it reads directly.
pub struct CancellableReader {
    inner: Source,
}

enum Source {
    Direct(Box<dyn Read + Send>),
    Pumped {
        rx: Receiver<io::Result<Vec<u8>>>,
        pending: Vec<u8>,
        offset: usize,
        ended: bool,
        pump: Option<JoinHandle<()>>,
        flag: &'static AtomicBool,
    },
}

impl CancellableReader {
    pub fn new(
        mut reader: impl Read + Send + 'static,
        chunk: usize,
        flag: Option<&'static AtomicBool>,
    ) -> Self {
        let Some(flag) = flag else {
            return CancellableReader {
                inner: Source::Direct(Box::new(reader)),
            };
        };
        // A few chunks of read-ahead keep the socket busy while the caller hashes and writes.
        let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
        let pump = std::thread::spawn(move || loop {
            let mut buf = vec![0u8; chunk];
            let item = match reader.read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let last = !matches!(&item, Ok(b) if !b.is_empty());
            if tx.send(item).is_err() || last {
                return;
            }
        });
        CancellableReader {
            inner: Source::Pumped {
                rx,
                pending: Vec::new(),
                offset: 0,
                ended: false,
                pump: Some(pump),
                flag,
            },
        }
    }
}

impl Read for CancellableReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (rx, pending, offset, ended, pump, flag) = match &mut self.inner {
            Source::Direct(r) => return r.read(buf),
            Source::Pumped {
                rx,
                pending,
                offset,
                ended,
                pump,
                flag,
            } => (rx, pending, offset, ended, pump, flag),
        };
        if flag.load(Ordering::Relaxed) {
            return Err(io::Error::other(Cancelled));
        }
        if *offset == pending.len() {
            if *ended {
                return Ok(0);
            }
            match wait(rx, Some(*flag)) {
                Waited::Got(Ok(chunk)) => {
                    if chunk.is_empty() {
                        *ended = true;
                        if let Some(p) = pump.take() {
                            let _ = p.join();
                        }
                        return Ok(0);
                    }
                    *pending = chunk;
                    *offset = 0;
                }
                Waited::Got(Err(e)) => {
                    *ended = true;
                    if let Some(p) = pump.take() {
                        let _ = p.join();
                    }
                    return Err(e);
                }
                Waited::Cancelled => return Err(io::Error::other(Cancelled)),
                Waited::Gone => {
                    *ended = true;
                    return Err(io::Error::other("the download thread stopped"));
                }
            }
        }
        let n = (pending.len() - *offset).min(buf.len());
        buf[..n].copy_from_slice(&pending[*offset..*offset + n]);
        *offset += n;
        Ok(n)
    }
}

/// A writer whose work happens on a thread of its own: `write` only queues chunks, so a writer
/// that blocks for seconds (a multi-threaded compressor waiting for its workers) never delays
/// noticing the flag. [`finish`](Self::finish) waits for the thread to write everything and
/// run `finish` on the inner writer. Dropped unfinished, it leaves the thread to end by itself.
pub struct PumpWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    chunk: usize,
    result: Receiver<io::Result<()>>,
    handle: Option<JoinHandle<()>>,
    flag: Option<&'static AtomicBool>,
}

impl PumpWriter {
    pub fn new<W: Write + Send + 'static>(
        mut inner: W,
        finish: impl FnOnce(W) -> io::Result<()> + Send + 'static,
        chunk: usize,
        flag: Option<&'static AtomicBool>,
    ) -> PumpWriter {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let (result_tx, result) = mpsc::sync_channel(1);
        let handle = std::thread::spawn(move || {
            let outcome = rx
                .iter()
                .try_for_each(|chunk| inner.write_all(&chunk))
                .and_then(|()| finish(inner));
            let _ = result_tx.send(outcome);
        });
        PumpWriter {
            tx: Some(tx),
            buf: Vec::with_capacity(chunk),
            chunk,
            result,
            handle: Some(handle),
            flag,
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut item = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the writer has finished"));
        };
        loop {
            match tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    if is_set(self.flag) {
                        return Err(io::Error::other(Cancelled));
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                // The thread stopped on an error: that error is the answer.
                Err(TrySendError::Disconnected(_)) => return Err(self.thread_error()),
            }
        }
    }

    fn thread_error(&mut self) -> io::Error {
        match self.result.recv() {
            Ok(Err(e)) => e,
            _ => io::Error::other("the writer thread stopped"),
        }
    }

    /// Write what is queued, finish the inner writer, and wait for both, giving up early (with
    /// a cancel error) when the flag is set.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffer()?;
        drop(self.tx.take());
        match wait(&self.result, self.flag) {
            Waited::Got(outcome) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                outcome
            }
            Waited::Cancelled => Err(io::Error::other(Cancelled)),
            Waited::Gone => Err(io::Error::other("the writer thread stopped")),
        }
    }
}

impl Write for PumpWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if is_set(self.flag) {
            return Err(io::Error::other(Cancelled));
        }
        let n = data.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            self.send_buffer()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Hands the bytes on; only `finish` knows they reached the inner writer.
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that blocks forever after its data, like a stalled server.
    struct Stalls(Option<Vec<u8>>);

    impl Read for Stalls {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.take() {
                Some(data) => {
                    buf[..data.len()].copy_from_slice(&data);
                    Ok(data.len())
                }
                None => loop {
                    std::thread::sleep(Duration::from_secs(3600));
                },
            }
        }
    }

    fn leaked_flag() -> &'static AtomicBool {
        Box::leak(Box::new(AtomicBool::new(false)))
    }

    #[test]
    fn a_stalled_read_gives_up_when_the_flag_is_set() {
        let flag = leaked_flag();
        let mut r = CancellableReader::new(Stalls(Some(b"abc".to_vec())), 16, Some(flag));
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        });
        let err = r.read(&mut buf).unwrap_err();
        assert!(is_cancel_error(&err), "{err}");
    }

    #[test]
    fn pumped_and_direct_readers_read_everything() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for flag in [None, Some(leaked_flag())] {
            let mut r = CancellableReader::new(io::Cursor::new(data.clone()), 4096, flag);
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, data);
        }
    }

    #[test]
    fn a_blocked_call_is_abandoned_and_a_quick_one_returns_its_value() {
        let flag = leaked_flag();
        assert_eq!(unless_cancelled(Some(flag), || 7), Some(7));
        assert_eq!(unless_cancelled(None, || 8), Some(8));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        });
        let got = unless_cancelled(Some(flag), || {
            std::thread::sleep(Duration::from_secs(3600));
        });
        assert_eq!(got, None);
        assert!(!sleep_unless_cancelled(
            Duration::from_secs(3600),
            Some(flag)
        ));
        assert!(sleep_unless_cancelled(Duration::from_millis(1), None));
    }

    /// A writer that takes an hour per write, like a compressor stuck behind its workers.
    struct Slow;

    impl Write for Slow {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_pump_writer_passes_everything_and_finishes_its_inner_writer() {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&out);
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let mut w = PumpWriter::new(
            Vec::new(),
            move |v: Vec<u8>| {
                *sink.lock().unwrap() = v;
                Ok(())
            },
            4096,
            Some(leaked_flag()),
        );
        for part in data.chunks(777) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(*out.lock().unwrap(), data);
    }

    #[test]
    fn a_pump_writer_gives_up_on_a_stuck_writer_when_the_flag_is_set() {
        let flag = leaked_flag();
        let mut w = PumpWriter::new(Slow, |_| Ok(()), 16, Some(flag));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        });
        let err = (0..100)
            .map(|_| w.write_all(&[0u8; 16]))
            .find_map(Result::err)
            .expect("the queue filled up and the flag was seen");
        assert!(is_cancel_error(&err), "{err}");
    }

    #[test]
    fn a_pump_writer_reports_its_inner_writers_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = PumpWriter::new(Full, |_| Ok(()), 8, None);
        let first = (0..100)
            .map(|_| w.write_all(&[1u8; 8]))
            .find_map(Result::err);
        let err = match first {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert_eq!(err.to_string(), "disk full");
    }
}
