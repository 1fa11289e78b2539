//! Streaming blob downloads: hash while writing `<dest>.partial`, resume with `Range`, verify,
//! fsync and rename; a parallel driver on scoped threads.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use cd_image::{Descriptor, Hasher};

use crate::error::{RegistryError, Result};
use crate::manifest::Repository;
use crate::transport::{header, transport_error, RegistryClient};
use cd_sys::cancel::{is_cancel_error, sleep_unless_cancelled, CancellableReader};

const CHUNK: usize = 64 * 1024;

/// The temporary file a blob is streamed into before it is verified and renamed.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    dest.with_file_name(name)
}

enum Attempt {
    /// Worth trying again (resuming what is in the partial file).
    Retry(RegistryError),
    Fatal(RegistryError),
}

impl RegistryClient {
    /// Download `desc` into `dest`: stream into `dest.partial` while hashing, resuming an
    /// existing partial with `Range`, verify size and digest, fsync and rename. On a mismatch
    /// the partial file is deleted and nothing appears at `dest`.
    pub fn fetch_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        dest: &Path,
        progress: &dyn Fn(u64, u64),
    ) -> Result<()> {
        self.fetch_blob_cancellable(repo, desc, dest, progress, None)
    }

    fn fetch_blob_cancellable(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        dest: &Path,
        progress: &dyn Fn(u64, u64),
        cancel: Option<&AtomicBool>,
    ) -> Result<()> {
        let partial = partial_path(dest);
        let backoff = self.backoff();
        let mut attempt = 0;
        // A resumed download that fails verification is retried once from scratch: the old
        // partial may have come from a different (lying or changed) server.
        let mut may_restart = true;
        loop {
            match self.blob_attempt(repo, desc, &partial, progress, cancel, &mut may_restart) {
                Ok(()) => break,
                Err(Attempt::Retry(_)) if attempt < self.opts.max_retries => {
                    let waited = sleep_unless_cancelled(backoff.delay(attempt), self.opts.cancel);
                    if !waited || cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                        return Err(RegistryError::Cancelled);
                    }
                    attempt += 1;
                }
                Err(Attempt::Retry(e) | Attempt::Fatal(e)) => return Err(e),
            }
        }
        std::fs::rename(&partial, dest).map_err(|e| RegistryError::io(dest, e))?;
        if let Some(dir) = dest.parent().and_then(|d| File::open(d).ok()) {
            // The rename is durable only once the directory is synced; best effort.
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn blob_attempt(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        partial: &Path,
        progress: &dyn Fn(u64, u64),
        cancel: Option<&AtomicBool>,
        may_restart: &mut bool,
    ) -> std::result::Result<(), Attempt> {
        let io = |e| Attempt::Fatal(RegistryError::io(partial, e));
        let what = format!("blob {}", desc.digest);
        let size = desc.size;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(partial)
            .map_err(io)?;
        let mut have = file.metadata().map_err(io)?.len();
        if have > size {
            file.set_len(0).map_err(io)?;
            have = 0;
        }
        let mut hasher = Hasher::for_digest(&desc.digest);
        if have > 0 {
            hash_prefix(&mut file, have, &mut hasher).map_err(io)?;
        }
        let resumed_from = have;
        progress(have, size);

        if have < size {
            let mut headers = Vec::new();
            if have > 0 {
                headers.push(("Range", format!("bytes={have}-")));
            }
            let path = format!("/v2/{}/blobs/{}", repo.name, desc.digest);
            let resp = self
                .request(&repo.host, &repo.name, "GET", &path, &headers, &what)
                // `request` has already retried connection errors, 5xx and 429.
                .map_err(Attempt::Fatal)?;
            let status = resp.status().as_u16();
            let range_start = header(&resp, "content-range").and_then(|r| content_range_start(&r));
            match status {
                206 if range_start == Some(have) => {}
                // The server ignored the range (or answered another one): start over.
                200 | 206 => {
                    file.set_len(0).map_err(io)?;
                    have = 0;
                    hasher = Hasher::for_digest(&desc.digest);
                    if status == 206 {
                        return Err(Attempt::Retry(self.protocol(
                            repo,
                            &what,
                            "wrong Content-Range",
                        )));
                    }
                }
                416 => {
                    file.set_len(0).map_err(io)?;
                    return Err(Attempt::Retry(self.protocol(
                        repo,
                        &what,
                        "range not satisfiable",
                    )));
                }
                404 => {
                    return Err(Attempt::Fatal(RegistryError::NotFound {
                        registry: repo.host.clone(),
                        what,
                    }))
                }
                s => {
                    return Err(Attempt::Fatal(self.protocol(
                        repo,
                        &what,
                        &format!("HTTP {s}"),
                    )))
                }
            }
            file.seek(SeekFrom::Start(have)).map_err(io)?;
            let mut body =
                CancellableReader::new(resp.into_body().into_reader(), CHUNK, self.opts.cancel);
            let mut buf = vec![0u8; CHUNK];
            loop {
                if cancel
                    .into_iter()
                    .chain(self.opts.cancel)
                    .any(|c| c.load(Ordering::Relaxed))
                {
                    let _ = file.flush();
                    return Err(Attempt::Fatal(RegistryError::Cancelled));
                }
                let n = match body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if is_cancel_error(&e) => {
                        let _ = file.flush();
                        return Err(Attempt::Fatal(RegistryError::Cancelled));
                    }
                    Err(e) => {
                        // Keep what arrived; the next attempt resumes from there.
                        let _ = file.flush();
                        return Err(Attempt::Retry(transport_error(
                            &repo.host,
                            ureq::Error::Io(e),
                        )));
                    }
                };
                if have + n as u64 > size {
                    drop(file);
                    let _ = std::fs::remove_file(partial);
                    return Err(Attempt::Fatal(RegistryError::SizeMismatch {
                        what,
                        expected: size,
                        actual: have + n as u64,
                    }));
                }
                if let Some(l) = &self.limiter {
                    l.acquire(n);
                }
                file.write_all(&buf[..n]).map_err(io)?;
                hasher.update(&buf[..n]);
                have += n as u64;
                progress(have, size);
            }
            if have < size {
                // A short body: resume from here on the next attempt.
                return Err(Attempt::Retry(RegistryError::SizeMismatch {
                    what,
                    expected: size,
                    actual: have,
                }));
            }
        }

        let actual = hasher.finish();
        if actual != desc.digest {
            drop(file);
            let _ = std::fs::remove_file(partial);
            let err = RegistryError::DigestMismatch {
                what,
                expected: desc.digest.clone(),
                actual,
            };
            if resumed_from > 0 && *may_restart {
                *may_restart = false;
                return Err(Attempt::Retry(err));
            }
            return Err(Attempt::Fatal(err));
        }
        file.sync_all().map_err(io)?;
        Ok(())
    }

    fn protocol(&self, repo: &Repository, what: &str, detail: &str) -> RegistryError {
        RegistryError::Protocol {
            host: repo.host.clone(),
            what: what.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Download `blobs` with `workers` scoped threads (all joined before returning). Each blob
    /// goes to `dest_for(blob)`. `on_progress(i, done, total)` reports bytes of blob `i`.
    /// `on_ready(i)` is called once per blob, in index order, as soon as blob `i` and every
    /// blob before it are verified in place (calls are serialised); returning
    /// `ControlFlow::Break` cancels the rest with `RegistryError::Cancelled`. The first error
    /// cancels the other downloads (their partial files stay for a later resume) and is
    /// returned.
    pub fn fetch_blobs_parallel(
        &self,
        repo: &Repository,
        blobs: &[Descriptor],
        dest_for: impl Fn(&Descriptor) -> PathBuf + Sync,
        workers: usize,
        on_progress: &(dyn Fn(usize, u64, u64) + Sync),
        on_ready: &(dyn Fn(usize) -> ControlFlow<()> + Sync),
    ) -> Result<()> {
        let n = blobs.len();
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
        // (next index to hand to on_ready, which blobs are verified)
        let ready = Mutex::new((0usize, vec![false; n]));
        let fail = |e: RegistryError| {
            let mut slot = match first_error.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            slot.get_or_insert(e);
            cancel.store(true, Ordering::Relaxed);
        };
        std::thread::scope(|s| {
            for _ in 0..workers.clamp(1, n.max(1)) {
                s.spawn(|| loop {
                    if cancel.load(Ordering::Relaxed)
                        || self.opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
                    {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let desc = &blobs[i];
                    let dest = dest_for(desc);
                    let progress = |done, total| on_progress(i, done, total);
                    if let Err(e) =
                        self.fetch_blob_cancellable(repo, desc, &dest, &progress, Some(&cancel))
                    {
                        fail(e);
                        break;
                    }
                    let mut g = match ready.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    g.1[i] = true;
                    while g.0 < n && g.1[g.0] && !cancel.load(Ordering::Relaxed) {
                        let k = g.0;
                        g.0 += 1;
                        if on_ready(k).is_break() {
                            fail(RegistryError::Cancelled);
                        }
                    }
                });
            }
        });
        let slot = match first_error.into_inner() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match slot {
            Some(e) => Err(e),
            None if self.opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) => {
                Err(RegistryError::Cancelled)
            }
            None => Ok(()),
        }
    }
}

/// Feed the first `len` bytes of `file` to `hasher`.
fn hash_prefix(file: &mut File, len: u64, hasher: &mut Hasher) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut take = (&mut *file).take(len);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = take.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(())
}

/// The first byte position of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_sits_next_to_the_destination() {
        assert_eq!(
            partial_path(Path::new("/c/oci_layers/sha256_ab")),
            Path::new("/c/oci_layers/sha256_ab.partial")
        );
    }

    #[test]
    fn content_range_start_parses() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
