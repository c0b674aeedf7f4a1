//! A test's private authguard: [`GuardConfig`] (the `authguard.toml` it
//! writes), [`Guard`] (config, store via `guardctl init`, and the syslog
//! listener that collects every line the module and `guardctl` log), and
//! helpers to pick RFC 3164 lines apart.
//!
//! No sshd and no network here: see `sshd` and `netns`.

use crate::env::{describe_output, guardctl_path, parse_json, release_dir, tempdir, wait_until};
use crate::process::{CLIENT_TIMEOUT, run_with_timeout};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The text the module sends a refused client by default (`[pam] message`).
pub const DEFAULT_BLOCK_MESSAGE: &str = "Access from your address is temporarily blocked.";

/// The settings a [`Guard`] writes into its `authguard.toml`; a builder.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// `fail_mode`: "open" or "closed".
    pub fail_mode: String,
    /// `allow`: CIDRs never banned.
    pub allow: Vec<String>,
    /// `[policy] max_failures`.
    pub max_failures: u32,
    /// `[policy] find_time`.
    pub find_time: String,
    /// `[policy] ban_time`.
    pub ban_time: String,
    /// `[store] busy_timeout`.
    pub busy_timeout: String,
    /// Raw TOML lines appended at the end (after `[log]`): start them with a
    /// table header such as `[pam]`.
    pub extra: Vec<String>,
    /// The network namespace every [`Guard::guardctl`] runs in (`ip netns
    /// exec NS guardctl …`): the firewall tests' server namespace, so that
    /// guardctl's own nftables pushes land there and never on the host.
    pub netns: Option<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            fail_mode: "open".into(),
            allow: vec!["127.0.0.1/32".into()],
            max_failures: 5,
            find_time: "10m".into(),
            ban_time: "10m".into(),
            busy_timeout: "1s".into(),
            extra: Vec::new(),
            netns: None,
        }
    }
}

impl GuardConfig {
    /// Sets `fail_mode`.
    pub fn fail_mode(mut self, mode: &str) -> Self {
        self.fail_mode = mode.into();
        self
    }

    /// Sets `[policy] max_failures`.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.max_failures = n;
        self
    }

    /// Sets `[store] busy_timeout`.
    pub fn busy_timeout(mut self, d: &str) -> Self {
        self.busy_timeout = d.into();
        self
    }

    /// Sets `allow` (replacing the default `127.0.0.1/32`).
    pub fn allow(mut self, cidrs: &[&str]) -> Self {
        self.allow = cidrs.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Runs every `guardctl` of the guard (including `init`) inside the
    /// network namespace `ns` (see [`GuardConfig::netns`]).
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.into());
        self
    }

    /// Appends a raw TOML line (after every table the harness writes).
    pub fn extra(mut self, line: &str) -> Self {
        self.extra.push(line.into());
        self
    }

    /// Creates the guard: writes the config, runs `guardctl init`, starts the listener.
    pub fn start(self) -> Guard {
        Guard::start(self)
    }

    fn render(&self, dir: &Path) -> String {
        let q = |s: &str| toml_string(s);
        let allow: Vec<String> = self.allow.iter().map(|a| q(a)).collect();
        let mut t = String::new();
        let _ = writeln!(t, "fail_mode = {}", q(&self.fail_mode));
        let _ = writeln!(t, "allow = [{}]", allow.join(", "));
        let _ = writeln!(t, "\n[store]");
        let _ = writeln!(
            t,
            "path = {}",
            q(&dir.join("store/authguard.db").to_string_lossy())
        );
        let _ = writeln!(t, "busy_timeout = {}", q(&self.busy_timeout));
        let _ = writeln!(t, "\n[policy]");
        let _ = writeln!(t, "max_failures = {}", self.max_failures);
        let _ = writeln!(t, "find_time = {}", q(&self.find_time));
        let _ = writeln!(t, "ban_time = {}", q(&self.ban_time));
        let _ = writeln!(t, "\n[log]");
        let _ = writeln!(t, "socket = {}", q(&dir.join("log.sock").to_string_lossy()));
        // Tests run guardctl in the host's network namespace: never let it
        // touch the host's ruleset. Firewall tests add their own `[firewall]`
        // table (and run inside network namespaces they create).
        // Nor write into the host's sshd_config.d or reload its sshd: the
        // daemon skips key-only signaling when `sshd_config` does not exist.
        if !self.extra.iter().any(|l| l.trim() == "[keyonly]") {
            let _ = writeln!(
                t,
                "\n[keyonly]\nsshd_config_dir = {}\nsshd_config = {}",
                q(&dir.join("sshd_config.d").to_string_lossy()),
                q(&dir.join("no-sshd_config").to_string_lossy())
            );
        }
        // Nor read the host's journal: log tests add their own `[sshd_log]`.
        if !self.extra.iter().any(|l| l.trim() == "[sshd_log]") {
            let _ = writeln!(t, "\n[sshd_log]\nsource = \"off\"");
        }
        // Nor write metrics into the host's node_exporter directory.
        if !self.extra.iter().any(|l| l.trim() == "[metrics]") {
            let _ = writeln!(t, "\n[metrics]\ntextfile = \"\"");
        }
        if !self.extra.iter().any(|l| l.trim() == "[firewall]") {
            let _ = writeln!(t, "\n[firewall]\nbackend = \"none\"");
        }
        if !self.extra.is_empty() {
            t.push('\n');
            for line in &self.extra {
                t.push_str(line);
                t.push('\n');
            }
        }
        t
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A test's private authguard: config, store and syslog listener in a tempdir.
#[derive(Debug)]
pub struct Guard {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    config: Mutex<GuardConfig>,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    listener: Option<JoinHandle<()>>,
}

impl Guard {
    /// A guard with the default test config (see [`GuardConfig::default`]).
    pub fn new() -> Guard {
        GuardConfig::default().start()
    }

    /// A builder for a guard with changed settings.
    pub fn builder() -> GuardConfig {
        GuardConfig::default()
    }

    fn start(config: GuardConfig) -> Guard {
        let dir = tempdir("ag-guard-");
        let path = dir.path().to_path_buf();
        let socket = path.join("log.sock");
        let rx = UnixDatagram::bind(&socket).expect("bind the test syslog socket");
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set socket timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        // Every line is also appended to <dir>/syslog.log, with the time it
        // arrived, for post-mortems (AUTHGUARD_E2E_KEEP=1).
        let mut file = std::fs::File::create(path.join("syslog.log")).expect("create syslog.log");
        let started = Instant::now();
        let listener = {
            let lines = Arc::clone(&lines);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = rx.recv(&mut buf) {
                        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                        let _ = writeln!(
                            file,
                            "+{:.3}s {}",
                            started.elapsed().as_secs_f64(),
                            line.escape_debug()
                        );
                        lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                    }
                }
            })
        };
        let guard = Guard {
            dir: Some(dir),
            path,
            config: Mutex::new(config),
            lines,
            stop,
            listener: Some(listener),
        };
        guard.write_config();
        let out = guard.guardctl(&["init"]);
        assert!(
            out.status.success(),
            "`guardctl init` failed: {}\n--- config ---\n{}",
            describe_output(&out),
            std::fs::read_to_string(guard.config_path()).unwrap_or_default()
        );
        guard
    }

    fn write_config(&self) {
        let text = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .render(&self.path);
        std::fs::write(self.config_path(), text).expect("write authguard.toml");
    }

    /// Changes settings and rewrites `authguard.toml` (the module reads it on each login).
    pub fn set_config(&self, change: impl FnOnce(&mut GuardConfig)) {
        change(&mut self.config.lock().unwrap_or_else(|e| e.into_inner()));
        self.write_config();
    }

    /// The guard's directory.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// `<dir>/authguard.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("authguard.toml")
    }

    /// `<dir>/store/authguard.db`.
    pub fn store_path(&self) -> PathBuf {
        self.path.join("store/authguard.db")
    }

    /// `<dir>/log.sock`, the syslog socket the module writes to.
    pub fn log_socket_path(&self) -> PathBuf {
        self.path.join("log.sock")
    }

    /// Deletes the store file and its `-wal` / `-shm` companions.
    pub fn remove_store(&self) {
        let db = self.store_path();
        for suffix in ["", "-wal", "-shm", "-journal", "-queue"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }

    /// Runs `guardctl --config <toml> ARGS…` (bounded in time), inside the
    /// guard's network namespace when it has one ([`GuardConfig::netns`]).
    pub fn guardctl(&self, args: &[&str]) -> Output {
        let netns = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .netns
            .clone();
        self.guardctl_in(netns.as_deref(), args)
    }

    /// Like [`Guard::guardctl`], with environment variables set (`Some`)
    /// or removed (`None`) for this run, e.g. `SSH_CONNECTION`.
    pub fn guardctl_env(&self, env: &[(&str, Option<&str>)], args: &[&str]) -> Output {
        let netns = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .netns
            .clone();
        self.guardctl_in_env(netns.as_deref(), env, args)
    }

    /// Runs `guardctl --config <toml> ARGS…` inside the network namespace
    /// `netns` (`ip netns exec NS …`), or in the test's own when None.
    pub fn guardctl_in(&self, netns: Option<&str>, args: &[&str]) -> Output {
        self.guardctl_in_env(netns, &[], args)
    }

    /// [`Guard::guardctl_in`] with environment changes (see [`Guard::guardctl_env`]).
    pub fn guardctl_in_env(
        &self,
        netns: Option<&str>,
        env: &[(&str, Option<&str>)],
        args: &[&str],
    ) -> Output {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(guardctl_path());
                c
            }
            None => Command::new(guardctl_path()),
        };
        cmd.arg("--config").arg(self.config_path()).args(args);
        // The session of whoever runs the tests is not the admin's session
        // the lock-out guards look for: a test that wants one sets it.
        cmd.env_remove("SSH_CONNECTION").env_remove("SSH_CLIENT");
        for (name, value) in env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        let f = run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT);
        assert!(
            !f.timed_out,
            "guardctl {args:?} (netns {netns:?}) hung: {}",
            f.describe()
        );
        Output {
            status: f.status,
            stdout: f.stdout.into_bytes(),
            stderr: f.stderr.into_bytes(),
        }
    }

    /// Runs guardctl and panics unless it exits 0.
    pub fn guardctl_ok(&self, args: &[&str]) -> Output {
        let out = self.guardctl(args);
        assert!(
            out.status.success(),
            "guardctl {args:?} failed: {}\n{}",
            describe_output(&out),
            self.diag()
        );
        out
    }

    /// `guardctl list --json` as a JSON array (panics if it is not one).
    pub fn list(&self) -> Vec<Value> {
        let out = self.guardctl_ok(&["list", "--json"]);
        match parse_json(&out) {
            Value::Array(a) => a,
            other => panic!("`guardctl list --json` is not an array: {other}"),
        }
    }

    /// The ban object for `address` in `guardctl list --json`, if listed.
    pub fn listed(&self, address: &str) -> Option<Value> {
        self.list()
            .into_iter()
            .find(|b| b.get("address").and_then(Value::as_str) == Some(address))
    }

    /// `guardctl show ADDR --json`.
    pub fn show(&self, address: &str) -> Value {
        parse_json(&self.guardctl_ok(&["show", address, "--json"]))
    }

    /// How many of `source`'s recorded attempts came from sshd's log
    /// (origin `sshd-log`), per `guardctl show --json`.
    pub fn log_attempts(&self, source: &str) -> usize {
        self.show(source)["attempts"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["origin"] == "sshd-log").count())
            .unwrap_or(0)
    }

    /// Every datagram received so far, in arrival order.
    pub fn log_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many datagrams have been received so far.
    pub fn log_len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Waits until a received line contains `substr`.
    pub fn wait_for_log(&self, substr: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.log_lines().iter().any(|l| l.contains(substr))
        })
    }

    /// Waits until more than `n` lines have been received; returns the lines after the first `n`.
    pub fn wait_for_lines_after(&self, n: usize, timeout: Duration) -> Vec<String> {
        wait_until(timeout, || self.log_len() > n);
        self.log_lines().split_off(n.min(self.log_len()))
    }

    /// The config and the log, for assertion messages.
    pub fn diag(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "--- {} ---", self.config_path().display());
        s.push_str(&std::fs::read_to_string(self.config_path()).unwrap_or_default());
        let _ = writeln!(s, "--- syslog lines ---");
        for l in self.log_lines() {
            let _ = writeln!(s, "{}", l.escape_debug());
        }
        s
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.listener.take() {
            let _ = h.join();
        }
        release_dir(self.dir.take());
    }
}

/// The message part of an RFC 3164 line (`<pri>Mmm dd hh:mm:ss ident[pid]: MESSAGE`).
pub fn syslog_message(line: &str) -> &str {
    match line.find("]: ") {
        Some(i) => &line[i + 3..],
        None => line,
    }
}

/// The ident of an RFC 3164 line (`pam_authguard`, `authguard`, …).
pub fn syslog_ident(line: &str) -> &str {
    let after_header = line.find('>').map_or(line, |i| &line[i + 1..]);
    // "Mmm dd hh:mm:ss ident[pid]: …": the ident is the 4th space-separated
    // field, but the day is padded ("Nov  4"), so split on whitespace.
    let mut it = after_header.split_whitespace();
    let _ = (it.next(), it.next(), it.next());
    let ident = it.next().unwrap_or("");
    ident.split('[').next().unwrap_or("")
}
