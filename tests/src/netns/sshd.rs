//! The real sshd in a lab's server namespace, listening on port 22 of every
//! address (`0.0.0.0` and `::`), started from the same files as a loopback
//! sshd.
//!
//! The [`Sshd`] type and its files are in `crate::sshd`.

use super::{Lab, SSH_PORT};
use crate::env::wait_until;
use crate::guard::Guard;
use crate::sshd::{Platform, Sshd, Stack, prepare_sshd_dir, spawn_sshd, write_sshd_config_extra};
use std::time::Duration;

impl Sshd {
    /// sshd with the default authguard stack for `guard`, inside `lab`'s
    /// server namespace, on port 22 of every address (`0.0.0.0` and `::`).
    /// Log in with [`Lab::ssh_password`]; [`Sshd::login`] and
    /// [`Sshd::port`] are for loopback sshds only.
    pub fn start_in_netns(guard: &Guard, lab: &Lab) -> Sshd {
        Sshd::with_stack_in_netns(Stack::Guarded(guard.config_path()), lab)
    }

    /// sshd with the given stack inside `lab`'s server namespace.
    pub fn with_stack_in_netns(stack: Stack, lab: &Lab) -> Sshd {
        Sshd::with_stack_and_config_in_netns(stack, lab, "")
    }

    /// [`Sshd::with_stack_in_netns`] with `extra` config text (as
    /// [`Sshd::with_stack_and_config`] takes it).
    pub fn with_stack_and_config_in_netns(stack: Stack, lab: &Lab, extra: &str) -> Sshd {
        let (dir, path) = prepare_sshd_dir(&stack);
        write_sshd_config_extra(&path, SSH_PORT, &["0.0.0.0", "::"], extra);
        let child = spawn_sshd(&path, Some(lab.server_ns()));
        // Owned at once, so a panic below still ends sshd.
        let mut sshd = Sshd {
            dir: Some(dir),
            path,
            port: SSH_PORT,
            child,
            platform: Platform::Host,
            machine: None,
        };
        let mut exited = None;
        let up = wait_until(Duration::from_secs(10), || {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                exited = Some(status);
                return true;
            }
            let log = sshd.sshd_log();
            log.contains(&format!("Server listening on 0.0.0.0 port {SSH_PORT}"))
                && log.contains(&format!("Server listening on :: port {SSH_PORT}"))
        });
        assert!(
            up && exited.is_none(),
            "sshd in {} did not listen on 0.0.0.0 and :: port {SSH_PORT} within 10 s \
             (exit {exited:?})\n--- sshd.log ---\n{}\n--- sshd stderr ---\n{}",
            lab.server_ns(),
            sshd.sshd_log(),
            std::fs::read_to_string(sshd.path.join("sshd.err")).unwrap_or_default()
        );
        sshd
    }
}
