//! Disk usage of a container directory for `list`.

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{AtFlags, StatxFlags};

use crate::inode_walk::{list_dir, open_dir_at, open_root_dir};

/// Bytes allocated on disk below `path` (`st_blocks * 512`, like `du`): hard links counted
/// once, symlinks not followed, mount points below `path` not entered. Unreadable parts are
/// skipped, so the result is a lower bound when something could not be read.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(root) = open_root_dir(path) else {
        return 0;
    };
    let Ok(top) = stat(root.as_fd(), c"", AtFlags::EMPTY_PATH) else {
        return 0;
    };
    let mut seen = HashSet::new();
    top.blocks * 512 + dir_usage(root.as_fd(), &top, &mut seen)
}

struct Usage {
    blocks: u64,
    dev: (u32, u32),
    mnt_id: Option<u64>,
    ino: u64,
    nlink: u32,
    is_dir: bool,
}

fn stat(dir: BorrowedFd<'_>, name: &CStr, extra: AtFlags) -> std::io::Result<Usage> {
    let st = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT | extra,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )?;
    Ok(Usage {
        blocks: st.stx_blocks,
        dev: (st.stx_dev_major, st.stx_dev_minor),
        mnt_id: (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id),
        ino: st.stx_ino,
        nlink: st.stx_nlink,
        is_dir: u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR,
    })
}

fn dir_usage(dir: BorrowedFd<'_>, top: &Usage, seen: &mut HashSet<((u32, u32), u64)>) -> u64 {
    let Ok(names) = list_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for name in names {
        let Ok(u) = stat(dir, &name, AtFlags::empty()) else {
            continue;
        };
        let other_mount =
            u.dev != top.dev || matches!((u.mnt_id, top.mnt_id), (Some(a), Some(b)) if a != b);
        if other_mount {
            continue;
        }
        if !u.is_dir && u.nlink > 1 && !seen.insert((u.dev, u.ino)) {
            continue;
        }
        total += u.blocks * 512;
        if u.is_dir {
            if let Ok(child) = open_dir_at(dir, &name) {
                total += dir_usage(child.as_fd(), top, seen);
            }
        }
    }
    total
}
