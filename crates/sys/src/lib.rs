//! The only `unsafe` of chroot-distro (ARCHITECTURE.md decision 1 and the `sys/` entry), and the
//! small helpers around signals that the rest shares (`cancel`).
//!
//! Thin, audited wrappers over the syscalls that entering a container needs: process creation
//! and exec, namespaces, mounts, credentials, ptys, signals and file descriptors. Everything here
//! returns `std::io::Result` and keeps to one syscall (or one tight sequence) per function, so the
//! callers in `cd-runtime` stay safe Rust and the sequences they build stay reviewable there.
//!
//! Functions documented as *post-fork* are meant for a freshly forked, single-threaded child.

pub mod cancel;
pub mod creds;
pub mod fd;
pub mod mount;
pub mod ns;
pub mod process;
pub mod pty;
pub mod signal;

/// A process id as the kernel reports it in the caller's PID namespace.
pub type Pid = i32;
