//! The store faults the PAM module must survive without crashing, hanging
//! or locking the admin out: a full disk and a read-only file system (the
//! missing and locked store are covered with a real sshd in sshd_guard.rs).
//! Each fault is made real with a mount inside pamtester's own namespace
//! (guardctl's, for what guardctl says of a read-only store).

use authguard_e2e::{Guard, PamService, require_root};
use std::time::Duration;

/// Mounts a small tmpfs over the store directory, copies the store in, and
/// fills the rest, so SQLite's next write gets ENOSPC.
fn full_disk(g: &Guard) -> String {
    let store_dir = g.store_path().parent().unwrap().display().to_string();
    let copy = g.dir().join("store-copy").display().to_string();
    format!(
        "cp -a '{store_dir}/.' '{copy}/' && mount -t tmpfs -o size=1m tmpfs '{store_dir}' && \
         cp -a '{copy}/.' '{store_dir}/' && \
         (dd if=/dev/zero of='{store_dir}/filler' bs=4k 2>/dev/null || true)"
    )
}

/// Bind-mounts the store directory read-only over itself.
fn read_only(g: &Guard) -> String {
    let store_dir = g.store_path().parent().unwrap().display().to_string();
    format!("mount --bind '{store_dir}' '{store_dir}' && mount -o remount,bind,ro '{store_dir}'")
}

fn check_fault(name: &str, names_it: &str, setup: impl Fn(&Guard) -> String) {
    for mode in ["open", "closed"] {
        let g = Guard::builder().fail_mode(mode).start();
        std::fs::create_dir_all(g.dir().join("store-copy")).unwrap();
        let pam = PamService::permit(&g);
        let before = g.log_len();
        let f = pam.run_after(
            &setup(&g),
            "203.0.113.60",
            "alice",
            &["authenticate", "setcred"],
        );
        assert!(
            f.signal().is_none(),
            "{name}/{mode}: pamtester died: {}",
            f.describe()
        );
        let lines = g.wait_for_lines_after(before, Duration::from_secs(3));
        let fault = lines.iter().find(|l| l.contains("fault: store"));
        assert!(
            fault.is_some(),
            "{name}/{mode}: no fault logged: {lines:#?}\n{}",
            f.describe()
        );
        assert!(
            fault.unwrap().contains(names_it),
            "{name}/{mode}: the log must say `{names_it}`: {lines:#?}"
        );
        match mode {
            "open" => {
                assert_eq!(
                    f.code(),
                    Some(0),
                    "{name}: fail_mode=open must admit: {}",
                    f.describe()
                );
                assert!(
                    fault.unwrap().contains("admitted (fail_mode=open)"),
                    "{lines:#?}"
                );
            }
            _ => {
                assert_ne!(
                    f.code(),
                    Some(0),
                    "{name}: fail_mode=closed must refuse: {}",
                    f.describe()
                );
                assert!(
                    fault.unwrap().contains("refused (fail_mode=closed)"),
                    "{lines:#?}"
                );
                assert_eq!(
                    pam.reached_count("203.0.113.60"),
                    0,
                    "{name}: nothing past a closed guard"
                );
            }
        }
        assert!(
            f.elapsed < Duration::from_secs(5),
            "{name}/{mode}: took {:?}",
            f.elapsed
        );
    }
}

#[test]
fn full_disk_is_survived_by_fail_mode() {
    if !require_root() {
        return;
    }
    check_fault("full disk", "disk full", full_disk);
}

#[test]
fn read_only_store_is_survived_by_fail_mode() {
    if !require_root() {
        return;
    }
    check_fault("read-only", "read-only", read_only);
}

#[test]
fn corrupt_store_is_survived_by_fail_mode() {
    if !require_root() {
        return;
    }
    check_fault("corrupt", "corrupt", |g| {
        // Damage the file inside the namespace only: a copy on a tmpfs.
        let store_dir = g.store_path().parent().unwrap().display().to_string();
        format!(
            "mount -t tmpfs -o size=4m tmpfs '{store_dir}' && \
             head -c 65536 /dev/urandom > '{store_dir}/authguard.db'"
        )
    });
}

/// guardctl in a mount namespace of its own where the store's directory is
/// read-only: `verb`'s output.
fn guardctl_on_read_only_store(g: &Guard, verb: &str) -> std::process::Output {
    let script = format!(
        "{} && exec '{}' --config '{}' {verb}",
        read_only(g),
        authguard_e2e::guardctl_path().display(),
        g.config_path().display()
    );
    std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare")
}

#[test]
fn guardctl_on_a_read_only_store_names_it_and_writes_nothing() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    g.guardctl_ok(&["ban", "203.0.113.61"]);
    // SQLite opens a file it may not write read-only without a word: the
    // verb must say so, not fail later with a vague error.
    let ban = guardctl_on_read_only_store(&g, "ban 203.0.113.62");
    let said = String::from_utf8_lossy(&ban.stderr);
    assert_eq!(ban.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot write the store") && said.contains("read-only"),
        "{said}"
    );
    // Reading a WAL store needs its -shm written: a reader is told too.
    let list = guardctl_on_read_only_store(&g, "list");
    let said = String::from_utf8_lossy(&list.stderr);
    assert_eq!(list.status.code(), Some(1), "{said}");
    assert!(said.contains("read-only file system"), "{said}");
    assert!(g.listed("203.0.113.62").is_none(), "a ban was half-written");
}
