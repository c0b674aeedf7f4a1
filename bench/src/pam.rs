//! A whole PAM run: `pamtester … authenticate setcred`, wall clock of the
//! process, for three stacks run round-robin (permit, authguard, faillock).
//!
//! pamtester only reads services from `/etc/pam.d`, and the host's must never
//! be touched: the loop runs in a private mount namespace (`unshare --mount
//! --propagation private`) where a temp dir is bind-mounted over `/etc/pam.d`.
//! `/etc/passwd` is likewise shadowed there by a copy that knows `benchuser`,
//! because pam_faillock does nothing at all for a user that does not exist.
//! The namespace goes away with the loop; nothing outside the temp dir changes.
//!
//! The round-robin runs twice: with the store alone, and with
//! `guardctl daemon` holding it open (firewall "none", sshd log off, as a
//! server that runs the daemon; its connection changes the WAL's life).

use crate::stats::{self, Summary, fmt_us, mark};
use anyhow::{Context, Result, bail, ensure};
use authguard_core::store::Store;
use comfy_table::Table;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The address every run claims to come from.
const RHOST: &str = "203.0.113.10";
/// The user every run logs in as.
const USER: &str = "benchuser";
/// authguard may cost at most this much over the bare permit stack.
const TARGET_RATIO: f64 = 1.10;

/// The three stacks, in the order each round runs them.
const STACKS: [&str; 3] = ["permit", "authguard", "faillock"];

/// The two settings each stack is measured in, in order.
const PHASES: [&str; 2] = ["no daemon", "daemon"];

/// The PAM service name of a stack.
fn service(stack: &str) -> String {
    format!("authguard-bench-{stack}")
}

/// The PAM part's results.
#[derive(Debug)]
pub struct Report {
    module: PathBuf,
    rounds: usize,
    warmup: usize,
    /// Per phase and stack, every counted run's wall time (µs).
    runs: BTreeMap<(&'static str, String), Vec<f64>>,
    recorded: String,
}

/// `<workspace>/target/release/libpam_authguard.so`.
fn module_path() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    bench
        .parent()
        .unwrap_or(bench)
        .join("target/release/libpam_authguard.so")
}

/// Checks what the PAM run needs before anything is measured, and returns
/// the module's path.
pub fn preflight() -> Result<PathBuf> {
    let module = module_path();
    ensure!(
        module.is_file(),
        "the PAM module is missing at {}: build it first with \
         `cargo build --release -p pam_authguard` (`make bench` does)",
        module.display()
    );
    for tool in ["pamtester", "unshare", "mount"] {
        ensure!(
            in_path(tool),
            "`{tool}` is not installed (apt-get install pamtester util-linux; `make test-deps` does)"
        );
    }
    Ok(module.canonicalize()?)
}

/// Sets up the stacks in `dir` and runs the loop in a private mount namespace.
pub fn run(exe: &Path, dir: &Path, rounds: usize, warmup: usize) -> Result<Report> {
    let module = preflight()?;

    let pam_d = dir.join("pam.d");
    let faillock = dir.join("faillock");
    let store = dir.join("store").join("authguard.db");
    let config = dir.join("authguard.toml");
    std::fs::create_dir_all(&pam_d)?;
    std::fs::create_dir_all(&faillock)?;
    Store::init(&store).context("initialising the PAM stack's store")?;
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n\n[log]\nsocket = {:?}\n",
            store.display().to_string(),
            dir.join("log.sock").display().to_string()
        ),
    )?;
    let permit = "auth required pam_permit.so\naccount required pam_permit.so\n";
    let stacks = [
        ("permit", permit.to_owned()),
        (
            "authguard",
            format!(
                "auth requisite {} config={}\n{permit}",
                module.display(),
                config.display()
            ),
        ),
        (
            "faillock",
            format!(
                "auth required pam_faillock.so preauth dir={f}\n\
                 auth required pam_permit.so\n\
                 auth required pam_faillock.so authsucc dir={f}\n\
                 account required pam_permit.so\n",
                f = faillock.display()
            ),
        ),
    ];
    for (stack, text) in &stacks {
        std::fs::write(pam_d.join(service(stack)), text)?;
    }
    let passwd = dir.join("passwd");
    let mut users = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    if !users.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
        users.push_str(&format!(
            "{USER}:x:64999:64999:authguard bench:/nonexistent:/usr/sbin/nologin\n"
        ));
    }
    std::fs::write(&passwd, users)?;

    let daemon_config = dir.join("daemon.toml");
    std::fs::write(&daemon_config, daemon_config_text(&store, dir))?;
    let guardctl = crate::firewall::guardctl_path()?;
    let mut runs = BTreeMap::new();
    for phase in PHASES {
        let daemon = match phase {
            "daemon" => Some(start_daemon(&guardctl, &daemon_config)?),
            _ => None,
        };
        let lines = pamloop_in_namespace(exe, &pam_d, &passwd, rounds, warmup)?;
        drop(daemon);
        for line in lines.lines() {
            let (stack, us) = line.split_once(' ').context("bad pamloop line")?;
            runs.entry((phase, stack.to_owned()))
                .or_insert_with(Vec::new)
                .push(us.parse().context("bad pamloop time")?);
        }
        for stack in STACKS {
            let n = runs.get(&(phase, stack.to_owned())).map_or(0, Vec::len);
            ensure!(
                n == rounds,
                "{phase}, {stack}: {n} timed runs, expected {rounds}"
            );
        }
    }
    let recorded = verify(&store, PHASES.len() * (rounds + warmup))?;
    ensure!(
        faillock.join(USER).is_file(),
        "pam_faillock kept no tally file for {USER}: it did not do its work"
    );
    Ok(Report {
        module,
        rounds,
        warmup,
        runs,
        recorded,
    })
}

/// The daemon's config: the bench's store, and nothing that reaches outside
/// the temp dir (no firewall, no sshd log, no sshd reloads, no textfile).
fn daemon_config_text(store: &Path, dir: &Path) -> String {
    format!(
        "[store]\npath = {:?}\n\n[log]\nsocket = {:?}\n\n[firewall]\nbackend = \"none\"\n\n\
         [sshd_log]\nsource = \"off\"\n\n[keyonly]\nmode = \"off\"\n\n[metrics]\ntextfile = \"\"\n",
        store.display().to_string(),
        dir.join("log.sock").display().to_string()
    )
}

/// `guardctl daemon`, once it says it has started.
fn start_daemon(guardctl: &Path, config: &Path) -> Result<crate::firewall::Daemon> {
    let mut cmd = Command::new(guardctl);
    cmd.arg("--config").arg(config).arg("daemon");
    let daemon = crate::firewall::Daemon::spawn(cmd)?;
    daemon.wait_for("daemon started", std::time::Duration::from_secs(10))?;
    Ok(daemon)
}

/// Runs the pamtester loop in a private mount namespace where `pam_d` is
/// `/etc/pam.d` and `passwd` is `/etc/passwd`; returns its `<stack> <µs>` lines.
fn pamloop_in_namespace(
    exe: &Path,
    pam_d: &Path,
    passwd: &Path,
    rounds: usize,
    warmup: usize,
) -> Result<String> {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "set -e; mount --bind \"$1\" /etc/pam.d; mount --bind \"$2\" /etc/passwd; \
             shift 2; exec \"$@\"",
        )
        .arg("sh")
        .arg(pam_d)
        .arg(passwd)
        .arg(exe)
        .arg("pamloop")
        .args(["--rounds", &rounds.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running unshare")?;
    ensure!(
        out.status.success(),
        "the pamtester loop failed ({}); see its messages above",
        out.status
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Checks that authguard really ran every time and never banned the rhost
/// (setcred marks each attempt a success). Returns what it recorded.
fn verify(store: &Path, runs: usize) -> Result<String> {
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let bans: i64 = conn.query_row("SELECT COUNT(*) FROM bans", [], |r| r.get(0))?;
    if bans > 0 {
        let sources: String =
            conn.query_row("SELECT group_concat(source, ', ') FROM bans", [], |r| {
                r.get(0)
            })?;
        bail!(
            "BROKEN: authguard banned {sources} during the PAM run although every \
             attempt was a success (setcred): the timings are not of an admitted login"
        );
    }
    let mut stmt =
        conn.prepare("SELECT outcome, COUNT(*) FROM attempts WHERE address = ?1 GROUP BY outcome")?;
    let counts: BTreeMap<String, i64> = stmt
        .query_map([RHOST], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let successes = counts.get("success").copied().unwrap_or(0);
    ensure!(
        usize::try_from(successes) == Ok(runs) && counts.len() == 1,
        "authguard recorded {counts:?} for {RHOST}, expected {runs} successes: \
         the module did not admit and record every run (is it failing open?)"
    );
    Ok(format!("{successes} attempts, all marked success, no ban"))
}

pub(crate) fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}

/// Arguments of the hidden `pamloop` subcommand.
#[derive(Debug, clap::Args)]
pub struct LoopArgs {
    /// Counted rounds.
    #[arg(long)]
    rounds: usize,
    /// Rounds run first and not counted.
    #[arg(long)]
    warmup: usize,
}

/// Inside the namespace: runs the stacks round-robin and prints
/// `<stack> <µs>` for each counted run.
pub fn pamloop(a: &LoopArgs) -> Result<()> {
    let pam_d = std::fs::read_dir("/etc/pam.d")?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name() == service("permit").as_str());
    ensure!(
        pam_d,
        "pamloop must run where the bench's services are /etc/pam.d (use `authguard-bench pam`)"
    );
    let mut out = String::new();
    for round in 0..a.warmup + a.rounds {
        for stack in STACKS {
            let t = Instant::now();
            let status = Command::new("pamtester")
                .args(["-I", &format!("rhost={RHOST}")])
                .arg(service(stack))
                .arg(USER)
                .args(["authenticate", "setcred"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("running pamtester")?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            ensure!(
                status.success(),
                "pamtester failed on the {stack} stack in round {round}: {status}"
            );
            if round >= a.warmup {
                out.push_str(&format!("{stack} {us:.1}\n"));
            }
        }
    }
    print!("{out}");
    Ok(())
}

impl Report {
    /// What was run.
    pub fn caption(&self) -> String {
        format!(
            "Whole PAM run: `pamtester -I rhost={RHOST} SERVICE {USER} authenticate setcred`, \
             process wall time.\nEach phase: {} rounds of permit, authguard, faillock in turn, \
             after {} uncounted warm-up rounds; first with the store alone, then with \
             `guardctl daemon` holding it open. Module: {}",
            self.rounds,
            self.warmup,
            self.module.display()
        )
    }

    /// The per-phase, per-stack table.
    pub fn table(&self) -> Table {
        let mut t = stats::table(&[
            "phase",
            "stack",
            "runs",
            "p50",
            "mean",
            "p99",
            "max",
            "× permit (p50)",
            "× permit (mean)",
            "target ≤ 1.10× permit",
        ]);
        for phase in PHASES {
            let base = self.summary(phase, "permit");
            for stack in STACKS {
                let Some(s) = self.summary(phase, stack) else {
                    continue;
                };
                let (r50, rmean) = match base {
                    Some(b) => (s.p50 / b.p50, s.mean / b.mean),
                    None => (f64::NAN, f64::NAN),
                };
                let target = if stack == "authguard" {
                    mark(r50 <= TARGET_RATIO && rmean <= TARGET_RATIO).to_owned()
                } else {
                    String::new()
                };
                t.add_row(vec![
                    phase.to_owned(),
                    stack.to_owned(),
                    s.n.to_string(),
                    fmt_us(s.p50),
                    fmt_us(s.mean),
                    fmt_us(s.p99),
                    fmt_us(s.max),
                    format!("{r50:.2}×"),
                    format!("{rmean:.2}×"),
                    target,
                ]);
            }
        }
        t
    }

    /// What authguard's store showed after the run.
    pub fn recorded(&self) -> &str {
        &self.recorded
    }

    /// The phases in which authguard missed the target (by p50 or mean).
    pub fn missed(&self) -> Vec<&'static str> {
        PHASES
            .into_iter()
            .filter(|phase| {
                match (
                    self.summary(phase, "permit"),
                    self.summary(phase, "authguard"),
                ) {
                    (Some(b), Some(a)) => {
                        a.p50 / b.p50 > TARGET_RATIO || a.mean / b.mean > TARGET_RATIO
                    }
                    _ => true,
                }
            })
            .collect()
    }

    fn summary(&self, phase: &'static str, stack: &str) -> Option<Summary> {
        self.runs
            .get(&(phase, stack.to_owned()))
            .and_then(|v| Summary::of(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authguard_core::config::Config;
    use authguard_core::store::admission::{Attempt, Decision};
    use authguard_core::store::bans::{BanLength, NewBan};
    use authguard_core::store::{Access, Store};
    use std::time::Duration;

    #[test]
    fn verify_fails_loudly_on_a_ban_or_a_missing_record() {
        let dir = std::env::temp_dir().join(format!("authguard-bench-test-{}", std::process::id()));
        let path = dir.join("authguard.db");
        Store::init(&path).unwrap();
        let config = Config::default();
        let policy = &config.policy;
        let mut s = Store::open(&path, Access::Write, Duration::from_secs(1)).unwrap();
        let attempt = Attempt {
            ip: RHOST.parse().unwrap(),
            user: USER.as_bytes(),
            service: "sshd",
        };
        for now in 1..=3 {
            let Decision::Admitted { attempt_id, .. } = s.admit(&config, &attempt, now).unwrap()
            else {
                panic!("not admitted")
            };
            s.record_success(policy, attempt.ip, attempt.user, Some(attempt_id), now)
                .unwrap();
        }
        assert!(verify(&path, 3).is_ok());
        assert!(verify(&path, 4).is_err(), "a run authguard did not record");
        let ban = NewBan {
            net: "203.0.113.10/32".parse().unwrap(),
            length: BanLength::Permanent,
            reason: "test",
            origin: authguard_core::store::bans::Origin::Manual,
            failures: 0,
        };
        s.ban(&config, &ban, 4).unwrap();
        let err = verify(&path, 3).unwrap_err().to_string();
        assert!(
            err.contains("BROKEN") && err.contains("203.0.113.10"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
