//! The files a test sshd reads, written into its temporary directory: the
//! PAM stack with the reached-marker, `sshd_config`, copies of the user
//! files with the test user added, the host key and `authorized_keys/`.
//!
//! Nothing here starts a process other than the tools that make the files
//! (`ssh-keygen`, `openssl passwd`, `sshd -T`).

use super::launch::sshd_dump_on;
use super::{Platform, RIGHT_PASSWORD, Stack, TEST_UID, TEST_USER};
use crate::env::{pam_module_path, tempdir, write_file};
use crate::process::run_ok;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Writes a test sshd's files into a new tempdir: the PAM stack, the
/// reached-marker, user files, host key and authorized_keys directory.
pub(crate) fn prepare_sshd_dir(stack: &Stack) -> (tempfile::TempDir, PathBuf) {
    prepare_sshd_dir_for(stack, Path::new("/etc"))
}

/// [`prepare_sshd_dir`] with the user files made from those in `etc`.
pub(super) fn prepare_sshd_dir_for(stack: &Stack, etc: &Path) -> (tempfile::TempDir, PathBuf) {
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

/// A test sshd's config for `port` on `listen`, with `extra` config text,
/// split as [`Sshd::with_stack_and_config`] describes.
pub(crate) fn write_sshd_config_extra(dir: &Path, port: u16, listen: &[&str], extra: &str) {
    write_sshd_config_on(Platform::Host, dir, port, listen, extra);
}

/// [`write_sshd_config_extra`] checked with the sshd of `platform`.
pub(super) fn write_sshd_config_on(
    platform: Platform,
    dir: &Path,
    port: u16,
    listen: &[&str],
    extra: &str,
) {
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
