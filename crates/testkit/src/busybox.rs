//! A tiny but real root filesystem made of Debian's static busybox.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

pub const BUSYBOX: &str = "/bin/busybox";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
    alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

pub const GROUP: &str =
    "root:x:0:\ndaemon:x:1:\nalice:x:1000:\nstaff:x:50:alice\nnogroup:x:65534:\n";

/// Applets linked into the rootfs (a superset of what the tests use).
const APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "echo", "env", "id", "pwd", "sleep", "true", "false", "test",
    "mkdir", "rm", "touch", "mount", "hostname", "uname", "ps", "grep", "sed", "stat", "wc",
    "readlink", "kill", "head", "tail", "chmod", "chown", "ln", "cp", "mv", "find", "printf", "tr",
    "cut", "sort", "tty", "stty", "whoami", "basename", "dirname", "du", "df", "date",
];

/// Fail loudly when the fixture binary is missing: the test cannot be meaningful without it.
pub fn require_busybox() {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (make test does)"
    );
}

/// Fill `root` with busybox, applet symlinks in /bin, and the usual /etc files.
pub fn populate(root: &Path) {
    require_busybox();
    for d in [
        "bin",
        "etc",
        "root",
        "home/alice",
        "tmp",
        "proc",
        "sys",
        "dev",
        "usr/bin",
        "var",
    ] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755))
        .expect("chmod");
    for applet in APPLETS {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", &link).expect("symlink applet");
        }
    }
    symlink("/bin/env", root.join("usr/bin/env")).expect("symlink env");
    fs::write(root.join("etc/passwd"), PASSWD).expect("passwd");
    fs::write(root.join("etc/group"), GROUP).expect("group");
    fs::write(
        root.join("etc/os-release"),
        "ID=busybox\nNAME=\"BusyBox fixture\"\n",
    )
    .expect("os-release");
    std::os::unix::fs::chown(root.join("home/alice"), Some(1000), Some(1000)).expect("chown");
}

/// The same tree as tar entries, for layer fixtures.
pub fn layer_entries() -> Vec<crate::fixture::Entry> {
    use crate::fixture::Entry;
    require_busybox();
    let mut entries = vec![
        Entry::dir("bin", 0o755),
        Entry::dir("etc", 0o755),
        Entry::dir("root", 0o700),
        Entry::dir("home", 0o755),
        Entry::dir("home/alice", 0o755).owner(1000, 1000),
        Entry::dir("tmp", 0o1777),
        Entry::dir("usr", 0o755),
        Entry::dir("usr/bin", 0o755),
        Entry::file(
            "bin/busybox",
            fs::read(BUSYBOX).expect("read busybox"),
            0o755,
        ),
        Entry::file("etc/passwd", PASSWD, 0o644),
        Entry::file("etc/group", GROUP, 0o644),
        Entry::file(
            "etc/os-release",
            "ID=busybox\nNAME=\"BusyBox fixture\"\n",
            0o644,
        ),
        Entry::symlink("usr/bin/env", "/bin/env"),
    ];
    entries.extend(
        APPLETS
            .iter()
            .map(|a| Entry::symlink(&format!("bin/{a}"), "busybox")),
    );
    entries
}
