//! `guardctl daemon` in a lab's server namespace ([`Daemon`]): started and
//! waited for until its table exists, killed, stopped, restarted, its
//! stderr kept across starts in the guard's directory.
//!
//! The guard it reads is `crate::guard`; the lab it runs in is `lab`.

use super::Lab;
use crate::env::{guardctl_path, wait_until};
use crate::guard::Guard;
use crate::sys::{Signal, kill_group};
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `ip netns exec <server> guardctl --config <toml> daemon`, stderr appended
/// to `<guard dir>/daemon.err` (stdout to `daemon.out`); ended on drop.
#[derive(Debug)]
pub struct Daemon {
    netns: String,
    config: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Daemon {
    /// Starts the daemon and waits (at most 5 s) until table `inet authguard`
    /// exists in the server namespace; panics with its stderr if it does not.
    pub fn start(guard: &Guard, lab: &Lab) -> Daemon {
        let mut d = Daemon::spawn(guard, lab);
        let mut exited = None;
        let ready = wait_until(Duration::from_secs(5), || {
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            lab.authguard_table().is_some()
        });
        assert!(
            ready && exited.is_none(),
            "guardctl daemon did not create table inet authguard within 5 s (exit {exited:?})\n\
             --- daemon stderr ---\n{}\n{}",
            d.stderr(),
            lab.diag()
        );
        d
    }

    /// Starts the daemon without waiting for anything.
    pub fn spawn(guard: &Guard, lab: &Lab) -> Daemon {
        let mut d = Daemon {
            netns: lab.server_ns().to_owned(),
            config: guard.config_path(),
            dir: guard.dir().to_path_buf(),
            child: None,
            starts: 0,
        };
        d.launch();
        d
    }

    fn launch(&mut self) {
        self.starts += 1;
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))
                .unwrap_or_else(|e| panic!("open {name}: {e}"))
        };
        let mut err = open("daemon.err");
        let _ = writeln!(
            err,
            "=== harness: daemon start #{} in {} ===",
            self.starts, self.netns
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(guardctl_path())
            .arg("--config")
            .arg(&self.config)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(open("daemon.out"))
            .stderr(err)
            .process_group(0);
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
        );
    }

    /// The daemon's pid (None when it is not running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the daemon process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL, no chance to clean up (the table stays in the kernel).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), Signal::Kill);
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), Signal::Term);
            let exited = wait_until(Duration::from_secs(3), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                kill_group(child.id(), Signal::Kill);
            }
            let _ = child.wait();
        }
    }

    /// Stops the daemon if it runs and starts it again (without waiting).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Everything the daemon wrote to stderr, all starts (marked) included.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.err")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
