//! `guardctl daemon` for a [`Guard`] in the host's own namespaces (the
//! guard's config keeps it off the host's firewall, journal and sshd); its
//! standard error kept in the guard's directory; killed when dropped.
//!
//! The firewall lab's daemon, inside network namespaces, is `netns::Daemon`.

use crate::env::guardctl_path;
use crate::guard::Guard;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running `guardctl daemon`; killed on drop.
#[derive(Debug)]
pub struct HostDaemon {
    child: Child,
    stderr: PathBuf,
}

impl HostDaemon {
    /// Starts `guardctl --config G daemon`.
    pub fn start(guard: &Guard) -> HostDaemon {
        let stderr = guard.dir().join("daemon.err");
        let err = std::fs::File::create(&stderr).expect("create daemon.err");
        let child = Command::new(guardctl_path())
            .arg("--config")
            .arg(guard.config_path())
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn guardctl daemon");
        HostDaemon { child, stderr }
    }

    /// What it wrote to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Whether it is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
