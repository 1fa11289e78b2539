//! Foreign-architecture guests (qemu-user) and interactive shells on a pty.

use super::*;
use cd_testkit::pty;

/// The ELF header of a 64-bit little-endian binary for `machine`, padded to 64 bytes.
fn elf_header(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

#[test]
fn login_foreign_guest_without_qemu_names_the_package() {
    // An architecture this host has no binfmt_misc entry for (normally riscv64 here).
    let foreign = [("qemu-riscv64", 243u16), ("qemu-aarch64", 183)]
        .into_iter()
        .find(|(entry, machine)| {
            let native = match std::env::consts::ARCH {
                "x86_64" => 62,
                "aarch64" => 183,
                "riscv64" => 243,
                _ => 0,
            };
            *machine != native && !Path::new("/proc/sys/fs/binfmt_misc").join(entry).exists()
        });
    let Some((_, machine)) = foreign else {
        eprintln!("skipped: every foreign architecture is registered with binfmt_misc here");
        return;
    };
    let b = Box::new();
    fs::remove_file(b.rootfs().join("bin/sh")).unwrap();
    fs::write(b.rootfs().join("bin/sh"), elf_header(machine)).unwrap();
    let out = b.login(&[], &["/bin/sh"]);
    assert_tool_error(&out, "qemu-user-static");
}

#[test]
fn login_arm64_busybox_runs_under_qemu_user() {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fetch-arm64-busybox.sh");
    let fetched = Command::new(&script).output().unwrap();
    assert!(
        fetched.status.success(),
        "the arm64 busybox fixture is missing and {} could not fetch it: {}",
        script.display(),
        describe(&fetched)
    );
    let arm64 = PathBuf::from(stdout(&fetched).trim());
    let b = Box::new();
    let rootfs = b.env.rootfs("arm");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::copy(&arm64, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("etc/passwd"), busybox::PASSWD).unwrap();
    fs::write(rootfs.join("etc/group"), busybox::GROUP).unwrap();
    let out = b.run(&["login", "arm", "--", "/bin/busybox", "uname", "-m"]);
    let state = b.env.store_dir().join("data/arm");
    let _ = cd_runtime::kill(&state, &rootfs, Duration::from_millis(200));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(stdout(&out), "aarch64\n");
}

#[test]
fn login_interactive_shell_through_a_pty() {
    let b = Box::new();
    // The tool's usual scrubbed environment, given to python3 which passes it on.
    let tool = b.env.cmd(["login", "c"]);
    let mut python = Command::new("python3");
    python
        .env_clear()
        .envs(tool.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    let exe = std::ffi::OsStr::new(env!("CARGO_BIN_EXE_chroot-distro"));
    let s = pty::shell_session(python, &[exe, "login".as_ref(), "c".as_ref()], "");
    let transcript = &s.transcript;
    assert_eq!(s.code, "3", "{transcript}");
    assert!(transcript.contains("\nhi\r\n"), "{transcript}");
    assert!(transcript.contains("/dev/pts/"), "{transcript}");
}
