//! Key-only signaling as policy: `[keyonly]` in the config, and which
//! sources must use a public key. guardctl tells sshd (see
//! `ssh_hook::keyonly`): by steering the set's connections to a key-only
//! listener with nftables (`method = "redirect"`), or by naming it in
//! `Match Address` blocks (`reload`). Either way the PAM module refuses a
//! password from a key-only source, whatever sshd was told.
//!
//! *Past offenders* (DESIGN.md): sources banned at least once within
//! `window`, banned now or not; never a source that merely mistyped.
//! Countries in `[geo] keyonly` are key-only in every mode. Allowed
//! networks are never key-only.

use crate::config::{Cidr, PositiveDuration};
use crate::duration::HumanDuration;
use crate::time::Timestamp;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// `[keyonly]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyOnlyConfig {
    /// Who must use a key.
    pub mode: KeyOnlyMode,
    /// How far back a ban makes a source a past offender.
    pub window: PositiveDuration,
    /// For `untrusted`: the networks that may still use passwords.
    pub trusted: Vec<Cidr>,
    /// Where `authguard-keyonly.conf` is written.
    pub sshd_config_dir: PathBuf,
    /// The main sshd config (`sshd -t -f` validates it; it must include the dir).
    pub sshd_config: PathBuf,
    /// How sshd is told to re-read its config.
    pub reload: Reload,
    /// At most one sshd reload per this interval (the daemon's re-applies).
    pub min_interval: PositiveDuration,
    /// Shown to a key-only source that tries a password (PAM_ERROR_MSG).
    pub message: String,
    /// How sshd learns who is key-only (see [`KeyOnlyMethod`]).
    pub method: KeyOnlyMethod,
    /// The key-only listener's port for `method = "redirect"`.
    pub port: u16,
}

impl Default for KeyOnlyConfig {
    fn default() -> Self {
        KeyOnlyConfig {
            mode: KeyOnlyMode::Offenders,
            window: PositiveDuration(HumanDuration::secs(30 * 86_400)),
            trusted: Vec::new(),
            sshd_config_dir: PathBuf::from("/etc/ssh/sshd_config.d"),
            sshd_config: PathBuf::from("/etc/ssh/sshd_config"),
            reload: Reload::Auto,
            min_interval: PositiveDuration(HumanDuration::secs(60)),
            message: "Password logins are disabled for your address; use an SSH key.".into(),
            method: KeyOnlyMethod::Auto,
            port: 2223,
        }
    }
}

impl KeyOnlyConfig {
    /// True when key-only sources are steered by nftables to [`Self::port`]
    /// (`redirect`, or `auto` with the nftables firewall backend).
    pub fn redirects(&self, nftables: bool) -> bool {
        match self.method {
            KeyOnlyMethod::Redirect => true,
            KeyOnlyMethod::Reload => false,
            KeyOnlyMethod::Auto => nftables,
        }
    }

    /// The start of the past-offender window at `now`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now.saturating_sub(i64::try_from(self.window.0.0.as_secs()).unwrap_or(i64::MAX))
    }

    /// Why one address must use a key now, if it must (`past offender`, or
    /// the mode). The caller has already let allowed networks through;
    /// `past_offender(window_start)` is asked only in mode `offenders`.
    pub fn reason_for<E>(
        &self,
        ip: IpAddr,
        now: Timestamp,
        past_offender: impl FnOnce(Timestamp) -> Result<bool, E>,
    ) -> Result<Option<&'static str>, E> {
        Ok(match self.mode {
            KeyOnlyMode::Off => None,
            KeyOnlyMode::All => Some("all"),
            KeyOnlyMode::Untrusted => {
                (!self.trusted.iter().any(|c| c.0.contains(&ip))).then_some("untrusted")
            }
            KeyOnlyMode::Offenders => {
                past_offender(self.window_start(now))?.then_some("past offender")
            }
        })
    }
}

/// `[keyonly] mode`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyOnlyMode {
    /// Nobody.
    Off,
    /// Past offenders.
    #[default]
    Offenders,
    /// Everyone outside `trusted`.
    Untrusted,
    /// Everyone (but allowed networks).
    All,
}

impl KeyOnlyMode {
    /// The config's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOnlyMode::Off => "off",
            KeyOnlyMode::Offenders => "offenders",
            KeyOnlyMode::Untrusted => "untrusted",
            KeyOnlyMode::All => "all",
        }
    }
}

/// `[keyonly] method`: how sshd learns who is key-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyOnlyMethod {
    /// `redirect` with the nftables firewall backend, else `reload`.
    #[default]
    Auto,
    /// One `Match LocalPort` block written once; nftables sends key-only
    /// sources' new connections to that port. No sshd reload per offender,
    /// so OpenSSH 9.8+'s PerSourcePenalties keep their state.
    Redirect,
    /// `Match Address` blocks naming the sources, rewritten and sshd
    /// reloaded when the set changes (no firewall needed).
    Reload,
}

impl KeyOnlyMethod {
    /// The config's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOnlyMethod::Auto => "auto",
            KeyOnlyMethod::Redirect => "redirect",
            KeyOnlyMethod::Reload => "reload",
        }
    }
}

/// `[keyonly] reload`: `"auto"`, `"none"`, or a command as a list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "ReloadText")]
pub enum Reload {
    /// `systemctl reload ssh` where systemd runs sshd, else SIGHUP to the
    /// pid in sshd's `PidFile`.
    #[default]
    Auto,
    /// Never: sshd picks the file up at its next restart.
    None,
    /// This command, run without a shell.
    Command(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ReloadText {
    Word(String),
    Argv(Vec<String>),
}

impl TryFrom<ReloadText> for Reload {
    type Error = String;
    fn try_from(raw: ReloadText) -> Result<Self, String> {
        match raw {
            ReloadText::Word(w) if w == "auto" => Ok(Reload::Auto),
            ReloadText::Word(w) if w == "none" => Ok(Reload::None),
            ReloadText::Word(w) => Err(format!(
                "{w:?} is not \"auto\", \"none\" or a command as a list of strings"
            )),
            ReloadText::Argv(argv) if argv.first().is_some_and(|p| !p.is_empty()) => {
                Ok(Reload::Command(argv))
            }
            ReloadText::Argv(_) => Err("the reload command must name a program".into()),
        }
    }
}

/// The sources that must use a key, as sshd should see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOnlySet {
    /// Nobody.
    Nobody,
    /// These networks (merged into the fewest CIDRs).
    Networks(Vec<IpNet>),
    /// Everyone except these networks.
    AllExcept(Vec<IpNet>),
}

impl KeyOnlySet {
    /// The set for `mode`: `offenders` (past offenders' networks) and
    /// `countries` (the networks of `[geo] keyonly`, key-only whatever the
    /// mode), minus `allowed` (never key-only); `untrusted` excepts
    /// `trusted` too.
    pub fn new(
        config: &KeyOnlyConfig,
        offenders: impl IntoIterator<Item = IpNet>,
        countries: Vec<IpNet>,
        allowed: &[IpNet],
    ) -> KeyOnlySet {
        match config.mode {
            KeyOnlyMode::Off => KeyOnlySet::networks(countries, allowed),
            KeyOnlyMode::Offenders => {
                let mut nets = countries;
                nets.extend(offenders);
                KeyOnlySet::networks(nets, allowed)
            }
            KeyOnlyMode::Untrusted => {
                let mut except: Vec<IpNet> = allowed.to_vec();
                except.extend(config.trusted.iter().map(|c| c.0));
                KeyOnlySet::AllExcept(IpNet::aggregate(&except))
            }
            KeyOnlyMode::All => KeyOnlySet::AllExcept(IpNet::aggregate(&allowed.to_vec())),
        }
    }

    /// `nets` minus `allowed`, merged; `Nobody` when nothing is left.
    fn networks(nets: Vec<IpNet>, allowed: &[IpNet]) -> KeyOnlySet {
        let kept: Vec<IpNet> = nets
            .into_iter()
            .flat_map(|net| subtract(net, allowed))
            .collect();
        if kept.is_empty() {
            KeyOnlySet::Nobody
        } else {
            KeyOnlySet::Networks(IpNet::aggregate(&kept))
        }
    }

    /// True when `ip` must use a key.
    pub fn covers(&self, ip: IpAddr) -> bool {
        match self {
            KeyOnlySet::Nobody => false,
            KeyOnlySet::Networks(nets) => nets.iter().any(|n| n.contains(&ip)),
            KeyOnlySet::AllExcept(except) => !except.iter().any(|n| n.contains(&ip)),
        }
    }

    /// How many networks it names (key-only ones, or the exceptions).
    pub fn len(&self) -> usize {
        match self {
            KeyOnlySet::Nobody => 0,
            KeyOnlySet::Networks(n) | KeyOnlySet::AllExcept(n) => n.len(),
        }
    }

    /// True for [`KeyOnlySet::Nobody`].
    pub fn is_empty(&self) -> bool {
        matches!(self, KeyOnlySet::Nobody)
    }
}

/// `net` without the parts inside `allowed` (as CIDRs). An allowed network
/// inside an offending one splits it; one covering it removes it.
fn subtract(net: IpNet, allowed: &[IpNet]) -> Vec<IpNet> {
    if allowed.iter().any(|a| a.contains(&net)) {
        return Vec::new();
    }
    let inside: Vec<&IpNet> = allowed.iter().filter(|a| net.contains(*a)).collect();
    if inside.is_empty() {
        return vec![net];
    }
    // Split in halves until no half holds an allowed network partly.
    let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
        return Vec::new();
    };
    halves.flat_map(|half| subtract(half, allowed)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::addr::parse_target(s).unwrap()
    }

    #[test]
    fn offenders_merge_and_allowed_networks_are_cut_out() {
        let config = KeyOnlyConfig::default();
        let offenders = ["203.0.113.0", "203.0.113.1", "198.51.100.0/24", "192.0.2.9"].map(net);
        let set = KeyOnlySet::new(
            &config,
            offenders,
            Vec::new(),
            &[net("192.0.2.0/24"), net("198.51.100.128/25")],
        );
        assert_eq!(
            set,
            KeyOnlySet::Networks(vec![net("198.51.100.0/25"), net("203.0.113.0/31")])
        );
        assert!(set.covers("203.0.113.1".parse().unwrap()));
        assert!(
            !set.covers("198.51.100.200".parse().unwrap()),
            "allowed half"
        );
        assert!(
            !set.covers("192.0.2.9".parse().unwrap()),
            "allowed, ban history or not"
        );
    }

    #[test]
    fn untrusted_means_everyone_outside_trusted_and_allowed() {
        let config = KeyOnlyConfig {
            mode: KeyOnlyMode::Untrusted,
            trusted: vec![Cidr(net("10.0.0.0/8"))],
            ..KeyOnlyConfig::default()
        };
        let set = KeyOnlySet::new(
            &config,
            [],
            vec![net("203.0.113.0/24")],
            &[net("127.0.0.0/8")],
        );
        assert!(set.covers("203.0.113.1".parse().unwrap()));
        assert!(!set.covers("10.1.2.3".parse().unwrap()));
        assert!(!set.covers("127.0.0.1".parse().unwrap()));
        let off = KeyOnlyConfig {
            mode: KeyOnlyMode::Off,
            ..KeyOnlyConfig::default()
        };
        assert!(KeyOnlySet::new(&off, [net("203.0.113.1")], Vec::new(), &[]).is_empty());
    }

    #[test]
    fn key_only_countries_count_in_every_mode_but_allowed_networks_win() {
        let countries = || vec![net("198.51.100.0/24"), net("2001:db8::/32")];
        let allowed = [net("198.51.100.64/26")];
        let off = KeyOnlyConfig {
            mode: KeyOnlyMode::Off,
            ..KeyOnlyConfig::default()
        };
        let set = KeyOnlySet::new(&off, [net("203.0.113.1")], countries(), &allowed);
        assert!(set.covers("198.51.100.7".parse().unwrap()));
        assert!(set.covers("2001:db8::1".parse().unwrap()));
        assert!(!set.covers("198.51.100.70".parse().unwrap()), "allowed");
        assert!(
            !set.covers("203.0.113.1".parse().unwrap()),
            "mode off: no offenders"
        );
        let set = KeyOnlySet::new(
            &KeyOnlyConfig::default(),
            [net("203.0.113.1")],
            countries(),
            &allowed,
        );
        assert!(set.covers("203.0.113.1".parse().unwrap()));
        assert!(set.covers("198.51.100.200".parse().unwrap()));
        assert_eq!(set.len(), 4, "{set:?}");
    }
}
