//! The test environment: root or skip, where the built artifacts are,
//! throw-away directories (kept with `AUTHGUARD_E2E_KEEP=1`), bounded
//! polling, Tor's country files, JSON and output helpers for assertions.
//!
//! Running child processes is in `process`; nothing here starts a server.

use crate::process::run_with_timeout;
use crate::sys;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// True when the test may run. Not root: under `CI=true` this panics (the e2e
/// tests must never be skipped in CI); elsewhere it prints a skip note and
/// returns false. Every e2e test starts with `if !require_root() { return; }`.
pub fn require_root() -> bool {
    let euid = sys::effective_uid();
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

pub(crate) fn tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory");
    // sshd reads authorized_keys as the test user: the path must be traversable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temporary directory");
    dir
}

pub(crate) fn release_dir(dir: Option<tempfile::TempDir>) {
    if let Some(dir) = dir
        && keep_dirs()
    {
        eprintln!("AUTHGUARD_E2E_KEEP: kept {}", dir.path().display());
        std::mem::forget(dir);
    }
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

/// Writes `text` to `path` with permissions `mode`; panics on failure.
pub(crate) fn write_file(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
