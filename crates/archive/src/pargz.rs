//! pigz-style parallel gzip: the input is cut into fixed blocks, each block is deflated on its
//! own thread and ends on a byte boundary (a sync flush; the last one ends the stream), and the
//! pieces are written in input order behind one gzip header, with the CRCs combined into one
//! trailer. The result is a single gzip member, which every reader handles (Python's streaming
//! `tarfile`, for one, stops after the first member of a multi-member file). For a given block
//! size and level the bytes are deterministic, which matters when the output's digest names a
//! layer.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::write::DeflateEncoder;

use crate::encode::FinishWrite;

/// Uncompressed bytes per independently compressed block.
pub const GZIP_BLOCK_SIZE: usize = 1 << 20;

/// The gzip header: deflate, no name or extra fields, no timestamp (deterministic output),
/// OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// One compressed block: its raw deflate bytes and the CRC of its input.
type Piece = (Vec<u8>, crc32fast::Hasher);

/// A gzip encoder that compresses blocks on up to `threads` threads at once.
///
/// Every worker thread is joined by [`FinishWrite::finish`] (and by `Drop` if the stream is
/// abandoned), so no thread outlives the encoder: callers may fork afterwards.
pub struct ParallelGzEncoder<W: Write> {
    out: Option<W>,
    block: Vec<u8>,
    in_flight: VecDeque<JoinHandle<io::Result<Piece>>>,
    threads: usize,
    level: flate2::Compression,
    block_size: usize,
    header_written: bool,
    crc: crc32fast::Hasher,
    /// Input length modulo 2^32, for the trailer.
    input_len: u32,
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
            header_written: false,
            crc: crc32fast::Hasher::new(),
            input_len: 0,
        }
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("the gzip stream is already finished"))
    }

    /// Hand the current block to a worker (or compress it here when single-threaded); `last`
    /// ends the deflate stream.
    fn submit_block(&mut self, last: bool) -> io::Result<()> {
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(self.block_size));
        let level = self.level;
        // Truncation is the point: ISIZE is the length modulo 2^32.
        self.input_len = self.input_len.wrapping_add(block.len() as u32);
        if self.threads == 1 {
            let piece = compress_block(&block, level, last)?;
            return self.write_piece(piece);
        }
        while self.in_flight.len() >= self.threads {
            self.write_oldest()?;
        }
        let handle = std::thread::Builder::new()
            .name("gzip-block".into())
            .spawn(move || compress_block(&block, level, last))?;
        self.in_flight.push_back(handle);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let piece = handle
            .join()
            .map_err(|_| io::Error::other("a gzip worker thread panicked"))??;
        self.write_piece(piece)
    }

    fn write_piece(&mut self, (bytes, crc): Piece) -> io::Result<()> {
        if !self.header_written {
            self.out()?.write_all(&HEADER)?;
            self.header_written = true;
        }
        self.crc.combine(&crc);
        self.out()?.write_all(&bytes)
    }

    fn finish_inner(&mut self) -> io::Result<W> {
        // The last block (maybe empty) carries the end of the deflate stream.
        self.submit_block(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        let input_len = self.input_len;
        let mut out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("the gzip stream is already finished"))?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&input_len.to_le_bytes())?;
        out.flush()?;
        Ok(out)
    }

    /// Finish the stream and return the inner writer.
    pub fn finish_into_inner(mut self) -> io::Result<W> {
        self.finish_inner()
    }
}

/// Raw deflate of one block. Blocks but the last end with a sync flush, so the next block's
/// bytes can follow on a byte boundary; the last one ends the stream.
fn compress_block(block: &[u8], level: flate2::Compression, last: bool) -> io::Result<Piece> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(block);
    let mut enc = DeflateEncoder::new(Vec::with_capacity(block.len() / 2 + 64), level);
    enc.write_all(block)?;
    let bytes = if last {
        enc.finish()?
    } else {
        enc.flush()?;
        // Taken before `enc` is dropped: dropping it would end the stream in this vector.
        std::mem::take(enc.get_mut())
    };
    Ok((bytes, crc))
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
            self.submit_block(false)?;
        }
        Ok(n)
    }

    /// Writes out the blocks that are done. A partial block stays buffered: emitting it early
    /// would change the block boundaries and so the output bytes.
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
