//! Serde structs for manifests, indexes and image configs. Unknown fields are kept in `extra`
//! so that what was received can be written back out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::media::media_type;
use crate::{Digest, Platform};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("image uses the obsolete Docker schema 1 manifest format, which is not supported; push it again with a current Docker or skopeo")]
    Schema1,
    #[error("unsupported manifest media type '{0}'")]
    UnsupportedMediaType(String),
    #[error("manifest is neither an image manifest nor an index (no 'layers' or 'manifests')")]
    Unrecognised,
}

/// A reference to content: what it is, its digest and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The image config blob. `history`, `created`, `author` and anything else are kept in
/// `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// The `config` section of an image config: how to run the image.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers_type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

fn layers_type() -> String {
    "layers".to_string()
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers_type(),
            diff_ids: Vec::new(),
        }
    }
}

/// What a manifest endpoint returned.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // parsed once per pull; boxing buys nothing
pub enum ManifestKind {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Parse a manifest or index. `content_type` is the HTTP `Content-Type`, if any; when it is
/// missing or generic (`application/json`), the JSON's `mediaType` and fields decide.
pub fn parse_manifest_any(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ManifestKind, ManifestError> {
    let header_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty());
    if header_type.is_some_and(media_type::is_schema1) {
        return Err(ManifestError::Schema1);
    }
    let value: Value = serde_json::from_slice(bytes)?;
    if value.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return Err(ManifestError::Schema1);
    }
    let body_type = value.get("mediaType").and_then(Value::as_str);
    let kind = [header_type, body_type].into_iter().flatten().find(|t| {
        media_type::is_image_manifest(t) || media_type::is_index(t) || media_type::is_schema1(t)
    });
    match kind {
        Some(t) if media_type::is_schema1(t) => Err(ManifestError::Schema1),
        Some(t) if media_type::is_index(t) => {
            Ok(ManifestKind::Index(serde_json::from_value(value)?))
        }
        Some(_) => Ok(ManifestKind::Image(serde_json::from_value(value)?)),
        None => {
            if let Some(t) = body_type {
                return Err(ManifestError::UnsupportedMediaType(t.to_string()));
            }
            if value.get("manifests").is_some() {
                Ok(ManifestKind::Index(serde_json::from_value(value)?))
            } else if value.get("config").is_some() && value.get("layers").is_some() {
                Ok(ManifestKind::Image(serde_json::from_value(value)?))
            } else {
                Err(ManifestError::Unrecognised)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::sha256(s.as_bytes()).to_string()
    }

    fn manifest_json(media: Option<&str>) -> String {
        let mt = media.map_or(String::new(), |m| format!(r#""mediaType":"{m}","#));
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{}","digest":"{}","size":3}},
            "layers":[{{"mediaType":"{}","digest":"{}","size":10}}],"subject":{{"x":1}}}}"#,
            media_type::OCI_CONFIG,
            d("c"),
            media_type::OCI_LAYER_TAR_GZIP,
            d("l")
        )
    }

    #[test]
    fn image_manifest_parses_by_header_body_or_fields() {
        let with = manifest_json(Some(media_type::OCI_MANIFEST));
        let without = manifest_json(None);
        for (bytes, ct) in [
            (&with, Some("application/vnd.oci.image.manifest.v1+json")),
            (&with, None),
            (&without, Some("application/json; charset=utf-8")),
            (&without, None),
        ] {
            match parse_manifest_any(bytes.as_bytes(), ct).unwrap() {
                ManifestKind::Image(m) => {
                    assert_eq!(m.layers.len(), 1);
                    assert_eq!(m.layers[0].size, 10);
                    assert!(m.extra.contains_key("subject"), "unknown field kept");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn index_parses_with_platforms() {
        let j = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"{}","digest":"{}","size":5,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{}","digest":"{}","size":5,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media_type::DOCKER_MANIFEST,
            d("a"),
            media_type::DOCKER_MANIFEST,
            d("b")
        );
        let ManifestKind::Index(idx) =
            parse_manifest_any(j.as_bytes(), Some(media_type::DOCKER_MANIFEST_LIST)).unwrap()
        else {
            panic!("not an index")
        };
        let plats: Vec<_> = idx
            .manifests
            .iter()
            .filter_map(|m| m.platform.clone())
            .collect();
        assert_eq!(
            Platform::host().select(&plats).is_some(),
            cfg!(target_arch = "x86_64") || cfg!(target_arch = "aarch64")
        );
        assert!(matches!(
            parse_manifest_any(j.as_bytes(), None),
            Ok(ManifestKind::Index(_))
        ));
    }

    #[test]
    fn schema1_and_unknown_types_are_rejected_clearly() {
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert!(matches!(
            parse_manifest_any(s1.as_bytes(), None),
            Err(ManifestError::Schema1)
        ));
        assert!(matches!(
            parse_manifest_any(b"{}", Some(media_type::DOCKER_MANIFEST_V1_SIGNED)),
            Err(ManifestError::Schema1)
        ));
        let odd = r#"{"schemaVersion":2,"mediaType":"application/x-helm"}"#;
        assert!(matches!(
            parse_manifest_any(odd.as_bytes(), None),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse_manifest_any(b"{\"schemaVersion\":2}", None),
            Err(ManifestError::Unrecognised)
        ));
        assert!(matches!(
            parse_manifest_any(b"nope", None),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn image_config_keeps_run_settings_and_unknown_fields() {
        let j = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{{"Env":["PATH=/bin"],"Entrypoint":null,"Cmd":["/bin/sh"],"WorkingDir":"/root","User":"1000","Labels":{{"a":"b"}}}},
            "rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created_by":"x"}}]}}"#,
            d("t")
        );
        let c: ImageConfig = serde_json::from_str(&j).unwrap();
        let run = c.config.as_ref().unwrap();
        assert_eq!(run.env.as_deref(), Some(&["PATH=/bin".to_string()][..]));
        assert_eq!(run.entrypoint, None);
        assert_eq!(run.cmd.as_deref(), Some(&["/bin/sh".to_string()][..]));
        assert_eq!(run.working_dir.as_deref(), Some("/root"));
        assert_eq!(run.user.as_deref(), Some("1000"));
        assert!(run.extra.contains_key("Labels"));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(c.platform().to_string(), "linux/amd64");
        let back: Value = serde_json::to_value(&c).unwrap();
        assert_eq!(back["history"][0]["created_by"], "x");
        assert_eq!(back["created"], "2024-01-01T00:00:00Z");
        assert_eq!(back["config"]["Labels"]["a"], "b");
    }
}
