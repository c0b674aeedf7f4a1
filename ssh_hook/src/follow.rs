//! Followers: where the daemon reads sshd's log from.
//!
//! - [`file`]: a syslog file, across rotation, from a saved position.

pub mod file;
