//! Stores are interchangeable with the published Python chroot-distro (3.2.0, from PyPI into a
//! virtualenv by `scripts/python-tool.sh`): each tool lists, runs, diffs and resets what the
//! other installed, and both use the same cache files. The Python tool is only ever asked to
//! install, list, diff and reset: its `login` leaves host mounts behind.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cd_testkit::busybox;
use cd_testkit::cached::{cached_fixture, repo_script};
use cd_testkit::env::{describe, stdout, TestEnv};
use cd_testkit::fixture::{Entry, ImageBuilder, OciLayout};
use cd_testkit::registry::LocalRegistry;
use serde_json::json;

fn python_tool() -> PathBuf {
    cached_fixture(&repo_script("python-tool.sh"), "PyPI")
}

/// The Python tool on the same store as `env`.
fn python(env: &TestEnv, tool: &Path, args: &[&str]) -> Output {
    // Exactly the scrubbed environment our binary gets.
    let mut py = Command::new(tool);
    py.env_clear();
    for (k, v) in env.cmd(args).get_envs() {
        if let Some(v) = v {
            py.env(k, v);
        }
    }
    py.args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn stores_and_caches_are_shared_with_the_python_tool() {
    let tool = python_tool();
    let reg = LocalRegistry::start_plain();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path());
    let mut base = busybox::layer_entries();
    base.push(Entry::file("etc/marker", "from the image", 0o644));
    layout.add_image(
        "t",
        &ImageBuilder::new()
            .layer(base)
            .config("Entrypoint", json!(["/bin/echo", "entrypoint says"]))
            .config("Cmd", json!(["hi"])),
    );
    reg.push_oci_dir(dir.path(), "t", "compat:1", &[]);
    let reference = format!("{}/compat:1", reg.host_port());
    let env = TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"));

    let out = python(
        &env,
        &tool,
        &["install", &reference, "--name", "py", "--allow-insecure"],
    );
    assert!(out.status.success(), "python install: {}", describe(&out));
    let out = env.run(["install", &reference, "--name", "rs"]);
    assert!(out.status.success(), "{}", describe(&out));

    // One cache: the manifest file has the same name for both tools.
    let manifests = std::fs::read_dir(env.cache_dir().join("oci_manifests"))
        .unwrap()
        .count();
    assert_eq!(manifests, 1, "the tools disagree on the manifest cache key");

    // Each lists the other's container with its source.
    let ours = env.run(["list"]);
    assert!(
        stdout(&ours).contains("py") && stdout(&ours).contains(&reference),
        "{}",
        describe(&ours)
    );
    let theirs = python(&env, &tool, &["list"]);
    let listed = format!(
        "{}{}",
        stdout(&theirs),
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert!(listed.contains("rs"), "python list: {}", describe(&theirs));

    // Ours runs the Python install's entrypoint, reads its record, diffs it from its cache.
    let out = env.run(["run", "py"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), "entrypoint says hi");
    let out = env.run(["diff", "py"]);
    assert!(out.status.success(), "{}", describe(&out));

    // With the registry gone, each resets the other's container from the shared cache.
    drop(reg);
    std::fs::write(env.rootfs("py").join("etc/marker"), "changed").unwrap();
    std::fs::write(env.rootfs("rs").join("etc/marker"), "changed").unwrap();
    let out = env.run(["reset", "py"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = python(&env, &tool, &["reset", "rs"]);
    assert!(out.status.success(), "python reset: {}", describe(&out));
    for name in ["py", "rs"] {
        assert_eq!(
            std::fs::read_to_string(env.rootfs(name).join("etc/marker")).unwrap(),
            "from the image",
            "{name}"
        );
    }
    let out = python(&env, &tool, &["diff", "rs"]);
    assert!(out.status.success(), "python diff: {}", describe(&out));
    assert!(!stdout(&out).contains("etc/marker"), "{}", describe(&out));

    // Backups go both ways: each restores the other's .tar.gz, record included.
    let backups = tempfile::tempdir().unwrap();
    let ours = backups.path().join("rs.tar.gz");
    let theirs = backups.path().join("py.tar.gz");
    let out = env.run(["backup", "-q", "-o", ours.to_str().unwrap(), "rs"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = python(
        &env,
        &tool,
        &["backup", "-o", theirs.to_str().unwrap(), "py"],
    );
    assert!(out.status.success(), "python backup: {}", describe(&out));
    for name in ["rs", "py"] {
        let out = env.run(["remove", "-q", name]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let out = python(&env, &tool, &["restore", ours.to_str().unwrap()]);
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && !said.contains("[!]"),
        "python restore of our backup: {}",
        describe(&out)
    );
    let out = env.run(["restore", "-q", theirs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    for name in ["rs", "py"] {
        let out = env.run(["run", name]);
        assert!(out.status.success(), "{name}: {}", describe(&out));
        assert_eq!(stdout(&out).trim(), "entrypoint says hi", "{name}");
        assert_eq!(
            std::fs::read_to_string(env.rootfs(name).join("etc/marker")).unwrap(),
            "from the image",
            "{name}"
        );
    }
}
