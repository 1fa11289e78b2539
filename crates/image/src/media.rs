//! Media types of OCI and Docker schema 2 images, and layer compression by media type.

/// Media type strings.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST_TAR: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDIST_TAR_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_NONDIST_TAR_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER_TAR_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_MANIFEST_V1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// Everything a pull may receive, in the `Accept` header's preference order.
    pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.v2+json";

    pub fn is_image_manifest(t: &str) -> bool {
        t == OCI_MANIFEST || t == DOCKER_MANIFEST
    }

    pub fn is_index(t: &str) -> bool {
        t == OCI_INDEX || t == DOCKER_MANIFEST_LIST
    }

    pub fn is_schema1(t: &str) -> bool {
        t == DOCKER_MANIFEST_V1 || t == DOCKER_MANIFEST_V1_SIGNED
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported layer media type '{0}'")]
pub struct MediaTypeError(pub String);

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn from_media_type(t: &str) -> Result<LayerCompression, MediaTypeError> {
        use media_type::*;
        match t {
            OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR | DOCKER_LAYER_TAR => Ok(LayerCompression::None),
            OCI_LAYER_TAR_GZIP
            | OCI_LAYER_NONDIST_TAR_GZIP
            | DOCKER_LAYER_TAR_GZIP
            | DOCKER_FOREIGN_LAYER_TAR_GZIP => Ok(LayerCompression::Gzip),
            OCI_LAYER_TAR_ZSTD | OCI_LAYER_NONDIST_TAR_ZSTD => Ok(LayerCompression::Zstd),
            other => Err(MediaTypeError(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_compression_follows_media_type() {
        use media_type::*;
        assert_eq!(
            LayerCompression::from_media_type(DOCKER_LAYER_TAR_GZIP),
            Ok(LayerCompression::Gzip)
        );
        assert_eq!(
            LayerCompression::from_media_type(OCI_LAYER_TAR_ZSTD),
            Ok(LayerCompression::Zstd)
        );
        assert_eq!(
            LayerCompression::from_media_type(OCI_LAYER_TAR),
            Ok(LayerCompression::None)
        );
        let err = LayerCompression::from_media_type("application/x-foo").unwrap_err();
        assert!(err.to_string().contains("application/x-foo"));
    }
}
