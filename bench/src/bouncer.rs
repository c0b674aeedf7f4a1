//! The fleet benchmark's peer: Debian's `crowdsec-firewall-bouncer` (the
//! official nftables bouncer), unpacked and run in the same network
//! namespace against the same LAPI, at its default `update_frequency` of
//! 10 s. Its nftables set (`ip crowdsec crowdsec-blacklists`) is read with
//! `nft -j`: when an address entered it, and how many it holds.

use crate::firewall::{Daemon, Netns};
use anyhow::{Context, Result};
use authguard_e2e::crowdsec::{Lapi, firewall_bouncer};
use authguard_e2e::netns::set_elements;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The bouncer's default pull interval (its shipped config's `update_frequency`).
pub const UPDATE_FREQUENCY: &str = "10s";
/// How often the set is looked at while timing arrivals.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How often it is counted during a full pull: listing 100,000 elements
/// takes nft half a second, which would slow the bouncer if done often.
const COUNT_EVERY: Duration = Duration::from_secs(2);

/// A running bouncer; killed on drop.
#[derive(Debug)]
pub struct Bouncer {
    process: Daemon,
    /// Its nftables set.
    pub set: BouncerSet,
    /// The package version, for the table's caption.
    pub version: String,
}

/// The bouncer's IPv4 set, in its namespace.
#[derive(Debug, Clone)]
pub struct BouncerSet {
    ns: String,
}

impl Bouncer {
    /// Registers bouncer `name` with `lapi` and starts it inside `ns`.
    /// None when the package cannot be had.
    pub fn start(ns: &Netns, lapi: &Lapi, dir: &Path, name: &str) -> Result<Option<Bouncer>> {
        let Some(package) = firewall_bouncer() else {
            return Ok(None);
        };
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, config_text(lapi, dir, &lapi.add_bouncer(name)))?;
        let mut cmd = ns.cmd(&package.bin("crowdsec-firewall-bouncer").to_string_lossy());
        cmd.arg("-c").arg(&config);
        let process = Daemon::spawn(cmd).context("starting crowdsec-firewall-bouncer")?;
        Ok(Some(Bouncer {
            process,
            set: BouncerSet {
                ns: ns.name().to_owned(),
            },
            version: package.version.clone(),
        }))
    }

    /// Resident memory of the bouncer process.
    pub fn rss_kib(&self) -> Result<u64> {
        self.process.rss_kib()
    }
}

impl BouncerSet {
    /// The addresses in its IPv4 set now.
    pub fn held(&self) -> Result<Vec<IpAddr>> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft", "-j", "list", "set", "ip"])
            .args(["crowdsec", "crowdsec-blacklists"])
            .output()?;
        if !out.status.success() {
            // Not made yet: the bouncer creates its table on start.
            return Ok(Vec::new());
        }
        let listing: Value = serde_json::from_slice(&out.stdout)?;
        Ok(set_elements(&listing, "crowdsec-blacklists")
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.first)
            .collect())
    }

    /// Waits (up to `timeout`) until its set holds at least `n`
    /// addresses; how many it held at the end.
    pub fn wait_holding(&self, n: usize, timeout: Duration) -> Result<usize> {
        let end = Instant::now() + timeout;
        let mut held = 0;
        while Instant::now() < end && held < n {
            std::thread::sleep(COUNT_EVERY);
            held = self.held()?.len();
        }
        Ok(held)
    }

    /// Looks at the set until `stop`, noting when each address first
    /// appeared in it.
    pub fn watch(&self, stop: &AtomicBool) -> HashMap<IpAddr, Instant> {
        let mut seen = HashMap::new();
        while !stop.load(Ordering::Relaxed) {
            let at = Instant::now();
            for ip in self.held().unwrap_or_default() {
                seen.entry(ip).or_insert(at);
            }
            std::thread::sleep(LOOK_EVERY);
        }
        seen
    }
}

/// The shipped config's settings, with nftables, the LAPI and its key,
/// logs to stderr, no daemonizing and no Prometheus listener.
fn config_text(lapi: &Lapi, dir: &Path, key: &str) -> String {
    format!(
        "mode: nftables
pid_dir: {dir}
update_frequency: {UPDATE_FREQUENCY}
daemonize: false
log_mode: stdout
log_level: info
api_url: {url}/
api_key: {key}
insecure_skip_verify: false
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
blacklists_ipv4: crowdsec-blacklists
blacklists_ipv6: crowdsec6-blacklists
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: crowdsec
    chain: crowdsec-chain
  ipv6:
    enabled: true
    set-only: false
    table: crowdsec6
    chain: crowdsec6-chain
prometheus:
  enabled: false
  listen_addr: 127.0.0.1
  listen_port: 60601
",
        dir = dir.display(),
        url = lapi.url().trim_end_matches('/'),
    )
}
