//! Mutating commands need root: re-run through sudo, doas, pkexec or su when we are not.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::args::{Cli, Command};

/// Variables that must survive elevation: they choose the store, credentials and behaviour.
const KEPT_VARS: &[&str] = &[
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "CD_DOCKER_AUTH",
    "PD_DOCKER_AUTH",
    "CD_DOWNLOAD_WORKERS",
    "CD_DOWNLOAD_RATE_LIMIT",
    "CD_DOWNLOAD_MAX_RETRIES",
    "CD_FORCE_NO_COLORS",
    "CD_NO_PROGRESS",
    "CHROOT_DISTRO_USE_SUDO",
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "SSL_CERT_FILE",
    "TERMUX__PREFIX",
    "TERMUX__HOME",
    "TERMUX_APP__PACKAGE_NAME",
    "TERMUX_APP__APP_VERSION_NAME",
    "TERMUX_VERSION",
    "TERM",
    "COLORTERM",
    "COLUMNS",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_SESSION_TYPE",
    "XDG_CURRENT_DESKTOP",
    "DESKTOP_SESSION",
    "PULSE_SERVER",
    "DBUS_SESSION_BUS_ADDRESS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Commands that only read and so never elevate.
fn needs_root(cmd: &Command) -> bool {
    match cmd {
        Command::List(_)
        | Command::Ps(_)
        | Command::Search(_)
        | Command::Help(_)
        | Command::Completion(_) => false,
        Command::Login(a) | Command::Run(a) => !a.get_chroot_cmd,
        _ => true,
    }
}

pub fn ensure_privileges(cli: &Cli) -> anyhow::Result<()> {
    if !needs_root(&cli.command) || rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let name = cli.command.name();
    if cli.no_elevate || env_flag("CHROOT_DISTRO_NO_ELEVATE") {
        bail!("'{name}' needs root; run it as root, or drop --no-elevate / CHROOT_DISTRO_NO_ELEVATE to re-run through sudo");
    }
    let termux = cd_engine::StorePaths::from_env().termux;
    let prefer_sudo = cli.use_sudo || env_flag("CHROOT_DISTRO_USE_SUDO");
    let order: &[&str] = if termux && !prefer_sudo {
        &["su", "sudo", "doas", "pkexec"]
    } else {
        &["sudo", "doas", "pkexec", "su"]
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some((helper, helper_path)) = order
        .iter()
        .find_map(|h| find_in_path(h, &path).map(|p| (*h, p)))
    else {
        bail!("'{name}' needs root and none of sudo, doas, pkexec or su was found; run it as root");
    };
    let exe = std::env::current_exe().context("cannot find the chroot-distro executable")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut inner: Vec<OsString> = vec!["env".into()];
    inner.extend(kept_environment());
    // The re-run must not try to elevate again if the helper did not make it root.
    inner.push("CHROOT_DISTRO_NO_ELEVATE=1".into());
    inner.push(exe.into_os_string());
    inner.extend(args);

    let mut command = std::process::Command::new(&helper_path);
    if helper == "su" {
        let line = inner
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        command.args(["root", "-c"]).arg(line);
    } else {
        command.args(&inner);
    }
    let err = command.exec();
    Err(anyhow::Error::new(err).context(format!("cannot run {}", helper_path.display())))
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn kept_environment() -> Vec<OsString> {
    KEPT_VARS
        .iter()
        .filter_map(|k| {
            std::env::var_os(k).map(|v| {
                let mut kv = OsString::from(k);
                kv.push("=");
                kv.push(v);
                kv
            })
        })
        .collect()
}

fn find_in_path(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Quote for `su -c`, which hands the line to a shell.
pub fn shell_quote(s: &OsStr) -> String {
    let bytes = s.as_bytes();
    let safe = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(b));
    let text = String::from_utf8_lossy(bytes);
    if safe {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote(OsStr::new("abc")), "abc");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }
}
