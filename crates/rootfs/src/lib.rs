//! placeholder
pub mod backup;
pub mod diff;
pub mod inode_walk;
pub mod transfer;
