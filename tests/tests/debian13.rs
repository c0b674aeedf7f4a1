//! Debian 13 (trixie, OpenSSH 10.0) as a tested platform: the root the tests
//! run it from, OpenSSH 10's process layout under authguard's PAM line, and
//! the `.deb` installed, checked, upgraded and purged there by trixie's own
//! apt and lintian. (The inline-guard promises run on Debian 13 in
//! sshd_guard.rs, next to Debian 12.)
//!
//! Everything happens in throw-away overlays of the cached root
//! ([`authguard_e2e::trixie`]), so unlike package.rs this never touches the
//! host's packages and always runs.

use authguard_e2e::trixie::{self, Machine};
use authguard_e2e::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[test]
fn the_root_has_openssh_10_split_into_session_and_auth() {
    if !require_root() {
        return;
    }
    let root = trixie::root();
    eprintln!("debian 13 root: {}", root.provenance);
    for package in trixie::PACKAGES.iter().chain(trixie::SECOND_STAGE) {
        let version = root.version(package);
        eprintln!("  {package} {version:?}");
        assert!(version.is_some(), "{package} is not in the root");
    }
    let sshd = root.version("openssh-server").unwrap_or_default();
    assert!(sshd.starts_with("1:10.0"), "openssh-server {sshd}");
    for binary in ["usr/lib/openssh/sshd-session", "usr/lib/openssh/sshd-auth"] {
        assert!(
            root.path().join(binary).is_file(),
            "no {binary} in the root"
        );
    }
}

/// Where PAM runs in OpenSSH 10: a pam_exec line on every module type
/// records the name of the process that called PAM. authguard's
/// "successes never count" rests on pam_setcred running in the process that
/// counted the attempt (or one that finds it in the store): this shows which.
#[test]
fn pam_runs_in_sshd_session_on_openssh_10() {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let stack = format!(
        "auth requisite {{module}} config={config}\n\
         auth optional pam_exec.so quiet {{dir}}/caller.sh\n\
         auth required pam_unix.so nodelay\n\
         auth optional pam_exec.so quiet {{dir}}/caller.sh\n\
         account required pam_unix.so\n\
         session optional pam_exec.so quiet {{dir}}/caller.sh\n\
         session required pam_unix.so\n",
        config = guard.config_path().display()
    );
    let sshd = Sshd::launch(Platform::Debian13, Stack::Custom(stack), "");
    let log = sshd.dir().join("caller.log");
    std::fs::write(
        sshd.dir().join("caller.sh"),
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE $(cat /proc/$PPID/comm)\" >> '{}'\n",
            log.display()
        ),
    )
    .expect("caller.sh");
    set_exec(&sshd.dir().join("caller.sh"));
    for method in [Method::Password, Method::KeyboardInteractive] {
        let r = sshd.login("127.0.0.2", RIGHT_PASSWORD, method);
        assert!(r.logged_in(), "{}\n{}", r.describe(), sshd.diag());
    }
    let callers = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("PAM callers on OpenSSH 10.0:\n{callers}");
    let auth: BTreeSet<&str> = callers
        .lines()
        .filter_map(|l| l.strip_prefix("auth "))
        .collect();
    assert!(
        !auth.is_empty() && auth.iter().all(|c| c.starts_with("sshd-session")),
        "pam_authenticate must run in sshd-session (not sshd-auth): {callers}"
    );
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());
    let shown = guard.show("127.0.0.2");
    let successes = shown["attempts"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["outcome"] == "success").count());
    assert_eq!(successes, Some(2), "both logins are successes: {shown:#}");
}

fn perms(path: &Path) -> std::fs::Permissions {
    std::fs::metadata(path).expect("metadata").permissions()
}

fn set_exec(path: &Path) {
    let mut p = perms(path);
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(path, p).expect("chmod");
}

const CONFIG: &str = "/etc/authguard/authguard.toml";
const PAM_LINE: &str = "auth requisite pam_authguard.so";

#[test]
fn package_installs_on_debian13_and_upgrades_and_purges_cleanly() {
    if !require_root() {
        return;
    }
    let Some(deb) = deb::find_built().or_else(|| {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "no .deb under CI: `make test` runs `make deb` first"
        );
        eprintln!("skipping: no authguard .deb; run `make deb`");
        None
    }) else {
        return;
    };
    let machine = Arc::new(Machine::boot());

    // Trixie's lintian, on the very file a user installs.
    let mut args = deb::LINTIAN_ARGS.to_vec();
    let deb_arg = deb.to_string_lossy();
    args.push(&deb_arg);
    let lint = machine.run("lintian", &args);
    let complaints = deb::lintian_complaints(&lint.stdout);
    assert!(
        lint.status.success() && complaints.is_empty(),
        "trixie's lintian: {complaints:#?}\n{}",
        lint.describe()
    );

    let before = snapshot(&machine);
    let scratch = tempfile::tempdir().expect("tempdir");
    let old = deb::older_build(&deb, scratch.path());
    apt_install(&machine, &old);
    let m = machine.path();
    for path in [
        "usr/sbin/guardctl",
        "usr/lib/x86_64-linux-gnu/security/pam_authguard.so",
        "etc/authguard/authguard.toml",
        "var/lib/authguard/authguard.db",
        "usr/lib/systemd/system/authguard.service",
    ] {
        assert!(m.join(path).exists(), "/{path} is not installed");
    }

    // The documented set-up: the PAM line above `@include common-auth` in
    // Debian 13's own /etc/pam.d/sshd; loopback sources may be banned.
    edit_config(&machine);
    let pam = std::fs::read_to_string(m.join("etc/pam.d/sshd")).expect("/etc/pam.d/sshd");
    assert!(pam.contains("@include common-auth"), "{pam}");
    let pam = pam.replacen(
        "@include common-auth",
        &format!("{PAM_LINE}\n@include common-auth"),
        1,
    );
    std::fs::write(m.join("etc/pam.d/sshd"), &pam).expect("edit /etc/pam.d/sshd");
    let check = machine.run("guardctl", &["check"]);
    assert!(
        check.status.success(),
        "guardctl check on Debian 13 after the documented PAM line: {}",
        check.describe()
    );
    // It read OpenSSH 10's own `sshd -T`: PAM on, penalties on, IPv6 per /128.
    assert!(
        check.stdout.contains("sshd uses PAM (UsePAM yes)")
            && check
                .stdout
                .contains("PerSourcePenalties count IPv6 per /128")
            && check.stdout.contains("PerSourceNetBlockSize 32:64"),
        "guardctl check did not read Debian 13's sshd -T: {}",
        check.describe()
    );
    // A Match block sending some logins to another PAM service is caught.
    let conf_d = m.join("etc/ssh/sshd_config.d/backup.conf");
    std::fs::write(&conf_d, "Match User backup\n\tPAMServiceName sshd-backup\n").expect("write");
    std::fs::write(m.join("etc/pam.d/sshd-backup"), "@include common-auth\n").expect("write");
    let check = machine.run("guardctl", &["check"]);
    assert!(
        !check.status.success()
            && check
                .stdout
                .contains("sshd-backup without pam_authguard.so"),
        "guardctl check missed PAMServiceName sshd-backup: {}",
        check.describe()
    );
    std::fs::remove_file(&conf_d).expect("remove backup.conf");
    std::fs::remove_file(m.join("etc/pam.d/sshd-backup")).expect("remove sshd-backup");

    // That very stack in front of the machine's sshd: wrong passwords ban.
    let sshd = Sshd::launch_in(Arc::clone(&machine), Stack::Custom(pam), "");
    let banned = (1..=6).find_map(|_| {
        let r = sshd.login("127.0.0.2", WRONG_PASSWORD, Method::Password);
        assert!(!r.logged_in(), "{}", r.describe());
        listed(&machine)
            .into_iter()
            .find(|b| b["address"] == "127.0.0.2")
    });
    let banned =
        banned.unwrap_or_else(|| panic!("no ban after 6 wrong passwords\n{}", sshd.diag()));
    assert_eq!(banned["origin"], "pam", "{banned:#}");
    drop(sshd);
    machine.run_ok("guardctl", &["ban", "198.51.100.0/24", "--for", "1d"]);

    // Upgrade to the real build: the store and the admin's config stay.
    apt_install(&machine, &deb);
    let version = machine.run_ok("dpkg-query", &["-W", "-f=${Version}", "authguard"]);
    assert_eq!(
        version.stdout,
        deb::version(&deb),
        "upgraded to the built package"
    );
    let kept = listed(&machine);
    for source in ["127.0.0.2", "198.51.100.0/24"] {
        assert!(
            kept.iter().any(|b| b["address"] == source),
            "{source} lost in the upgrade: {kept:#?}"
        );
    }
    let config = std::fs::read_to_string(m.join(CONFIG.trim_start_matches('/'))).expect("config");
    assert!(
        config.contains("backend = \"none\""),
        "the upgrade replaced the admin's config"
    );

    // Purge: every path the package (or its scripts) made is gone again.
    machine.run_ok("apt-get", &["purge", "-y", "authguard"]);
    let after = snapshot(&machine);
    let left: Vec<&PathBuf> = after.difference(&before).collect();
    assert!(left.is_empty(), "purge left behind: {left:#?}");
}

/// `apt install ./authguard_*.deb`, as the README says, from the package's
/// own directory.
fn apt_install(machine: &Machine, deb: &Path) {
    let dir = deb
        .parent()
        .expect("the .deb's directory")
        .to_string_lossy();
    let name = deb.file_name().expect("file name").to_string_lossy();
    machine.run_ok(
        "sh",
        &["-c", &format!("cd '{dir}' && apt install -y './{name}'")],
    );
}

fn edit_config(machine: &Machine) {
    let path = machine.path().join(CONFIG.trim_start_matches('/'));
    let config = std::fs::read_to_string(&path).expect("config");
    let config = deb::test_config(&config);
    std::fs::write(&path, config).expect("config");
}

fn listed(machine: &Machine) -> Vec<Value> {
    let out = machine.run_ok("guardctl", &["list", "--json"]);
    serde_json::from_str(&out.stdout).expect("list JSON")
}

/// Every path on the machine's root file system outside dpkg's and apt's
/// own records, caches and logs (which a purge rightly updates).
fn snapshot(machine: &Machine) -> BTreeSet<PathBuf> {
    let out = machine.run_ok("find", &["/", "-xdev"]);
    out.stdout
        .lines()
        .filter(|p| {
            ![
                "/var/lib/dpkg",
                "/var/lib/apt",
                "/var/cache",
                "/var/log",
                "/tmp",
            ]
            .iter()
            .any(|skip| p.starts_with(skip))
        })
        .map(PathBuf::from)
        .collect()
}
