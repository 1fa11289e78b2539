//! Owner, mode, extended attributes and times of an entry, and applying them without ever
//! following a symlink.
//!
//! Order matters: `chown` clears setuid/setgid, so the mode comes after it; `security.capability`
//! is cleared by `chown` too, so xattrs come after both; times come last because every other
//! change bumps ctime only, but writing data would bump mtime.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

const PAX_XATTR: &str = "SCHILY.xattr.";

#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// `None` when owners are not preserved.
    pub owner: Option<(u32, u32)>,
    pub mtime: Timespec,
    pub xattrs: Vec<(CString, Vec<u8>)>,
}

/// How applying one entry's metadata went, for the stats.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MetaOutcome {
    pub xattr_failures: u64,
}

impl Meta {
    /// Read the metadata of `entry`. PAX `uid`/`gid` are already folded into the header by the
    /// tar crate; a PAX `mtime` (sub-second, or beyond the octal field) is read here.
    pub(crate) fn of_entry<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        preserve_owners: bool,
    ) -> io::Result<Meta> {
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let owner = if preserve_owners {
            let uid = u32::try_from(header.uid()?).ok().filter(|&u| u != u32::MAX);
            let gid = u32::try_from(header.gid()?).ok().filter(|&g| g != u32::MAX);
            match (uid, gid) {
                (Some(u), Some(g)) => Some((u, g)),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "owner id does not fit a 32-bit uid/gid",
                    ))
                }
            }
        } else {
            None
        };
        let mut mtime = Timespec {
            tv_sec: i64::try_from(header.mtime()?).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix(PAX_XATTR) {
                    if let Ok(name) = CString::new(name) {
                        xattrs.push((name, ext.value_bytes().to_vec()));
                    }
                } else if key == "mtime" {
                    if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(Meta {
            mode,
            owner,
            mtime,
            xattrs,
        })
    }

    fn timestamps(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }

    fn ids(&self) -> Option<(Uid, Gid)> {
        self.owner
            .map(|(u, g)| (Uid::from_raw(u), Gid::from_raw(g)))
    }

    /// Apply everything through an open (non-`O_PATH`) fd of a regular file or a directory.
    pub(crate) fn apply_fd(&self, fd: BorrowedFd<'_>) -> io::Result<MetaOutcome> {
        if let Some((uid, gid)) = self.ids() {
            rustix::fs::fchown(fd, Some(uid), Some(gid))?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.mode))?;
        let mut out = MetaOutcome::default();
        for (name, value) in &self.xattrs {
            if rustix::fs::fsetxattr(fd, name.as_c_str(), value, XattrFlags::empty()).is_err() {
                out.xattr_failures += 1;
            }
        }
        rustix::fs::futimens(fd, &self.timestamps())?;
        Ok(out)
    }

    /// Apply everything to `name` in `dir` without following it (symlinks, device nodes,
    /// FIFOs: inodes that cannot be opened safely). The mode is skipped for symlinks, which
    /// have none on Linux.
    pub(crate) fn apply_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        is_symlink: bool,
    ) -> io::Result<MetaOutcome> {
        if let Some((uid, gid)) = self.ids() {
            rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        if !is_symlink {
            // chmodat follows a final symlink; the caller created this inode a moment ago in a
            // directory only this process is writing, and checked it is not a symlink.
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(self.mode), AtFlags::empty())?;
        }
        let mut out = MetaOutcome::default();
        if !self.xattrs.is_empty() {
            // The /proc/self/fd magic link pins the directory; lsetxattr does not follow the
            // final name.
            let mut path = format!("/proc/self/fd/{}/", dir.as_fd().as_raw_fd()).into_bytes();
            path.extend_from_slice(name.to_bytes());
            let path =
                CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            for (xname, value) in &self.xattrs {
                let set = rustix::fs::lsetxattr(
                    path.as_c_str(),
                    xname.as_c_str(),
                    value,
                    XattrFlags::empty(),
                );
                if set.is_err() {
                    out.xattr_failures += 1;
                }
            }
        }
        rustix::fs::utimensat(dir, name, &self.timestamps(), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(out)
    }
}

/// A PAX time: decimal seconds with an optional fraction (`1700000000.25`, `-1.5`).
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        let d = i64::from(c.to_digit(10)?);
        nanos += d * 10i64.pow(8 - i as u32);
    }
    if neg {
        if nanos > 0 {
            Some(Timespec {
                tv_sec: -secs - 1,
                tv_nsec: (1_000_000_000 - nanos) as _,
            })
        } else {
            Some(Timespec {
                tv_sec: -secs,
                tv_nsec: 0,
            })
        }
    } else {
        Some(Timespec {
            tv_sec: secs,
            tv_nsec: nanos as _,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_parse_with_fractions() {
        let t = parse_pax_time("1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time("42").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (42, 0));
        let t = parse_pax_time("-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time("x").is_none());
    }
}
