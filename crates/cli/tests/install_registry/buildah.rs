//! Cross-check with images made by buildah (containers/storage, the library podman builds on):
//! two layers with a whiteout, a replaced directory, hard links, a new link to a lower file,
//! a FIFO, setuid and sticky bits and owners, pushed to the real registry as OCI and as Docker
//! schema 2. `install` must make exactly the tree buildah itself mounts for that image, and
//! `run` must follow its Entrypoint, Cmd, Env, WorkingDir and User.

use cd_testkit::tree::assert_same_image_tree;

use super::*;

/// The buildah invocation and image contents; `$D` is a temp dir holding buildah's whole
/// storage, `$REG` the registry. vfs storage and chroot isolation need no kernel overlay,
/// fuse or user namespaces.
const BUILD: &str = r#"set -eu
B="buildah --root $D/storage --runroot $D/run --storage-driver vfs"
export BUILDAH_ISOLATION=chroot TMPDIR=$D
c=$($B from scratch)
m=$($B mount "$c")
mkdir -p "$m/bin" "$m/etc" "$m/data/keep" "$m/data/old" "$m/tmp" "$m/srv"
cp /bin/busybox "$m/bin/busybox"
ln -s busybox "$m/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/srv:/bin/sh\n' > "$m/etc/passwd"
printf 'root:x:0:\nwww:x:33:\n' > "$m/etc/group"
echo old > "$m/data/old/file"
echo kept > "$m/data/keep/file"
echo gone > "$m/tmp/gone"
echo shared > "$m/srv/a"
ln "$m/srv/a" "$m/srv/b"
mkfifo "$m/srv/fifo"
echo s > "$m/srv/setuid"
chmod 4755 "$m/srv/setuid"
chown 33:33 "$m/srv"
chmod 1777 "$m/tmp"
touch -h -d '2001-02-03 04:05:06' "$m/srv/a" "$m/bin/sh"
$B umount "$c" >/dev/null
$B commit -q "$c" base >/dev/null
c=$($B from base)
m=$($B mount "$c")
rm "$m/tmp/gone"
rm -rf "$m/data/old"
mkdir "$m/data/old"
echo new > "$m/data/old/other"
ln "$m/data/keep/file" "$m/data/keep/link-to-lower"
echo changed > "$m/srv/b"
$B umount "$c" >/dev/null
$B config --entrypoint '["/bin/sh", "-c"]' \
  --cmd '["echo \"$GREETING from $(pwd) as $(id -u):$(id -g)\""]' \
  --env GREETING=hello --workingdir /srv --user www "$c"
$B commit -q "$c" final >/dev/null
$B push -q --tls-verify=false final "docker://$REG/bh/final:oci"
$B push -q --tls-verify=false --format v2s2 final "docker://$REG/bh/final:docker"
c=$($B from final)
$B mount "$c"
"#;

#[test]
fn images_built_and_pushed_by_buildah_install_as_buildah_sees_them() {
    let reg = LocalRegistry::start_plain();
    let work = tempfile::tempdir().unwrap();
    // buildah's blob-info cache goes under `work`, as skopeo's does (see containers_tool).
    let out = cd_testkit::registry::containers_tool("sh", work.path())
        .args(["-c", BUILD])
        .env("D", work.path())
        .env("REG", reg.host_port())
        .output()
        .expect("buildah is needed for this test (scripts/setup-system.sh installs it)");
    assert!(out.status.success(), "buildah: {}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let truth = PathBuf::from(text.lines().last().unwrap_or_default().trim());
    assert!(
        truth.join("bin/busybox").is_file(),
        "buildah's mount: {text}"
    );

    let env = test_env();
    for (tag, name) in [("oci", "from-oci"), ("docker", "from-docker")] {
        let reference = format!("{}/bh/final:{tag}", reg.host_port());
        let out = env.run(["install", &reference, "-n", name]);
        assert!(out.status.success(), "{}", describe(&out));
        let rootfs = env.rootfs(name);
        let seen = assert_same_image_tree(&rootfs, &truth, "buildah's");
        assert!(seen > 10, "the comparison saw too little: {seen}");
        // Spot checks, so a comparison that went wrong on both sides still fails.
        assert!(!rootfs.join("tmp/gone").exists());
        assert!(!rootfs.join("data/old/file").exists());
        // containers/storage records a new link to an unchanged lower file as a plain copy.
        let linked = std::fs::read_to_string(rootfs.join("data/keep/link-to-lower")).unwrap();
        assert_eq!(linked, "kept\n");
        let a = rootfs.join("srv/a").metadata().unwrap();
        let b = rootfs.join("srv/b").metadata().unwrap();
        assert_eq!(a.ino(), b.ino(), "a hard link within a layer");
        assert!(rootfs
            .join("srv/fifo")
            .metadata()
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            rootfs.join("srv/setuid").metadata().unwrap().mode() & 0o7777,
            0o4755
        );
        let srv = rootfs.join("srv").metadata().unwrap();
        assert_eq!((srv.uid(), srv.gid()), (33, 33));
        assert_eq!(
            std::fs::read_to_string(rootfs.join("srv/a")).unwrap(),
            "changed\n"
        );

        let out = env.run(["run", name]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from /srv as 33:33\n"
        );
    }
}
