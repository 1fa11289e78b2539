//! `run`: the recorded image config decides the command, directory, user and environment.

use super::*;

#[test]
fn run_uses_entrypoint_cmd_env_workdir_and_user() {
    let b = Box::new();
    fs::create_dir_all(b.rootfs().join("srv/app")).unwrap();
    b.write_image_config(serde_json::json!({
        "Entrypoint": ["/bin/sh", "-c", "echo \"$0 $1|$GREETING|$(pwd)|$(id -un)\"; exit 7"],
        "Cmd": ["cmd-a", "cmd-b"],
        "Env": ["GREETING=hi", "PATH=/bin"],
        "WorkingDir": "/srv/app",
        "User": "alice",
    }));
    let out = b.run(&["run", "c"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(stdout(&out), "cmd-a cmd-b|hi|/srv/app|alice\n");
    // Arguments after -- replace Cmd; flags override WorkingDir and User.
    let out = b.run(&[
        "run",
        "--work-dir",
        "/",
        "--user",
        "root",
        "c",
        "--",
        "x",
        "y",
    ]);
    assert_eq!(stdout(&out), "x y|hi|/|root\n", "{}", describe(&out));
    let out = b.run(&["run", "--get-chroot-cmd", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("cmd-a cmd-b"), "{}", describe(&out));
    // login ignores Entrypoint/Cmd/WorkingDir/User, but the image Env applies.
    let out = b.login(&[], &sh("echo $GREETING $(id -un) $(pwd)"));
    assert_eq!(stdout(&out), "hi root /root\n", "{}", describe(&out));
}

#[test]
fn run_with_only_cmd_or_nothing_recorded() {
    let b = Box::new();
    b.write_image_config(serde_json::json!({ "Cmd": ["echo", "from-cmd"] }));
    let out = b.run(&["run", "c"]);
    assert_eq!(stdout(&out), "from-cmd\n", "{}", describe(&out));
    let out = b.run(&["run", "c", "--", "echo", "replaced"]);
    assert_eq!(stdout(&out), "replaced\n", "{}", describe(&out));

    b.write_image_config(serde_json::json!({ "Entrypoint": null, "Cmd": null }));
    assert_tool_error(&b.run(&["run", "c"]), "neither Entrypoint nor Cmd");
    let out = b.run(&["run", "c", "--", "echo", "given"]);
    assert_eq!(stdout(&out), "given\n", "{}", describe(&out));
}

#[test]
fn run_without_manifest_refuses_in_one_line() {
    let b = Box::new();
    let out = b.run(&["run", "c"]);
    assert_tool_error(&out, "has no manifest.json");
    assert!(stderr(&out).contains("chroot-distro login c"));
    // login still works without it.
    assert_eq!(b.login(&[], &["true"]).status.code(), Some(0));
}
