//! The test sshd: which PAM stack ([`Stack`]), which OpenSSH
//! ([`Platform`]), the test user, and the running [`Sshd`] with its
//! accessors and the logins made against it.
//!
//! Starting one is in `launch`, the files it reads in `files`; the lab's
//! sshd (in a network namespace) is in `netns::sshd`.

mod files;
mod launch;

pub use files::{REACHED_LINE, default_stack};
pub(crate) use files::{prepare_sshd_dir, write_sshd_config_extra};
pub use launch::sshd_dump_on;
pub(crate) use launch::{free_port, spawn_sshd};

use crate::clients::{ClientResult, Method, key_client, password_client, tcp_connect_from};
use crate::env::{release_dir, wait_until, write_file};
use crate::process::run_ok;
use crate::sys::{Signal, kill_group};
use crate::trixie;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

/// The test user that exists only inside a test sshd's mount namespace.
pub const TEST_USER: &str = "agtest";
/// Its password.
pub const RIGHT_PASSWORD: &str = "right-password";
/// A password that is not its password.
pub const WRONG_PASSWORD: &str = "wrong-password";
/// uid and gid of [`TEST_USER`].
pub const TEST_UID: u32 = 64999;

/// Which PAM stack a test sshd uses.
#[derive(Debug, Clone)]
pub enum Stack {
    /// authguard first (requisite, `config=` the guard's toml), then the
    /// reached-marker, then pam_unix (the default).
    Guarded(PathBuf),
    /// The same without the authguard line (a baseline).
    Unguarded,
    /// The test's own stack text. `{dir}` is replaced by the sshd's directory,
    /// `{reached}` by the reached-marker script, `{module}` by the module's path.
    Custom(String),
}

/// Which OpenSSH a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// The machine's own `/usr/sbin/sshd` and clients (Debian 12, OpenSSH 9.2
    /// in CI), in a private mount namespace, on a free loopback port.
    Host,
    /// The Debian 13 root's OpenSSH 10 ([`trixie::root`]), chrooted into an
    /// overlay of the root, in private mount and network namespaces, on port
    /// 22 of that namespace's `lo`; its clients run in the same namespaces
    /// and root (the trixie `ssh`, `sshpass`).
    Debian13,
}

impl Platform {
    /// Both platforms, for tests that prove a promise on each.
    pub const ALL: [Platform; 2] = [Platform::Host, Platform::Debian13];
}

/// Where a Debian 13 sshd writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshdLog {
    /// `sshd -E DIR/sshd.log` ([`Sshd::sshd_log_path`]).
    File,
    /// syslog(3), as an sshd started by systemd does: to the machine's
    /// journald ([`trixie::Machine::start_journald`]), or nowhere.
    Syslog,
}

/// A private OpenSSH sshd in its own mount namespace on a loopback port.
#[derive(Debug)]
pub struct Sshd {
    pub(crate) dir: Option<tempfile::TempDir>,
    pub(crate) path: PathBuf,
    pub(crate) port: u16,
    pub(crate) child: Child,
    pub(crate) platform: Platform,
    /// The Debian 13 machine the sshd runs in (dropped after the sshd).
    pub(crate) machine: Option<Arc<trixie::Machine>>,
}

impl Sshd {
    /// The port sshd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The sshd's directory.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Lines of `reached.log` (`RHOST USER`): attempts that got past authguard.
    pub fn reached_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.path.join("reached.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many attempts from `rhost` got past authguard to pam_unix.
    pub fn reached_count(&self, rhost: &str) -> usize {
        self.reached_lines()
            .iter()
            .filter(|l| l.split(' ').next() == Some(rhost))
            .count()
    }

    /// sshd's own log (`-E`).
    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.sshd_log_path()).unwrap_or_default()
    }

    /// The file sshd logs to (`sshd -E FILE`): bare messages, one a line,
    /// as sshd and its pre-authentication children wrote them.
    pub fn sshd_log_path(&self) -> PathBuf {
        self.path.join("sshd.log")
    }

    /// sshd's log and reached.log, for assertion messages.
    pub fn diag(&self) -> String {
        let log = self.sshd_log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        format!(
            "--- sshd.log (last {} lines) ---\n{}\n--- reached.log ---\n{}\n",
            tail.len(),
            tail.join("\n"),
            self.reached_lines().join("\n")
        )
    }

    /// The platform this sshd runs on.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The Debian 13 machine this sshd runs in (None on the host).
    pub fn machine(&self) -> Option<&trixie::Machine> {
        self.machine.as_deref()
    }

    /// A command for `program` where this sshd's clients run: the host, or
    /// (Debian 13) inside the sshd's network and mount namespaces and root.
    pub fn client(&self, program: &str) -> Command {
        match self.platform {
            Platform::Host => Command::new(program),
            Platform::Debian13 => {
                let mut cmd = Command::new("nsenter");
                cmd.arg("-t")
                    .arg(self.child.id().to_string())
                    .args(["-m", "-n", "-r", "-w", "--", program]);
                cmd
            }
        }
    }

    /// Password or keyboard-interactive login as the test user from `source`.
    pub fn login(&self, source: &str, password: &str, method: Method) -> ClientResult {
        self.login_at_level(source, TEST_USER, password, method, "ERROR")
    }

    /// [`Sshd::login`] as `user` with the client's `LogLevel` given (see
    /// [`ssh_password_at_level`]).
    pub fn login_at_level(
        &self,
        source: &str,
        user: &str,
        password: &str,
        method: Method,
        log_level: &str,
    ) -> ClientResult {
        let cmd = self.client("sshpass");
        password_client(cmd, self.port, source, user, password, method, log_level)
    }

    /// A public-key login as `user` with `key` (see [`ssh_key`]), from where
    /// this sshd's clients run.
    pub fn login_with_key_as(&self, source: &str, user: &str, key: &Path) -> ClientResult {
        key_client(self.client("ssh"), self.port, source, user, key)
    }

    /// A plain TCP connection from `source` to this sshd
    /// ([`tcp_connect_from`], inside the Debian 13 machine's network there).
    pub fn connect_from(&self, source: std::net::Ipv4Addr) -> std::io::Result<TcpStream> {
        match &self.machine {
            None => tcp_connect_from(source, self.port),
            Some(machine) => machine.in_net(|| tcp_connect_from(source, self.port)),
        }
    }

    /// Creates (once) a client key pair in the sshd's directory and authorizes
    /// it for the test user; returns the private key's path.
    pub fn client_key(&self) -> PathBuf {
        let key = self.path.join("client_ed25519");
        if !key.exists() {
            run_ok(
                Command::new("ssh-keygen")
                    .args([
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        "authguard-e2e-client",
                        "-f",
                    ])
                    .arg(&key),
            );
            let public =
                std::fs::read_to_string(key.with_extension("pub")).expect("read client .pub");
            write_file(
                &self.path.join("authorized_keys").join(TEST_USER),
                &public,
                0o644,
            );
        }
        key
    }

    /// Public-key login as the test user from `source` with [`Sshd::client_key`].
    pub fn login_with_key(&self, source: &str) -> ClientResult {
        let key = self.client_key();
        key_client(self.client("ssh"), self.port, source, TEST_USER, &key)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        kill_group(self.child.id(), Signal::Term);
        let exited = wait_until(Duration::from_secs(3), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            kill_group(self.child.id(), Signal::Kill);
        }
        let _ = self.child.wait();
        release_dir(self.dir.take());
    }
}
