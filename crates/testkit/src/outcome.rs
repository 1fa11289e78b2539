//! Assertions on what a failed command printed and left behind, shared by the install tests.

use std::fs;
use std::process::Output;

use crate::env::{describe, stderr, TestEnv};
use crate::fixture::sha256_hex;

/// The one `error:` line of a failed command (exit 1), which must also be its last line.
pub fn error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line\n{}", describe(out));
    assert!(
        err.trim_end().ends_with(lines[0]),
        "output after the error\n{}",
        describe(out)
    );
    lines[0].to_string()
}

/// Nothing half-made: no container `name`, no staging dir, no temp file, and every cached blob
/// is exactly the content its name promises (`.partial` downloads are kept for a resume and
/// are not cache entries).
pub fn assert_nothing_left(env: &TestEnv, name: &str) {
    assert!(!env.container_dir(name).exists(), "container {name} exists");
    if let Ok(entries) = fs::read_dir(env.store_dir().join("containers")) {
        for e in entries {
            let n = e
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            assert!(!n.starts_with('.'), "leftover {n}");
        }
    }
    assert_no_temp_files(env);
    assert_cache_verified(env);
}

/// The cache's download area is empty.
pub fn assert_no_temp_files(env: &TestEnv) {
    if let Ok(entries) = fs::read_dir(env.cache_dir().join("tmp")) {
        let left: Vec<_> = entries.map(|e| e.expect("dir entry").file_name()).collect();
        assert!(left.is_empty(), "temp files left: {left:?}");
    }
}

pub fn assert_cache_verified(env: &TestEnv) {
    let Ok(entries) = fs::read_dir(env.cache_dir().join("oci_layers")) else {
        return;
    };
    for e in entries {
        let e = e.expect("dir entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") {
            continue;
        }
        let hex = name.strip_prefix("sha256_").unwrap_or("?");
        assert_eq!(
            sha256_hex(&fs::read(e.path()).expect("read cached blob")),
            hex,
            "unverified cache entry {name}"
        );
    }
}

/// Start `cmd` in the background with no stdin and its output collected, for
/// [`interrupt_and_wait`] or `wait_with_output`.
pub fn spawn_collecting(
    mut cmd: impl std::borrow::BorrowMut<std::process::Command>,
) -> std::process::Child {
    cmd.borrow_mut()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the tool")
}

/// Send SIGINT to `child` (started with piped stdout/stderr) and collect its output; panics when
/// it is still running after `limit` (it is killed then).
pub fn interrupt_and_wait(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "cannot signal the child");
    let sent = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait for the child").is_some() {
            return child
                .wait_with_output()
                .expect("collect the child's output");
        }
        if sent.elapsed() > limit {
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .expect("collect the child's output");
            panic!("still running {limit:?} after SIGINT\n{}", describe(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
