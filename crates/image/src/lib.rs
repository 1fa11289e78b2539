//! The OCI image model: digests, references, platforms, media types, manifests and configs.
//!
//! Pure data and parsing; no network and no filesystem access.

mod digest;
mod manifest;
mod media;
mod platform;
mod reference;

pub use digest::{Digest, DigestAlgorithm, DigestError, DigestWriter, Hasher};
pub use manifest::{
    parse_manifest_any, ContainerConfig, Descriptor, ImageConfig, ImageIndex, ImageManifest,
    ManifestError, ManifestKind, RootFs,
};
pub use media::{media_type, LayerCompression, MediaTypeError};
pub use platform::{Platform, PlatformError};
pub use reference::{is_dns_name, ImageRef, RefError, DOCKER_HUB};
