//! The built Debian package, for the package tests on the host and on
//! Debian 13: where `make deb` put it, its version, an older build of it to
//! upgrade from, and lintian's complaints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `target/debian/authguard_*.deb`, made by `make deb` (which `make test`
/// runs first); None when there is none.
pub fn find_built() -> Option<PathBuf> {
    let dir = crate::target_dir().join("debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("authguard_") && name.ends_with(".deb")
        })
        .collect();
    assert!(
        debs.len() <= 1,
        "expected one authguard .deb in {}: {debs:?}",
        dir.display()
    );
    debs.pop()
}

/// [`find_built`], panicking when `make deb` has not run.
pub fn built() -> PathBuf {
    find_built().unwrap_or_else(|| {
        panic!(
            "no authguard .deb in {}: run `make deb` first",
            crate::target_dir().join("debian").display()
        )
    })
}

/// The package's `Version` field.
pub fn version(deb: &Path) -> String {
    let out = run_ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Version"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The package rebuilt in `dir` as `authguard_older.deb` with an earlier
/// version (`VERSION~older`), so that installing `deb` after it is an upgrade.
pub fn older_build(deb: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(dir).expect("mkdir for the older build");
    run_ok(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).expect("control");
    let version = version(deb);
    std::fs::write(
        &control,
        text.replace(
            &format!("Version: {version}"),
            &format!("Version: {version}~older"),
        ),
    )
    .expect("control");
    let old = dir.join("authguard_older.deb");
    run_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-b"])
            .arg(&tree)
            .arg(&old),
    );
    old
}

/// The arguments lintian runs with in both package tests: pedantic, and
/// failing on any error or warning (the overrides carry their reasons).
pub const LINTIAN_ARGS: [&str; 3] = ["--pedantic", "--fail-on", "error,warning"];

/// lintian's `E:` and `W:` lines in its stdout.
pub fn lintian_complaints(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .map(str::to_owned)
        .collect()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The installed package's config as the package tests run it: only the
/// test machine's 127.0.0.1 allowed (so 127.0.0.x attackers count) and no
/// firewall. Panics if the shipped config no longer has the commented
/// defaults this edits.
pub fn test_config(shipped: &str) -> String {
    let config = shipped
        .replace(
            "#allow = [\"127.0.0.0/8\", \"::1\"]",
            "allow = [\"127.0.0.1/32\", \"::1\"]",
        )
        .replace("#backend = \"nftables\"", "backend = \"none\"");
    assert!(
        config.contains("allow = [\"127.0.0.1/32\"") && config.contains("backend = \"none\""),
        "the shipped config changed shape"
    );
    config
}
