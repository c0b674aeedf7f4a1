//! Key-only signaling against the real OpenSSH: `sshd -T -C` on the
//! rendered snippet, a real sshd reloaded by `guardctl keyonly apply`, a
//! rejected configuration never activated, and the PAM module refusing a
//! key-only source's password with its message.

use authguard_e2e::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const KEYONLY_MESSAGE: &str = "Password logins are disabled for your address; use an SSH key.";

/// A guard whose `[keyonly]` writes into `dir` and validates `sshd_config`.
fn keyonly_guard(dir: &Path, sshd_config: &Path, reload: &str) -> Guard {
    Guard::builder()
        .allow(&["127.0.0.1/32", "192.0.2.0/24"])
        .extra("[keyonly]")
        .extra(&format!("sshd_config_dir = \"{}\"", dir.display()))
        .extra(&format!("sshd_config = \"{}\"", sshd_config.display()))
        .extra(&format!("reload = {reload}"))
        .start()
}

/// Bans `source` for a second and waits until the ban has ended: a past offender.
fn past_offender(guard: &Guard, source: &str) {
    guard.guardctl_ok(&["ban", source, "--for", "1s", "--reason", "test offence"]);
    std::thread::sleep(Duration::from_millis(2_100));
    assert!(
        guard.listed(source).is_none(),
        "the 1 s ban of {source} is still active"
    );
}

/// A real sshd guarded by `guard`, including `drop_in`, and `[keyonly]`
/// set to write there and reload that sshd; `more` lines follow the table.
fn sshd_with_keyonly(guard: &Guard, drop_in: &Path, more: &[&str]) -> Sshd {
    let sshd = Sshd::with_stack_and_config(
        Stack::Guarded(guard.config_path()),
        &format!("Include {}/*.conf\n", drop_in.display()),
    );
    guard.set_config(|c| {
        c.extra.extend(keyonly_table(&sshd, drop_in, "kill -HUP"));
        c.extra.extend(more.iter().map(|l| l.to_string()));
    });
    sshd
}

/// `[keyonly]` writing into `drop_in`, validating `sshd`'s config, and
/// reloading it with `signal_command PID` (run by `/bin/sh`, as the
/// Debian 13 root may have no `kill` program).
fn keyonly_table(sshd: &Sshd, drop_in: &Path, signal_command: &str) -> Vec<String> {
    let pid = std::fs::read_to_string(sshd.dir().join("sshd.pid")).expect("sshd.pid");
    vec![
        "[keyonly]".into(),
        format!("sshd_config_dir = \"{}\"", drop_in.display()),
        format!(
            "sshd_config = \"{}\"",
            sshd.dir().join("sshd_config").display()
        ),
        format!(
            "reload = [\"/bin/sh\", \"-c\", \"{signal_command} {}\"]",
            pid.trim()
        ),
    ]
}

/// `sshd -T -f CONFIG -C addr=ADDR,…`: the effective settings for a connection from `addr`.
fn effective(config: &Path, addr: &str) -> String {
    let out = Command::new("/usr/sbin/sshd")
        .args(["-T", "-f"])
        .arg(config)
        .arg("-C")
        .arg(format!(
            "addr={addr},user={TEST_USER},host=client,laddr=127.0.0.1,lport=22"
        ))
        .output()
        .expect("sshd -T");
    assert!(
        out.status.success(),
        "sshd -T: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sshd_t_sees_offenders_key_only_and_everyone_else_unchanged() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let drop_in = dir.path().join("sshd_config.d");
    let config = dir.path().join("sshd_config");
    let host_key = dir.path().join("host_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .expect("ssh-keygen");
    assert!(keygen.success());
    std::fs::write(
        &config,
        format!(
            "Include {}/*.conf\nHostKey {}\nPasswordAuthentication yes\nKbdInteractiveAuthentication yes\nUsePAM yes\n",
            drop_in.display(),
            host_key.display()
        ),
    )
    .expect("sshd_config");
    let guard = keyonly_guard(&drop_in, &config, "\"none\"");
    past_offender(&guard, "203.0.113.7");
    // An allowed source with a ban history: banned, then its network allowed.
    guard.set_config(|c| c.allow.retain(|a| a != "192.0.2.0/24"));
    past_offender(&guard, "192.0.2.5");
    guard.set_config(|c| c.allow.push("192.0.2.0/24".into()));
    let applied = guard.guardctl(&["keyonly", "apply"]);
    assert!(applied.status.success(), "{}", describe_output(&applied));

    let offender = effective(&config, "203.0.113.7");
    assert!(
        offender.contains("authenticationmethods publickey"),
        "{offender}"
    );
    assert!(offender.contains("passwordauthentication no"), "{offender}");
    assert!(
        offender.contains("kbdinteractiveauthentication no"),
        "{offender}"
    );
    let clean = effective(&config, "203.0.113.8");
    assert!(clean.contains("authenticationmethods any"), "{clean}");
    assert!(clean.contains("passwordauthentication yes"), "{clean}");
    // 192.0.2.0/24 is in the config's allow list: never key-only.
    let allowed = effective(&config, "192.0.2.5");
    assert!(allowed.contains("authenticationmethods any"), "{allowed}");
}

#[test]
fn apply_reloads_a_real_sshd_that_then_offers_offenders_only_publickey() {
    if !require_root() {
        return;
    }
    let drop_in = tempfile::tempdir().expect("tempdir");
    let guard = Guard::builder().allow(&["127.0.0.1/32"]).start();
    let sshd = sshd_with_keyonly(&guard, drop_in.path(), &[]);
    past_offender(&guard, "127.0.0.5");

    let listening = || sshd.sshd_log().matches("Server listening on").count();
    let before = listening();
    let applied = guard.guardctl(&["keyonly", "apply"]);
    assert!(applied.status.success(), "{}", describe_output(&applied));
    assert!(String::from_utf8_lossy(&applied.stdout).contains("sshd reloaded"));
    assert!(
        wait_until(Duration::from_secs(10), || listening() > before),
        "sshd did not restart on SIGHUP\n{}",
        sshd.diag()
    );

    let offered = ssh_password_at_level(
        sshd.port(),
        "127.0.0.5",
        TEST_USER,
        RIGHT_PASSWORD,
        Method::Password,
        "DEBUG1",
    );
    assert_told_publickey_only(&offered, &sshd);
    let with_key = sshd.login_with_key("127.0.0.5");
    assert!(
        with_key.logged_in(),
        "the offender's key login failed: {}",
        with_key.describe()
    );
    let clean = sshd.login("127.0.0.6", RIGHT_PASSWORD, Method::Password);
    assert!(
        clean.logged_in(),
        "a clean source lost its password login: {}",
        clean.describe()
    );

    // A configuration sshd rejects is never activated: plant a bad file,
    // make the set change, and the previous snippet stays as it was.
    let snippet = drop_in.path().join("authguard-keyonly.conf");
    let before = std::fs::read_to_string(&snippet).expect("snippet");
    std::fs::write(
        drop_in.path().join("zz-planted.conf"),
        "NoSuchKeyword yes\n",
    )
    .expect("plant");
    past_offender(&guard, "127.0.0.7");
    let refused = guard.guardctl(&["keyonly", "apply"]);
    assert!(
        !refused.status.success(),
        "apply accepted a config sshd rejects: {}",
        describe_output(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("sshd rejected"),
        "{}",
        describe_output(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(&snippet).expect("snippet"),
        before,
        "the previous file must stay"
    );
}

#[test]
fn a_key_only_source_is_told_so_through_pam() {
    if !require_root() {
        return;
    }
    let guard = Guard::builder().start();
    let pam = PamService::permit(&guard);
    past_offender(&guard, "203.0.113.9");
    let run = pam.run("203.0.113.9", "root", &["authenticate"]);
    assert_ne!(run.code(), Some(0), "{}", run.describe());
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains(KEYONLY_MESSAGE),
        "the key-only message did not reach the client: {}",
        run.describe()
    );
    assert_eq!(
        pam.reached_count("203.0.113.9"),
        0,
        "the password was checked"
    );
    let clean = pam.run("203.0.113.10", "root", &["authenticate"]);
    assert_eq!(clean.code(), Some(0), "{}", clean.describe());
}

/// `[geo] keyonly`: a country's sources must use a key, told by sshd once
/// the snippet is applied and refused by PAM before that, each refused
/// password counted (persistence earns a ban), while their key logins and
/// everyone else's passwords work.
/// `keyonly.mode = "offenders"` (the default): a source that keeps guessing
/// after its ban is refused unchecked, but every refused password counts,
/// so it earns a longer ban, then the recidive ban, instead of an amnesty.
#[test]
fn a_guesser_under_key_only_earns_longer_bans_then_the_recidive_ban() {
    if !require_root() {
        return;
    }
    let guard = GuardConfig {
        ban_time: "1s".into(),
        ..Guard::builder().max_failures(2)
    }
    .extra("[recidive]")
    .extra("bans = 3")
    .extra("window = \"1h\"")
    .extra("ban_time = \"1d\"")
    .start();
    let pam = PamService::deny(&guard);
    let source = "203.0.113.90";
    let recidive = || {
        guard
            .listed(source)
            .is_some_and(|b| b["origin"] == "recidive")
    };
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !recidive() && std::time::Instant::now() < end {
        pam.run(source, "root", &["authenticate"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let bans: Vec<Value> = parse_json(&guard.guardctl_ok(&["list", "--all", "--json"]))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b["address"] == source)
        .collect();
    let origins: Vec<&str> = bans.iter().filter_map(|b| b["origin"].as_str()).collect();
    assert!(recidive(), "never reached the recidive ban: {bans:#?}");
    assert_eq!(
        origins.iter().filter(|o| **o == "pam").count(),
        2,
        "{bans:#?}"
    );
    assert_eq!(
        pam.reached_count(source),
        2,
        "only the first two passwords were checked: the rest were refused key-only"
    );
}

#[test]
fn a_key_only_country_may_log_in_with_a_key_only() {
    if !require_root() {
        return;
    }
    let drop_in = tempfile::tempdir().expect("tempdir");
    let guard = Guard::builder()
        .allow(&["127.0.0.1/32"])
        .max_failures(3)
        .start();
    let fixture = guard.dir().join("countries.csv");
    std::fs::write(
        &fixture,
        "127.0.0.16,127.0.0.31,XA\n127.0.0.32,127.0.0.63,XB\n",
    )
    .expect("write the fixture");
    guard.guardctl_ok(&["geo", "import", fixture.to_str().expect("UTF-8 path")]);
    // Past offenders are off: only the country makes a source key-only.
    let sshd = sshd_with_keyonly(
        &guard,
        drop_in.path(),
        &["mode = \"off\"", "[geo]", "keyonly = [\"xa\"]"],
    );

    // Before sshd hears of it, PAM refuses the country's passwords, the
    // right one included, without checking them; they count all the same.
    for _ in 0..4 {
        let refused = sshd.login("127.0.0.20", RIGHT_PASSWORD, Method::Password);
        assert!(!refused.logged_in(), "{}", refused.describe());
    }
    assert_eq!(
        sshd.reached_count("127.0.0.20"),
        0,
        "a password was checked"
    );
    assert!(
        guard
            .listed("127.0.0.20")
            .is_some_and(|b| b["origin"] == "pam"),
        "the refused passwords were not counted: {:?}",
        guard.list()
    );
    assert_eq!(guard.show("127.0.0.20")["country"], "XA");

    let applied = guard.guardctl(&["keyonly", "apply"]);
    assert!(applied.status.success(), "{}", describe_output(&applied));
    let snippet = std::fs::read_to_string(drop_in.path().join("authguard-keyonly.conf"))
        .expect("the snippet");
    assert!(snippet.contains("127.0.0.16/28"), "{snippet}");
    assert!(
        !snippet.contains("127.0.0.32/27"),
        "XB is not key-only: {snippet}"
    );
    let status = parse_json(&guard.guardctl_ok(&["keyonly", "status", "--json"]));
    assert_eq!(status["countries"][0], "XA", "{status}");
    assert_eq!(
        status["countries"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    assert_eq!(status["in_step"], true, "{status}");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let offered = ssh_password_at_level(
                sshd.port(),
                "127.0.0.21",
                TEST_USER,
                RIGHT_PASSWORD,
                Method::Password,
                "DEBUG1",
            );
            let told = |eol: &str| {
                let line = format!("Authentications that can continue: publickey{eol}");
                offered.stderr.contains(&line)
            };
            !offered.logged_in() && (told("\n") || told("\r\n"))
        }),
        "the reloaded sshd did not tell XA's client that only keys work\n{}",
        sshd.diag()
    );
    let with_key = sshd.login_with_key("127.0.0.22");
    assert!(with_key.logged_in(), "{}", with_key.describe());
    let other_country = sshd.login("127.0.0.40", RIGHT_PASSWORD, Method::Password);
    assert!(other_country.logged_in(), "{}", other_country.describe());

    let check = || String::from_utf8_lossy(&guard.guardctl(&["check"]).stdout).into_owned();
    assert!(
        check().contains("ok   key-only countries: XA"),
        "{}",
        check()
    );
    let session = [("SSH_CONNECTION", Some("127.0.0.20 50000 127.0.0.1 22"))];
    let in_xa = guard.guardctl_env(&session, &["check"]);
    assert!(
        String::from_utf8_lossy(&in_xa.stdout).contains(
            "WARN 127.0.0.20 (your SSH session) is in XA, which is key-only: \
             your next password login from there will be refused"
        ),
        "{}",
        describe_output(&in_xa)
    );
    guard.guardctl_ok(&["geo", "block", "XA", "--force"]);
    assert!(
        check().contains("WARN key-only and blocked as well: XA"),
        "{}",
        check()
    );
    guard.set_config(|c| c.extra.push("keyonly = [\"XA\", \"XC\"]".into()));
    guard.set_config(|c| {
        let at = c
            .extra
            .iter()
            .position(|l| l == "keyonly = [\"xa\"]")
            .expect("the line");
        c.extra.remove(at);
    });
    assert!(
        check().contains("WARN [geo] keyonly names XC, which the country data does not hold"),
        "{}",
        check()
    );
}

/// Whether sshd refuses a new connection from `source` at once (PerSourcePenalties'
/// `Not allowed at this time`) instead of greeting it with its banner.
fn refused_by_sshd(sshd: &Sshd, source: std::net::Ipv4Addr) -> bool {
    use std::io::Read as _;
    let Ok(mut stream) = sshd.connect_from(source) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut greeting = [0u8; 11];
    stream.read_exact(&mut greeting).is_ok() && greeting == *b"Not allowed"
}

/// Why key-only signaling must not reload sshd (OpenSSH 9.8+): a reload
/// re-executes the listener, which forgets every PerSourcePenalties
/// penalty. Shown on Debian 13's real OpenSSH 10.0: a source sshd refuses
/// for a failed password is greeted again right after the SIGHUP that
/// `keyonly apply` (with `reload`) sends.
#[test]
fn on_openssh_10_a_reload_forgives_every_penalised_source() {
    if !require_root() {
        return;
    }
    let source = std::net::Ipv4Addr::new(127, 0, 0, 31);
    let sshd = Sshd::launch(
        Platform::Debian13,
        Stack::Unguarded,
        "PerSourcePenalties authfail:60s min:15s max:600s\n",
    );
    let r = sshd.login(&source.to_string(), WRONG_PASSWORD, Method::Password);
    assert!(!r.logged_in(), "{}", r.describe());
    assert!(
        wait_until(Duration::from_secs(10), || refused_by_sshd(&sshd, source)),
        "PerSourcePenalties never refused {source}\n{}",
        sshd.diag()
    );

    let listening = || sshd.sshd_log().matches("Server listening on").count();
    let before = listening();
    let pid = std::fs::read_to_string(sshd.dir().join("sshd.pid")).expect("sshd.pid");
    let hup = Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .expect("kill");
    assert!(hup.success());
    assert!(
        wait_until(Duration::from_secs(10), || listening() > before),
        "sshd did not re-execute on SIGHUP\n{}",
        sshd.diag()
    );
    assert!(
        !refused_by_sshd(&sshd, source),
        "sshd kept the penalty across a reload: this test's premise is gone\n{}",
        sshd.diag()
    );
}

/// Asserts that a password login at `DEBUG1` failed and the client was
/// told only public keys are accepted.
fn assert_told_publickey_only(offered: &ClientResult, sshd: &Sshd) {
    assert!(!offered.logged_in(), "{}", offered.describe());
    let told = offered
        .stderr
        .contains("Authentications that can continue: publickey\n")
        || offered
            .stderr
            .contains("Authentications that can continue: publickey\r\n");
    assert!(
        told,
        "the client was not told only publickey is accepted:\n{}\n{}",
        offered.describe(),
        sshd.diag()
    );
}

/// The contract of `[keyonly] method = "redirect"`: a ban's source is
/// key-only within this long of the ban.
const KEYONLY_WITHIN: Duration = Duration::from_secs(1);

/// Key-only by steering on Debian 12's OpenSSH 9.2, with real nftables in
/// a lab: `keyonly apply` writes the key-only listener and reloads sshd
/// once; after that a new offender is one set element (within 1 s of its
/// ban), it is offered only public keys and logs in with its key, a clean
/// source keeps its password, and sshd is never reloaded again.
#[test]
fn redirect_makes_a_new_offender_key_only_within_a_second_without_reloading_sshd() {
    use authguard_e2e::netns::{Daemon, Lab, SERVER_V4, WAIT};
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[
        ("atk", &["203.0.113.10/24"]),
        ("clean", &["198.51.100.20/24"]),
    ]);
    let ns = lab.server_ns().to_owned();
    let drop_in = tempfile::tempdir().expect("tempdir");
    let guard = Guard::builder()
        .allow(&["127.0.0.1/32"])
        .netns(&ns)
        .extra("[firewall]")
        .extra("backend = \"nftables\"")
        .extra("ports = [22]")
        .start();
    let sshd = Sshd::with_stack_and_config_in_netns(
        Stack::Guarded(guard.config_path()),
        &lab,
        &format!("Include {}/*.conf\n", drop_in.path().display()),
    );
    guard.set_config(|c| {
        c.extra
            .extend(keyonly_table(&sshd, drop_in.path(), "kill -HUP"));
        c.extra.push("method = \"redirect\"".into());
    });
    let listening = || sshd.sshd_log().matches("Server listening on").count();

    // Set-up: one reload, after which sshd also listens on 2223.
    let applied = guard.guardctl_in(Some(&ns), &["keyonly", "apply"]);
    assert!(applied.status.success(), "{}", describe_output(&applied));
    assert!(String::from_utf8_lossy(&applied.stdout).contains("sshd reloaded"));
    assert!(
        wait_until(Duration::from_secs(10), || sshd
            .sshd_log()
            .contains("Server listening on 0.0.0.0 port 2223")),
        "no key-only listener after the reload\n{}",
        sshd.diag()
    );
    let daemon = Daemon::start(&guard, &lab);
    assert!(
        wait_until(WAIT, || lab.ruleset().contains("jump keyonly")),
        "the daemon does not steer\n--- daemon ---\n{}\n{}",
        daemon.stderr(),
        lab.ruleset()
    );
    let reloads_before = listening();
    let status = guard.guardctl_in(Some(&ns), &["keyonly", "status", "--json"]);
    let status = parse_json(&status);
    assert_eq!(
        (
            &status["method"],
            &status["port"],
            &status["listening"],
            &status["in_step"]
        ),
        (&"redirect".into(), &2223.into(), &true.into(), &true.into()),
        "{status}"
    );
    let check = guard.guardctl_in(Some(&ns), &["check"]);
    assert!(
        String::from_utf8_lossy(&check.stdout)
            .contains("key-only sources are steered to sshd's key-only listener on port 2223"),
        "{}",
        describe_output(&check)
    );

    // A new offender: banned for 2 s, key-only from then on.
    let offender = "203.0.113.10";
    let banned_at = std::time::Instant::now();
    let ban = guard.guardctl_in(
        Some(&ns),
        &["ban", offender, "--for", "2s", "--reason", "test"],
    );
    assert!(ban.status.success(), "{}", describe_output(&ban));
    assert!(
        wait_until(WAIT, || lab.set_covers("keyonly4_32", offender)),
        "the offender never reached the key-only set\n--- daemon ---\n{}\n{}",
        daemon.stderr(),
        lab.ruleset()
    );
    let took = banned_at.elapsed();
    eprintln!("key-only in the firewall {took:?} after the ban");
    assert!(took <= KEYONLY_WITHIN, "key-only took {took:?}");
    assert!(
        wait_until(WAIT, || guard.listed(offender).is_none()),
        "the 2 s ban did not end"
    );
    lab.wait_until_open("atk", offender, SERVER_V4, 22, WAIT)
        .expect("the ended ban still drops the offender");

    let offered = lab.ssh_password_at_level(
        "atk",
        offender,
        SERVER_V4,
        RIGHT_PASSWORD,
        Method::Password,
        "DEBUG1",
    );
    assert_told_publickey_only(&offered, &sshd);
    let with_key = lab.ssh_key_only("atk", offender, SERVER_V4, &sshd.client_key());
    assert!(with_key.logged_in(), "{}", with_key.describe());
    assert!(
        sshd.sshd_log().contains(&format!("from {offender} port")),
        "{}",
        sshd.diag()
    );
    assert!(
        sshd.sshd_log().contains(" on 192.0.2.1 port 2223"),
        "the offender's connections did not reach the key-only port:\n{}",
        sshd.diag()
    );
    let clean = lab.ssh_password(
        "clean",
        "198.51.100.20",
        SERVER_V4,
        RIGHT_PASSWORD,
        Method::Password,
    );
    assert!(clean.logged_in(), "{}", clean.describe());
    assert_eq!(
        listening(),
        reloads_before,
        "sshd was reloaded for an offender\n{}",
        sshd.diag()
    );
}

/// `guardctl daemon` inside a Debian 13 machine (its network, its nft,
/// its sshd); ended on drop.
struct MachineDaemon {
    child: std::process::Child,
    err: std::path::PathBuf,
}

impl MachineDaemon {
    fn start(machine: &authguard_e2e::trixie::Machine, guard: &Guard) -> MachineDaemon {
        use std::os::unix::process::CommandExt as _;
        let err = guard.dir().join("machine-daemon.err");
        let child = machine
            .command(&guardctl_path().to_string_lossy())
            .arg("--config")
            .arg(guard.config_path())
            .arg("daemon")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).expect("daemon.err"))
            .process_group(0)
            .spawn()
            .expect("spawn guardctl daemon in the machine");
        MachineDaemon { child, err }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for MachineDaemon {
    fn drop(&mut self) {
        let pgid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: killpg(2) on the process group this struct started.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// guardctl inside the machine, as the daemon runs it.
fn guardctl_in_machine(
    machine: &authguard_e2e::trixie::Machine,
    guard: &Guard,
    args: &[&str],
) -> Finished {
    let mut cmd = machine.command(&guardctl_path().to_string_lossy());
    cmd.arg("--config").arg(guard.config_path()).args(args);
    run_with_timeout(&mut cmd, None, Duration::from_secs(30))
}

/// True when set `set` of table `inet authguard` in the machine holds `addr`.
fn machine_set_holds(machine: &authguard_e2e::trixie::Machine, set: &str, addr: &str) -> bool {
    let listed = machine.run("nft", &["list", "set", "inet", "authguard", set]);
    listed
        .stdout
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .any(|token| token == addr)
}

/// The point of steering (issue 13, item 7), on Debian 13's real OpenSSH
/// 10.0 with PerSourcePenalties on: after the one set-up reload, a new
/// offender becomes key-only within 1 s of its ban and logs in with its
/// key, while a source sshd penalised before stays refused (its penalty
/// survives: sshd was not reloaded again).
#[test]
fn on_openssh_10_steering_keeps_every_penalty() {
    if !require_root() {
        return;
    }
    let machine = std::sync::Arc::new(authguard_e2e::trixie::Machine::boot());
    let drop_in = tempfile::tempdir().expect("tempdir");
    let guard = Guard::builder()
        .allow(&["127.0.0.1/32"])
        .extra("[firewall]")
        .extra("backend = \"nftables\"")
        .extra("ports = [22]")
        .start();
    let sshd = Sshd::launch_in(
        std::sync::Arc::clone(&machine),
        Stack::Guarded(guard.config_path()),
        &format!(
            "Include {}/*.conf\nPerSourcePenalties authfail:60s min:15s max:600s\n",
            drop_in.path().display()
        ),
    );
    guard.set_config(|c| {
        c.extra
            .extend(keyonly_table(&sshd, drop_in.path(), "kill -HUP"))
    });
    let listening = || sshd.sshd_log().matches("Server listening on").count();

    // Set-up: the one reload (method "auto" is "redirect" with nftables).
    let applied = guardctl_in_machine(&machine, &guard, &["keyonly", "apply"]);
    assert!(applied.status.success(), "{}", applied.describe());
    assert!(
        applied.stdout.contains("sshd reloaded"),
        "{}",
        applied.describe()
    );
    assert!(
        wait_until(Duration::from_secs(10), || sshd
            .sshd_log()
            .contains("Server listening on 127.0.0.1 port 2223")),
        "no key-only listener after the reload\n{}",
        sshd.diag()
    );
    let daemon = MachineDaemon::start(&machine, &guard);
    assert!(
        wait_until(Duration::from_secs(10), || machine
            .run("nft", &["list", "table", "inet", "authguard"])
            .stdout
            .contains("jump keyonly")),
        "the daemon does not steer\n--- daemon ---\n{}",
        daemon.stderr()
    );

    // sshd's own verdict on a source: one failed password, then refusal.
    let penalised = std::net::Ipv4Addr::new(127, 0, 0, 31);
    let r = sshd.login(&penalised.to_string(), WRONG_PASSWORD, Method::Password);
    assert!(!r.logged_in(), "{}", r.describe());
    assert!(
        wait_until(Duration::from_secs(10), || refused_by_sshd(
            &sshd, penalised
        )),
        "PerSourcePenalties never refused {penalised}\n{}",
        sshd.diag()
    );
    let reloads_before = listening();

    // A new offender.
    let offender = "127.0.0.32";
    let banned_at = std::time::Instant::now();
    let ban = guardctl_in_machine(&machine, &guard, &["ban", offender, "--for", "2s"]);
    assert!(ban.status.success(), "{}", ban.describe());
    assert!(
        wait_until(Duration::from_secs(6), || machine_set_holds(
            &machine,
            "keyonly4_32",
            offender
        )),
        "the offender never reached the key-only set\n--- daemon ---\n{}",
        daemon.stderr()
    );
    let took = banned_at.elapsed();
    eprintln!("OpenSSH 10.0: key-only in the firewall {took:?} after the ban");
    assert!(took <= KEYONLY_WITHIN, "key-only took {took:?}");
    assert!(
        wait_until(Duration::from_secs(6), || guard.listed(offender).is_none()),
        "the 2 s ban did not end"
    );
    assert!(
        wait_until(Duration::from_secs(6), || !machine_set_holds(
            &machine, "ban4", offender
        )),
        "the ended ban is still in the firewall"
    );
    let offered = sshd.login_at_level(
        offender,
        TEST_USER,
        RIGHT_PASSWORD,
        Method::Password,
        "DEBUG1",
    );
    assert_told_publickey_only(&offered, &sshd);
    let with_key = sshd.login_with_key(offender);
    assert!(with_key.logged_in(), "{}", with_key.describe());

    assert!(
        refused_by_sshd(&sshd, penalised),
        "sshd forgot {penalised}'s penalty\n{}",
        sshd.diag()
    );
    assert_eq!(
        listening(),
        reloads_before,
        "sshd was reloaded for an offender\n{}",
        sshd.diag()
    );
}
