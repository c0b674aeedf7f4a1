//! ssh clients in a lab's attacker namespaces: password and
//! keyboard-interactive logins through `sshpass`, and a key scanner's
//! public-key-only attempt, all to the lab sshd on port 22.
//!
//! Bare TCP connects are in `probe`; loopback clients are in `crate::clients`.

use super::{Lab, SSH_PORT};
use crate::clients::{ClientResult, Method, finish_client};
use crate::process::{CLIENT_TIMEOUT, run_with_timeout};
use crate::{TEST_USER, ssh_common_args};
use std::path::Path;

impl Lab {
    /// Password (or keyboard-interactive) login as the test user from
    /// `source` in `attacker`'s namespace to the lab sshd at `dest`:
    /// `ip netns exec NS sshpass -p PW ssh -b SOURCE … agtest@DEST 'echo logged-in'`.
    pub fn ssh_password(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        password: &str,
        method: Method,
    ) -> ClientResult {
        self.ssh_password_at_level(attacker, source, dest, password, method, "ERROR")
    }

    /// [`Lab::ssh_password`] with the client's `LogLevel` given (`DEBUG1`
    /// shows which methods the server offers).
    pub fn ssh_password_at_level(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        password: &str,
        method: Method,
        log_level: &str,
    ) -> ClientResult {
        let mut cmd = self.exec_in(attacker, &["sshpass", "-p", password, "ssh"]);
        cmd.args(ssh_common_args(SSH_PORT, source, log_level))
            .args([
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                &format!("PreferredAuthentications={}", method.ssh_name()),
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "BatchMode=no",
            ])
            .arg(format!("{TEST_USER}@{dest}"))
            .arg("echo logged-in");
        finish_client(source, run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT))
    }

    /// What a key scanner does: a public-key-only login as the test user
    /// with `key` (authorized nowhere), from `source` in `attacker`'s
    /// namespace. sshd logs it without the PAM auth stack ever running.
    pub fn ssh_key_only(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        key: &Path,
    ) -> ClientResult {
        let mut cmd = self.exec_in(attacker, &["ssh"]);
        cmd.args(ssh_common_args(SSH_PORT, source, "ERROR"))
            .args(["-i"])
            .arg(key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "BatchMode=yes",
            ])
            .arg(format!("{TEST_USER}@{dest}"))
            .arg("echo logged-in");
        finish_client(source, run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT))
    }
}
