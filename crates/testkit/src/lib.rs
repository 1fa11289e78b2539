//! Test kit for chroot-distro (dev-only): isolated stores, fixture images written as OCI
//! layouts, busybox root filesystems, local registries, and private mount namespaces.

pub mod busybox;
pub mod cached;
pub mod canary;
pub mod env;
pub mod fakereg;
pub mod fixture;
pub mod mntns;
pub mod outcome;
pub mod pty;
pub mod registry;
pub mod tree;
