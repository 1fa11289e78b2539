use std::time::Duration;

use cd_image::{media_type, Descriptor, Digest};
use cd_registry::{ClientOptions, CredentialSource, RegistryClient, Timeouts};
use serde_json::json;

use crate::fakereg::FakeRegistry;

/// Options that keep waits short in tests.
pub fn quick_options() -> ClientOptions {
    ClientOptions {
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(50),
        loopback_tls_probe_timeout: Duration::from_millis(300),
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(10),
            read: Duration::from_secs(10),
        },
        ..ClientOptions::default()
    }
}

pub fn client() -> RegistryClient {
    RegistryClient::new(quick_options())
}

pub fn client_with(credentials: CredentialSource) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        credentials,
        ..quick_options()
    })
}

/// One image in the fake: returns (manifest digest, layer descriptor, layer bytes).
pub struct FakeImage {
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub layer: Descriptor,
    pub layer_bytes: Vec<u8>,
}

pub fn put_image(
    reg: &FakeRegistry,
    repo: &str,
    tag: &str,
    arch: &str,
    variant: Option<&str>,
) -> FakeImage {
    let layer_bytes: Vec<u8> = format!("layer for {arch}{variant:?} ")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(200_000)
        .collect();
    let layer_digest = reg.put_blob(&layer_bytes);
    let mut config = json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = reg.put_blob(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
        "layers": [{"mediaType": media_type::OCI_LAYER_TAR_GZIP, "digest": layer_digest, "size": layer_bytes.len()}],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = reg.put_manifest(repo, tag, media_type::OCI_MANIFEST, &manifest_bytes);
    FakeImage {
        manifest_digest,
        manifest_bytes,
        layer: Descriptor::new(
            media_type::OCI_LAYER_TAR_GZIP,
            layer_digest.parse::<Digest>().unwrap(),
            layer_bytes.len() as u64,
        ),
        layer_bytes,
    }
}
