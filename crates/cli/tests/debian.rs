//! A real distribution end to end: a `debootstrap --variant=minbase` Debian (built once by
//! `scripts/debian-minbase.sh` and cached) installed from a tarball, entered with bash, used
//! with its own tools (dpkg, apt, useradd), backed up, restored and entered again.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use cd_testkit::cached::{cached_fixture, repo_script};
use cd_testkit::env::{describe, stdout, TestEnv};

fn debian_tree() -> PathBuf {
    cached_fixture(
        &repo_script("debian-minbase.sh"),
        "debootstrap and the Debian mirror",
    )
}

/// `login NAME [flags] -- bash -c SCRIPT`, which must succeed; its stdout.
fn bash(env: &TestEnv, name: &str, flags: &[&str], script: &str) -> String {
    let mut args = vec!["login", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "/bin/bash", "-c", script]);
    let out = env.run(&args);
    assert!(out.status.success(), "{script}: {}", describe(&out));
    stdout(&out)
}

#[test]
fn a_debootstrapped_debian_installs_logs_in_and_runs_its_own_tools() {
    let tree = debian_tree();
    let env = TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"));
    let tarball = env.root().join("debian.tar.zst");
    let tar = Command::new("tar")
        .args([
            "--numeric-owner",
            "--exclude=./.complete",
            "-I",
            "zstd -T0",
            "-C",
        ])
        .arg(&tree)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", describe(&tar));

    let out = env.run(["install", &tarball.display().to_string(), "-n", "deb"]);
    assert!(out.status.success(), "{}", describe(&out));

    let version = std::fs::read_to_string(tree.join("etc/debian_version")).unwrap();
    let seen = bash(
        &env,
        "deb",
        &[],
        "cat /etc/debian_version; id -un; echo $HOME; echo $SHELL",
    );
    assert_eq!(seen, format!("{version}root\n/root\n/bin/bash\n"));
    let status = bash(&env, "deb", &[], "dpkg-query -W -f='${Status}' dpkg");
    assert_eq!(status, "install ok installed");
    assert!(bash(&env, "deb", &[], "apt-get --version").starts_with("apt "));

    // Accounts are the container's own: made with its useradd, found by the tool in its files.
    bash(&env, "deb", &[], "useradd -m -s /bin/bash -u 1234 alice");
    let who = bash(&env, "deb", &["--user", "alice"], "id -un; id -u; pwd");
    assert_eq!(who, "alice\n1234\n/home/alice\n");
    assert!(!std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains("alice:x:1234"));

    let backup = env.root().join("deb-backup.tar.zst");
    for args in [
        vec!["backup", "deb", "-o", backup.to_str().unwrap()],
        vec!["remove", "deb"],
        vec!["restore", backup.to_str().unwrap()],
    ] {
        let out = env.run(&args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    let again = bash(
        &env,
        "deb",
        &["--user", "alice"],
        "id -un; cat /etc/debian_version",
    );
    assert_eq!(again, format!("alice\n{version}"));
}
