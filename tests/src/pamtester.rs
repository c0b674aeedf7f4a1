//! PAM without sshd: a [`PamService`] file run by `pamtester` in a private
//! mount namespace, for hostile `PAM_RHOST` and user values.
//!
//! The guard it protects is in `guard`; sshd's PAM stack is in `sshd`.

use crate::env::{pam_module_path, release_dir, tempdir, write_file};
use crate::guard::Guard;
use crate::process::{CLIENT_TIMEOUT, Finished, run_with_timeout};
use crate::sshd::REACHED_LINE;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;

/// The PAM service name of a [`PamService`].
pub const PAM_SERVICE: &str = "authguard-test";

/// A PAM service file `authguard-test` in a tempdir, run by `pamtester` in a
/// mount namespace where that tempdir is `/etc/pam.d`.
#[derive(Debug)]
pub struct PamService {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl PamService {
    /// A service with the given stack text (`{reached}`, `{module}` and `{dir}`
    /// are replaced as for [`Stack::Custom`]).
    pub fn new(stack: &str) -> PamService {
        let dir = tempdir("ag-pam-");
        let path = dir.path().to_path_buf();
        let reached = path.join("reached.sh");
        write_file(
            &reached,
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$PAM_RHOST\" >> '{}'\n",
                path.join("reached.log").display()
            ),
            0o755,
        );
        let mut text = stack
            .replace("{dir}", &path.to_string_lossy())
            .replace("{reached}", &reached.to_string_lossy());
        if text.contains("{module}") {
            text = text.replace("{module}", &pam_module_path().to_string_lossy());
        }
        write_file(&path.join(PAM_SERVICE), &text, 0o644);
        PamService {
            dir: Some(dir),
            path,
        }
    }

    /// authguard (requisite, the guard's config), the reached-marker, then `rest`.
    pub fn guarded(guard: &Guard, rest: &str) -> PamService {
        PamService::new(&format!(
            "auth requisite {{module}} config={}\n{REACHED_LINE}\n{rest}",
            guard.config_path().display()
        ))
    }

    /// authguard, then pam_permit: every attempt authguard admits succeeds.
    pub fn permit(guard: &Guard) -> PamService {
        PamService::guarded(
            guard,
            "auth required pam_permit.so\naccount required pam_permit.so\n",
        )
    }

    /// authguard, then pam_deny: every attempt authguard admits fails (a wrong password).
    pub fn deny(guard: &Guard) -> PamService {
        PamService::guarded(
            guard,
            "auth required pam_deny.so\naccount required pam_permit.so\n",
        )
    }

    /// `pamtester -v -I rhost=RHOST authguard-test USER OPS…` (RHOST and USER may be any bytes).
    pub fn run(&self, rhost: impl AsRef<OsStr>, user: impl AsRef<OsStr>, ops: &[&str]) -> Finished {
        self.run_after("true", rhost, user, ops)
    }

    /// Like [`PamService::run`], but first runs the shell commands `setup`
    /// inside the same private mount namespace (to mount a full or read-only
    /// file system over the store, say). The host never sees those mounts.
    pub fn run_after(
        &self,
        setup: &str,
        rhost: impl AsRef<OsStr>,
        user: impl AsRef<OsStr>,
        ops: &[&str],
    ) -> Finished {
        let mut item = OsString::from("rhost=");
        item.push(rhost.as_ref());
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "set -e; {setup}; mount --bind \"$1\" /etc/pam.d; shift; \
                 exec pamtester -v -I \"$@\""
            ))
            .arg("sh")
            .arg(&self.path)
            .arg(item)
            .arg(PAM_SERVICE)
            .arg(user.as_ref())
            .args(ops);
        let f = run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT);
        assert!(!f.timed_out, "pamtester hung: {}", f.describe());
        f
    }

    /// How many runs got past authguard (lines in reached.log equal to `rhost`).
    pub fn reached_count(&self, rhost: &str) -> usize {
        std::fs::read(self.path.join("reached.log"))
            .unwrap_or_default()
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| l.strip_suffix(b"\n").unwrap_or(l) == rhost.as_bytes())
            .count()
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        release_dir(self.dir.take());
    }
}

/// One `authenticate setcred` run of authguard + pam_permit for `guard`.
pub fn pamtester(guard: &Guard, rhost: impl AsRef<OsStr>, user: impl AsRef<OsStr>) -> Finished {
    PamService::permit(guard).run(rhost, user, &["authenticate", "setcred"])
}

/// Bytes → OsString (for non-UTF-8 user names and hosts).
pub fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}
