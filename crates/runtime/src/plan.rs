//! The mount plan: a pure description of what a container's private mount namespace contains,
//! built from the request and executed by [`crate::mounter`].

use std::path::PathBuf;

use crate::request::BindSpec;

/// What to do when a mount target does not exist in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    CreateDir,
    CreateFile,
    /// Create a directory or a file, whichever the bind source is.
    CreateLikeSource,
    /// Leave it out (masks of paths the kernel does not have, optional mounts in `--minimal`).
    Skip,
}

/// Per-mount flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountOptions {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl MountOptions {
    const NONE: MountOptions = MountOptions {
        read_only: false,
        nosuid: false,
        nodev: false,
        noexec: false,
    };
    const NOSUID_NODEV: MountOptions = MountOptions {
        read_only: false,
        nosuid: true,
        nodev: true,
        noexec: false,
    };
    const NOSUID_NODEV_NOEXEC: MountOptions = MountOptions {
        read_only: false,
        nosuid: true,
        nodev: true,
        noexec: true,
    };
    const NOSUID_NOEXEC: MountOptions = MountOptions {
        read_only: false,
        nosuid: true,
        nodev: false,
        noexec: true,
    };
}

/// Host integrations that have a place in the plan but are not implemented yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostIntegration {
    /// `--shared-display`: X11/Wayland/PulseAudio/D-Bus sockets (not implemented yet).
    SharedDisplay,
    /// GPU nodes and ICD files. `/dev/dri` already arrives with the host `/dev`; the
    /// NVIDIA library binds are not implemented yet.
    Gpu,
    /// Termux/Android system binds (not implemented yet).
    Android,
}

/// One step of the plan. Targets are absolute paths inside the container, resolved inside
/// the root at execution time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountStep {
    /// Bind a host path.
    Bind {
        source: PathBuf,
        target: String,
        recursive: bool,
        options: MountOptions,
        missing: Missing,
    },
    /// A fresh filesystem instance.
    Fresh {
        fstype: &'static str,
        target: String,
        options: MountOptions,
        data: String,
        missing: Missing,
    },
    /// Bind the target onto itself and make it read-only (OCI "readonlyPaths").
    ReadOnly { target: String },
    /// A symlink, only ever created on a filesystem the plan itself mounted (`/dev` tmpfs).
    Symlink { path: String, to: String },
    /// A slot for a host integration that is not implemented yet; executing it does nothing.
    Integration(HostIntegration),
}

impl MountStep {
    pub fn target(&self) -> Option<&str> {
        match self {
            MountStep::Bind { target, .. }
            | MountStep::Fresh { target, .. }
            | MountStep::ReadOnly { target } => Some(target),
            MountStep::Symlink { path, .. } => Some(path),
            MountStep::Integration(_) => None,
        }
    }
}

/// How the container's `/dev` is made.
///
/// * [`DevSetup::Host`] (default, and `--minimal`): the host `/dev` recursively bound, because
///   the spec promises hardware, USB and GPU access (`/dev/dri`, `/dev/bus/usb`, `/dev/video*`)
///   without flags. A new devpts instance and a fresh tmpfs are then mounted over its `pts` and
///   `shm`, so ptys and shared memory stay the container's own; `/dev/ptmx` (the host node,
///   char 5:2) opens the ptmx of the `pts` mounted next to it, i.e. the container's instance.
/// * [`DevSetup::Minimal`] (`--isolated`, "reduce host exposure"): a tmpfs with only `null`,
///   `zero`, `full`, `random`, `urandom` and `tty` bound from the host, `ptmx -> pts/ptmx`,
///   `fd`/`stdin`/`stdout`/`stderr` links, the new devpts and a `shm` tmpfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevSetup {
    Host,
    Minimal,
}

/// Inputs of [`MountPlan::build`], already resolved from the request.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub minimal: bool,
    pub isolated: bool,
    pub shared_tmp: bool,
    pub shared_display: bool,
    /// `--shared-home`: (host home, guest home).
    pub shared_home: Option<(PathBuf, String)>,
    pub binds: Vec<BindSpec>,
    /// Termux host: Android binds (slot only).
    pub android: bool,
}

/// Files masked with `/dev/null` and directories masked with an empty read-only tmpfs, as in the
/// OCI runtime spec defaults: kernel memory, keys and timing side channels.
pub const MASKED_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/timer_stats",
];
pub const MASKED_DIRS: &[&str] = &[
    "/proc/acpi",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Kernel knobs that stay readable but not writable from the container.
pub const READ_ONLY_PATHS: &[&str] = &[
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/asound",
    "/proc/fs",
];

/// Host device nodes bound into a minimal `/dev`.
pub const MINIMAL_DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The ordered list of mounts for one container namespace. The container root itself is always
/// bound onto itself first by the executor (so it is a mount point of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub dev: DevSetup,
    pub steps: Vec<MountStep>,
}

fn fresh(
    fstype: &'static str,
    target: &str,
    options: MountOptions,
    data: &str,
    missing: Missing,
) -> MountStep {
    MountStep::Fresh {
        fstype,
        target: target.to_string(),
        options,
        data: data.to_string(),
        missing,
    }
}

fn bind(source: &str, target: &str, recursive: bool, missing: Missing) -> MountStep {
    MountStep::Bind {
        source: PathBuf::from(source),
        target: target.to_string(),
        recursive,
        options: MountOptions::NONE,
        missing,
    }
}

impl MountPlan {
    pub fn build(opts: &PlanOptions) -> MountPlan {
        let dev = if opts.isolated {
            DevSetup::Minimal
        } else {
            DevSetup::Host
        };
        // --minimal mounts /run, /dev/pts and /dev/shm only "when present".
        let optional = if opts.minimal {
            Missing::Skip
        } else {
            Missing::CreateDir
        };
        let mut steps = vec![fresh(
            "proc",
            "/proc",
            MountOptions::NOSUID_NODEV_NOEXEC,
            "",
            Missing::CreateDir,
        )];
        steps.push(MountStep::Bind {
            source: PathBuf::from("/sys"),
            target: "/sys".into(),
            recursive: true,
            options: MountOptions {
                read_only: true,
                ..MountOptions::NOSUID_NODEV_NOEXEC
            },
            missing: Missing::CreateDir,
        });
        match dev {
            DevSetup::Host => steps.push(bind("/dev", "/dev", true, Missing::CreateDir)),
            DevSetup::Minimal => {
                steps.push(fresh(
                    "tmpfs",
                    "/dev",
                    MountOptions::NOSUID_NOEXEC,
                    "mode=755,size=65536k",
                    Missing::CreateDir,
                ));
                for node in MINIMAL_DEVICES {
                    let path = format!("/dev/{node}");
                    steps.push(bind(&path, &path, false, Missing::CreateFile));
                }
                for (path, to) in [
                    ("/dev/ptmx", "pts/ptmx"),
                    ("/dev/fd", "/proc/self/fd"),
                    ("/dev/stdin", "/proc/self/fd/0"),
                    ("/dev/stdout", "/proc/self/fd/1"),
                    ("/dev/stderr", "/proc/self/fd/2"),
                ] {
                    steps.push(MountStep::Symlink {
                        path: path.into(),
                        to: to.into(),
                    });
                }
            }
        }
        // The minimal /dev always has pts and shm (we just made it); the host's has them too.
        steps.push(fresh(
            "devpts",
            "/dev/pts",
            MountOptions::NOSUID_NOEXEC,
            "newinstance,ptmxmode=0666,mode=620,gid=5",
            Missing::CreateDir,
        ));
        steps.push(fresh(
            "tmpfs",
            "/dev/shm",
            MountOptions::NOSUID_NODEV,
            "mode=1777",
            Missing::CreateDir,
        ));
        if !opts.minimal {
            if opts.shared_tmp {
                steps.push(bind("/tmp", "/tmp", true, Missing::CreateDir));
            } else {
                steps.push(fresh(
                    "tmpfs",
                    "/tmp",
                    MountOptions::NOSUID_NODEV,
                    "mode=1777",
                    Missing::CreateDir,
                ));
            }
        }
        steps.push(fresh(
            "tmpfs",
            "/run",
            MountOptions::NOSUID_NODEV,
            "mode=755",
            optional,
        ));
        for file in MASKED_FILES {
            steps.push(bind("/dev/null", file, false, Missing::Skip));
        }
        for dir in MASKED_DIRS {
            steps.push(fresh(
                "tmpfs",
                dir,
                MountOptions {
                    read_only: true,
                    ..MountOptions::NONE
                },
                "size=0",
                Missing::Skip,
            ));
        }
        for path in READ_ONLY_PATHS {
            steps.push(MountStep::ReadOnly {
                target: path.to_string(),
            });
        }
        if opts.minimal {
            return MountPlan { dev, steps };
        }
        if let Some((host, guest)) = &opts.shared_home {
            steps.push(MountStep::Bind {
                source: host.clone(),
                target: guest.clone(),
                recursive: true,
                options: MountOptions::NONE,
                missing: Missing::CreateDir,
            });
        }
        for b in &opts.binds {
            steps.push(MountStep::Bind {
                source: b.source.clone(),
                target: b.target.clone(),
                recursive: true,
                options: MountOptions::NONE,
                missing: Missing::CreateLikeSource,
            });
        }
        if !opts.isolated {
            steps.push(MountStep::Integration(HostIntegration::Gpu));
            if opts.shared_display {
                steps.push(MountStep::Integration(HostIntegration::SharedDisplay));
            }
            if opts.android {
                steps.push(MountStep::Integration(HostIntegration::Android));
            }
        }
        MountPlan { dev, steps }
    }

    /// One line per step; two sessions whose plans print the same lines want the same mounts.
    pub fn fingerprint(&self) -> Vec<String> {
        self.steps.iter().map(|s| format!("{s:?}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(plan: &MountPlan) -> Vec<&str> {
        plan.steps.iter().filter_map(|s| s.target()).collect()
    }

    fn step<'a>(plan: &'a MountPlan, target: &str) -> &'a MountStep {
        plan.steps
            .iter()
            .find(|s| s.target() == Some(target))
            .unwrap_or_else(|| panic!("no step for {target}"))
    }

    #[test]
    fn default_plan_has_core_filesystems_in_order() {
        let plan = MountPlan::build(&PlanOptions::default());
        let t = targets(&plan);
        let pos = |p: &str| t.iter().position(|x| *x == p).unwrap();
        assert!(pos("/proc") < pos("/proc/kcore"));
        assert!(pos("/dev") < pos("/dev/pts"));
        assert!(pos("/dev/pts") < pos("/dev/shm"));
        assert!(t.contains(&"/tmp") && t.contains(&"/run") && t.contains(&"/sys"));
        assert_eq!(plan.dev, DevSetup::Host);
    }

    #[test]
    fn proc_is_nosuid_nodev_noexec_and_sys_read_only() {
        let plan = MountPlan::build(&PlanOptions::default());
        match step(&plan, "/proc") {
            MountStep::Fresh {
                fstype, options, ..
            } => {
                assert_eq!(*fstype, "proc");
                assert!(options.nosuid && options.nodev && options.noexec);
            }
            other => panic!("unexpected {other:?}"),
        }
        match step(&plan, "/sys") {
            MountStep::Bind {
                options, recursive, ..
            } => {
                assert!(options.read_only && *recursive)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn devpts_is_a_new_instance() {
        let plan = MountPlan::build(&PlanOptions::default());
        match step(&plan, "/dev/pts") {
            MountStep::Fresh { fstype, data, .. } => {
                assert_eq!(*fstype, "devpts");
                assert!(data.contains("newinstance") && data.contains("ptmxmode=0666"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn masks_and_read_only_paths_are_present_and_optional() {
        let plan = MountPlan::build(&PlanOptions::default());
        for f in MASKED_FILES {
            assert!(matches!(
                step(&plan, f),
                MountStep::Bind { source, missing: Missing::Skip, .. } if source.as_os_str() == "/dev/null"
            ));
        }
        for d in MASKED_DIRS {
            assert!(matches!(
                step(&plan, d),
                MountStep::Fresh {
                    options: MountOptions {
                        read_only: true,
                        ..
                    },
                    missing: Missing::Skip,
                    ..
                }
            ));
        }
        for p in READ_ONLY_PATHS {
            assert!(matches!(step(&plan, p), MountStep::ReadOnly { .. }));
        }
    }

    #[test]
    fn shared_tmp_binds_the_host_tmp() {
        let plan = MountPlan::build(&PlanOptions {
            shared_tmp: true,
            ..Default::default()
        });
        assert!(matches!(step(&plan, "/tmp"), MountStep::Bind { .. }));
    }

    #[test]
    fn user_binds_and_home_come_after_the_fresh_tmp() {
        let plan = MountPlan::build(&PlanOptions {
            binds: vec![BindSpec::parse("/srv:/tmp/srv").unwrap()],
            shared_home: Some((PathBuf::from("/home/bob"), "/root".into())),
            ..Default::default()
        });
        let t = targets(&plan);
        let pos = |p: &str| t.iter().position(|x| *x == p).unwrap();
        assert!(pos("/tmp") < pos("/tmp/srv"));
        assert!(
            matches!(step(&plan, "/root"), MountStep::Bind { source, .. } if source.as_os_str() == "/home/bob")
        );
    }

    #[test]
    fn minimal_has_only_core_filesystems() {
        let plan = MountPlan::build(&PlanOptions {
            minimal: true,
            binds: vec![BindSpec::parse("/srv").unwrap()],
            shared_display: true,
            ..Default::default()
        });
        let t = targets(&plan);
        assert!(!t.contains(&"/tmp"));
        assert!(!t.contains(&"/srv"));
        assert!(!plan
            .steps
            .iter()
            .any(|s| matches!(s, MountStep::Integration(_))));
        assert!(matches!(
            step(&plan, "/run"),
            MountStep::Fresh {
                missing: Missing::Skip,
                ..
            }
        ));
    }

    #[test]
    fn isolated_gets_a_minimal_dev() {
        let plan = MountPlan::build(&PlanOptions {
            isolated: true,
            shared_display: true,
            ..Default::default()
        });
        assert_eq!(plan.dev, DevSetup::Minimal);
        assert!(matches!(
            step(&plan, "/dev"),
            MountStep::Fresh {
                fstype: "tmpfs",
                ..
            }
        ));
        for node in MINIMAL_DEVICES {
            assert!(matches!(
                step(&plan, &format!("/dev/{node}")),
                MountStep::Bind { .. }
            ));
        }
        assert!(
            matches!(step(&plan, "/dev/ptmx"), MountStep::Symlink { to, .. } if to == "pts/ptmx")
        );
        assert!(!plan
            .steps
            .iter()
            .any(|s| matches!(s, MountStep::Integration(HostIntegration::SharedDisplay))));
    }

    #[test]
    fn fingerprints_differ_when_binds_differ() {
        let a = MountPlan::build(&PlanOptions::default());
        let b = MountPlan::build(&PlanOptions {
            binds: vec![BindSpec::parse("/srv").unwrap()],
            ..Default::default()
        });
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            MountPlan::build(&PlanOptions::default()).fingerprint()
        );
    }
}
