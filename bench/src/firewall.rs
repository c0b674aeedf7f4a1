//! The firewall benchmark (issue 3): how fast `guardctl daemon` loads
//! 100,000 bans into nftables from cold, how fast one more ban reaches the
//! kernel with those in place, the daemon's memory, and fail2ban's way
//! (one `nft add element` process per address) against one batch.
//! Everything happens in a network namespace made here; the host's ruleset
//! is never touched.

use crate::stats::{self, fmt_us, mark, table, thousands};
use anyhow::{Context, Result, bail};
use authguard_core::addr;
use authguard_core::store::Store;
use comfy_table::Table;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop (with everything in it: its
/// nftables tables go with it).
pub(crate) struct Netns(String);

impl Netns {
    /// A fresh namespace `ag-bench-TAG-PID`, after deleting those a killed
    /// bench left behind (their pid is gone).
    pub(crate) fn new(tag: &str) -> Result<Netns> {
        remove_stale_netns();
        let name = format!("ag-bench-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()?
            .success();
        if !ok {
            bail!("ip netns add {name} failed");
        }
        // Loopback up: the fleet part's LAPI listens there.
        let _ = Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status();
        Ok(Netns(name))
    }

    /// The namespace's name.
    pub(crate) fn name(&self) -> &str {
        &self.0
    }

    /// `program` run inside the namespace.
    pub(crate) fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Deletes the `ag-bench-…-PID` namespaces whose bench process is gone.
fn remove_stale_netns() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let pid = name
            .strip_prefix("ag-bench-")
            .and_then(|r| r.rsplit('-').next());
        if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A running `guardctl daemon`, killed on drop, with its stderr lines.
#[derive(Debug)]
pub(crate) struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// `guardctl --config CONFIG daemon` inside `ns`.
    pub(crate) fn start(ns: &Netns, guardctl: &Path, config: &Path) -> Result<Daemon> {
        let mut cmd = ns.cmd(&guardctl.to_string_lossy());
        cmd.arg("--config").arg(config).arg("daemon");
        Daemon::spawn(cmd)
    }

    /// Runs `cmd` (a `guardctl … daemon` command line), collecting its stderr.
    pub(crate) fn spawn(mut cmd: Command) -> Result<Daemon> {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("starting guardctl daemon")?;
        let stderr = child.stderr.take().context("daemon stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Ok(Daemon { child, lines })
    }

    /// Waits for a stderr line containing `text`.
    pub(crate) fn wait_for(&self, text: &str, timeout: Duration) -> Result<String> {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Ok(line),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        bail!("the daemon did not say `{text}` within {timeout:?}")
    }

    /// The daemon's exit status, if it has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Resident memory of the daemon process (the child of `ip netns exec`,
    /// which execs into it, so the pid is the daemon's).
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// Peak resident memory of the daemon process so far.
    pub(crate) fn peak_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// One `kB` field of `/proc/PID/status`.
    fn status_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {field} in /proc/{}/status", self.child.id()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the benchmark measured.
#[derive(Debug)]
pub struct Report {
    bans: usize,
    cold_load: Duration,
    new_ban: stats::Summary,
    rss_idle_kib: u64,
    rss_loaded_kib: u64,
    one_by_one: Duration,
    one_batch: Duration,
    f2b_count: usize,
}

/// The guardctl built next to the bench.
pub(crate) fn guardctl_path() -> Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/guardctl");
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p guardctl` first",
            path.display()
        );
    }
    Ok(path)
}

/// `dir/NAME/authguard.toml` with a fresh store beside it; `firewall` is
/// appended to the `[firewall]` table (e.g. `backend = "none"`).
pub(crate) fn write_config(dir: &Path, name: &str, firewall: &str) -> Result<PathBuf> {
    let d = dir.join(name);
    std::fs::create_dir_all(&d)?;
    let config = d.join("authguard.toml");
    std::fs::write(
        &config,
        format!(
            "allow = [\"127.0.0.0/8\"]\n[store]\npath = {:?}\n[log]\nsocket = {:?}\n[firewall]\nresync = \"1h\"\n{firewall}\n{}",
            d.join("authguard.db"),
            d.join("log.sock"),
            keyonly_private(&d)
        ),
    )?;
    Store::init(&d.join("authguard.db"))?;
    Ok(config)
}

/// A `[keyonly]` table that keeps a bench daemon away from the host's sshd:
/// its snippet would go to `dir`, and with no `sshd_config` there the
/// daemon never writes one (nor reloads sshd).
pub(crate) fn keyonly_private(dir: &Path) -> String {
    format!(
        "[keyonly]\nmode = \"off\"\nsshd_config_dir = {:?}\nsshd_config = {:?}\n",
        dir.join("sshd_config.d"),
        dir.join("no-sshd_config")
    )
}

/// Inserts `n` active bans the way the PAM module would leave them.
fn fill(db: &Path, n: usize, now: i64) -> Result<()> {
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures, scope)
             VALUES (?1, ?2, ?3, ?4, ?5, 'bench', 'pam', 1, 5, 'ports')",
        )?;
        for i in 0..n {
            // 10.x.y.z, one address each (nothing is sent to them: set content only).
            let ip = Ipv4Addr::from(0x0a00_0000u32 + 2 * i as u32);
            ban_row(&mut stmt, IpAddr::V4(ip), now)?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn ban_row(stmt: &mut rusqlite::Statement<'_>, ip: IpAddr, now: i64) -> Result<()> {
    let net = ipnet::IpNet::from(ip);
    let (lo, hi) = addr::range_keys(&net);
    stmt.execute(rusqlite::params![
        addr::display(&net),
        lo,
        hi,
        now,
        now + 3600
    ])?;
    Ok(())
}

/// Runs the whole firewall benchmark with `n` bans.
pub fn run(dir: &Path, n: usize) -> Result<Report> {
    let guardctl = guardctl_path()?;
    let ns = Netns::new("fw")?;
    let now = authguard_core::time::now();

    let phase = |what: &str| eprintln!("firewall: {what}");
    phase("daemon with an empty store (idle memory)");
    let idle_config = write_config(dir, "fw-idle", "")?;
    let idle = Daemon::start(&ns, &guardctl, &idle_config)?;
    idle.wait_for("with 0 bans", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle_kib = idle.rss_kib()?;
    drop(idle);

    let config = write_config(dir, "fw-full", "")?;
    let db = config.with_file_name("authguard.db");
    phase(&format!(
        "writing {} bans into the store",
        thousands(n as u64)
    ));
    fill(&db, n, now)?;
    phase("cold start of the daemon");
    let _ = ns
        .cmd("nft")
        .args(["delete", "table", "inet", "authguard"])
        .output();
    let started = Instant::now();
    let daemon = Daemon::start(&ns, &guardctl, &config)?;
    daemon.wait_for(&format!("with {n} bans"), Duration::from_secs(120))?;
    let cold_load = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let rss_loaded_kib = daemon.rss_kib()?;

    phase("ten new bans, one at a time");
    let mut latencies = Vec::new();
    let conn = rusqlite::Connection::open(&db)?;
    for i in 0..10u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i));
        let mut stmt = conn.prepare(
            "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures, scope)
             VALUES (?1, ?2, ?3, ?4, ?5, 'bench', 'pam', 1, 5, 'ports')",
        )?;
        let t0 = Instant::now();
        ban_row(&mut stmt, ip, now)?;
        daemon.wait_for(&format!("drop {ip}/32"), Duration::from_secs(10))?;
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let in_kernel = ns
        .cmd("nft")
        .args([
            "get",
            "element",
            "inet",
            "authguard",
            "ban4",
            "{ 192.0.2.19 }",
        ])
        .output()?;
    if !in_kernel.status.success() {
        bail!("the daemon said it dropped 192.0.2.19 but nft does not have it");
    }
    phase("stopping the daemon");
    drop(daemon);
    // Every nft process reads the whole ruleset first, so with our big set
    // in place each call costs more (about 50 ms at 20,000 elements): measure
    // fail2ban's way in a clean namespace, as it would be on its own.
    let _ = ns
        .cmd("nft")
        .args(["delete", "table", "inet", "authguard"])
        .output();
    phase("fail2ban's way vs one batch");
    let new_ban = stats::Summary::of(&latencies).context("no samples")?;

    let (one_by_one, one_batch, f2b_count) = fail2ban_way(&ns, dir)?;
    Ok(Report {
        bans: n,
        cold_load,
        new_ban,
        rss_idle_kib,
        rss_loaded_kib,
        one_by_one,
        one_batch,
        f2b_count,
    })
}

/// fail2ban's nftables action runs one `nft add element` per ban; here,
/// 1,000 of them against one batch of the same 1,000.
fn fail2ban_way(ns: &Netns, dir: &Path) -> Result<(Duration, Duration, usize)> {
    const N: usize = 1000;
    let setup = "add table inet f2b\nadd set inet f2b a { type ipv4_addr; }\nadd set inet f2b b { type ipv4_addr; }\n";
    let script = dir.join("f2b-setup.nft");
    std::fs::write(&script, setup)?;
    ns.cmd("nft").arg("-f").arg(&script).status()?;
    let addrs: Vec<String> = (0..N)
        .map(|i| Ipv4Addr::from(0x0ac8_0000u32 + i as u32).to_string())
        .collect();
    let loop_script = addrs
        .iter()
        .map(|a| format!("nft add element inet f2b a '{{ {a} }}'"))
        .collect::<Vec<_>>()
        .join("\n");
    let sh = dir.join("f2b-loop.sh");
    std::fs::write(&sh, loop_script)?;
    let t0 = Instant::now();
    ns.cmd("sh").arg(&sh).status()?;
    let one_by_one = t0.elapsed();
    let batch = dir.join("f2b-batch.nft");
    std::fs::write(
        &batch,
        format!("add element inet f2b b {{ {} }}\n", addrs.join(", ")),
    )?;
    let t0 = Instant::now();
    ns.cmd("nft").arg("-f").arg(&batch).status()?;
    let one_batch = t0.elapsed();
    Ok((one_by_one, one_batch, N))
}

impl Report {
    /// The caption above the table.
    pub fn caption(&self) -> String {
        format!(
            "Firewall: guardctl daemon and nftables in a private network namespace, {} active bans in the store.",
            thousands(self.bans as u64)
        )
    }

    /// The table, with targets.
    pub fn table(&self) -> Table {
        let mut t = table(&["measurement", "authguard", "target", ""]);
        let load_ok = self.cold_load <= Duration::from_secs(2);
        t.add_row(vec![
            format!(
                "daemon start → {} bans in nftables (cold)",
                thousands(self.bans as u64)
            ),
            format!("{:.2} s", self.cold_load.as_secs_f64()),
            "≤ 2 s".into(),
            mark(load_ok).into(),
        ]);
        let ban_ok = self.new_ban.p50 <= 50_000.0;
        t.add_row(vec![
            "one new ban (store commit → in nftables), p50 / max of 10".into(),
            format!(
                "{} / {}",
                fmt_us(self.new_ban.p50),
                fmt_us(self.new_ban.max)
            ),
            "≤ 50 ms".into(),
            mark(ban_ok).into(),
        ]);
        let rss_ok = self.rss_loaded_kib <= 20 * 1024;
        t.add_row(vec![
            "daemon resident memory, idle / with the bans".into(),
            format!(
                "{:.1} MB / {:.1} MB",
                self.rss_idle_kib as f64 / 1024.0,
                self.rss_loaded_kib as f64 / 1024.0
            ),
            "≤ 20 MB".into(),
            mark(rss_ok).into(),
        ]);
        t.add_row(vec![
            format!(
                "fail2ban's way: {} × `nft add element`, one process each",
                self.f2b_count
            ),
            format!("{:.2} s", self.one_by_one.as_secs_f64()),
            format!("one batch: {:.1} ms", self.one_batch.as_secs_f64() * 1e3),
            format!(
                "{:.0}×",
                self.one_by_one.as_secs_f64() / self.one_batch.as_secs_f64().max(1e-6)
            ),
        ]);
        t
    }

    /// The targets that were missed.
    pub fn missed(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.cold_load > Duration::from_secs(2) {
            out.push("firewall cold load ≤ 2 s");
        }
        if self.new_ban.p50 > 50_000.0 {
            out.push("new ban ≤ 50 ms");
        }
        if self.rss_loaded_kib > 20 * 1024 {
            out.push("daemon RSS ≤ 20 MB");
        }
        out
    }
}
