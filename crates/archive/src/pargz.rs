//! pigz-style parallel gzip: the input is cut into fixed blocks, each block is compressed as a
//! complete gzip member on its own thread, and the members are written in input order. The
//! concatenation is valid gzip (RFC 1952 §2.2 allows several members; GNU gzip and
//! `MultiGzDecoder` read them all), and for a given block size and level the bytes are
//! deterministic, which matters when the output's digest names a layer.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;

use crate::encode::FinishWrite;

/// Uncompressed bytes per gzip member.
pub const GZIP_BLOCK_SIZE: usize = 1 << 20;

/// A gzip encoder that compresses blocks on up to `threads` threads at once.
///
/// Every worker thread is joined by [`FinishWrite::finish`] (and by `Drop` if the stream is
/// abandoned), so no thread outlives the encoder: callers may fork afterwards.
pub struct ParallelGzEncoder<W: Write> {
    out: Option<W>,
    block: Vec<u8>,
    in_flight: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    threads: usize,
    level: flate2::Compression,
    block_size: usize,
    members: u64,
}

impl<W: Write> ParallelGzEncoder<W> {
    pub fn new(out: W, threads: usize) -> Self {
        Self::with_options(
            out,
            threads,
            flate2::Compression::default(),
            GZIP_BLOCK_SIZE,
        )
    }

    pub fn with_options(
        out: W,
        threads: usize,
        level: flate2::Compression,
        block_size: usize,
    ) -> Self {
        let block_size = block_size.max(1);
        ParallelGzEncoder {
            out: Some(out),
            block: Vec::with_capacity(block_size),
            in_flight: VecDeque::new(),
            threads: threads.max(1),
            level,
            block_size,
            members: 0,
        }
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("the gzip stream is already finished"))
    }

    /// Hand the current block to a worker (or compress it here when single-threaded).
    fn submit_block(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(self.block_size));
        let level = self.level;
        self.members += 1;
        if self.threads == 1 {
            let member = compress_member(&block, level)?;
            return self.out()?.write_all(&member);
        }
        while self.in_flight.len() >= self.threads {
            self.write_oldest()?;
        }
        let handle = std::thread::Builder::new()
            .name("gzip-block".into())
            .spawn(move || compress_member(&block, level))?;
        self.in_flight.push_back(handle);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let member = handle
            .join()
            .map_err(|_| io::Error::other("a gzip worker thread panicked"))??;
        self.out()?.write_all(&member)
    }

    fn finish_inner(&mut self) -> io::Result<W> {
        // An empty input still yields one (empty) member: zero bytes is not a gzip file.
        if !self.block.is_empty() || self.members == 0 {
            self.submit_block()?;
        }
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let mut out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("the gzip stream is already finished"))?;
        out.flush()?;
        Ok(out)
    }

    /// Finish the stream and return the inner writer.
    pub fn finish_into_inner(mut self) -> io::Result<W> {
        self.finish_inner()
    }
}

fn compress_member(block: &[u8], level: flate2::Compression) -> io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(block.len() / 2 + 64), level);
    enc.write_all(block)?;
    enc.finish()
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.is_none() {
            return Err(io::Error::other("the gzip stream is already finished"));
        }
        let room = self.block_size - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.submit_block()?;
        }
        Ok(n)
    }

    /// Writes out the members that are done. A partial block stays buffered: emitting it early
    /// would change the member boundaries and so the output bytes.
    fn flush(&mut self) -> io::Result<()> {
        while self.in_flight.front().is_some_and(|h| h.is_finished()) {
            self.write_oldest()?;
        }
        self.out()?.flush()
    }
}

impl<W: Write + Send> FinishWrite for ParallelGzEncoder<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.finish_inner().map(drop)
    }
}

impl<W: Write> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        for handle in self.in_flight.drain(..) {
            let _ = handle.join();
        }
    }
}
