//! Compression codecs for layers and backups: sniffing, streaming decoders and encoders
//! (multithreaded for zstd and xz, pigz-style parallel gzip), and tar streams with bounded
//! metadata. Nothing here writes to disk: the caller hands in a reader or a writer.

mod codec;
mod decode;
mod encode;
mod pargz;
pub mod tar_framing;
mod tar_guard;

pub use codec::{Compression, UnknownCompression};
pub use decode::{decoder, sniffing_decoder};
pub use encode::{encoder, FinishWrite};
pub use pargz::{ParallelGzEncoder, GZIP_BLOCK_SIZE};
pub use tar_framing::EXTENSION_LIMIT;
pub use tar_guard::{guarded_archive, TarGuard};

/// Errors from building a decoder.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot set up the {codec} decoder: {source}")]
    Decoder {
        codec: Compression,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;
