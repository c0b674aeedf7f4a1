//! The shipped systemd unit: valid for systemd, and sandboxed as the issue
//! asks (read-only system, only the capability nftables needs).

use authguard_e2e::guardctl_path;
use std::process::Command;

/// A copy of the unit whose ExecStart is the built guardctl (not yet installed here).
fn unit_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/authguard.service"
    ))
    .unwrap();
    assert!(
        text.contains("ExecStart=/usr/sbin/guardctl daemon"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authguard.service");
    let exe = guardctl_path();
    std::fs::write(
        &path,
        text.replace("/usr/sbin/guardctl", &exe.to_string_lossy()),
    )
    .unwrap();
    (dir, path)
}

fn has_systemd_analyze() -> bool {
    let present = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("systemd-analyze (package systemd) is needed to check the unit under CI");
    }
    present
}

#[test]
fn systemd_unit_verifies_and_is_sandboxed() {
    if !has_systemd_analyze() {
        eprintln!("skipping: no systemd-analyze");
        return;
    }
    let (_dir, unit) = unit_copy();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/authguard",
        "ReadWritePaths=-/etc/ssh/sshd_config.d",
        "ReadWritePaths=-/var/lib/prometheus/node-exporter",
        "CapabilityBoundingSet=CAP_NET_ADMIN",
        "Restart=on-failure",
        "After=network-pre.target nftables.service",
    ] {
        assert!(text.lines().any(|l| l == line), "unit lacks `{line}`");
    }
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&security.stdout);
    let level: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for authguard.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {out}"));
    assert!(
        level <= 3.0,
        "exposure {level} (systemd's scale: ≤ 3 is OK)\n{out}"
    );
}
