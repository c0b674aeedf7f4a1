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
//! * [`netns`]: network-namespace labs for the firewall tests: a server
//!   namespace running sshd and `guardctl daemon`, attacker namespaces with
//!   documentation addresses, TCP probes, nft inside the server namespace.
//!
//! Every wait is bounded. Set `AUTHGUARD_E2E_KEEP=1` to keep the temporary
//! directories of a run (their paths are printed) for a post-mortem.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use serde_json::Value;

pub mod deb;
pub mod netns;
pub mod trixie;

/// The test user that exists only inside a test sshd's mount namespace.
pub const TEST_USER: &str = "agtest";
/// Its password.
pub const RIGHT_PASSWORD: &str = "right-password";
/// A password that is not its password.
pub const WRONG_PASSWORD: &str = "wrong-password";
/// uid and gid of [`TEST_USER`].
pub const TEST_UID: u32 = 64999;
/// The text the module sends a refused client by default (`[pam] message`).
pub const DEFAULT_BLOCK_MESSAGE: &str = "Access from your address is temporarily blocked.";

/// How long one client run (ssh, pamtester, guardctl) may take before it is killed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

/// True when the test may run. Not root: under `CI=true` this panics (the e2e
/// tests must never be skipped in CI); elsewhere it prints a skip note and
/// returns false. Every e2e test starts with `if !require_root() { return; }`.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("root e2e tests must run under CI (running as euid {euid}); run them as root");
    }
    eprintln!("skipping: authguard e2e tests need root (euid is {euid})");
    false
}

/// The workspace's target directory: `CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                // Cargo resolves a relative CARGO_TARGET_DIR against the cwd of
                // the `cargo` invocation, normally the workspace root.
                workspace_dir().join(d)
            }
        }
        _ => workspace_dir().join("target"),
    };
    dir.canonicalize().unwrap_or(dir)
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn artifact(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// `target/debug/libpam_authguard.so`; panics if it was not built.
pub fn pam_module_path() -> PathBuf {
    artifact("libpam_authguard.so")
}

/// `target/debug/guardctl`; panics if it was not built.
pub fn guardctl_path() -> PathBuf {
    artifact("guardctl")
}

fn keep_dirs() -> bool {
    std::env::var_os("AUTHGUARD_E2E_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory");
    // sshd reads authorized_keys as the test user: the path must be traversable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temporary directory");
    dir
}

fn release_dir(dir: Option<tempfile::TempDir>) {
    if let Some(dir) = dir {
        if keep_dirs() {
            eprintln!("AUTHGUARD_E2E_KEEP: kept {}", dir.path().display());
            std::mem::forget(dir);
        }
    }
}

/// A finished child process.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
    /// True when it had to be killed after the timeout.
    pub timed_out: bool,
}

impl Finished {
    /// Exit code, or None when it died by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that ended it, if any.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {:?}{} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
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

/// Runs `cmd` (stdin from `input`, or /dev/null) in its own process group,
/// killing the group if it runs longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Finished {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            kill_group(child.id(), libc::SIGKILL);
            break child.wait().expect("wait for killed child");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    Finished {
        status,
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed,
        timed_out,
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn kill_group(pgid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals the process group we
        // created for our own child; no memory is involved.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

fn run_ok(cmd: &mut Command) -> Finished {
    let shown = format!("{cmd:?}");
    let f = run_with_timeout(cmd, None, CLIENT_TIMEOUT);
    assert!(f.status.success(), "{shown} failed: {}", f.describe());
    f
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tor's country files from Debian's `tor-geoipdb` package, downloaded into
/// `dir` with `apt-get download` and unpacked with `dpkg-deb -x` (never
/// installed): the unpacked `usr/share/tor` (`geoip`, `geoip6`). None (a
/// skip, with a note) when the download fails outside CI; under CI it must work.
pub fn tor_geoip(dir: &Path) -> Option<PathBuf> {
    let mut download = Command::new("apt-get");
    download.args(["download", "tor-geoipdb"]).current_dir(dir);
    let f = run_with_timeout(&mut download, None, Duration::from_secs(300));
    if !f.status.success() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "`apt-get download tor-geoipdb` must work under CI: {}",
            f.describe()
        );
        eprintln!(
            "skipping: `apt-get download tor-geoipdb` failed: {}",
            f.describe()
        );
        return None;
    }
    let deb = std::fs::read_dir(dir)
        .expect("read the download directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("apt-get download left a .deb");
    let root = dir.join("root");
    let mut unpack = Command::new("dpkg-deb");
    unpack.arg("-x").arg(&deb).arg(&root);
    let f = run_with_timeout(&mut unpack, None, Duration::from_secs(60));
    assert!(f.status.success(), "dpkg-deb -x: {}", f.describe());
    Some(root.join("usr/share/tor"))
}

/// Parses a command's stdout as JSON, panicking with the output when it is not.
pub fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Describes a finished `guardctl` run for assertion messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

// ---------------------------------------------------------------------------
// Guard: config, store, syslog listener
// ---------------------------------------------------------------------------

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
        for suffix in ["", "-wal", "-shm", "-journal"] {
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

// ---------------------------------------------------------------------------
// Sshd
// ---------------------------------------------------------------------------

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

/// A PAM stack line that records `$PAM_RHOST $PAM_USER` in `reached.log`:
/// whatever passes this line got past authguard.
pub const REACHED_LINE: &str = "auth optional pam_exec.so quiet {reached}";

/// The default test stack, with or without the authguard line (`config` = guard toml).
///
/// pam_unix runs with `nodelay`: its 2 s delay after a wrong password says
/// nothing about authguard and would only make the tests slow.
pub fn default_stack(config: Option<&Path>) -> String {
    let mut s = String::new();
    if let Some(config) = config {
        let _ = writeln!(s, "auth requisite {{module}} config={}", config.display());
    }
    let _ = writeln!(s, "{REACHED_LINE}");
    s.push_str("auth required pam_unix.so nodelay\n");
    s.push_str("account required pam_unix.so\n");
    s.push_str("session required pam_unix.so\n");
    s
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
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    port: u16,
    child: Child,
    platform: Platform,
    /// The Debian 13 machine the sshd runs in (dropped after the sshd).
    machine: Option<Arc<trixie::Machine>>,
}

impl Sshd {
    /// sshd with the default authguard stack for `guard`.
    pub fn start(guard: &Guard) -> Sshd {
        Sshd::with_stack(Stack::Guarded(guard.config_path()))
    }

    /// sshd with the default stack minus authguard.
    pub fn start_unguarded() -> Sshd {
        Sshd::with_stack(Stack::Unguarded)
    }

    /// sshd with the given stack.
    pub fn with_stack(stack: Stack) -> Sshd {
        Sshd::with_stack_and_config(stack, "")
    }

    /// sshd with the given stack and `extra` sshd_config text. sshd keeps a
    /// keyword's *first* value, so the lines of `extra` before its first
    /// `Match` go in front of the harness's config (and override it, e.g.
    /// `LoginGraceTime 5`); a `Match` block and everything after it go at the
    /// end, where `Match` must be. The result is checked with `sshd -T`.
    pub fn with_stack_and_config(stack: Stack, extra: &str) -> Sshd {
        Sshd::launch(Platform::Host, stack, extra)
    }

    /// sshd with the default authguard stack for `guard` on `platform`.
    pub fn start_on(platform: Platform, guard: &Guard) -> Sshd {
        Sshd::launch(platform, Stack::Guarded(guard.config_path()), "")
    }

    /// [`Sshd::with_stack_and_config`] on `platform`.
    pub fn launch(platform: Platform, stack: Stack, extra: &str) -> Sshd {
        match platform {
            Platform::Host => Sshd::launch_on_host(stack, extra),
            Platform::Debian13 => Sshd::launch_on_debian13(stack, extra),
        }
    }

    fn launch_on_debian13(stack: Stack, extra: &str) -> Sshd {
        Sshd::launch_in(Arc::new(trixie::Machine::boot()), stack, extra)
    }

    /// An sshd (the root's OpenSSH 10) inside the Debian 13 `machine`, with
    /// `stack` as its `/etc/pam.d/sshd` and the test user added to the
    /// machine's user files.
    pub fn launch_in(machine: Arc<trixie::Machine>, stack: Stack, extra: &str) -> Sshd {
        Sshd::launch_in_logging(machine, stack, extra, SshdLog::File)
    }

    /// [`Sshd::launch_in`], with sshd's log going where `log` says. Ready
    /// once a TCP connect from 127.0.0.1 succeeds (the same readiness probe
    /// as on the host, so both logs start alike).
    pub fn launch_in_logging(
        machine: Arc<trixie::Machine>,
        stack: Stack,
        extra: &str,
        log: SshdLog,
    ) -> Sshd {
        let (dir, path) = prepare_sshd_dir_for(&stack, &machine.path().join("etc"));
        write_sshd_config_on(Platform::Debian13, &path, 22, &["127.0.0.1"], extra);
        let mut child = spawn_sshd_in(&machine, &path, log);
        let probe = || {
            machine.in_net(|| {
                TcpStream::connect_timeout(&([127, 0, 0, 1], 22).into(), Duration::from_millis(200))
                    .is_ok()
            })
        };
        let listening = wait_until(Duration::from_secs(20), || {
            matches!(child.try_wait(), Ok(Some(_))) || probe()
        });
        let exited = child.try_wait().expect("wait for sshd");
        if !listening || exited.is_some() {
            kill_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
            panic!(
                "Debian 13 sshd did not start listening within 20 s: exit {exited:?}\n\
                 --- sshd.log ---\n{}\n--- sshd stderr ---\n{}",
                std::fs::read_to_string(path.join("sshd.log")).unwrap_or_default(),
                std::fs::read_to_string(path.join("sshd.err")).unwrap_or_default()
            );
        }
        Sshd {
            dir: Some(dir),
            path,
            port: 22,
            child,
            platform: Platform::Debian13,
            machine: Some(machine),
        }
    }

    fn launch_on_host(stack: Stack, extra: &str) -> Sshd {
        let (dir, path) = prepare_sshd_dir(&stack);
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            write_sshd_config_extra(&path, port, &["127.0.0.1"], extra);
            let mut child = spawn_sshd(&path, None);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut exited = None;
            let mut up = false;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().expect("wait for sshd") {
                    exited = Some(status);
                    break;
                }
                if TcpStream::connect_timeout(
                    &([127, 0, 0, 1], port).into(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            if up {
                return Sshd {
                    dir: Some(dir),
                    path,
                    port,
                    child,
                    platform: Platform::Host,
                    machine: None,
                };
            }
            if exited.is_none() {
                kill_group(child.id(), libc::SIGKILL);
            }
            let _ = child.wait();
            last_log = format!(
                "exit {:?}\n--- sshd.log ---\n{}\n--- sshd stderr ---\n{}",
                exited,
                std::fs::read_to_string(path.join("sshd.log")).unwrap_or_default(),
                std::fs::read_to_string(path.join("sshd.err")).unwrap_or_default()
            );
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        panic!("test sshd did not start listening within 10 s: {last_log}");
    }

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
        kill_group(self.child.id(), libc::SIGTERM);
        let exited = wait_until(Duration::from_secs(3), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            kill_group(self.child.id(), libc::SIGKILL);
        }
        let _ = self.child.wait();
        release_dir(self.dir.take());
    }
}

/// Writes a test sshd's files into a new tempdir: the PAM stack, the
/// reached-marker, user files, host key and authorized_keys directory.
pub(crate) fn prepare_sshd_dir(stack: &Stack) -> (tempfile::TempDir, PathBuf) {
    prepare_sshd_dir_for(stack, Path::new("/etc"))
}

/// [`prepare_sshd_dir`] with the user files made from those in `etc`.
fn prepare_sshd_dir_for(stack: &Stack, etc: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir("ag-sshd-");

    let path = dir.path().to_path_buf();
    let reached = path.join("reached.sh");
    let stack_text = match stack {
        Stack::Guarded(config) => default_stack(Some(config)),
        Stack::Unguarded => default_stack(None),
        Stack::Custom(text) => text.clone(),
    };
    let stack_text = stack_text
        .replace("{dir}", &path.to_string_lossy())
        .replace("{reached}", &reached.to_string_lossy());
    let stack_text = if stack_text.contains("{module}") {
        stack_text.replace("{module}", &pam_module_path().to_string_lossy())
    } else {
        stack_text
    };
    write_file(&path.join("pam.sshd"), &stack_text, 0o644);
    write_file(
        &reached,
        &format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$PAM_RHOST\" \"$PAM_USER\" >> '{}'\n",
            path.join("reached.log").display()
        ),
        0o755,
    );
    make_user_files(&path, etc);
    run_ok(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "authguard-e2e-host",
                "-f",
            ])
            .arg(path.join("host_ed25519")),
    );
    let auth_keys = path.join("authorized_keys");
    std::fs::create_dir_all(&auth_keys).expect("mkdir authorized_keys");
    std::fs::set_permissions(&auth_keys, std::fs::Permissions::from_mode(0o755))
        .expect("chmod authorized_keys");
    std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd (privilege separation)");

    (dir, path)
}

/// Starts `sshd -D` (config `<path>/sshd_config`, log `<path>/sshd.log`) in a
/// private mount namespace with the test PAM file and user files bind-mounted,
/// inside the network namespace `netns` when given. The child leads its own
/// process group.
pub(crate) fn spawn_sshd(path: &Path, netns: Option<&str>) -> Child {
    let _ = std::fs::remove_file(path.join("sshd.log"));
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "unshare"]);
            c
        }
        None => Command::new("unshare"),
    };
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "set -e; mount --bind \"$1\" /etc/pam.d/sshd; mount --bind \"$2\" /etc/passwd; \
             mount --bind \"$3\" /etc/shadow; mount --bind \"$4\" /etc/group; \
             exec /usr/sbin/sshd -D -E \"$5\" -f \"$6\"",
        )
        .arg("sh")
        .arg(path.join("pam.sshd"))
        .arg(path.join("passwd"))
        .arg(path.join("shadow"))
        .arg(path.join("group"))
        .arg(path.join("sshd.log"))
        .arg(path.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path.join("sshd.out")).expect("create sshd.out"))
        .stderr(std::fs::File::create(path.join("sshd.err")).expect("create sshd.err"))
        .process_group(0);
    cmd.spawn().expect("spawn unshare … sshd")
}

/// Starts the machine's `sshd -D` (config `<path>/sshd_config`, log
/// `<path>/sshd.log`) with the test PAM file and user files copied into the
/// machine first. The child is sshd itself (nsenter execs it) and leads its
/// own process group.
fn spawn_sshd_in(machine: &trixie::Machine, path: &Path, log: SshdLog) -> Child {
    let _ = std::fs::remove_file(path.join("sshd.log"));
    let d = path.to_string_lossy();
    machine.run_ok("cp", &[&format!("{d}/pam.sshd"), "/etc/pam.d/sshd"]);
    for file in ["passwd", "shadow", "group"] {
        machine.run_ok("cp", &[&format!("{d}/{file}"), &format!("/etc/{file}")]);
    }
    let mut cmd = machine.command("/usr/sbin/sshd");
    cmd.arg("-D");
    if log == SshdLog::File {
        cmd.arg("-E").arg(path.join("sshd.log"));
    }
    cmd.arg("-f")
        .arg(path.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path.join("sshd.out")).expect("create sshd.out"))
        .stderr(std::fs::File::create(path.join("sshd.err")).expect("create sshd.err"))
        .process_group(0);
    cmd.spawn().expect("spawn nsenter … sshd")
}

/// `sshd -T -f PATH` with the sshd of `platform`: its effective settings,
/// or why it rejects the file.
pub fn sshd_dump_on(platform: Platform, path: &Path) -> Finished {
    match platform {
        Platform::Host => run_with_timeout(
            Command::new("/usr/sbin/sshd").arg("-T").arg("-f").arg(path),
            None,
            CLIENT_TIMEOUT,
        ),
        Platform::Debian13 => {
            let scratch = tempdir("ag-sshd-t-");
            let mut cmd = trixie::root().command(scratch.path(), false, ":", "/usr/sbin/sshd");
            cmd.arg("-T").arg("-f").arg(path);
            run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT)
        }
    }
}

fn write_file(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A test sshd's config for `port` on `listen`, with `extra` config text,
/// split as [`Sshd::with_stack_and_config`] describes.
fn write_sshd_config_extra(dir: &Path, port: u16, listen: &[&str], extra: &str) {
    write_sshd_config_on(Platform::Host, dir, port, listen, extra);
}

/// [`write_sshd_config_extra`] checked with the sshd of `platform`.
fn write_sshd_config_on(platform: Platform, dir: &Path, port: u16, listen: &[&str], extra: &str) {
    let (extra_head, extra_tail) = match extra
        .match_indices("Match ")
        .find(|&(at, _)| at == 0 || extra.as_bytes()[at - 1] == b'\n')
    {
        Some((at, _)) => extra.split_at(at),
        None => (extra, ""),
    };
    let extra_head = match extra_head {
        "" => String::new(),
        head if head.ends_with('\n') => head.to_owned(),
        head => format!("{head}\n"),
    };
    let d = dir.display();
    let listen: String = listen
        .iter()
        .map(|a| format!("ListenAddress {a}\n"))
        .collect();
    // sshd takes the last MaxStartups it reads (most keywords, the first):
    // a test's own wins only if the default is left out.
    let max_startups = if extra.contains("MaxStartups ") {
        ""
    } else {
        "MaxStartups 100:30:200\n"
    };
    let mut cfg = format!(
        "{extra_head}Port {port}
{listen}HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
AuthorizedKeysFile {d}/authorized_keys/%u
StrictModes no
PermitRootLogin no
MaxAuthTries 6
{max_startups}LoginGraceTime 30
LogLevel VERBOSE
UseDNS no
PrintMotd no
"
    );
    let path = dir.join("sshd_config");
    write_file(&path, &cfg, 0o644);
    // Newer OpenSSH (9.8+) penalises sources that fail to authenticate; that
    // would mask what authguard does, so switch it off where it exists
    // (unless the test sets it itself).
    let t = sshd_dump_on(platform, &path);
    assert!(
        t.status.success(),
        "sshd -T rejects the test config: {}",
        t.describe()
    );
    if t.stdout.contains("persourcepenalties") && !extra.contains("PerSourcePenalties") {
        cfg.push_str("PerSourcePenalties no\n");
        write_file(&path, &cfg, 0o644);
    }
    if !extra_tail.is_empty() {
        cfg.push_str(extra_tail);
        if !cfg.ends_with('\n') {
            cfg.push('\n');
        }
        write_file(&path, &cfg, 0o644);
        let t = sshd_dump_on(platform, &path);
        assert!(
            t.status.success(),
            "sshd -T rejects the test config with its Match blocks: {}\n--- sshd_config ---\n{cfg}",
            t.describe()
        );
    }
}

/// Copies passwd/shadow/group of `etc` with the test user appended, and its home.
fn make_user_files(dir: &Path, etc: &Path) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("mkdir home");
    std::os::unix::fs::chown(&home, Some(TEST_UID), Some(TEST_UID)).expect("chown home");
    let hash = run_ok(Command::new("openssl").args(["passwd", "-6", RIGHT_PASSWORD]))
        .stdout
        .trim()
        .to_owned();
    assert!(
        hash.starts_with("$6$"),
        "openssl passwd -6 printed {hash:?}"
    );
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        / 86_400;
    let read = |name: &str| {
        let p = etc.join(name);
        let mut s =
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s
    };
    let passwd = read("passwd")
        + &format!(
            "{TEST_USER}:x:{TEST_UID}:{TEST_UID}:authguard e2e:{}:/bin/sh\n",
            home.display()
        );
    let shadow = read("shadow") + &format!("{TEST_USER}:{hash}:{days}:0:99999:7:::\n");
    let group = read("group") + &format!("{TEST_USER}:x:{TEST_UID}:\n");
    write_file(&dir.join("passwd"), &passwd, 0o644);
    write_file(&dir.join("shadow"), &shadow, 0o600);
    write_file(&dir.join("group"), &group, 0o644);
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// How the ssh client offers the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// SSH `password` authentication (sshd runs PAM in its monitor).
    Password,
    /// SSH `keyboard-interactive` (sshd runs PAM in a child process).
    KeyboardInteractive,
}

impl Method {
    fn ssh_name(self) -> &'static str {
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

fn finish_client(source: &str, f: Finished) -> ClientResult {
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
fn password_client(
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
fn key_client(
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
/// std cannot bind before connecting, hence libc.
pub fn tcp_connect_from(source: std::net::Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket just created and owned by nothing else; the
    // OwnedFd closes it on every path.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    let local = sockaddr(source, 0);
    // SAFETY: the pointer is to a live sockaddr_in of `len` bytes.
    let rc = unsafe { libc::bind(raw, (&raw const local).cast(), len) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("bind {source}: {e}")));
    }
    let remote = sockaddr(std::net::Ipv4Addr::LOCALHOST, port);
    // SAFETY: as above. A blocking connect to loopback ends at once.
    let rc = unsafe { libc::connect(raw, (&raw const remote).cast(), len) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("connect from {source}: {e}"),
        ));
    }
    Ok(TcpStream::from(fd))
}

/// Closes `stream` with a TCP reset instead of a FIN (`SO_LINGER` 0), as a
/// scanner that aborts does.
pub fn close_with_reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a live struct of the size passed; the fd is open
    // (owned by `stream`, dropped after this call).
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(stream);
}

// ---------------------------------------------------------------------------
// pamtester
// ---------------------------------------------------------------------------

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

/// Reads the first line of a child's stdout (used to wait for a helper to be ready).
pub fn read_line_with_timeout<R: Read + Send + 'static>(
    pipe: R,
    timeout: Duration,
) -> Option<(String, BufReader<R>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut line = String::new();
        let ok = r.read_line(&mut line).is_ok_and(|n| n > 0);
        let _ = tx.send(ok.then_some((line, r)));
    });
    rx.recv_timeout(timeout).ok().flatten()
}

/// Bytes → OsString (for non-UTF-8 user names and hosts).
pub fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}
