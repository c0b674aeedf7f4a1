//! The harness itself, proven without authguard: a real sshd with the plain
//! pam_unix stack lets the right password in and keeps the wrong one out, by
//! password and by keyboard-interactive, and reached.log counts the attempts.

use authguard_e2e::*;

#[test]
fn baseline_sshd_without_authguard_behaves_like_stock_sshd() {
    if !require_root() {
        return;
    }
    let sshd = Sshd::start_unguarded();

    let ok = sshd.login("127.0.0.2", RIGHT_PASSWORD, Method::Password);
    assert!(ok.logged_in(), "{}\n{}", ok.describe(), sshd.diag());

    let ok = sshd.login("127.0.0.2", RIGHT_PASSWORD, Method::KeyboardInteractive);
    assert!(ok.logged_in(), "{}\n{}", ok.describe(), sshd.diag());

    let bad = sshd.login("127.0.0.3", WRONG_PASSWORD, Method::Password);
    eprintln!("baseline: wrong password rejected after {:?}", bad.elapsed);
    assert!(!bad.logged_in(), "{}", bad.describe());
    assert!(!bad.timed_out, "{}", bad.describe());
    let bad = sshd.login("127.0.0.3", WRONG_PASSWORD, Method::KeyboardInteractive);
    assert!(!bad.logged_in(), "{}", bad.describe());
    assert!(!bad.timed_out, "{}", bad.describe());

    assert_eq!(sshd.reached_count("127.0.0.2"), 2, "{}", sshd.diag());
    assert_eq!(sshd.reached_count("127.0.0.3"), 2, "{}", sshd.diag());
    assert!(
        sshd.reached_lines().iter().all(|l| l.ends_with(" agtest")),
        "{}",
        sshd.diag()
    );

    let key = sshd.login_with_key("127.0.0.4");
    assert!(key.logged_in(), "{}\n{}", key.describe(), sshd.diag());
    // A public-key login never runs the PAM auth stack.
    assert_eq!(sshd.reached_count("127.0.0.4"), 0, "{}", sshd.diag());
}

/// How sshd shows a PAM_ERROR_MSG from a refusing requisite module (the way
/// authguard refuses) to the client; pam_nologin with `file=` plays the part:
/// it sends the file's text as PAM_ERROR_MSG and fails.
///
/// Observed with OpenSSH 9.2: the text reaches a keyboard-interactive client
/// (as the instruction of an info request with no prompts), which prints it
/// at ssh's default LogLevel INFO but not at ERROR; a `password` client is
/// never shown it (sshd keeps such text for after a successful login).
#[test]
fn baseline_pam_error_msg_from_a_refusing_module_reaches_a_kbd_interactive_client() {
    if !require_root() {
        return;
    }
    let sshd = Sshd::with_stack(Stack::Custom(
        "auth requisite pam_nologin.so file={dir}/nologin\n\
         auth optional pam_exec.so quiet {reached}\n\
         auth required pam_unix.so nodelay\n\
         account required pam_unix.so\n\
         session required pam_unix.so\n"
            .into(),
    ));
    std::fs::write(sshd.dir().join("nologin"), "Go away, blocked for now.\n").unwrap();
    let mut kbd_info = None;
    for method in [Method::Password, Method::KeyboardInteractive] {
        for level in ["ERROR", "INFO"] {
            let r = ssh_password_at_level(
                sshd.port(),
                "127.0.0.2",
                TEST_USER,
                RIGHT_PASSWORD,
                method,
                level,
            );
            assert!(!r.logged_in(), "{}", r.describe());
            eprintln!(
                "{method:?} with LogLevel={level}: refusal message shown: {}",
                r.stderr.contains("Go away")
            );
            if method == Method::KeyboardInteractive && level == "INFO" {
                kbd_info = Some(r);
            }
        }
    }
    assert_eq!(sshd.reached_count("127.0.0.2"), 0, "{}", sshd.diag());
    let kbd = kbd_info.expect("ran");
    assert!(
        kbd.stderr.contains("Go away"),
        "{}\n{}",
        kbd.describe(),
        sshd.diag()
    );
}
