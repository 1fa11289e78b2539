//! Streaming decoders. Every decoder accepts concatenated streams (pigz and `cat a.gz b.gz`
//! output, multi-stream xz, multi-frame zstd) and reports a truncated stream as an error.

use std::io::{self, BufReader, Cursor, Read};

use crate::codec::{Compression, SNIFF_LEN};
use crate::{ArchiveError, Result};

/// Memory limit for the xz and lzma decoders: generous (xz -9 needs 65 MiB) but bounded.
const LZMA_MEMLIMIT: u64 = 1 << 30;

/// Wrap `r` in the decoder for `c`. `Compression::None` passes the bytes through.
pub fn decoder<'a, R: Read + 'a>(r: R, c: Compression) -> Result<Box<dyn Read + 'a>> {
    let wrap = |source: io::Error| ArchiveError::Decoder { codec: c, source };
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(r))),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(r))),
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                LZMA_MEMLIMIT,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| wrap(e.into()))?;
            Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
        }
        Compression::Lzma => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT)
                .map_err(|e| wrap(e.into()))?;
            Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
        }
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r).map_err(wrap)?),
    })
}

/// Look at the first bytes of `r` to pick the decoder, without losing them.
pub fn sniffing_decoder<'a, R: Read + 'a>(
    mut r: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    // A pipe may deliver fewer bytes per read than the magic needs: read until we have them.
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut r).take(SNIFF_LEN as u64).read_to_end(&mut head)?;
    let c = Compression::sniff(&head);
    let whole = Cursor::new(head).chain(r);
    let dec = decoder(whole, c).map_err(|e| match e {
        ArchiveError::Decoder { source, .. } => source,
    })?;
    Ok((c, dec))
}
