//! Run a test body in a private mount namespace so its mounts never reach the host.
//!
//! Mount namespaces belong to a task, not a process: a dedicated thread that unshares
//! `CLONE_NEWNS | CLONE_FS` gets its own, and children it spawns inherit it. When the thread
//! ends, the namespace and every mount made in it go away, even if the body panicked.

use std::io;

pub fn in_private_mount_ns<T: Send>(body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_private_mount_ns().expect("unshare a private mount namespace (needs root)");
            body()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn enter_private_mount_ns() -> io::Result<()> {
    // SAFETY: unshare and mount take no pointers we own beyond the static C strings below; the
    // calling thread is the only one affected (CLONE_FS detaches its fs_struct first).
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS) != 0 {
            return Err(io::Error::last_os_error());
        }
        let none = c"none";
        let root = c"/";
        if libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Bind-mount `src` onto `dst` (inside a private namespace made by [`in_private_mount_ns`]).
pub fn bind_mount(src: &std::path::Path, dst: &std::path::Path) -> io::Result<()> {
    let status = std::process::Command::new("mount")
        .arg("--bind")
        .arg(src)
        .arg(dst)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "mount --bind {} {} failed",
            src.display(),
            dst.display()
        )))
    }
}

/// The lines of this process's `/proc/self/mountinfo` whose mount point is `dir` or below it.
pub fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter(|l| {
            let mp = l.split(' ').nth(4).unwrap_or("");
            mp == dir || mp.starts_with(&format!("{dir}/"))
        })
        .map(str::to_string)
        .collect()
}
