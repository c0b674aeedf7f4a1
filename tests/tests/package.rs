//! The Debian package, installed for real on this machine with apt and
//! dpkg: what lands where, `guardctl status` right after install, the PAM
//! line by bare name in front of a private real sshd, upgrade keeping bans,
//! remove keeping config and store, purge leaving nothing, lintian's verdict.
//!
//! It installs a package on the machine, so it runs only where that is
//! expected: under `CI=true`, or with `AUTHGUARD_TEST_PACKAGE=1`. It never
//! runs over an authguard package the admin installed.

use authguard_e2e::{Method, REACHED_LINE, Sshd, Stack, deb, require_root, target_dir};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG: &str = "/etc/authguard/authguard.toml";
const STORE_DIR: &str = "/var/lib/authguard";
const NETNS: &str = "ag-pkg";

#[test]
fn package_installs_guards_upgrades_and_purges_cleanly() {
    if !require_root() || !wanted() {
        return;
    }
    let deb = deb::built();
    assert!(
        !installed(),
        "an authguard package is already installed here; this test will not touch it"
    );
    let _cleanup = Cleanup;
    lintian_passes(&deb);

    // An older build first (the same code, an earlier version), so the
    // real package arrives as an upgrade.
    let old = deb::older_build(&deb, &target_dir().join("debian-old"));
    apt(&["install", "-y", &old.to_string_lossy()]);
    files_land_with_their_modes();
    let status = run("guardctl", &["status", "--json"]);
    assert!(
        status.status.success(),
        "guardctl status right after install: {}",
        text(&status)
    );

    // The installed config, edited as an admin would: loopback test sources
    // may be banned (only 127.0.0.1 stays allowed), no firewall on the host.
    edit_config();
    let banned = wrong_passwords_get_banned("127.0.0.2");
    assert_eq!(banned["origin"], "pam", "{banned:#}");
    run_ok(
        "guardctl",
        &[
            "ban",
            "198.51.100.0/24",
            "--for",
            "1d",
            "--reason",
            "before upgrade",
        ],
    );

    apt(&["install", "-y", &deb.to_string_lossy()]);
    assert_eq!(
        installed_version(),
        deb::version(&deb),
        "upgraded to the built package"
    );
    let listed = list();
    for source in ["127.0.0.2", "198.51.100.0/24"] {
        assert!(
            listed.iter().any(|b| b["address"] == source),
            "{source} lost in the upgrade: {listed:#?}"
        );
    }
    let status = run_ok("guardctl", &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(
        status["store"]["schema_version"],
        authguard_core::store::SCHEMA_VERSION,
        "{status:#}"
    );
    let edited = std::fs::read_to_string(CONFIG).expect("config");
    assert!(
        edited.contains("backend = \"none\""),
        "the upgrade kept the admin's config"
    );

    // remove: binaries go, config and store (with the bans) stay.
    apt(&["remove", "-y", "authguard"]);
    assert!(
        !Path::new("/usr/sbin/guardctl").exists(),
        "guardctl left after remove"
    );
    assert!(Path::new(CONFIG).is_file(), "remove must keep the config");
    assert!(
        Path::new(STORE_DIR).join("authguard.db").is_file(),
        "remove must keep the store"
    );

    // purge, inside a network namespace holding an authguard table: the
    // table goes with the package, and so do config and store.
    apt(&["install", "-y", &deb.to_string_lossy()]);
    let listed = list();
    assert!(
        listed.iter().any(|b| b["address"] == "127.0.0.2"),
        "reinstall restores the bans: {listed:#?}"
    );
    let owned = package_files();
    netns_with_table();
    // What `guardctl keyonly apply` (or the daemon) would have written for sshd.
    let snippet = Path::new("/etc/ssh/sshd_config.d/authguard-keyonly.conf");
    std::fs::create_dir_all("/etc/ssh/sshd_config.d").expect("sshd_config.d");
    std::fs::write(
        snippet,
        "# Written by `guardctl keyonly apply` (authguard)\n",
    )
    .expect("snippet");
    let purge = Command::new("ip")
        .args([
            "netns",
            "exec",
            NETNS,
            "apt-get",
            "purge",
            "-y",
            "authguard",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get purge");
    assert!(purge.status.success(), "purge failed: {}", text(&purge));
    let table = Command::new("ip")
        .args([
            "netns",
            "exec",
            NETNS,
            "nft",
            "list",
            "table",
            "inet",
            "authguard",
        ])
        .output()
        .expect("nft");
    assert!(
        !table.status.success(),
        "purge left table inet authguard: {}",
        text(&table)
    );
    let left: Vec<&PathBuf> = owned.iter().filter(|p| !p.is_dir() && p.exists()).collect();
    assert!(left.is_empty(), "purge left package files: {left:?}");
    assert!(!snippet.exists(), "purge left {}", snippet.display());
    for path in [
        "/etc/authguard",
        STORE_DIR,
        "/etc/systemd/system/multi-user.target.wants/authguard.service",
    ] {
        assert!(!Path::new(path).exists(), "purge left {path}");
    }
}

/// Where the test may install packages.
fn wanted() -> bool {
    let on = |var: &str, value: &str| std::env::var(var).is_ok_and(|v| v == value);
    if on("CI", "true") || on("AUTHGUARD_TEST_PACKAGE", "1") {
        return true;
    }
    eprintln!(
        "skipping: the package test installs a .deb here; set AUTHGUARD_TEST_PACKAGE=1 (CI does)"
    );
    false
}

/// Lintian's verdict: no error, no warning (overrides carry their reasons).
fn lintian_passes(deb: &Path) {
    let mut args = deb::LINTIAN_ARGS.to_vec();
    let deb = deb.to_string_lossy();
    args.push(&deb);
    let out = run("lintian", &args);
    let complaints = deb::lintian_complaints(&String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success() && complaints.is_empty(),
        "lintian: {complaints:#?}\n{}",
        text(&out)
    );
}

fn files_land_with_their_modes() {
    let multiarch =
        String::from_utf8(run_ok("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"]).stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
    let module = format!("/usr/lib/{multiarch}/security/pam_authguard.so");
    for (path, mode) in [
        ("/usr/sbin/guardctl", 0o755),
        (module.as_str(), 0o644),
        (CONFIG, 0o644),
        (STORE_DIR, 0o700),
        ("/var/lib/authguard/authguard.db", 0o600),
        ("/usr/lib/systemd/system/authguard.service", 0o644),
        ("/usr/share/man/man8/guardctl.8.gz", 0o644),
        ("/usr/share/man/man8/pam_authguard.8.gz", 0o644),
        ("/usr/share/man/man5/authguard.toml.5.gz", 0o644),
        ("/usr/share/bash-completion/completions/guardctl", 0o644),
        ("/usr/share/doc/authguard/copyright", 0o644),
        ("/usr/share/doc/authguard/changelog.Debian.gz", 0o644),
        ("/usr/share/doc/authguard/README.Debian", 0o644),
    ] {
        let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "mode of {path}");
    }
    let conffiles =
        String::from_utf8(run_ok("dpkg-query", &["-W", "-f=${Conffiles}", "authguard"]).stdout)
            .expect("utf-8");
    assert!(
        conffiles.contains(CONFIG),
        "{CONFIG} is not a conffile: {conffiles}"
    );
    let config = std::fs::read_to_string(CONFIG).expect("config");
    assert!(
        config.contains("#max_failures = 5"),
        "every key commented with its default"
    );
    let readme =
        std::fs::read_to_string("/usr/share/doc/authguard/README.Debian").expect("README.Debian");
    assert!(
        readme.contains("auth requisite pam_authguard.so"),
        "{readme}"
    );
    // deb-systemd-helper enables the unit even where systemd is not running.
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/authguard.service").exists(),
        "authguard.service is not enabled"
    );
    let man = run("man", &["-w", "guardctl"]);
    assert!(man.status.success(), "man -w guardctl: {}", text(&man));
}

fn edit_config() {
    let config = std::fs::read_to_string(CONFIG).expect("config");
    let config = deb::test_config(&config);
    std::fs::write(CONFIG, config).expect("config");
    // The host's /etc/pam.d/sshd is never edited: check a copy of Debian's
    // with the documented line added where README.Debian says.
    let host = std::fs::read_to_string("/etc/pam.d/sshd").unwrap_or_default();
    let pam = tempfile::NamedTempFile::new().expect("temp file");
    let with_line = host.replacen(
        "@include common-auth",
        "auth requisite pam_authguard.so\n@include common-auth",
        1,
    );
    std::fs::write(pam.path(), with_line).expect("pam file");
    let check = run(
        "guardctl",
        &["check", "--pam-file", &pam.path().to_string_lossy()],
    );
    assert!(
        check.status.success(),
        "guardctl check after install: {}",
        text(&check)
    );
    let bare = run("guardctl", &["check"]);
    assert!(
        !bare.status.success()
            && String::from_utf8_lossy(&bare.stdout).contains("pam_authguard.so"),
        "check must say the host's sshd does not use the module yet: {}",
        text(&bare)
    );
}

/// The documented line, by bare name, in front of a private real sshd
/// using the installed config and store: wrong passwords get `source` banned.
fn wrong_passwords_get_banned(source: &str) -> Value {
    let stack = format!(
        "auth requisite pam_authguard.so\n{REACHED_LINE}\nauth required pam_unix.so nodelay\n\
         account required pam_unix.so\nsession required pam_unix.so\n"
    );
    let sshd = Sshd::with_stack(Stack::Custom(stack));
    for attempt in 1..=6 {
        let result = sshd.login(source, "wrong password", Method::Password);
        assert!(
            !result.logged_in(),
            "attempt {attempt}: {}",
            result.describe()
        );
        if let Some(ban) = list().into_iter().find(|b| b["address"] == source) {
            assert!(attempt >= 5, "banned after only {attempt} attempts");
            return ban;
        }
    }
    panic!(
        "{source} not banned after 6 wrong passwords\n{}",
        sshd.diag()
    );
}

fn list() -> Vec<Value> {
    let out = run_ok("guardctl", &["list", "--json"]);
    serde_json::from_slice(&out.stdout).expect("list JSON")
}

fn netns_with_table() {
    let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    run_ok("ip", &["netns", "add", NETNS]);
    run_ok(
        "ip",
        &[
            "netns",
            "exec",
            NETNS,
            "nft",
            "add",
            "table",
            "inet",
            "authguard",
        ],
    );
}

fn package_files() -> Vec<PathBuf> {
    let out = run_ok("dpkg", &["-L", "authguard"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .filter(|p| {
            p.starts_with("/usr/sbin")
                || p.starts_with("/usr/lib")
                || p.starts_with("/usr/share")
                || p.starts_with("/etc")
        })
        .collect()
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", "authguard"])
        .stdout
        .starts_with(b"install ok")
}

fn installed_version() -> String {
    String::from_utf8_lossy(&run_ok("dpkg-query", &["-W", "-f=${Version}", "authguard"]).stdout)
        .into_owned()
}

fn apt(args: &[&str]) {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get");
    assert!(out.status.success(), "apt-get {args:?}: {}", text(&out));
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Leaves the machine as it found it, whatever failed.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("apt-get")
            .args(["purge", "-y", "authguard"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    }
}
