//! authguard inside a real OpenSSH sshd: what a user of it is promised.
//!
//! Each test has its own guard (config, store, syslog socket) and its own
//! sshd on a free loopback port; attackers are 127.0.0.x sources (only
//! 127.0.0.1 is allow-listed).

use authguard_e2e::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::Duration;

const LOG_WAIT: Duration = Duration::from_secs(5);

fn diag(guard: &Guard, sshd: &Sshd) -> String {
    format!("{}{}", sshd.diag(), guard.diag())
}

/// `n` wrong-password logins from `source`, one after another; none may log in.
fn fail_logins(sshd: &Sshd, source: &str, n: usize, method: Method) -> Vec<ClientResult> {
    (0..n)
        .map(|_| {
            let r = sshd.login(source, WRONG_PASSWORD, method);
            assert!(
                !r.logged_in() && !r.timed_out,
                "wrong password: {}",
                r.describe()
            );
            r
        })
        .collect()
}

fn assert_pam_ban(guard: &Guard, sshd: &Sshd, address: &str) -> Value {
    let ban = guard.listed(address).unwrap_or_else(|| {
        panic!(
            "{address} is not in `guardctl list --json`: {:#?}\n{}",
            guard.list(),
            diag(guard, sshd)
        )
    });
    assert_eq!(ban["origin"], "pam", "{ban:#}");
    assert_eq!(ban["level"], 1, "{ban:#}");
    assert!(ban["expires"].is_string(), "a 10m ban must expire: {ban:#}");
    ban
}

fn burst_of_30_parallel_wrong_passwords_lets_exactly_max_failures_through(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    let barrier = Barrier::new(30);
    let results: Vec<ClientResult> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..30)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    sshd.login("127.0.0.2", WRONG_PASSWORD, Method::Password)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client thread"))
            .collect()
    });
    for r in &results {
        assert!(
            !r.logged_in(),
            "a wrong password logged in: {}",
            r.describe()
        );
        assert!(
            !r.timed_out,
            "a client hung: {}\n{}",
            r.describe(),
            diag(&guard, &sshd)
        );
    }
    let slowest = results.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let reached = sshd.reached_count("127.0.0.2");
    eprintln!(
        "burst on {platform:?}: {reached} of 30 attempts reached pam_unix; slowest client {slowest:?}"
    );
    assert_eq!(
        reached,
        5,
        "{reached} of 30 parallel attempts got past authguard (max_failures 5)\n{}",
        diag(&guard, &sshd)
    );
    assert_pam_ban(&guard, &sshd, "127.0.0.2");
    assert!(
        guard.wait_for_log("ban 127.0.0.2 for 10m after", LOG_WAIT),
        "no ban line logged\n{}",
        diag(&guard, &sshd)
    );
}

fn banned_source_is_refused_even_with_right_password_and_others_still_log_in(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    let wrong = fail_logins(&sshd, "127.0.0.3", 6, Method::Password);
    let reached = sshd.reached_count("127.0.0.3");
    assert_eq!(
        reached,
        5,
        "5 wrong passwords get through, the 6th does not\n{}",
        diag(&guard, &sshd)
    );
    eprintln!(
        "wrong password, 5th (admitted): {:?}; 6th (refused): {:?}",
        wrong[4].elapsed, wrong[5].elapsed
    );

    let right = sshd.login("127.0.0.3", RIGHT_PASSWORD, Method::Password);
    assert!(
        !right.logged_in(),
        "a banned source logged in: {}\n{}",
        right.describe(),
        diag(&guard, &sshd)
    );
    assert_eq!(
        sshd.reached_count("127.0.0.3"),
        reached,
        "the banned attempt reached pam_unix\n{}",
        sshd.diag()
    );
    eprintln!(
        "banned source, right password: refused after {:?}",
        right.elapsed
    );

    // What a person at a banned source sees. sshd relays PAM_ERROR_MSG only
    // for keyboard-interactive (as the instruction of an info request), and
    // ssh prints that at its default LogLevel INFO, not at ERROR; with
    // `password` authentication the message is never shown on failure.
    let kbd = sshd.login_at_level(
        "127.0.0.3",
        TEST_USER,
        RIGHT_PASSWORD,
        Method::KeyboardInteractive,
        "INFO",
    );
    assert!(!kbd.logged_in(), "{}", kbd.describe());
    assert!(
        kbd.stderr.contains("temporarily blocked"),
        "the refused client was not told why: {}\n{}",
        kbd.describe(),
        diag(&guard, &sshd)
    );
    assert_eq!(sshd.reached_count("127.0.0.3"), reached, "{}", sshd.diag());

    let other = sshd.login("127.0.0.4", RIGHT_PASSWORD, Method::Password);
    assert!(
        other.logged_in(),
        "another source cannot log in: {}\n{}",
        other.describe(),
        diag(&guard, &sshd)
    );
    assert_pam_ban(&guard, &sshd, "127.0.0.3");
    assert!(guard.listed("127.0.0.4").is_none(), "{:#?}", guard.list());
}

fn six_successful_logins_in_a_row_are_never_banned(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    for i in 1..=8 {
        let r = sshd.login("127.0.0.5", RIGHT_PASSWORD, Method::Password);
        assert!(
            r.logged_in(),
            "login {i} of 8 failed: {}\n{}",
            r.describe(),
            diag(&guard, &sshd)
        );
    }
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());
}

fn keyboard_interactive_is_guarded_the_same_way(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    fail_logins(&sshd, "127.0.0.8", 5, Method::KeyboardInteractive);
    assert_eq!(
        sshd.reached_count("127.0.0.8"),
        5,
        "{}",
        diag(&guard, &sshd)
    );
    fail_logins(&sshd, "127.0.0.8", 1, Method::KeyboardInteractive);
    let right = sshd.login("127.0.0.8", RIGHT_PASSWORD, Method::KeyboardInteractive);
    assert!(
        !right.logged_in(),
        "a banned source logged in: {}\n{}",
        right.describe(),
        diag(&guard, &sshd)
    );
    assert_eq!(
        sshd.reached_count("127.0.0.8"),
        5,
        "the 6th and 7th attempts must be refused before pam_unix\n{}",
        diag(&guard, &sshd)
    );
    assert_pam_ban(&guard, &sshd, "127.0.0.8");

    // sshd runs keyboard-interactive PAM in a child process, so setcred (in
    // another process) must still find and mark the attempt a success.
    for i in 1..=7 {
        let r = sshd.login("127.0.0.9", RIGHT_PASSWORD, Method::KeyboardInteractive);
        assert!(
            r.logged_in(),
            "kbd-interactive login {i} of 7 failed: {}\n{}",
            r.describe(),
            diag(&guard, &sshd)
        );
    }
    assert!(
        guard.listed("127.0.0.9").is_none(),
        "successful logins got banned: {:#?}\n{}",
        guard.list(),
        diag(&guard, &sshd)
    );
}

fn unban_lets_the_source_back_in_at_once(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    fail_logins(&sshd, "127.0.0.6", 6, Method::Password);
    assert_pam_ban(&guard, &sshd, "127.0.0.6");
    let refused = sshd.login("127.0.0.6", RIGHT_PASSWORD, Method::Password);
    assert!(!refused.logged_in(), "{}", refused.describe());

    let out = guard.guardctl(&["unban", "127.0.0.6"]);
    assert!(
        out.status.success(),
        "guardctl unban: {}",
        describe_output(&out)
    );
    let back = sshd.login("127.0.0.6", RIGHT_PASSWORD, Method::Password);
    assert!(
        back.logged_in(),
        "unbanned source cannot log in: {}\n{}",
        back.describe(),
        diag(&guard, &sshd)
    );
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());

    let shown = guard.show("127.0.0.6");
    let bans = shown["bans"]
        .as_array()
        .unwrap_or_else(|| panic!("no `bans` array: {shown:#}"));
    assert!(
        !bans.is_empty(),
        "the lifted ban is gone from history: {shown:#}"
    );
    // The history tells the truth: one login succeeded, the wrong passwords did not.
    let attempts = shown["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no `attempts` array: {shown:#}"));
    let successes = attempts
        .iter()
        .filter(|a| a["outcome"] == "success")
        .count();
    assert_eq!(
        successes,
        1,
        "`guardctl show` must list exactly the one successful login as a success: {shown:#}\n{}",
        diag(&guard, &sshd)
    );
}

fn publickey_login_is_unaffected(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    let r = sshd.login_with_key("127.0.0.10");
    assert!(r.logged_in(), "{}\n{}", r.describe(), diag(&guard, &sshd));
    assert_eq!(guard.list(), Vec::<Value>::new(), "{}", guard.diag());
}

fn fail_open_when_store_is_missing(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    guard.remove_store();
    let sshd = Sshd::start_on(platform, &guard);
    let open = sshd.login("127.0.0.11", RIGHT_PASSWORD, Method::Password);
    assert!(
        open.logged_in(),
        "fail_mode=open locked the user out: {}\n{}",
        open.describe(),
        diag(&guard, &sshd)
    );
    assert!(
        wait_until(LOG_WAIT, || guard
            .log_lines()
            .iter()
            .any(|l| syslog_ident(l) == "pam_authguard"
                && (l.contains("fail") || l.contains("store")))),
        "the module did not log why it admitted\n{}",
        guard.diag()
    );

    guard.set_config(|c| c.fail_mode = "closed".into());
    let closed = sshd.login("127.0.0.11", RIGHT_PASSWORD, Method::Password);
    assert!(
        !closed.logged_in(),
        "fail_mode=closed let a login through: {}\n{}",
        closed.describe(),
        diag(&guard, &sshd)
    );
    assert_eq!(sshd.reached_count("127.0.0.11"), 1, "{}", sshd.diag());
}

fn locked_store_is_survived_within_busy_timeout(platform: Platform) {
    if !require_root() {
        return;
    }
    let guard = Guard::new();
    let sshd = Sshd::start_on(platform, &guard);
    let baseline = sshd.login("127.0.0.7", RIGHT_PASSWORD, Method::Password);
    assert!(
        baseline.logged_in(),
        "{}\n{}",
        baseline.describe(),
        diag(&guard, &sshd)
    );

    // Another writer holds the store's write lock (bounded: at most 8 s).
    let mut holder = Command::new("timeout")
        .arg("8")
        .arg("sqlite3")
        .arg(guard.store_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sqlite3");
    let mut stdin = holder.stdin.take().expect("sqlite3 stdin");
    stdin
        .write_all(b"BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        .expect("send BEGIN EXCLUSIVE");
    stdin.flush().expect("flush");
    let ready = read_line_with_timeout(
        holder.stdout.take().expect("sqlite3 stdout"),
        Duration::from_secs(5),
    );
    assert!(
        ready.as_ref().is_some_and(|(l, _)| l.trim() == "locked"),
        "sqlite3 did not take the write lock: {ready:?}"
    );

    let locked = sshd.login("127.0.0.7", RIGHT_PASSWORD, Method::Password);
    drop(stdin);
    let _ = holder.kill();
    let _ = holder.wait();
    eprintln!(
        "login without lock: {:?}; with the store locked (busy_timeout 1s): {:?}",
        baseline.elapsed, locked.elapsed
    );
    assert!(
        locked.logged_in(),
        "a locked store locked the user out (fail_mode=open): {}\n{}",
        locked.describe(),
        diag(&guard, &sshd)
    );
    assert!(
        locked.elapsed < Duration::from_secs(1 + 4),
        "login took {:?} with the store locked (busy_timeout 1s)\n{}",
        locked.elapsed,
        diag(&guard, &sshd)
    );
    assert!(
        wait_until(LOG_WAIT, || guard
            .log_lines()
            .iter()
            .any(|l| syslog_ident(l) == "pam_authguard"
                && (l.contains("lock") || l.contains("busy")))),
        "the module did not log that the store was locked\n{}",
        guard.diag()
    );
}

/// Every promise above, proven on the machine's own sshd (Debian 12 /
/// OpenSSH 9.2 in CI) and on Debian 13's OpenSSH 10.0.
macro_rules! on_platform {
    ($module:ident, $platform:ident) => {
        mod $module {
            use authguard_e2e::Platform;

            #[test]
            fn burst_of_30_parallel_wrong_passwords_lets_exactly_max_failures_through() {
                super::burst_of_30_parallel_wrong_passwords_lets_exactly_max_failures_through(
                    Platform::$platform,
                )
            }
            #[test]
            fn banned_source_is_refused_even_with_right_password_and_others_still_log_in() {
                super::banned_source_is_refused_even_with_right_password_and_others_still_log_in(
                    Platform::$platform,
                )
            }
            #[test]
            fn six_successful_logins_in_a_row_are_never_banned() {
                super::six_successful_logins_in_a_row_are_never_banned(Platform::$platform)
            }
            #[test]
            fn keyboard_interactive_is_guarded_the_same_way() {
                super::keyboard_interactive_is_guarded_the_same_way(Platform::$platform)
            }
            #[test]
            fn unban_lets_the_source_back_in_at_once() {
                super::unban_lets_the_source_back_in_at_once(Platform::$platform)
            }
            #[test]
            fn publickey_login_is_unaffected() {
                super::publickey_login_is_unaffected(Platform::$platform)
            }
            #[test]
            fn fail_open_when_store_is_missing() {
                super::fail_open_when_store_is_missing(Platform::$platform)
            }
            #[test]
            fn locked_store_is_survived_within_busy_timeout() {
                super::locked_store_is_survived_within_busy_timeout(Platform::$platform)
            }
        }
    };
}
on_platform!(host, Host);
on_platform!(debian13, Debian13);
