//! The clients a test points at a loopback sshd: `ssh` through `sshpass`
//! (password, keyboard-interactive), `ssh -i` (public key), and plain TCP
//! connections from a chosen 127.0.0.0/8 source.
//!
//! Clients inside a lab's attacker namespaces are in `netns::ssh`.

use crate::process::{CLIENT_TIMEOUT, Finished, run_with_timeout};
use crate::sys;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How the ssh client offers the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// SSH `password` authentication (sshd runs PAM in its monitor).
    Password,
    /// SSH `keyboard-interactive` (sshd runs PAM in a child process).
    KeyboardInteractive,
}

impl Method {
    pub(crate) fn ssh_name(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::KeyboardInteractive => "keyboard-interactive",
        }
    }
}

/// What one ssh client run did.
#[derive(Debug, Clone)]
pub struct ClientResult {
    /// The source address it connected from.
    pub source: String,
    /// Exit code of sshpass/ssh (None: killed by a signal).
    pub status: Option<i32>,
    /// Remote command output.
    pub stdout: String,
    /// ssh's diagnostics (and whatever sshd sent to be shown).
    pub stderr: String,
    /// Wall-clock time of the whole client run.
    pub elapsed: Duration,
    /// True when the run had to be killed.
    pub timed_out: bool,
}

impl ClientResult {
    /// The login worked and the remote command ran.
    pub fn logged_in(&self) -> bool {
        self.status == Some(0) && self.stdout.contains("logged-in")
    }

    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "ssh from {}: status {:?}{} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.source,
            self.status,
            if self.timed_out {
                " (KILLED: timed out)"
            } else {
                ""
            },
            self.elapsed,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// The options every test client passes `ssh`: no user config, bound to
/// `source_ip`, host keys unchecked, a 10 s connect timeout, `log_level`.
pub fn ssh_common_args(port: u16, source_ip: &str, log_level: &str) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-b",
        source_ip,
        "-p",
        &port.to_string(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=10",
        "-o",
        &format!("LogLevel={log_level}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A [`ClientResult`] for the run `f` from `source`.
pub(crate) fn finish_client(source: &str, f: Finished) -> ClientResult {
    ClientResult {
        source: source.to_owned(),
        status: f.status.code(),
        stdout: f.stdout,
        stderr: f.stderr,
        elapsed: f.elapsed,
        timed_out: f.timed_out,
    }
}

/// `sshpass -p PASSWORD ssh … -b SOURCE -p PORT USER@127.0.0.1 'echo logged-in'`
/// with one password prompt and ssh's `LogLevel=ERROR`.
pub fn ssh_password(
    port: u16,
    source_ip: &str,
    user: &str,
    password: &str,
    method: Method,
) -> ClientResult {
    ssh_password_at_level(port, source_ip, user, password, method, "ERROR")
}

/// Like [`ssh_password`] with the client's `LogLevel` given (`INFO` is ssh's
/// default: what a person running `ssh` sees).
pub fn ssh_password_at_level(
    port: u16,
    source_ip: &str,
    user: &str,
    password: &str,
    method: Method,
    log_level: &str,
) -> ClientResult {
    password_client(
        Command::new("sshpass"),
        port,
        source_ip,
        user,
        password,
        method,
        log_level,
    )
}

/// Runs `cmd` (an `sshpass` command) as [`ssh_password_at_level`] does.
pub(crate) fn password_client(
    mut cmd: Command,
    port: u16,
    source_ip: &str,
    user: &str,
    password: &str,
    method: Method,
    log_level: &str,
) -> ClientResult {
    cmd.arg("-p")
        .arg(password)
        .arg("ssh")
        .args(ssh_common_args(port, source_ip, log_level))
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
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo logged-in");
    finish_client(source_ip, run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT))
}

/// Public-key login with the private key `key`.
pub fn ssh_key(port: u16, source_ip: &str, user: &str, key: &Path) -> ClientResult {
    key_client(Command::new("ssh"), port, source_ip, user, key)
}

/// Runs `cmd` (an `ssh` command) as [`ssh_key`] does.
pub(crate) fn key_client(
    mut cmd: Command,
    port: u16,
    source_ip: &str,
    user: &str,
    key: &Path,
) -> ClientResult {
    cmd.args(ssh_common_args(port, source_ip, "ERROR"))
        .arg("-i")
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "BatchMode=yes",
        ])
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo logged-in");
    finish_client(source_ip, run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT))
}

/// A plain TCP connection from `source` (any 127.0.0.0/8 address) to
/// `127.0.0.1:port`, for clients that are not ssh (scanners, raw banners).
pub fn tcp_connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    sys::tcp_connect_bound(source, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Closes `stream` with a TCP reset instead of a FIN (`SO_LINGER` 0), as a
/// scanner that aborts does.
pub fn close_with_reset(stream: TcpStream) {
    if let Err(e) = sys::set_linger_zero(&stream) {
        panic!("SO_LINGER: {e}");
    }
    drop(stream);
}
