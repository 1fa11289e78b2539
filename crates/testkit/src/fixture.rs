//! Fixture images: layers from chosen tar entries, configs, manifests and indexes, written as
//! OCI image layouts that skopeo, umoci and our own reader understand.

pub use crate::fakereg::base64;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// One tar entry of a fixture layer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

#[derive(Debug, Clone)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    HardLink(String),
    Fifo,
    CharDevice(u32, u32),
}

impl Entry {
    fn new(path: &str, kind: Kind, mode: u32) -> Self {
        Entry {
            path: path.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
        }
    }
    pub fn file(path: &str, content: impl AsRef<[u8]>, mode: u32) -> Self {
        Self::new(path, Kind::File(content.as_ref().to_vec()), mode)
    }
    pub fn dir(path: &str, mode: u32) -> Self {
        Self::new(path, Kind::Dir, mode)
    }
    pub fn symlink(path: &str, target: &str) -> Self {
        Self::new(path, Kind::Symlink(target.to_string()), 0o777)
    }
    pub fn hardlink(path: &str, target: &str) -> Self {
        Self::new(path, Kind::HardLink(target.to_string()), 0o644)
    }
    pub fn fifo(path: &str) -> Self {
        Self::new(path, Kind::Fifo, 0o644)
    }
    pub fn char_device(path: &str, major: u32, minor: u32) -> Self {
        Self::new(path, Kind::CharDevice(major, minor), 0o666)
    }
    /// `dir/.wh.name`: deletes `name` from lower layers.
    pub fn whiteout(path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        Self::file(&wh, b"", 0o644)
    }
    /// `dir/.wh..wh..opq`: hides everything lower layers put in `dir`.
    pub fn opaque(dir: &str) -> Self {
        Self::file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }
}

/// Serialise entries as an uncompressed tar stream.
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(0);
        if is_hostile_name(&e.path) {
            append_raw(&mut builder, &mut h, e);
            continue;
        }
        let res = match &e.kind {
            Kind::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, &e.path, data.as_slice())
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut h, &e.path, std::io::empty())
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                builder.append_link(&mut h, &e.path, t)
            }
            Kind::HardLink(t) => {
                h.set_entry_type(tar::EntryType::Link);
                builder.append_link(&mut h, &e.path, t)
            }
            Kind::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                builder.append_data(&mut h, &e.path, std::io::empty())
            }
            Kind::CharDevice(major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(*major).expect("major");
                h.set_device_minor(*minor).expect("minor");
                builder.append_data(&mut h, &e.path, std::io::empty())
            }
        };
        res.expect("append tar entry");
    }
    builder.into_inner().expect("finish tar")
}

/// Names the tar crate refuses to write (`../x`, `/etc/x`): hostile-archive fixtures.
fn is_hostile_name(path: &str) -> bool {
    path.starts_with('/') || path.split('/').any(|c| c == "..")
}

/// Write an entry with its name copied verbatim into the header, as a malicious archiver
/// would; only what hostile fixtures need (files, symlinks, hard links, dirs).
fn append_raw(builder: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, e: &Entry) {
    let name = e.path.as_bytes();
    assert!(name.len() < 100, "hostile fixture names must be short");
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    let data: &[u8] = match &e.kind {
        Kind::File(d) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(d.len() as u64);
            d
        }
        Kind::Symlink(t) | Kind::HardLink(t) => {
            h.set_entry_type(if matches!(e.kind, Kind::Symlink(_)) {
                tar::EntryType::Symlink
            } else {
                tar::EntryType::Link
            });
            let t = t.as_bytes();
            assert!(t.len() < 100, "hostile fixture link targets must be short");
            h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
            &[]
        }
        _ => {
            h.set_entry_type(tar::EntryType::Directory);
            &[]
        }
    };
    h.set_cksum();
    builder.append(h, data).expect("append raw tar entry");
}

/// Deterministic incompressible bytes (xorshift), for layers that must stay large.
pub fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

pub fn sha256_hex(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// A single-platform image under construction.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    pub layers: Vec<Vec<Entry>>,
    pub architecture: String,
    pub variant: Option<String>,
    pub config: Value,
    pub gzip_layers: bool,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder {
            layers: Vec::new(),
            architecture: host_goarch().to_string(),
            variant: None,
            config: json!({}),
            gzip_layers: true,
        }
    }
}

impl ImageBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn layer(mut self, entries: Vec<Entry>) -> Self {
        self.layers.push(entries);
        self
    }
    pub fn arch(mut self, arch: &str, variant: Option<&str>) -> Self {
        self.architecture = arch.to_string();
        self.variant = variant.map(str::to_string);
        self
    }
    /// Set a field of the image config's `config` section (Env, Cmd, Entrypoint, ...).
    pub fn config(mut self, key: &str, value: Value) -> Self {
        self.config[key] = value;
        self
    }
    pub fn uncompressed(mut self) -> Self {
        self.gzip_layers = false;
        self
    }
}

/// What was written for one image: digests to assert against.
#[derive(Debug, Clone)]
pub struct WrittenImage {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    pub diff_ids: Vec<String>,
    pub manifest_size: u64,
}

/// An OCI image layout directory being filled.
pub struct OciLayout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

impl OciLayout {
    pub fn create(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir blobs");
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
        OciLayout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        }
    }

    pub fn put_blob(&self, data: &[u8]) -> String {
        fs::write(self.dir.join("blobs/sha256").join(sha256_hex(data)), data).expect("blob");
        digest(data)
    }

    /// Write one image's blobs and return its manifest descriptor (not yet in the index).
    pub fn write_image(&self, image: &ImageBuilder) -> (Value, WrittenImage) {
        let mut layer_descs = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layer_digests = Vec::new();
        for entries in &image.layers {
            let tar = tar_bytes(entries);
            diff_ids.push(digest(&tar));
            let (blob, media) = if image.gzip_layers {
                (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (tar, "application/vnd.oci.image.layer.v1.tar")
            };
            let d = self.put_blob(&blob);
            layer_digests.push(d.clone());
            layer_descs.push(json!({"mediaType": media, "digest": d, "size": blob.len()}));
        }
        let mut config = json!({
            "architecture": image.architecture,
            "os": "linux",
            "config": image.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [],
        });
        if let Some(v) = &image.variant {
            config["variant"] = json!(v);
        }
        let config_bytes = serde_json::to_vec(&config).expect("config json");
        let config_digest = self.put_blob(&config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_bytes.len()},
            "layers": layer_descs,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
        let manifest_digest = self.put_blob(&manifest_bytes);
        let mut platform = json!({"architecture": image.architecture, "os": "linux"});
        if let Some(v) = &image.variant {
            platform["variant"] = json!(v);
        }
        let desc = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "platform": platform,
        });
        let written = WrittenImage {
            manifest_digest,
            config_digest,
            layer_digests,
            diff_ids: config["rootfs"]["diff_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            manifest_size: manifest_bytes.len() as u64,
        };
        (desc, written)
    }

    /// Add a single-platform image under `tag`.
    pub fn add_image(&mut self, tag: &str, image: &ImageBuilder) -> WrittenImage {
        let (mut desc, written) = self.write_image(image);
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.index.push(desc);
        self.save_index();
        written
    }

    /// Add a multi-platform index under `tag`, one manifest per image.
    pub fn add_index(&mut self, tag: &str, images: &[ImageBuilder]) -> (String, Vec<WrittenImage>) {
        let mut manifests = Vec::new();
        let mut written = Vec::new();
        for image in images {
            let (desc, w) = self.write_image(image);
            manifests.push(desc);
            written.push(w);
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).expect("index json");
        let d = self.put_blob(&bytes);
        self.index.push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.save_index();
        (d, written)
    }

    fn save_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.index});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("index"),
        )
        .expect("index.json");
    }
}

/// The GOARCH name of the machine running the tests.
pub fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "riscv64" => "riscv64",
        other => other,
    }
}
