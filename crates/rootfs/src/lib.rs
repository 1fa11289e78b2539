//! Safe filesystem work inside a container root: layer apply, fixups, accounts, removal, size,
//! backup, diff, copy and sync. The only crate that writes container files.

pub mod apply;
pub mod backup;
pub mod backup_unpack;
pub mod diff;
mod diff_index_codec;
pub mod fixups;
pub mod inode_walk;
pub mod remove;
mod root;
mod size;
pub mod transfer;
pub mod users;

pub use apply::{apply_tar, ApplyError, ApplyOptions, ApplyStats, Skipped};
pub use remove::{remove_tree, RemoveStats};
pub use root::Rootfs;
pub use size::dir_size;
