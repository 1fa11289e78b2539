use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Mutex;

use cd_image::{media_type, Descriptor, Digest, ImageRef, Platform};
use cd_registry::{
    partial_path, ClientOptions, CredentialSource, Credentials, RegistryClient, RegistryError,
    Repository,
};
use serde_json::json;

use crate::fakereg::{FakeAuth, FakeRegistry, Fault};
use crate::support::{client, client_with, put_image, quick_options};

fn image(reg: &FakeRegistry, rest: &str) -> ImageRef {
    format!("{}/{rest}", reg.host_port()).parse().unwrap()
}

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn bearer(user: &str, pass: &str) -> FakeRegistry {
    FakeRegistry::start(FakeAuth::Bearer {
        credentials: Some((user.into(), pass.into())),
    })
}

fn repo(reg: &FakeRegistry, name: &str) -> Repository {
    Repository {
        host: reg.host_port().to_string(),
        name: name.to_string(),
    }
}

#[test]
fn bearer_challenge_gets_a_token_with_basic_credentials_and_pulls() {
    let reg = bearer("alice", "s3cret");
    let img = put_image(&reg, "team/app", "v1", "amd64", None);
    let c = client_with(CredentialSource::fixed(Credentials::new("alice", "s3cret")));
    let r = c.resolve(&image(&reg, "team/app:v1"), &amd64()).unwrap();
    assert_eq!(r.manifest_digest.to_string(), img.manifest_digest);
    assert_eq!(r.manifest_bytes, img.manifest_bytes);
    assert_eq!(r.manifest_media_type, media_type::OCI_MANIFEST);
    assert_eq!(r.manifest.layers, vec![img.layer.clone()]);
    assert_eq!(
        r.config.config.as_ref().unwrap().cmd,
        Some(vec!["/bin/sh".to_string()])
    );
    assert_eq!(r.platform.to_string(), "linux/amd64");
    assert_eq!(r.index_digest, None);

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(img.layer.digest.cache_file_name());
    c.fetch_blob(&r.repo, &img.layer, &dest, &|_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);

    let seen = reg.requests();
    let token_reqs: Vec<_> = seen
        .iter()
        .filter(|s| s.url.starts_with("/token"))
        .collect();
    assert_eq!(token_reqs.len(), 1, "token cached per scope: {seen:#?}");
    assert!(token_reqs[0]
        .url
        .contains("scope=repository%3Ateam%2Fapp%3Apull"));
    assert_eq!(
        token_reqs[0].authorization.as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    let manifest_req = seen
        .iter()
        .find(|s| s.url.contains("/manifests/v1"))
        .unwrap();
    assert_eq!(
        manifest_req.authorization.as_deref(),
        Some("Bearer fake-token-7d1e")
    );
    assert!(manifest_req
        .accept
        .as_deref()
        .unwrap()
        .contains(media_type::OCI_INDEX));
    assert!(manifest_req
        .accept
        .as_deref()
        .unwrap()
        .contains(media_type::DOCKER_MANIFEST));
}

#[test]
fn anonymous_bearer_token_in_access_token_field_is_accepted() {
    let reg = FakeRegistry::start(FakeAuth::Bearer { credentials: None });
    reg.use_access_token_field();
    let img = put_image(&reg, "library/alpine", "3", "amd64", None);
    let r = client()
        .resolve(&image(&reg, "library/alpine:3"), &amd64())
        .unwrap();
    assert_eq!(r.manifest_digest.to_string(), img.manifest_digest);
    let tok = reg
        .requests()
        .into_iter()
        .find(|s| s.url.starts_with("/token"))
        .unwrap();
    assert_eq!(tok.authorization, None, "no credentials, anonymous token");
}

#[test]
fn missing_or_wrong_credentials_are_unauthorized_with_a_hint() {
    let reg = bearer("alice", "s3cret");
    put_image(&reg, "team/app", "v1", "amd64", None);
    let err = client()
        .resolve(&image(&reg, "team/app:v1"), &amd64())
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("set CD_DOCKER_AUTH=user:password"),
        "{err}"
    );

    let c = client_with(CredentialSource::fixed(Credentials::new("alice", "wrong")));
    let err = c
        .resolve(&image(&reg, "team/app:v1"), &amd64())
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string().contains("check the user name and password"),
        "{err}"
    );
}

#[test]
fn basic_challenge_sends_credentials_directly() {
    let reg = FakeRegistry::start(FakeAuth::Basic {
        user: "bob".into(),
        password: "pw".into(),
    });
    let img = put_image(&reg, "x", "latest", "amd64", None);
    let c = client_with(CredentialSource::fixed(Credentials::new("bob", "pw")));
    let r = c.resolve(&image(&reg, "x"), &amd64()).unwrap();
    assert_eq!(r.manifest_digest.to_string(), img.manifest_digest);
    assert_eq!(reg.count("/token"), 0);
}

#[test]
fn unknown_tag_is_not_found() {
    let reg = FakeRegistry::open();
    put_image(&reg, "x", "1", "amd64", None);
    let err = client().resolve(&image(&reg, "x:2"), &amd64()).unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("check the image name and tag"));
}

#[test]
fn too_many_requests_is_retried_after_retry_after() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    reg.fault(
        "/manifests/",
        Fault::TooManyRequests {
            retry_after_secs: 30,
        },
        1,
    );
    let start = std::time::Instant::now();
    let r = client().resolve(&image(&reg, "x:1"), &amd64()).unwrap();
    assert_eq!(r.manifest_digest.to_string(), img.manifest_digest);
    assert_eq!(reg.count("/manifests/1"), 2);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "Retry-After capped by options"
    );

    reg.fault(
        "/manifests/",
        Fault::TooManyRequests {
            retry_after_secs: 0,
        },
        100,
    );
    let err = client().resolve(&image(&reg, "x:1"), &amd64()).unwrap_err();
    assert!(matches!(err, RegistryError::RateLimited { .. }), "{err}");
}

#[test]
fn server_errors_are_retried_then_reported() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    let layer_path = format!("/blobs/{}", img.layer.digest);
    reg.fault(&layer_path, Fault::Status(500), 1);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    let c = client();
    c.fetch_blob(&repo(&reg, "x"), &img.layer, &dest, &|_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);
    assert_eq!(reg.count(&layer_path), 2);

    reg.fault(&layer_path, Fault::Status(503), 100);
    let before = reg.count(&layer_path);
    let c = RegistryClient::new(ClientOptions {
        max_retries: 2,
        ..quick_options()
    });
    let err = c
        .fetch_blob(
            &repo(&reg, "x"),
            &img.layer,
            &dir.path().join("again"),
            &|_, _| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Server { status: 503, .. }),
        "{err}"
    );
    assert_eq!(
        reg.count(&layer_path) - before,
        3,
        "first try plus two retries"
    );
    assert!(!dir.path().join("again").exists());
}

#[test]
fn blob_with_wrong_digest_fails_and_leaves_no_file() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    let mut wrong = img.layer_bytes.clone();
    wrong[1000] ^= 0xff;
    reg.fault("/blobs/", Fault::WrongBody(wrong), 100);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    let err = client()
        .fetch_blob(&repo(&reg, "x"), &img.layer, &dest, &|_, _| {})
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(!dest.exists());
    assert!(!partial_path(&dest).exists());
}

#[test]
fn manifest_with_wrong_digest_is_rejected() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    let mut lie = img.manifest_bytes.clone();
    lie.push(b' ');
    // Against Docker-Content-Digest when pulled by tag.
    reg.fault("/manifests/1", Fault::WrongBody(lie.clone()), 1);
    let err = client().resolve(&image(&reg, "x:1"), &amd64()).unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    // Against the reference when pulled by digest, even without the header.
    reg.send_content_digest(false);
    reg.fault("/manifests/sha256", Fault::WrongBody(lie), 1);
    let by_digest = image(&reg, &format!("x@{}", img.manifest_digest));
    let err = client().resolve(&by_digest, &amd64()).unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    // And the honest answer passes.
    let r = client().resolve(&by_digest, &amd64()).unwrap();
    assert_eq!(r.manifest_digest.to_string(), img.manifest_digest);
}

#[test]
fn partial_file_is_resumed_with_a_range_request() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    std::fs::write(partial_path(&dest), &img.layer_bytes[..123_456]).unwrap();
    let first = Mutex::new(None);
    client()
        .fetch_blob(&repo(&reg, "x"), &img.layer, &dest, &|done, total| {
            first.lock().unwrap().get_or_insert((done, total));
        })
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);
    assert!(!partial_path(&dest).exists());
    assert_eq!(*first.lock().unwrap(), Some((123_456, 200_000)));
    let blob_req = reg
        .requests()
        .into_iter()
        .find(|r| r.url.contains("/blobs/"))
        .unwrap();
    assert_eq!(blob_req.range.as_deref(), Some("bytes=123456-"));
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    reg.fault("/blobs/", Fault::IgnoreRange, 1);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    std::fs::write(partial_path(&dest), &img.layer_bytes[..5000]).unwrap();
    client()
        .fetch_blob(&repo(&reg, "x"), &img.layer, &dest, &|_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);
}

#[test]
fn short_body_is_resumed_and_endless_truncation_fails() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    reg.fault("/blobs/", Fault::Truncate(70_000), 1);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    client()
        .fetch_blob(&repo(&reg, "x"), &img.layer, &dest, &|_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);
    let ranges: Vec<_> = reg.requests().into_iter().filter_map(|r| r.range).collect();
    assert_eq!(ranges, vec!["bytes=70000-".to_string()]);

    reg.fault("/blobs/", Fault::Truncate(0), 100);
    let dest2 = dir.path().join("layer2");
    let err = client()
        .fetch_blob(&repo(&reg, "x"), &img.layer, &dest2, &|_, _| {})
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::SizeMismatch { actual: 0, .. }),
        "{err}"
    );
    assert!(!dest2.exists());
}

#[test]
fn corrupt_partial_file_is_discarded_and_downloaded_again() {
    let reg = FakeRegistry::open();
    let img = put_image(&reg, "x", "1", "amd64", None);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    std::fs::write(partial_path(&dest), vec![0u8; 1000]).unwrap();
    client()
        .fetch_blob(&repo(&reg, "x"), &img.layer, &dest, &|_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);
    let ranges: Vec<_> = reg.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges.iter().flatten().count(), 1, "{ranges:?}");
}

#[test]
fn credentials_are_not_sent_to_a_redirect_target_on_another_host() {
    let reg = bearer("alice", "s3cret");
    let cdn = FakeRegistry::open();
    let img = put_image(&reg, "team/app", "v1", "amd64", None);
    cdn.put_blob(&img.layer_bytes);
    reg.redirect_blobs_to(&cdn);
    let c = client_with(CredentialSource::fixed(Credentials::new("alice", "s3cret")));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    c.fetch_blob(&repo(&reg, "team/app"), &img.layer, &dest, &|_, _| {})
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), img.layer_bytes);
    let at_origin = reg
        .requests()
        .into_iter()
        .rfind(|r| r.url.contains("/blobs/"))
        .unwrap();
    assert!(at_origin.authorization.is_some(), "origin got the token");
    let at_cdn = cdn.requests();
    assert!(!at_cdn.is_empty());
    for r in at_cdn {
        assert_eq!(r.authorization, None, "leaked credentials to {}", r.url);
        assert!(r.url.contains("signature=abc"));
    }
}

fn put_index(reg: &FakeRegistry) -> Vec<(String, String)> {
    let mut manifests = Vec::new();
    let mut digests = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8")), ("arm", Some("v7"))] {
        let tag = format!("{arch}-only");
        let img = put_image(reg, "multi", &tag, arch, variant);
        let mut platform = json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = json!(v);
        }
        manifests.push(json!({
            "mediaType": media_type::OCI_MANIFEST, "digest": img.manifest_digest,
            "size": img.manifest_bytes.len(), "platform": platform,
        }));
        digests.push((arch.to_string(), img.manifest_digest));
    }
    // An attestation entry, as BuildKit writes them: never a candidate.
    manifests.push(json!({
        "mediaType": media_type::OCI_MANIFEST, "digest": Digest::sha256(b"att").to_string(), "size": 3,
        "platform": {"architecture": "unknown", "os": "unknown"},
    }));
    let index =
        json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests});
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = reg.put_manifest("multi", "latest", media_type::OCI_INDEX, &bytes);
    digests.push(("index".to_string(), d));
    digests
}

#[test]
fn index_entry_is_chosen_by_os_arch_and_variant() {
    let reg = FakeRegistry::open();
    let digests = put_index(&reg);
    let want = |arch: &str| digests.iter().find(|(a, _)| a == arch).unwrap().1.clone();
    let c = client();
    for (platform, arch, shown) in [
        ("x86_64", "amd64", "linux/amd64"),
        ("aarch64", "arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "arm64", "linux/arm64/v8"),
        ("arm", "arm", "linux/arm/v7"),
    ] {
        let r = c
            .resolve(&image(&reg, "multi"), &platform.parse().unwrap())
            .unwrap();
        assert_eq!(r.manifest_digest.to_string(), want(arch), "{platform}");
        assert_eq!(r.platform.to_string(), shown);
        assert_eq!(
            r.index_digest.as_ref().map(ToString::to_string),
            Some(want("index"))
        );
        assert_eq!(r.config.architecture, arch);
    }
    let err = c
        .resolve(&image(&reg, "multi"), &"riscv64".parse().unwrap())
        .unwrap_err();
    let RegistryError::NoMatchingPlatform { available, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        available,
        &["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    );
    assert!(err.to_string().contains("linux/riscv64"), "{err}");
    assert!(err.to_string().contains("--architecture"), "{err}");
}

#[test]
fn schema1_manifest_is_rejected_clearly() {
    let reg = FakeRegistry::open();
    let s1 = br#"{"schemaVersion":1,"name":"old","tag":"1","fsLayers":[]}"#;
    reg.put_manifest("old", "1", media_type::DOCKER_MANIFEST_V1_SIGNED, s1);
    let err = client()
        .resolve(&image(&reg, "old:1"), &amd64())
        .unwrap_err();
    assert!(err.to_string().contains("schema 1"), "{err}");
}

#[test]
fn parallel_fetch_reports_blobs_ready_in_order() {
    let reg = FakeRegistry::open();
    let blobs: Vec<Descriptor> = (0..6)
        .map(|i| {
            let data = vec![i as u8; 50_000 + i * 10_000];
            let d = reg.put_blob(&data);
            Descriptor::new(
                media_type::OCI_LAYER_TAR,
                d.parse().unwrap(),
                data.len() as u64,
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let ready = Mutex::new(Vec::new());
    let bytes = Mutex::new(vec![0u64; blobs.len()]);
    client()
        .fetch_blobs_parallel(
            &repo(&reg, "x"),
            &blobs,
            |d| dir.path().join(d.digest.cache_file_name()),
            3,
            &|i, done, _total| bytes.lock().unwrap()[i] = done,
            &|i| {
                let d = &blobs[i];
                // Ready means verified and in place, and so is everything before it.
                for earlier in &blobs[..=i] {
                    assert!(dir.path().join(earlier.digest.cache_file_name()).exists());
                }
                ready.lock().unwrap().push(i);
                assert_eq!(
                    std::fs::metadata(dir.path().join(d.digest.cache_file_name()))
                        .unwrap()
                        .len(),
                    d.size
                );
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(*ready.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    let sizes: Vec<u64> = blobs.iter().map(|b| b.size).collect();
    assert_eq!(*bytes.lock().unwrap(), sizes);
}

#[test]
fn parallel_fetch_stops_at_the_first_error() {
    let reg = FakeRegistry::open();
    let mut blobs: Vec<Descriptor> = (0..4)
        .map(|i| {
            let data = vec![i as u8; 10_000];
            let d = reg.put_blob(&data);
            Descriptor::new(
                media_type::OCI_LAYER_TAR,
                d.parse().unwrap(),
                data.len() as u64,
            )
        })
        .collect();
    blobs[1] = Descriptor::new(media_type::OCI_LAYER_TAR, Digest::sha256(b"missing"), 7);
    let dir = tempfile::tempdir().unwrap();
    let ready = Mutex::new(Vec::new());
    let err = client()
        .fetch_blobs_parallel(
            &repo(&reg, "x"),
            &blobs,
            |d| dir.path().join(d.digest.cache_file_name()),
            2,
            &|_, _, _| {},
            &|i| {
                ready.lock().unwrap().push(i);
                ControlFlow::Continue(())
            },
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(!ready.lock().unwrap().contains(&1));
    assert!(!ready.lock().unwrap().contains(&2));
    assert!(!Path::new(&dir.path().join(blobs[1].digest.cache_file_name())).exists());
}

#[test]
fn on_ready_break_cancels_the_download() {
    let reg = FakeRegistry::open();
    let blobs: Vec<Descriptor> = (0..3)
        .map(|i| {
            let data = vec![i as u8; 1000];
            let d = reg.put_blob(&data);
            Descriptor::new(
                media_type::OCI_LAYER_TAR,
                d.parse().unwrap(),
                data.len() as u64,
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let err = client()
        .fetch_blobs_parallel(
            &repo(&reg, "x"),
            &blobs,
            |d| dir.path().join(d.digest.cache_file_name()),
            1,
            &|_, _, _| {},
            &|_| ControlFlow::Break(()),
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::Cancelled), "{err}");
}

#[test]
fn rate_limit_is_shared_by_all_download_threads() {
    let reg = FakeRegistry::open();
    let blobs: Vec<Descriptor> = (0..2)
        .map(|i| {
            let data = vec![i as u8; 60_000];
            let d = reg.put_blob(&data);
            Descriptor::new(
                media_type::OCI_LAYER_TAR,
                d.parse().unwrap(),
                data.len() as u64,
            )
        })
        .collect();
    let c = RegistryClient::new(ClientOptions {
        rate_limit_bytes_per_sec: Some(80_000),
        ..quick_options()
    });
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    c.fetch_blobs_parallel(
        &repo(&reg, "x"),
        &blobs,
        |d| dir.path().join(d.digest.cache_file_name()),
        2,
        &|_, _, _| {},
        &|_| ControlFlow::Continue(()),
    )
    .unwrap();
    // 120 kB through one 80 kB/s bucket with 80 kB of burst: at least half a second.
    let took = start.elapsed();
    assert!(took >= std::time::Duration::from_millis(450), "{took:?}");
}
