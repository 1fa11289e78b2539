//! Cross-check with an independent implementation: the tree `install` makes from a registry
//! must equal what `umoci unpack` makes from the same OCI layout (types, modes, owners, sizes,
//! contents, link targets, mtimes, hard-link groups), apart from the two files `install`
//! writes on purpose (/etc/resolv.conf and /etc/hosts).

use cd_testkit::tree::assert_same_image_tree;

use super::*;

#[test]
fn install_makes_the_same_tree_as_umoci_unpack() {
    let image = super::real::rich_image();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&dir.path().join("oci"));
    layout.add_image("t", &image);
    let reg = LocalRegistry::start_plain();
    reg.push_oci_dir(&dir.path().join("oci"), "t", "rich:1", &[]);

    let bundle = dir.path().join("bundle");
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", dir.path().join("oci").display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci: {}", describe(&out));

    let env = test_env();
    let out = env.run(["install", &format!("{}/rich:1", reg.host_port())]);
    assert!(out.status.success(), "{}", describe(&out));

    let seen = assert_same_image_tree(&env.rootfs("rich"), &bundle.join("rootfs"), "umoci's");
    assert!(seen > 40, "the comparison saw too little: {seen}");
}
