#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use cd_archive::{decoder, encoder, sniffing_decoder, Compression, ParallelGzEncoder};

const ALL: [Compression; 6] = [
    Compression::None,
    Compression::Gzip,
    Compression::Bzip2,
    Compression::Xz,
    Compression::Lzma,
    Compression::Zstd,
];

/// A `Write + Send + 'static` sink whose bytes the test can read back after `finish`.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Compressible but not trivial: a few MiB so gzip uses several blocks.
fn sample(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 == 0 {
                (x & 0xff) as u8
            } else {
                b"chroot-distro layer data "[i % 25]
            }
        })
        .collect()
}

fn compress(data: &[u8], c: Compression, threads: usize) -> Vec<u8> {
    let sink = SharedBuf::default();
    let mut enc = encoder(sink.clone(), c, threads).unwrap();
    for chunk in data.chunks(100_000) {
        enc.write_all(chunk).unwrap();
    }
    enc.finish().unwrap();
    sink.take()
}

fn decompress(bytes: &[u8], c: Compression) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decoder(bytes, c).unwrap().read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn every_codec_round_trips() {
    let data = sample(3 * 1024 * 1024 + 17);
    for c in ALL {
        for threads in [1, 2] {
            let packed = compress(&data, c, threads);
            assert_eq!(
                decompress(&packed, c).unwrap(),
                data,
                "{c} threads={threads}"
            );
        }
    }
}

#[test]
fn empty_input_round_trips() {
    for c in ALL {
        let packed = compress(b"", c, 2);
        assert_eq!(decompress(&packed, c).unwrap(), b"", "{c}");
    }
}

#[test]
fn sniffing_decoder_recognises_what_encoder_wrote() {
    let data = sample(200_000);
    for c in ALL {
        let packed = compress(&data, c, 2);
        assert_eq!(Compression::sniff(&packed), c, "{c}");
        // One byte per read, as from a slow pipe: the sniffer must not lose or misjudge them.
        let slow = OneByteReader(&packed[..]);
        let (found, mut dec) = sniffing_decoder(slow).unwrap();
        assert_eq!(found, c);
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "{c}");
    }
}

struct OneByteReader<'a>(&'a [u8]);

impl Read for OneByteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

#[test]
fn concatenated_streams_decode_fully() {
    let a = sample(10_000);
    let b = sample(20_000);
    for c in [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let mut both = compress(&a, c, 1);
        both.extend(compress(&b, c, 1));
        let mut want = a.clone();
        want.extend_from_slice(&b);
        assert_eq!(decompress(&both, c).unwrap(), want, "{c}");
    }
}

#[test]
fn truncated_streams_are_errors() {
    let data = sample(500_000);
    for c in ALL.into_iter().filter(|&c| c != Compression::None) {
        let packed = compress(&data, c, 1);
        for cut in [packed.len() / 2, packed.len() - 1] {
            let res = decompress(&packed[..cut], c);
            assert!(
                res.is_err(),
                "{c} cut at {cut} of {} decoded silently",
                packed.len()
            );
        }
    }
}

#[test]
fn corrupt_streams_are_errors() {
    let data = sample(500_000);
    for c in ALL.into_iter().filter(|&c| c != Compression::None) {
        let mut packed = compress(&data, c, 1);
        let mid = packed.len() / 2;
        for b in &mut packed[mid..mid + 16] {
            *b ^= 0x5a;
        }
        match decompress(&packed, c) {
            Err(_) => {}
            Ok(out) => panic!("{c}: corrupt stream decoded silently ({} bytes)", out.len()),
        }
    }
}

#[test]
fn parallel_gzip_is_read_by_system_gzip() {
    let data = sample(5 * 1024 * 1024 + 3);
    let packed = compress(&data, Compression::Gzip, 4);
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip must be installed for this test");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&packed));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    feeder.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out, data);
}

#[test]
fn parallel_gzip_output_does_not_depend_on_thread_count() {
    let data = sample(3 * 1024 * 1024);
    let one = compress(&data, Compression::Gzip, 1);
    let four = compress(&data, Compression::Gzip, 4);
    assert_eq!(one, four);
}

/// One gzip member, however many blocks: readers that stop after the first member (Python's
/// streaming `tarfile`, `flate2::read::GzDecoder`) still see everything.
#[test]
fn parallel_gzip_is_one_member_whatever_the_block_count() {
    let data = sample(10_000);
    for threads in [1, 3] {
        let mut enc =
            ParallelGzEncoder::with_options(Vec::new(), threads, flate2_default_level(), 1000);
        enc.write_all(&data).unwrap();
        let packed = enc.finish_into_inner().unwrap();
        let mut single = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut single)
            .unwrap();
        assert_eq!(single, data, "{threads} thread(s)");
        assert_eq!(decompress(&packed, Compression::Gzip).unwrap(), data);
        let status = std::process::Command::new("gzip")
            .args(["-t", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(&packed)?;
                c.wait()
            })
            .unwrap();
        assert!(status.success(), "gzip -t refused it");
    }
    // Empty input is still a valid (empty) gzip file.
    let enc = ParallelGzEncoder::with_options(Vec::new(), 2, flate2_default_level(), 1000);
    let packed = enc.finish_into_inner().unwrap();
    assert_eq!(decompress(&packed, Compression::Gzip).unwrap(), b"");
}

fn flate2_default_level() -> flate2::Compression {
    flate2::Compression::default()
}
