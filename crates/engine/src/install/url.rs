//! `install URL`: download the archive over http(s) into the cache's temp area, then install
//! it like a local file. The download is removed afterwards, whatever happened.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::sync::atomic::AtomicBool;

use cd_sys::cancel::{is_cancel_error, unless_cancelled, CancellableReader};
use tempfile::NamedTempFile;

use super::builder::ContainerBuilder;
use super::local::install_file;
use super::{InstallOptions, InstallSummary};
use crate::error::{EngineError, IoContext};
use crate::paths::StorePaths;
use crate::report::Reporter;
use crate::store::Store;
use crate::watch::is_cancelled;

const CHUNK: usize = 256 * 1024;

pub fn install_url(
    store: &Store,
    url: &str,
    name: &str,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    // Taken first: a name clash fails before a long download, not after.
    let builder = ContainerBuilder::create(store, name)?;
    let download = download(url, &store.paths, reporter, opts.cancel)?;
    install_file(store, builder, download.path(), opts, reporter)
}

/// Fetch `url` into a temp file under the cache (deleted when the handle drops).
pub fn download(
    url: &str,
    paths: &StorePaths,
    reporter: &dyn Reporter,
    cancel: Option<&'static AtomicBool>,
) -> Result<NamedTempFile, EngineError> {
    let failed = |why: String| EngineError::Other(format!("cannot download {url}: {why}"));
    reporter.info(&format!("Downloading {url}"));
    // The registry client's settings: the same trusted roots, user agent and timeouts.
    let agent = cd_registry::http_agent(&cd_registry::ClientOptions::default());
    let request = agent.get(url);
    // A server that accepts the connection and then says nothing must not hold Ctrl-C up.
    let response = unless_cancelled(cancel, move || request.call())
        .ok_or(EngineError::Interrupted)?
        .map_err(|e| failed(connect_error(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!(
            "the server answered {}{}; check the address",
            status.as_u16(),
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        )));
    }
    let expected = response.body().content_length();
    let mut body = CancellableReader::new(response.into_body().into_reader(), CHUNK, cancel);

    let tmp = paths.cache_tmp();
    fs::create_dir_all(&tmp).context(|| format!("cannot create {}", tmp.display()))?;
    let file = tempfile::Builder::new()
        .prefix("download-")
        .tempfile_in(&tmp)
        .context(|| format!("cannot create a temp file in {}", tmp.display()))?;
    let bar = reporter.progress("downloading", expected.unwrap_or(0));
    let mut out = BufWriter::new(file.as_file());
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        if is_cancelled(cancel) {
            return Err(EngineError::Interrupted);
        }
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_cancel_error(&e) => return Err(EngineError::Interrupted),
            Err(e) => {
                return Err(failed(format!(
                    "the connection failed after {} ({e}); retry",
                    crate::human_bytes(got)
                )))
            }
        };
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .context(|| format!("cannot write {}", file.path().display()))?;
        got += n as u64;
        bar.set_position(got);
    }
    out.flush()
        .context(|| format!("cannot write {}", file.path().display()))?;
    drop(out);
    bar.finish();
    if let Some(expected) = expected {
        if got != expected {
            return Err(failed(format!(
                "the body ended after {got} of {expected} bytes; retry"
            )));
        }
    }
    Ok(file)
}

/// Why the request got no answer, and what to do about it.
fn connect_error(e: &ureq::Error) -> String {
    // rustls failures often arrive wrapped in an I/O error, so the message decides.
    let tls = matches!(e, ureq::Error::Rustls(_) | ureq::Error::Tls(_))
        || e.to_string().contains("certificate");
    match e {
        _ if tls => {
            format!("{e}; if the server uses a private CA, point SSL_CERT_FILE at its certificate")
        }
        ureq::Error::HostNotFound => {
            "the host name does not resolve; check the address and the network".to_string()
        }
        ureq::Error::Io(io) => format!("{io}; check the address and the network"),
        other => format!("{other}; check the address and the network"),
    }
}
