//! Guest architecture detection from ELF headers, and the binfmt_misc check for foreign guests.

use std::path::Path;

use crate::error::RuntimeError;
use crate::guest_fs::GuestRoot;

/// Binaries whose ELF header tells the guest architecture, most telling first.
const PROBES: &[&str] = &[
    "/bin/sh",
    "/usr/bin/env",
    "/bin/busybox",
    "/bin/bash",
    "/usr/bin/bash",
    "/bin/ls",
    "/usr/bin/ls",
];

/// The architectures the spec names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Aarch64,
    Arm,
    I686,
    X86_64,
    Riscv64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::I686 => "i686",
            Arch::X86_64 => "x86_64",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The binfmt_misc entry Debian's `qemu-user-static` registers for this architecture.
    fn binfmt_name(self) -> &'static str {
        match self {
            Arch::Aarch64 => "qemu-aarch64",
            Arch::Arm => "qemu-arm",
            Arch::I686 => "qemu-i386",
            Arch::X86_64 => "qemu-x86_64",
            Arch::Riscv64 => "qemu-riscv64",
        }
    }

    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "aarch64" => Some(Arch::Aarch64),
            "arm" => Some(Arch::Arm),
            "x86" => Some(Arch::I686),
            "x86_64" => Some(Arch::X86_64),
            "riscv64" => Some(Arch::Riscv64),
            _ => None,
        }
    }

    /// Whether a host of this architecture runs `guest` binaries natively.
    fn runs_natively(self, guest: Arch) -> bool {
        self == guest
            || matches!(
                (self, guest),
                (Arch::X86_64, Arch::I686) | (Arch::Aarch64, Arch::Arm)
            )
    }
}

/// The architecture an ELF header (at least 20 bytes) was built for.
pub fn elf_arch(header: &[u8]) -> Option<Arch> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    let class64 = header[4] == 2;
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return None,
    };
    match (machine, class64) {
        (62, true) => Some(Arch::X86_64),
        (3, false) => Some(Arch::I686),
        (183, true) => Some(Arch::Aarch64),
        (40, false) => Some(Arch::Arm),
        (243, true) => Some(Arch::Riscv64),
        _ => None,
    }
}

/// The guest's architecture, from the first probe binary that is an ELF file.
pub fn detect_guest_arch(root: &GuestRoot) -> Option<Arch> {
    PROBES.iter().find_map(|p| {
        let head = root.read_optional(p, 64).ok()??;
        elf_arch(&head)
    })
}

/// The architecture of the guest at `rootfs`, if its binaries tell.
pub fn detect_guest_arch_of(rootfs: &Path) -> Option<Arch> {
    GuestRoot::open(rootfs)
        .ok()
        .and_then(|r| detect_guest_arch(&r))
}

/// State of a binfmt_misc entry, from its `/proc/sys/fs/binfmt_misc/<name>` text.
#[derive(Debug, PartialEq, Eq)]
struct BinfmtEntry {
    enabled: bool,
    fix_binary: bool,
    interpreter: String,
}

fn parse_binfmt(text: &str) -> BinfmtEntry {
    let mut e = BinfmtEntry {
        enabled: false,
        fix_binary: false,
        interpreter: String::new(),
    };
    for line in text.lines() {
        if line.trim() == "enabled" {
            e.enabled = true;
        } else if let Some(flags) = line.strip_prefix("flags:") {
            e.fix_binary = flags.trim().contains('F');
        } else if let Some(i) = line.strip_prefix("interpreter ") {
            e.interpreter = i.trim().to_string();
        }
    }
    e
}

/// Refuse a foreign guest unless the kernel can run it through qemu-user via binfmt_misc.
pub fn check_guest_arch(root: &GuestRoot, binfmt_dir: &Path) -> Result<(), RuntimeError> {
    let (Some(guest), Some(host)) = (detect_guest_arch(root), Arch::host()) else {
        // Unknown binaries (or none): let the exec report what is wrong.
        return Ok(());
    };
    if host.runs_natively(guest) {
        return Ok(());
    }
    let hint = "install Debian's qemu-user-static and binfmt-support packages \
                (then 'update-binfmts --enable')";
    let entry_path = binfmt_dir.join(guest.binfmt_name());
    let Ok(text) = std::fs::read_to_string(&entry_path) else {
        return Err(RuntimeError::ForeignArch(format!(
            "the container is {} but this host is {}, and {} is not registered; {hint}",
            guest.name(),
            host.name(),
            entry_path.display()
        )));
    };
    let entry = parse_binfmt(&text);
    if !entry.enabled {
        return Err(RuntimeError::ForeignArch(format!(
            "the container is {} but the binfmt_misc entry {} is disabled; \
             run 'update-binfmts --enable {}'",
            guest.name(),
            guest.binfmt_name(),
            guest.binfmt_name()
        )));
    }
    if !entry.fix_binary && !root.exists(&entry.interpreter) {
        return Err(RuntimeError::ForeignArch(format!(
            "the container is {} and binfmt_misc entry {} lacks the F flag, so its interpreter \
             {} must exist inside the container; {hint}",
            guest.name(),
            guest.binfmt_name(),
            entry.interpreter
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        let m = if data == 1 {
            machine.to_le_bytes()
        } else {
            machine.to_be_bytes()
        };
        h[18..20].copy_from_slice(&m);
        h
    }

    #[test]
    fn elf_machines() {
        assert_eq!(elf_arch(&header(2, 1, 62)), Some(Arch::X86_64));
        assert_eq!(elf_arch(&header(1, 1, 3)), Some(Arch::I686));
        assert_eq!(elf_arch(&header(2, 1, 183)), Some(Arch::Aarch64));
        assert_eq!(elf_arch(&header(1, 1, 40)), Some(Arch::Arm));
        assert_eq!(elf_arch(&header(2, 1, 243)), Some(Arch::Riscv64));
        assert_eq!(elf_arch(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn host_busybox_is_native() {
        let h = std::fs::read("/bin/busybox").map(|b| b[..64].to_vec());
        if let Ok(h) = h {
            let a = elf_arch(&h).unwrap();
            assert!(Arch::host().unwrap().runs_natively(a));
        }
    }

    #[test]
    fn binfmt_entry_text() {
        let e = parse_binfmt(
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\n\
             offset 0\nmagic 7f454c46\n",
        );
        assert!(e.enabled && e.fix_binary);
        assert_eq!(e.interpreter, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
        assert!(!parse_binfmt("disabled\nflags: P\n").enabled);
    }

    #[test]
    fn foreign_guest_without_binfmt_names_the_packages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let foreign = if Arch::host() == Some(Arch::Riscv64) {
            62
        } else {
            243
        };
        std::fs::write(root.join("bin/sh"), header(2, 1, foreign)).unwrap();
        let g = GuestRoot::open(&root).unwrap();
        let err = check_guest_arch(&g, &dir.path().join("no-binfmt")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("qemu-user-static") && msg.contains("binfmt-support"),
            "{msg}"
        );
    }
}
