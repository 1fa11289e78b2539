//! `containers/<name>/manifest.json`: what an installed container was made from.
//!
//! The format is the published Python tool's (see docs/store-format.md), so stores can be
//! shared between the two: `image_ref`, `arch`, `manifest` and `image_config`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::atomic::write_atomic;
use crate::error::EngineError;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    #[serde(default)]
    pub image_ref: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub manifest: Value,
    #[serde(default)]
    pub image_config: Value,
    /// Fields written by other versions are kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContainerRecord {
    pub fn load(path: &Path) -> Result<Option<ContainerRecord>, EngineError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(EngineError::io(
                    format!("cannot read {}", path.display()),
                    e,
                ))
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            EngineError::Other(format!(
                "{} is not valid JSON ({e}); reinstall the container or restore it from a backup",
                path.display()
            ))
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| EngineError::Other(format!("cannot encode manifest.json: {e}")))?;
        bytes.push(b'\n');
        // World-readable so that `list` works without root.
        write_atomic(path, &bytes, 0o644)
    }

    /// The `config` section of the image config (Env, Entrypoint, Cmd, ...), if recorded.
    pub fn runtime_config(&self) -> Option<&Map<String, Value>> {
        self.image_config.get("config").and_then(Value::as_object)
    }

    /// `image_ref (arch)` for listings.
    pub fn source_label(&self) -> String {
        if self.image_ref.is_empty() {
            "local archive".to_string()
        } else if self.arch.is_empty() {
            self.image_ref.clone()
        } else {
            format!("{} ({})", self.image_ref, self.arch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.json");
        std::fs::write(
            &p,
            r#"{"image_ref":"ubuntu:24.04","arch":"x86_64","manifest":{"layers":[]},
               "image_config":{"config":{"Cmd":["/bin/bash"]}},"future":1}"#,
        )
        .unwrap();
        let rec = ContainerRecord::load(&p).unwrap().unwrap();
        assert_eq!(rec.source_label(), "ubuntu:24.04 (x86_64)");
        assert_eq!(rec.runtime_config().unwrap()["Cmd"][0], "/bin/bash");
        rec.save(&p).unwrap();
        let again: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(again["future"], 1);
        assert_eq!(again["image_ref"], "ubuntu:24.04");
    }

    #[test]
    fn missing_file_is_none_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ContainerRecord::load(&dir.path().join("x"))
            .unwrap()
            .is_none());
        let p = dir.path().join("bad.json");
        std::fs::write(&p, "{").unwrap();
        assert!(ContainerRecord::load(&p).is_err());
    }
}
