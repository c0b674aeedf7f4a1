//! End-to-end harness for authguard: real sshd, real PAM, real clients.
//!
//! Everything here runs real programs as root, in throw-away directories:
//!
//! * [`Guard`]: a private authguard config + store (initialised by the real
//!   `guardctl init`) and a syslog listener on a private datagram socket that
//!   collects every line the module and `guardctl` log.
//! * [`Sshd`]: a private OpenSSH `sshd -D` on a free loopback port, inside its
//!   own mount namespace where a test PAM stack is bind-mounted over
//!   `/etc/pam.d/sshd` and copies of `/etc/passwd`, `/etc/shadow` and
//!   `/etc/group` add the test user `agtest`. The host's files are never touched.
//! * Clients: [`ssh_password`] / [`ssh_key`] run the real `ssh` (through
//!   `sshpass`) from a chosen 127.0.0.0/8 source address.
//! * [`PamService`] / [`pamtester`]: drive a PAM stack with `pamtester`,
//!   without sshd, for hostile `PAM_RHOST` / user values.
//! * [`HostDaemon`]: `guardctl daemon` for a guard, in the host's namespaces.
//! * [`abuse`]: a whois server on loopback and a local-only exim4, for abuse reports.
//! * [`netns`]: network-namespace labs for the firewall tests: a server
//!   namespace running sshd and `guardctl daemon`, attacker namespaces with
//!   documentation addresses, TCP probes, nft inside the server namespace.
//!
//! Every wait is bounded. Set `AUTHGUARD_E2E_KEEP=1` to keep the temporary
//! directories of a run (their paths are printed) for a post-mortem.
//!
//! The crate's rooms: `env` (root, paths, temporary directories, waiting),
//! `process` (bounded child processes), `guard`, `sshd`, `clients`,
//! `pamtester`, `host_daemon`, [`abuse`], [`netns`] (the firewall lab), [`trixie`] (Debian 13),
//! [`deb`] (the package), and `sys` (every libc call). Everything a test
//! uses is re-exported here (the lab's under `netns::`), so a test names
//! `authguard_e2e::X` and never a room.

pub use serde_json::Value;

pub mod abuse;
mod clients;
pub mod crowdsec;
pub mod deb;
mod env;
mod guard;
mod host_daemon;
pub mod netns;
mod pamtester;
mod process;
mod sshd;
mod sys;
pub mod trixie;
pub mod unpacked;

pub use clients::{
    ClientResult, Method, close_with_reset, ssh_common_args, ssh_key, ssh_password,
    ssh_password_at_level, tcp_connect_from,
};
pub use env::{
    describe_output, guardctl_path, pam_module_path, parse_json, require_root, target_dir,
    tor_geoip, wait_until,
};
pub use guard::{DEFAULT_BLOCK_MESSAGE, Guard, GuardConfig, syslog_ident, syslog_message};
pub use host_daemon::HostDaemon;
pub use pamtester::{PAM_SERVICE, PamService, os, pamtester};
pub use process::{Finished, read_line_with_timeout, run_with_timeout};
pub use sshd::{
    Platform, REACHED_LINE, RIGHT_PASSWORD, Sshd, SshdLog, Stack, TEST_UID, TEST_USER,
    WRONG_PASSWORD, default_stack, sshd_dump_on,
};
