//! The files of an image archive (an OCI layout or a docker-archive in a tar), read in one
//! pass. Each file is hashed while it is copied: small ones (manifests, configs) into memory,
//! the rest into a private temp directory in the cache. The chosen image's layers are then
//! moved into the layer cache under their content digest, so only verified content ever lands
//! there; everything else disappears with the temp directory, whatever happens.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use cd_image::{Digest, DigestAlgorithm, Hasher};
use tempfile::TempDir;

use super::archive_stream::{read_error, TarStream};
use crate::archive_kind::components;
use crate::error::{EngineError, IoContext};
use crate::paths::StorePaths;
use crate::watch::is_cancelled;

/// Files up to this size stay in memory (manifests and configs are a few KiB)...
const SMALL_FILE: u64 = 1 << 20;
/// ...as long as all of them together stay under this.
const MEMORY_BUDGET: u64 = 64 << 20;
/// A JSON document bigger than this is refused rather than read into memory.
const MAX_DOCUMENT: u64 = 16 << 20;
/// Symlinks followed when looking a name up (docker save links repeated layers).
const MAX_LINK_HOPS: usize = 8;
const CHUNK: usize = 256 * 1024;

pub struct ArchiveFiles {
    /// Holds the large files until they are moved into the cache; removed on drop.
    dir: TempDir,
    files: HashMap<String, Stored>,
    /// Symlinks and hard links of the archive, as normalised archive paths.
    links: HashMap<String, String>,
    memory: u64,
    next_file: u64,
    layer_cache: PathBuf,
}

pub struct Stored {
    /// The digest of the content as read (for `blobs/<alg>/<hex>`, with that algorithm).
    pub digest: Digest,
    pub size: u64,
    place: Place,
}

enum Place {
    Memory(Vec<u8>),
    File(PathBuf),
    /// An OCI blob whose digest is already in the layer cache: the archive's copy was skipped.
    InCache,
}

impl ArchiveFiles {
    /// Read every regular file and link of `stream`. With `oci_blobs`, `blobs/<alg>/<hex>`
    /// names are content digests: hashed with that algorithm and skipped when already cached.
    pub fn read(
        stream: &mut TarStream<'_>,
        paths: &StorePaths,
        oci_blobs: bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<ArchiveFiles, EngineError> {
        let tmp = paths.cache_tmp();
        fs::create_dir_all(&tmp).context(|| format!("cannot create {}", tmp.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("archive-")
            .tempdir_in(&tmp)
            .context(|| format!("cannot create a temp directory in {}", tmp.display()))?;
        let mut files = ArchiveFiles {
            dir,
            files: HashMap::new(),
            links: HashMap::new(),
            memory: 0,
            next_file: 0,
            layer_cache: paths.layer_cache(),
        };
        {
            let mut archive = cd_archive::guarded_archive(&mut *stream);
            let entries = archive.entries().map_err(|e| read_error(&e, cancel))?;
            for entry in entries {
                if is_cancelled(cancel) {
                    return Err(EngineError::Interrupted);
                }
                let mut entry = entry.map_err(|e| read_error(&e, cancel))?;
                files.add(&mut entry, oci_blobs, cancel)?;
            }
        }
        stream.check_complete()?;
        Ok(files)
    }

    fn add<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        oci_blobs: bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), EngineError> {
        let raw = entry.path_bytes().into_owned();
        // Names are only keys of this map; nothing is ever created under an archive name.
        let Some(key) = normalise("", &String::from_utf8_lossy(&raw)) else {
            return Ok(());
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let named = oci_blobs.then(|| blob_digest(&key)).flatten();
                let stored = self.store(entry, named, cancel)?;
                self.links.remove(&key);
                self.files.insert(key, stored);
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                // A symlink is relative to its directory; a hard link names an archive path.
                let base = match kind {
                    tar::EntryType::Symlink => key.rsplit_once('/').map_or("", |(d, _)| d),
                    _ => "",
                };
                if let Some(target) = normalise(base, &target) {
                    self.files.remove(&key);
                    self.links.insert(key, target);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn store<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        named: Option<Digest>,
        cancel: Option<&AtomicBool>,
    ) -> Result<Stored, EngineError> {
        let size = entry.size();
        if let Some(digest) = &named {
            if self.layer_cache.join(digest.cache_file_name()).is_file() {
                return Ok(Stored {
                    digest: digest.clone(),
                    size,
                    place: Place::InCache,
                });
            }
        }
        let algorithm = named
            .as_ref()
            .map_or(DigestAlgorithm::Sha256, Digest::algorithm);
        let mut hasher = Hasher::new(algorithm);
        let read_err = |e: std::io::Error| read_error(&e, cancel);
        let place = if size <= SMALL_FILE && self.memory + size <= MEMORY_BUDGET {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(read_err)?;
            hasher.update(&bytes);
            self.memory += bytes.len() as u64;
            Place::Memory(bytes)
        } else {
            let path = self.dir.path().join(self.next_file.to_string());
            self.next_file += 1;
            let mut file =
                File::create_new(&path).context(|| format!("cannot create {}", path.display()))?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = entry.read(&mut buf).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])
                    .context(|| format!("cannot write {}", path.display()))?;
            }
            Place::File(path)
        };
        Ok(Stored {
            size: hasher.bytes(),
            digest: hasher.finish(),
            place,
        })
    }

    /// The file at archive path `name`, following links.
    pub fn get(&self, name: &str) -> Option<&Stored> {
        self.files.get(&self.resolve(name)?)
    }

    fn resolve(&self, name: &str) -> Option<String> {
        let mut key = normalise("", name)?;
        for _ in 0..MAX_LINK_HOPS {
            if self.files.contains_key(&key) {
                return Some(key);
            }
            key = self.links.get(&key)?.clone();
        }
        None
    }

    /// The whole content of a small file (a JSON document), if the archive has it.
    pub fn document(&self, name: &str) -> Result<Option<Vec<u8>>, EngineError> {
        let Some(stored) = self.get(name) else {
            return Ok(None);
        };
        if stored.size > MAX_DOCUMENT {
            return Err(EngineError::Other(format!(
                "'{name}' in the archive is {} bytes, too big for an image document; the archive is not a usable image",
                stored.size
            )));
        }
        self.read_stored(stored, u64::MAX).map(Some)
    }

    /// Up to `n` leading bytes of the file at `name`.
    pub fn head(&self, name: &str, n: u64) -> Result<Vec<u8>, EngineError> {
        match self.get(name) {
            Some(stored) => self.read_stored(stored, n),
            None => Ok(Vec::new()),
        }
    }

    fn read_stored(&self, stored: &Stored, limit: u64) -> Result<Vec<u8>, EngineError> {
        let path = match &stored.place {
            Place::Memory(bytes) => {
                return Ok(bytes[..bytes.len().min(limit as usize)].to_vec());
            }
            Place::File(path) => path.clone(),
            Place::InCache => self.layer_cache.join(stored.digest.cache_file_name()),
        };
        let mut out = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(limit).read_to_end(&mut out))
            .context(|| format!("cannot read {}", path.display()))?;
        Ok(out)
    }

    /// Move the file at `name` into the layer cache under its content digest.
    pub fn promote(&mut self, name: &str) -> Result<Digest, EngineError> {
        let key = self
            .resolve(name)
            .ok_or_else(|| EngineError::Other(format!("'{name}' is missing from the archive")))?;
        fs::create_dir_all(&self.layer_cache)
            .context(|| format!("cannot create {}", self.layer_cache.display()))?;
        let scratch = self.dir.path().join(format!("promote-{}", self.next_file));
        self.next_file += 1;
        let Some(stored) = self.files.get_mut(&key) else {
            return Err(EngineError::Other(format!(
                "'{name}' is missing from the archive"
            )));
        };
        let dest = self.layer_cache.join(stored.digest.cache_file_name());
        let from = match &stored.place {
            Place::InCache => return Ok(stored.digest.clone()),
            // Another install (or an earlier name of the same content) already put it there.
            _ if dest.is_file() => None,
            Place::File(path) => Some(path.clone()),
            Place::Memory(bytes) => {
                fs::write(&scratch, bytes)
                    .context(|| format!("cannot write {}", scratch.display()))?;
                Some(scratch)
            }
        };
        if let Some(from) = from {
            // Blobs the registry path writes are world-readable; keep the cache uniform.
            fs::set_permissions(&from, fs::Permissions::from_mode(0o644))
                .context(|| format!("cannot set the mode of {}", from.display()))?;
            fs::rename(&from, &dest)
                .context(|| format!("cannot move a layer into the cache at {}", dest.display()))?;
        }
        stored.place = Place::InCache;
        Ok(stored.digest.clone())
    }
}

/// `blobs/sha256/<hex>` names its content's digest.
fn blob_digest(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix("blobs/")?;
    let (algorithm, hex) = rest.split_once('/')?;
    format!("{algorithm}:{hex}").parse().ok()
}

/// The archive path of the OCI blob `digest`.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex())
}

/// `name` (relative to directory `base`, or to the archive root when absolute) as a plain
/// archive path; `None` when it climbs above the root or is empty.
fn normalise(base: &str, name: &str) -> Option<String> {
    let mut out: Vec<&str> = if name.starts_with('/') {
        Vec::new()
    } else {
        components(base)
    };
    for c in components(name) {
        if c == ".." {
            out.pop()?;
        } else {
            out.push(c);
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_never_climb_out() {
        assert_eq!(normalise("", "./a/b").as_deref(), Some("a/b"));
        assert_eq!(normalise("", "/a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalise("x/y", "../z.tar").as_deref(), Some("x/z.tar"));
        assert_eq!(normalise("x", "/z").as_deref(), Some("z"));
        assert_eq!(normalise("", "../etc/passwd"), None);
        assert_eq!(normalise("", "./"), None);
    }

    #[test]
    fn blob_names_are_digests() {
        let d = Digest::sha256(b"x");
        assert_eq!(blob_digest(&blob_path(&d)), Some(d));
        assert_eq!(blob_digest("blobs/sha256/nothex"), None);
        assert_eq!(blob_digest("index.json"), None);
    }
}
