//! Small files the host provides to a container: `/etc/resolv.conf` and `/etc/hosts`.
//!
//! Images often ship `/etc/resolv.conf` as a symlink (`../run/systemd/resolve/stub-resolv.conf`,
//! or an absolute one). Writing through it would change whatever it points at, so the file is
//! written under a temporary name and renamed over the old one: `rename` replaces a symlink
//! itself and never follows it.

use std::ffi::CStr;
use std::fs::File;
use std::fs::Permissions;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;

use rustix::fs::{Gid, Mode, OFlags, Uid};

use crate::root::{pathrs_io, Rootfs};

/// Used when the host has no usable nameserver (only a local stub, or no resolv.conf).
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Replace the container's `/etc/resolv.conf` with one listing `nameservers`.
pub fn write_resolv_conf(root: &Rootfs, nameservers: &[String]) -> io::Result<()> {
    let mut text = String::from("# written by chroot-distro from the host's nameservers\n");
    for ns in nameservers {
        check_token(ns, "nameserver")?;
        text.push_str(&format!("nameserver {ns}\n"));
    }
    replace_etc_file(root, c"resolv.conf", text.as_bytes())
}

/// The host's nameservers from `/etc/resolv.conf`, without loopback addresses (a local stub
/// resolver such as systemd-resolved's 127.0.0.53 is not reachable from every container setup).
/// Falls back to [`FALLBACK_NAMESERVERS`].
pub fn host_nameservers() -> Vec<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let found = parse_nameservers(&text);
    if found.is_empty() {
        FALLBACK_NAMESERVERS.iter().map(|s| s.to_string()).collect()
    } else {
        found
    }
}

/// The non-loopback `nameserver` addresses in resolv.conf text, in order, without duplicates.
pub fn parse_nameservers(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        // An IPv6 address may carry a zone (`fe80::1%eth0`).
        let bare = addr.split('%').next().unwrap_or(addr);
        let Ok(ip) = bare.parse::<std::net::IpAddr>() else {
            continue;
        };
        if ip.is_loopback() || ip.is_unspecified() {
            continue;
        }
        if !out.iter().any(|a| a == addr) {
            out.push(addr.to_string());
        }
    }
    out
}

/// Replace the container's `/etc/hosts` with a minimal one naming `hostname`.
pub fn write_hosts(root: &Rootfs, hostname: &str) -> io::Result<()> {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !hostname.is_empty() && hostname != "localhost" {
        check_token(hostname, "hostname")?;
        text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    replace_etc_file(root, c"hosts", text.as_bytes())
}

/// A value that goes into a config line must be one whitespace-free word.
fn check_token(value: &str, what: &str) -> io::Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid {what} '{}'", value.escape_debug()),
        ));
    }
    Ok(())
}

/// Write `/etc/NAME` (mode 0644, owned by root when we can) as a new inode renamed into place.
fn replace_etc_file(root: &Rootfs, name: &CStr, contents: &[u8]) -> io::Result<()> {
    let etc = root
        .root()
        .mkdir_all("/etc", &Permissions::from_mode(0o755))
        .map_err(pathrs_io)?;
    let tmp_name = format!(".{}.chroot-distro-tmp", name.to_string_lossy());
    // A stale temp from a crash: remove it, whatever it is (never open it).
    let _ = rustix::fs::unlinkat(&etc, tmp_name.as_str(), rustix::fs::AtFlags::empty());
    let fd = rustix::fs::openat(
        &etc,
        tmp_name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = File::from(fd);
    let written = (|| {
        file.write_all(contents)?;
        if rustix::process::geteuid().is_root() {
            rustix::fs::fchown(file.as_fd(), Some(Uid::ROOT), Some(Gid::ROOT))?;
        }
        rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(0o644))?;
        file.sync_all()?;
        rustix::fs::renameat(&etc, tmp_name.as_str(), &etc, name)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(&etc, tmp_name.as_str(), rustix::fs::AtFlags::empty());
    }
    written.map_err(|e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write /etc/{} in '{}': {e}",
                name.to_string_lossy(),
                root.path().display()
            ),
        )
    })
}
