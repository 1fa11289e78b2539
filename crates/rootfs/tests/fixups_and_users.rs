//! Fixups and account lookup through a real root, with planted symlinks pointing at the host.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{symlink, MetadataExt};

use cd_rootfs::fixups::{parse_nameservers, write_hosts, write_resolv_conf};
use cd_rootfs::users::{resolve_group, resolve_user};
use common::{Sandbox, CANARY};

#[test]
fn resolv_conf_symlink_to_the_host_is_replaced_not_followed() {
    let sb = Sandbox::new();
    let before = sb.outside();
    std::fs::create_dir(sb.p("etc")).unwrap();
    symlink(sb.host_path().join("canary"), sb.p("etc/resolv.conf")).unwrap();
    write_resolv_conf(&sb.root, &["1.1.1.1".into(), "2606:4700::1111".into()]).unwrap();
    let m = sb.p("etc/resolv.conf").symlink_metadata().unwrap();
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o644);
    let text = std::fs::read_to_string(sb.p("etc/resolv.conf")).unwrap();
    assert!(
        text.contains("nameserver 1.1.1.1\nnameserver 2606:4700::1111\n"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(sb.host_path().join("canary")).unwrap(),
        CANARY
    );
    sb.assert_host_untouched(&before);
    assert!(write_resolv_conf(&sb.root, &["1.1.1.1\nnameserver 6.6.6.6".into()]).is_err());
}

#[test]
fn etc_symlinked_to_the_host_is_re_rooted() {
    let sb = Sandbox::new();
    let before = sb.outside();
    symlink(sb.host_path(), sb.p("etc")).unwrap();
    // `/etc -> <host dir>` resolves inside the root, where that path does not exist yet:
    // pathrs creates it there, never on the host.
    let res = write_hosts(&sb.root, "box");
    if res.is_ok() {
        let inside = sb
            .root_path()
            .join(sb.host_path().strip_prefix("/").unwrap());
        assert!(inside.join("hosts").exists());
    }
    assert!(!sb.host_path().join("hosts").exists());
    sb.assert_host_untouched(&before);
}

#[test]
fn hosts_is_minimal_and_names_the_host() {
    let sb = Sandbox::new();
    write_hosts(&sb.root, "box").unwrap();
    let text = std::fs::read_to_string(sb.p("etc/hosts")).unwrap();
    assert_eq!(
        text,
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbox\n"
    );
    assert!(write_hosts(&sb.root, "bad name").is_err());
}

#[test]
fn nameservers_skip_loopback_and_fall_back() {
    let text = "# generated\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.1\n\
                options edns0\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver junk\n";
    assert_eq!(parse_nameservers(text), vec!["10.0.0.1", "fe80::1%eth0"]);
    assert!(parse_nameservers("nameserver 127.0.0.1\n").is_empty());
    let host = cd_rootfs::fixups::host_nameservers();
    assert!(!host.is_empty());
    assert!(host.iter().all(|h| !h.starts_with("127.")));
}

#[test]
fn users_are_read_from_the_container_not_the_host() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.p("etc")).unwrap();
    std::fs::write(
        sb.p("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbuilder:x:2000:2000::/home/builder:/bin/ash\n",
    )
    .unwrap();
    // An absolute symlink in the image points into the container.
    std::fs::create_dir(sb.p("shared")).unwrap();
    std::fs::write(
        sb.p("shared/group"),
        "builder:x:2000:\nwheel:x:10:builder\n",
    )
    .unwrap();
    symlink("/shared/group", sb.p("etc/group")).unwrap();

    let u = resolve_user(&sb.root, "builder").unwrap();
    assert_eq!(
        (u.uid, u.gid, u.home.as_str()),
        (2000, 2000, "/home/builder")
    );
    assert_eq!(u.supplementary_gids, vec![2000, 10]);
    assert_eq!(resolve_group(&sb.root, "wheel").unwrap(), 10);
    // The host surely has a `daemon` user; the container does not.
    let err = resolve_user(&sb.root, "daemon").unwrap_err();
    assert_eq!(
        err.to_string(),
        "user 'daemon' not found in the container's /etc/passwd"
    );
    let u = resolve_user(&sb.root, "1234:wheel").unwrap();
    assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 10, "/"));
}

#[test]
fn missing_account_files_allow_numeric_ids_only() {
    let sb = Sandbox::new();
    assert_eq!(resolve_user(&sb.root, "0").unwrap().uid, 0);
    assert!(resolve_user(&sb.root, "root").is_err());
}
