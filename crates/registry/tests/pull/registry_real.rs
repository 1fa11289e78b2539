//! Against Debian's `docker-registry`, filled by skopeo from OCI layouts written here.

use std::ops::ControlFlow;

use cd_image::{media_type, ImageRef, Platform};
use cd_registry::{ClientOptions, CredentialSource, Credentials, RegistryClient, RegistryError};
use cd_testkit::fixture::{Entry, ImageBuilder, OciLayout, WrittenImage};

use crate::local::{registry_tools_available, LocalRegistry};
use crate::support::quick_options;

fn layout_with(dir: &std::path::Path, images: &[ImageBuilder]) -> Vec<WrittenImage> {
    let mut layout = OciLayout::create(dir);
    if images.len() == 1 {
        vec![layout.add_image("v1", &images[0])]
    } else {
        layout.add_index("v1", images).1
    }
}

fn small_image(arch: &str, variant: Option<&str>) -> ImageBuilder {
    ImageBuilder::new()
        .arch(arch, variant)
        .layer(vec![
            Entry::dir("etc", 0o755),
            Entry::file("etc/os-release", format!("ID=test\nARCH={arch}\n"), 0o644),
            Entry::file("hello.txt", "hello from the registry\n", 0o644),
        ])
        .config("Cmd", serde_json::json!(["/bin/sh"]))
}

fn pull_all(c: &RegistryClient, image: &ImageRef, platform: &Platform) -> cd_registry::Resolved {
    let r = c.resolve(image, platform).unwrap();
    let dir = tempfile::tempdir().unwrap();
    c.fetch_blobs_parallel(
        &r.repo,
        &r.manifest.layers,
        |d| dir.path().join(d.digest.cache_file_name()),
        4,
        &|_, _, _| {},
        &|_| ControlFlow::Continue(()),
    )
    .unwrap();
    for l in &r.manifest.layers {
        let data = std::fs::read(dir.path().join(l.digest.cache_file_name())).unwrap();
        l.digest.verify(&data).unwrap();
    }
    r
}

#[test]
fn registry_plain_oci_image_resolves_and_pulls() {
    if !registry_tools_available() {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    }
    let reg = LocalRegistry::start_plain();
    let oci = tempfile::tempdir().unwrap();
    let written = layout_with(oci.path(), &[small_image("amd64", None)]);
    reg.push_oci_dir(oci.path(), "v1", "demo/app:1", &[]);
    // skopeo copies an OCI image byte for byte, so the digests survive the push.
    let image: ImageRef = format!("{}/demo/app:1", reg.host_port()).parse().unwrap();
    let c = RegistryClient::new(quick_options());
    let r = pull_all(&c, &image, &"x86_64".parse().unwrap());
    assert_eq!(r.manifest_digest.to_string(), written[0].manifest_digest);
    assert_eq!(r.manifest_media_type, media_type::OCI_MANIFEST);
    assert_eq!(r.manifest.layers.len(), 1);
    assert_eq!(
        r.manifest.layers[0].digest.to_string(),
        written[0].layer_digests[0]
    );
    assert_eq!(
        r.config.rootfs.diff_ids[0].to_string(),
        written[0].diff_ids[0]
    );
    assert_eq!(
        r.config.config.unwrap().cmd,
        Some(vec!["/bin/sh".to_string()])
    );

    // By digest as well.
    let pinned = image.with_digest(r.manifest_digest.clone());
    let again = c.resolve(&pinned, &"x86_64".parse().unwrap()).unwrap();
    assert_eq!(again.manifest_bytes, r.manifest_bytes);
}

#[test]
fn registry_plain_docker_v2s2_and_multi_arch_index() {
    if !registry_tools_available() {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    }
    let reg = LocalRegistry::start_plain();
    let oci = tempfile::tempdir().unwrap();
    layout_with(oci.path(), &[small_image("amd64", None)]);
    reg.push_oci_dir(oci.path(), "v1", "docker/app:1", &["--format", "v2s2"]);
    let c = RegistryClient::new(quick_options());
    let image: ImageRef = format!("{}/docker/app:1", reg.host_port()).parse().unwrap();
    let r = pull_all(&c, &image, &"x86_64".parse().unwrap());
    assert_eq!(r.manifest_media_type, media_type::DOCKER_MANIFEST);
    assert_eq!(
        r.manifest.layers[0].media_type,
        media_type::DOCKER_LAYER_TAR_GZIP
    );

    let multi = tempfile::tempdir().unwrap();
    let written = layout_with(
        multi.path(),
        &[
            small_image("amd64", None),
            small_image("arm64", Some("v8")),
            small_image("arm", Some("v7")),
        ],
    );
    reg.push_oci_dir(multi.path(), "v1", "multi/app:1", &["--all"]);
    let image: ImageRef = format!("{}/multi/app:1", reg.host_port()).parse().unwrap();
    for (i, arch) in ["x86_64", "aarch64", "arm"].iter().enumerate() {
        let r = pull_all(&c, &image, &arch.parse().unwrap());
        assert_eq!(
            r.manifest_digest.to_string(),
            written[i].manifest_digest,
            "{arch}"
        );
        assert!(r.index_digest.is_some());
    }
}

#[test]
fn registry_tls_htpasswd_needs_the_ca_and_credentials() {
    if !registry_tools_available() {
        eprintln!("skipped: docker-registry or skopeo missing");
        return;
    }
    let reg = LocalRegistry::start_tls_htpasswd("carol", "pa55");
    let oci = tempfile::tempdir().unwrap();
    let written = layout_with(oci.path(), &[small_image("amd64", None)]);
    reg.push_oci_dir(oci.path(), "v1", "private/app:1", &[]);
    let image: ImageRef = format!("{}/private/app:1", reg.host_port())
        .parse()
        .unwrap();
    let ca = reg.ca_cert_path().unwrap().to_path_buf();
    let with = |credentials, ca_files| {
        RegistryClient::new(ClientOptions {
            credentials,
            ca_files,
            ..quick_options()
        })
    };
    let platform: Platform = "x86_64".parse().unwrap();

    let good = with(
        CredentialSource::fixed(Credentials::new("carol", "pa55")),
        vec![ca.clone()],
    );
    let r = pull_all(&good, &image, &platform);
    assert_eq!(r.manifest_digest.to_string(), written[0].manifest_digest);

    let anonymous = with(CredentialSource::none(), vec![ca.clone()]);
    let err = anonymous.resolve(&image, &platform).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    let wrong = with(
        CredentialSource::fixed(Credentials::new("carol", "nope")),
        vec![ca],
    );
    let err = wrong.resolve(&image, &platform).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    let untrusted = with(
        CredentialSource::fixed(Credentials::new("carol", "pa55")),
        vec![],
    );
    let err = untrusted.resolve(&image, &platform).unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
}
