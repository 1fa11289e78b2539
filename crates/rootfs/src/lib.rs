//! placeholder
pub mod backup;
pub mod backup_unpack;
pub mod diff;
pub mod inode_walk;
pub mod transfer;
