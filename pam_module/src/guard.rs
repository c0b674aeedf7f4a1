//! The module's logic, free of FFI: given the PAM items and the module
//! arguments, decide, record and log. Unit-testable with a temp store.

use crate::args::ModuleArgs;
use crate::ffi::Items;
use authguard_core::addr::{self, RhostError};
use authguard_core::config::{self, Config, FailMode};
use authguard_core::store::admission::{Attempt, Decision};
use authguard_core::store::{Access, Store, StoreError};
use authguard_core::syslog::{Logger, Severity, untrusted};
use authguard_core::time;
use std::path::{Path, PathBuf};

/// The ident of every line the module logs.
pub const IDENT: &str = "pam_authguard";

/// What the module answers PAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the rest of the stack check the password.
    Admit {
        /// The recorded attempt, to mark a success in setcred.
        attempt_id: Option<i64>,
    },
    /// Refuse now, telling the client `message`.
    Refuse {
        /// The text for PAM_ERROR_MSG.
        message: String,
    },
}

/// The loaded config, or why it could not be loaded.
struct Setting {
    config: Config,
    log: Logger,
}

fn load(args: &ModuleArgs) -> Result<Setting, (String, Logger)> {
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    };
    match Config::load_or_default(&path, explicit) {
        Ok(config) => {
            let log = Logger::new(&config.log.socket, IDENT);
            if !args.unknown.is_empty() {
                let unknown: Vec<_> = args
                    .unknown
                    .iter()
                    .map(|a| untrusted(a.as_bytes()).into_owned())
                    .collect();
                log.log(
                    Severity::Warning,
                    &format!("ignoring unknown module arguments: {}", unknown.join(" ")),
                );
            }
            Ok(Setting { config, log })
        }
        Err(e) => Err((
            e.to_string(),
            Logger::new(Path::new(&config::LogConfig::default().socket), IDENT),
        )),
    }
}

/// `pam_sm_authenticate`: admit or refuse one attempt.
pub fn authenticate(args: &ModuleArgs, items: &Items) -> Verdict {
    let setting = match load(args) {
        Ok(s) => s,
        Err((why, log)) => {
            let mode = args.fail_mode.unwrap_or_default();
            return fault(
                &log,
                mode,
                &format!("config error: {why}"),
                &Config::default().pam.message,
            );
        }
    };
    let Setting { config, log } = &setting;
    let fail_mode = args.fail_mode.unwrap_or(config.fail_mode);
    let user_bytes = items.user.as_deref().unwrap_or_default();
    let user = untrusted(user_bytes);
    let rhost_bytes = items.rhost.as_deref().unwrap_or_default();

    let ip = match std::str::from_utf8(rhost_bytes)
        .map_err(|_| RhostError::NotAnAddress)
        .and_then(addr::parse_rhost)
    {
        Ok(ip) => ip,
        Err(why) => {
            log.log(
                Severity::Warning,
                &format!(
                    "admit rhost=\"{}\" user={user}: {why}; not counted",
                    untrusted(rhost_bytes)
                ),
            );
            return Verdict::Admit { attempt_id: None };
        }
    };
    // The config's allow list first, with no store: an admin gets in even
    // when the store is broken (the policy checks it again, for callers
    // that do not take this shortcut).
    if let Some(net) = config.allowed_by(ip) {
        log.log(
            Severity::Info,
            &format!(
                "allow {ip} user={user} (allow list {})",
                addr::display(&net.0)
            ),
        );
        return Verdict::Admit { attempt_id: None };
    }

    let service = String::from_utf8_lossy(items.service.as_deref().unwrap_or(b"?")).into_owned();
    let attempt = Attempt {
        ip,
        user: user_bytes,
        service: &service,
    };
    let decision = Store::open(
        &config.store.path,
        Access::Login,
        config.store.busy_timeout.0,
    )
    .and_then(|mut store| admit_durably(&mut store, config, log, &attempt));
    match decision {
        Ok(d) => decide(config, log, ip, &user, d),
        // A flood, not a fault: refused, so nobody gets an uncounted guess.
        Err(StoreError::Saturated(waited)) => {
            log.log(
                Severity::Warning,
                &format!(
                    "refuse {ip} user={user}: store saturated by other logins \
                     (waited {waited:?}); not counted, the client may try again"
                ),
            );
            Verdict::Refuse {
                message: config.pam.message.clone(),
            }
        }
        Err(e) => fault(
            log,
            fail_mode,
            &describe_fault(&config.store.path, &e),
            &config.pam.message,
        ),
    }
}

/// Admission, and a ban it creates on disk before the refusal goes out. A
/// ban that cannot be synced is still a ban: refused all the same, and said.
fn admit_durably(
    store: &mut Store,
    config: &Config,
    log: &Logger,
    attempt: &Attempt<'_>,
) -> Result<Decision, StoreError> {
    let decision = store.admit(config, attempt, time::now())?;
    if matches!(decision, Decision::Refused { created: true, .. })
        && let Err(e) = store.make_durable()
    {
        let why = describe_fault(&config.store.path, &e);
        log.log(Severity::Error, &format!("ban not synced to disk: {why}"));
    }
    Ok(decision)
}

fn decide(
    config: &Config,
    log: &Logger,
    ip: std::net::IpAddr,
    user: &str,
    decision: Decision,
) -> Verdict {
    let max = config.policy.max_failures.0;
    match decision {
        Decision::Admitted {
            attempt_id,
            source,
            failures,
        } => {
            log.log(
                Severity::Info,
                &format!("admit {ip} user={user} (source {source}, attempt {failures} of {max} within {})", config.policy.find_time.0),
            );
            Verdict::Admit {
                attempt_id: Some(attempt_id),
            }
        }
        Decision::KeyOnly { why } => {
            log.log(
                Severity::Notice,
                &format!(
                    "refuse {ip} user={user}: key-only ({why}): password not checked, counted"
                ),
            );
            Verdict::Refuse {
                message: config.keyonly.message.clone(),
            }
        }
        Decision::Allowed { network } => {
            log.log(
                Severity::Info,
                &format!("allow {ip} user={user} (allow list {network})"),
            );
            Verdict::Admit { attempt_id: None }
        }
        Decision::Refused {
            ban,
            created,
            subnet,
        } => {
            if created {
                log.log(Severity::Notice, &ban.log_line());
            }
            if let Some(net) = subnet {
                log.log(Severity::Notice, &net.log_line());
            }
            let until = ban
                .expires
                .map(time::rfc3339)
                .unwrap_or_else(|| "lifted".into());
            log.log(
                Severity::Notice,
                &format!(
                    "refuse {ip} user={user}: banned ({}, until {until}, level {}, origin {})",
                    ban.source, ban.level, ban.origin
                ),
            );
            Verdict::Refuse {
                message: config.pam.message.clone(),
            }
        }
    }
}

/// `pam_sm_setcred`: the login succeeded; mark the attempt.
pub fn record_success(args: &ModuleArgs, items: &Items, attempt_id: Option<i64>) {
    let Ok(Setting { config, log }) = load(args) else {
        return;
    };
    let rhost = std::str::from_utf8(items.rhost.as_deref().unwrap_or_default()).unwrap_or("");
    let Ok(ip) = addr::parse_rhost(rhost) else {
        return;
    };
    if config.allows(ip) {
        return;
    }
    let user_bytes = items.user.as_deref().unwrap_or_default();
    let result = Store::open(
        &config.store.path,
        Access::Login,
        config.store.busy_timeout.0,
    )
    .and_then(|mut s| s.record_success(&config.policy, ip, user_bytes, attempt_id, time::now()));
    match result {
        Ok(Some(_)) => log.log(
            Severity::Info,
            &format!("success {ip} user={}", untrusted(user_bytes)),
        ),
        Ok(None) => {}
        Err(e) => log.log(
            Severity::Error,
            &format!(
                "success {ip} not recorded: {}",
                describe_fault(&config.store.path, &e)
            ),
        ),
    }
}

/// A fault (bad config, unusable store, panic): the fail mode decides.
fn fault(log: &Logger, mode: FailMode, why: &str, message: &str) -> Verdict {
    let (verdict, word) = match mode {
        FailMode::Open => (Verdict::Admit { attempt_id: None }, "admitted"),
        FailMode::Closed => (
            Verdict::Refuse {
                message: message.to_owned(),
            },
            "refused",
        ),
    };
    log.log(
        Severity::Error,
        &format!("fault: {why}; {word} (fail_mode={mode})"),
    );
    verdict
}

fn describe_fault(path: &Path, e: &StoreError) -> String {
    format!("store {}: {e}", path.display())
}

/// A panic inside a hook: log what we can, answer by the fail mode.
pub fn on_panic(args: &ModuleArgs, hook: &str) -> Verdict {
    let loaded = std::panic::catch_unwind(|| load(args).ok()).ok().flatten();
    let (mode, log, message) = match loaded {
        Some(Setting { config, log }) => (
            args.fail_mode.unwrap_or(config.fail_mode),
            log,
            config.pam.message,
        ),
        None => (
            args.fail_mode.unwrap_or_default(),
            Logger::new(Path::new(&config::LogConfig::default().socket), IDENT),
            Config::default().pam.message,
        ),
    };
    fault(&log, mode, &format!("internal error in {hook}"), &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    struct Fixture {
        dir: PathBuf,
        rx: UnixDatagram,
        args: ModuleArgs,
    }

    impl Fixture {
        fn new(name: &str, extra: &str) -> Fixture {
            let dir = std::env::temp_dir().join(format!("ag-guard-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let store = dir.join("authguard.db");
            let sock = dir.join("log.sock");
            let rx = UnixDatagram::bind(&sock).unwrap();
            rx.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                .unwrap();
            let cfg = dir.join("authguard.toml");
            std::fs::write(
                &cfg,
                format!("{extra}\n[store]\npath = {store:?}\n[policy]\nmax_failures = 2\n[log]\nsocket = {sock:?}\n"),
            )
            .unwrap();
            Store::init(&store).unwrap();
            let args = ModuleArgs {
                config: Some(cfg),
                ..ModuleArgs::default()
            };
            Fixture { dir, rx, args }
        }

        fn lines(&self) -> Vec<String> {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.rx.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            out
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn items(rhost: &[u8], user: &[u8]) -> Items {
        Items {
            rhost: Some(rhost.to_vec()),
            user: Some(user.to_vec()),
            service: Some(b"sshd".to_vec()),
        }
    }

    #[test]
    fn bans_after_max_failures_and_logs_the_ban() {
        let f = Fixture::new("ban", "");
        let it = items(b"203.0.113.7", b"root");
        assert!(matches!(
            authenticate(&f.args, &it),
            Verdict::Admit {
                attempt_id: Some(_)
            }
        ));
        assert!(matches!(
            authenticate(&f.args, &it),
            Verdict::Admit {
                attempt_id: Some(_)
            }
        ));
        assert_eq!(
            authenticate(&f.args, &it),
            Verdict::Refuse {
                message: "Access from your address is temporarily blocked.".into()
            }
        );
        let lines = f.lines();
        assert!(
            lines.iter().any(|l| l.contains("pam_authguard[")
                && l.contains(": ban 203.0.113.7 for 10m after 2 failures (level 1, origin pam)")),
            "{lines:#?}"
        );
    }

    #[test]
    fn successes_recorded_in_setcred_never_ban() {
        let f = Fixture::new("success", "");
        let it = items(b"::ffff:198.51.100.4", b"alice");
        for _ in 0..5 {
            let Verdict::Admit { attempt_id } = authenticate(&f.args, &it) else {
                panic!("refused a good user")
            };
            record_success(&f.args, &it, attempt_id);
        }
    }

    #[test]
    fn hostnames_and_empty_rhost_are_admitted_uncounted_and_logged() {
        let f = Fixture::new("rhost", "");
        for rhost in [&b"attacker.example.com"[..], b"", b"\xff\n"] {
            for _ in 0..4 {
                assert_eq!(
                    authenticate(&f.args, &items(rhost, b"x")),
                    Verdict::Admit { attempt_id: None }
                );
                // Read as we go: the test socket's queue holds only ~10 datagrams.
                let lines = f.lines();
                let counted = lines.iter().filter(|l| l.contains("not counted")).count();
                assert_eq!(counted, 1, "{lines:#?}");
                assert!(lines.iter().all(|l| !l.contains('\n')));
            }
        }
    }

    #[test]
    fn a_saturated_store_refuses_instead_of_failing_open() {
        let f = Fixture::new("saturated", "");
        let store = f.dir.join("authguard.db");
        let cfg = f.dir.join("authguard.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            text.replace("[store]\n", "[store]\nbusy_timeout = \"1s\"\n"),
        )
        .unwrap();
        // Other logins' turn in the queue, and a writer holding SQLite's
        // lock that commits once while this login waits, then holds it again.
        let queue = std::fs::File::create(f.dir.join("authguard.db-queue")).unwrap();
        queue.lock().unwrap();
        let holder = rusqlite::Connection::open(&store).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let args = f.args.clone();
        let login =
            std::thread::spawn(move || authenticate(&args, &items(b"203.0.113.20", b"root")));
        std::thread::sleep(std::time::Duration::from_millis(100));
        holder
            .execute_batch(
                "INSERT INTO meta (key, value) VALUES ('t', '1'); COMMIT; BEGIN IMMEDIATE",
            )
            .unwrap();
        let verdict = login.join().unwrap();
        holder.execute_batch("COMMIT").unwrap();
        assert!(
            matches!(verdict, Verdict::Refuse { .. }),
            "fail_mode=open, yet a flood must not admit uncounted: {verdict:?} {:?}",
            f.lines()
        );
        assert!(
            f.lines()
                .iter()
                .any(|l| l.contains("store saturated by other logins")),
            "{:?}",
            f.lines()
        );
    }

    #[test]
    fn missing_store_follows_fail_mode() {
        let f = Fixture::new("missing", "");
        std::fs::remove_file(f.dir.join("authguard.db")).unwrap();
        let it = items(b"203.0.113.9", b"root");
        assert_eq!(
            authenticate(&f.args, &it),
            Verdict::Admit { attempt_id: None }
        );
        let closed = ModuleArgs {
            fail_mode: Some(FailMode::Closed),
            ..f.args.clone()
        };
        assert!(matches!(authenticate(&closed, &it), Verdict::Refuse { .. }));
        let lines = f.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("fault: store") && l.contains("admitted (fail_mode=open)")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("refused (fail_mode=closed)")),
            "{lines:#?}"
        );
    }

    #[test]
    fn allowed_addresses_pass_even_when_closed_and_broken() {
        let f = Fixture::new(
            "allow",
            "fail_mode = \"closed\"\nallow = [\"192.0.2.0/24\"]",
        );
        std::fs::remove_file(f.dir.join("authguard.db")).unwrap();
        assert_eq!(
            authenticate(&f.args, &items(b"192.0.2.1", b"admin")),
            Verdict::Admit { attempt_id: None }
        );
        assert!(matches!(
            authenticate(&f.args, &items(b"203.0.113.1", b"admin")),
            Verdict::Refuse { .. }
        ));
    }

    #[test]
    fn bad_config_applies_the_argument_fail_mode() {
        let f = Fixture::new("badcfg", "bogus_key = 1");
        let it = items(b"203.0.113.9", b"root");
        assert_eq!(
            authenticate(&f.args, &it),
            Verdict::Admit { attempt_id: None }
        );
        let closed = ModuleArgs {
            fail_mode: Some(FailMode::Closed),
            ..f.args.clone()
        };
        assert!(matches!(authenticate(&closed, &it), Verdict::Refuse { .. }));
    }
}
