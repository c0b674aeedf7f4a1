//! Followers: where the daemon reads sshd's log from.
//!
//! - [`file`]: a syslog file, across rotation, from a saved position.
//! - [`journal`]: systemd's journal, through journalctl, from a saved cursor.

pub mod file;
pub mod journal;
