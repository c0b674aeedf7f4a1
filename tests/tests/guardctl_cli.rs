//! guardctl's promises to the admin: bad input is exit 2 naming what was
//! wrong with nothing written; bans escalate and lift as documented; a
//! non-root user gets a clear error, not a SQLite message; `check` says
//! what to fix in the PAM file.

use authguard_e2e::{Guard, Value, describe_output, guardctl_path, parse_json, require_root};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything a mutation could change, as guardctl shows it.
fn snapshot(g: &Guard) -> (Value, Value) {
    let bans = parse_json(&g.guardctl_ok(&["list", "--all", "--json"]));
    let allow = parse_json(&g.guardctl_ok(&["allow", "list", "--json"]));
    (bans, allow)
}

#[test]
fn a_ban_that_would_cut_off_the_admins_own_session_needs_force() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    let session = [("SSH_CONNECTION", Some("198.51.100.7 50022 192.0.2.1 22"))];
    let out = g.guardctl_env(&session, &["ban", "198.51.100.0/24"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        stderr(&out).contains("198.51.100.7, the address of your SSH session")
            && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(g.list(), Vec::<Value>::new(), "nothing banned");
    // Another network is banned as ever; with the session allowed, so is its own.
    g.guardctl_ok(&["ban", "203.0.113.0/24"]);
    g.guardctl_ok(&["allow", "add", "198.51.100.7"]);
    let allowed = g.guardctl_env(&session, &["ban", "198.51.100.0/24"]);
    assert!(allowed.status.success(), "{}", describe_output(&allowed));
    g.guardctl_ok(&["unban", "--all"]);
    g.guardctl_ok(&["allow", "remove", "198.51.100.7"]);
    // --force: the admin asked for it.
    let forced = g.guardctl_env(&session, &["ban", "198.51.100.0/24", "--force"]);
    assert!(forced.status.success(), "{}", describe_output(&forced));
    let forced = g.guardctl(&["ban", "0.0.0.0/0", "--force", "--for", "1m"]);
    assert!(forced.status.success(), "{}", describe_output(&forced));
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    for i in 1..=50 {
        g.guardctl_ok(&["ban", &format!("203.0.113.{i}")]);
    }
    for args in [&["list", "--json"][..], &["list"], &["status"], &["check"]] {
        let mut child = Command::new(guardctl_path())
            .arg("--config")
            .arg(g.config_path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("guardctl");
        // `| head -0`: the reader is gone before the first write.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("guardctl's end");
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "guardctl {args:?}: {err}"
        );
        // `check` exits 1 when it finds something to fix; the rest succeed.
        let want = if args[0] == "check" { [0, 1] } else { [0, 0] };
        assert!(
            out.status.code().is_some_and(|c| want.contains(&c)),
            "guardctl {args:?} exits by its own rules: {:?}",
            out.status
        );
    }
}

#[test]
fn bad_input_exits_2_names_it_and_writes_nothing() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    g.guardctl_ok(&["ban", "203.0.113.7", "--reason", "seen scanning"]);
    let before = snapshot(&g);
    let cases: &[(&[&str], &str)] = &[
        (&["ban", "nope"], "nope"),
        (&["ban", "10.0.0.1/8"], "10.0.0.0/8"),
        (&["ban", "203.0.113.9", "--for", "10x"], "10x"),
        (&["ban", "203.0.113.9", "--for", "0s"], "0s"),
        (
            &["ban", "203.0.113.9", "--for", "1h", "--permanent"],
            "--permanent",
        ),
        (&["ban", "127.0.0.1"], "allow"),
        (&["ban", "0.0.0.0/0"], "every IPv4 address"),
        (&["ban", "::/0"], "every IPv6 address"),
        (&["ban", "10.0.0.0/7"], "wider than /8"),
        (&["ban", "2001::/31"], "wider than /32"),
        (&["unban", "2001:db8::zz"], "2001:db8::zz"),
        (&["unban"], "--all"),
        (&["allow", "add", "300.1.1.1"], "300.1.1.1"),
        (&["allow", "remove", "198.51.100.0/24"], "198.51.100.0/24"),
        (&["show", "example.com"], "example.com"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, named) in cases {
        let out = g.guardctl(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "guardctl {args:?}: {}",
            describe_output(&out)
        );
        assert!(
            stderr(&out).contains(named),
            "guardctl {args:?} must name `{named}`: {}",
            stderr(&out)
        );
    }
    assert_eq!(snapshot(&g), before, "bad input must write nothing");
}

#[test]
fn config_errors_name_key_and_line() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    let bad = g.dir().join("bad.toml");
    std::fs::write(
        &bad,
        "fail_mode = \"open\"\n\n[policy]\nmax_failures = 3\nban_tiem = \"1h\"\n",
    )
    .unwrap();
    for verb in [&["list"][..], &["check"], &["ban", "203.0.113.1"]] {
        let out = Command::new(guardctl_path())
            .arg("--config")
            .arg(&bad)
            .args(verb)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{verb:?}: {}",
            describe_output(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains("line 5") && err.contains("policy.ban_tiem"),
            "{verb:?}: {err}"
        );
    }
    std::fs::write(&bad, "[policy]\nfind_time = \"soon\"\n").unwrap();
    let out = Command::new(guardctl_path())
        .arg("--config")
        .arg(&bad)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 2") && stderr(&out).contains("policy.find_time"),
        "{}",
        stderr(&out)
    );
    // AUTHGUARD_CONFIG names the file too.
    let out = Command::new(guardctl_path())
        .env("AUTHGUARD_CONFIG", &bad)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
}

#[test]
fn manual_bans_escalate_lift_and_forget() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    g.guardctl_ok(&["ban", "198.51.100.20"]);
    let first = g.listed("198.51.100.20").expect("listed after ban");
    assert_eq!(
        (first["level"].as_u64(), first["origin"].as_str()),
        (Some(1), Some("manual"))
    );
    g.guardctl_ok(&["unban", "198.51.100.20"]);
    assert!(g.listed("198.51.100.20").is_none(), "unban lifts at once");
    g.guardctl_ok(&["ban", "198.51.100.20"]);
    let second = g.listed("198.51.100.20").unwrap();
    assert_eq!(
        second["level"].as_u64(),
        Some(2),
        "the second ban escalates: {second}"
    );
    let span = |b: &Value| {
        rfc3339_secs(b["expires"].as_str().unwrap()) - rfc3339_secs(b["since"].as_str().unwrap())
    };
    assert_eq!(
        (span(&first), span(&second)),
        (600, 1200),
        "10m, then 10m × 2"
    );

    g.guardctl_ok(&[
        "ban",
        "2001:db8:5:6::42",
        "--permanent",
        "--reason",
        "persistent",
    ]);
    let v6 = g
        .listed("2001:db8:5:6::/64")
        .expect("an IPv6 address is banned as its /64");
    assert!(v6["expires"].is_null(), "permanent: {v6}");

    g.guardctl_ok(&["unban", "198.51.100.20", "--forget"]);
    let show = g.show("198.51.100.20");
    assert_eq!(
        show["bans"].as_array().map(Vec::len),
        Some(0),
        "--forget drops the history: {show}"
    );
    g.guardctl_ok(&["unban", "--all"]);
    assert!(g.list().is_empty());
    let all = parse_json(&g.guardctl_ok(&["list", "--all", "--json"]));
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(1),
        "lifted bans stay in history: {all}"
    );
}

#[test]
fn allow_add_lifts_bans_and_allowed_sources_cannot_be_banned() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    g.guardctl_ok(&["ban", "192.0.2.77"]);
    g.guardctl_ok(&["allow", "add", "192.0.2.0/24", "--comment", "office"]);
    assert!(
        g.list().is_empty(),
        "allowing a network lifts the bans inside it"
    );
    let out = g.guardctl(&["ban", "192.0.2.78"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(stderr(&out).contains("192.0.2.0/24"));
    let listed = parse_json(&g.guardctl_ok(&["allow", "list", "--json"]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["network"] == "192.0.2.0/24" && e["comment"] == "office"),
        "{listed}"
    );
    g.guardctl_ok(&["allow", "remove", "192.0.2.0/24"]);
    g.guardctl_ok(&["ban", "192.0.2.78"]);
}

#[test]
fn without_write_access_the_error_is_clear() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    g.guardctl_ok(&["ban", "203.0.113.44"]);
    // A config that user `nobody` can read, pointing at the root-only store.
    let open_dir = tempfile::Builder::new()
        .prefix("ag-cli-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = open_dir.path().join("authguard.toml");
    std::fs::write(&cfg, format!("[store]\npath = {:?}\n", g.store_path())).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        &["ban", "203.0.113.45"][..],
        &["unban", "203.0.113.44"],
        &["list"],
    ] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(guardctl_path())
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            describe_output(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains("no permission") && err.contains("as root"),
            "{args:?}: {err}"
        );
        assert!(
            !err.to_lowercase().contains("sqlite") && !err.contains("unable to open"),
            "{args:?}: {err}"
        );
    }
    assert!(g.listed("203.0.113.44").is_some(), "nothing changed");
    assert!(g.listed("203.0.113.45").is_none(), "nothing changed");
}

#[test]
fn check_says_where_the_pam_line_belongs() {
    if !require_root() {
        return;
    }
    let g = Guard::new();
    let pam = g.dir().join("sshd.pam");
    let cases = [
        (
            "auth requisite pam_authguard.so\n@include common-auth\n",
            0,
            "before the password check",
        ),
        (
            "@include common-auth\nauth requisite pam_authguard.so\n",
            1,
            "move `auth requisite pam_authguard.so` above",
        ),
        (
            "@include common-auth\n",
            1,
            "add `auth requisite pam_authguard.so` above",
        ),
        (
            "auth optional pam_authguard.so\n@include common-auth\n",
            1,
            "not enforced",
        ),
    ];
    for (text, code, says) in cases {
        std::fs::write(&pam, text).unwrap();
        let out = g.guardctl(&["check", "--pam-file", pam.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{text}: {stdout}");
        assert!(stdout.contains(says), "{text}: {stdout}");
    }
    g.remove_store();
    std::fs::write(
        &pam,
        "auth requisite pam_authguard.so\n@include common-auth\n",
    )
    .unwrap();
    let out = g.guardctl(&["check", "--pam-file", pam.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("guardctl init"));
}

/// Seconds since the epoch of an RFC 3339 UTC time as guardctl prints it.
fn rfc3339_secs(s: &str) -> i64 {
    let out = Command::new("date")
        .args(["-u", "-d", s, "+%s"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `guardctl scan --events --json` on a log whose syslog daemon folded
/// repeats (rsyslog's `message repeated N times`): the folded line is one
/// event that happened N times, and the source's failures say so.
#[test]
fn scan_counts_a_folded_repeat_as_often_as_it_says() {
    if !require_root() {
        return;
    }
    let g = Guard::builder()
        .extra("[sshd_log]")
        .extra("pam_module = \"inactive\"")
        .start();
    let log = g.dir().join("auth.log");
    std::fs::write(
        &log,
        "Nov 24 10:00:01 h sshd[7]: Failed password for root from 203.0.113.5 port 4 ssh2\n\
         Nov 24 10:00:09 h sshd[7]: message repeated 3 times: [ Failed password for root from 203.0.113.5 port 4 ssh2]\n",
    )
    .expect("write the log");
    let log = log.to_str().expect("utf-8 path");
    let events: Vec<Value> =
        String::from_utf8_lossy(&g.guardctl_ok(&["scan", "--events", "--json", log]).stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect();
    let times: Vec<&Value> = events.iter().map(|e| &e["times"]).collect();
    assert_eq!(times, [&Value::from(1), &Value::from(3)], "{events:#?}");
    let summary = parse_json(&g.guardctl_ok(&["scan", "--json", log]));
    assert_eq!(
        summary["failures_by_source"][0],
        serde_json::json!({"source": "203.0.113.5", "failures": 4.0}),
        "{summary:#}"
    );
}
