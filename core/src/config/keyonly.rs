//! `[keyonly]`: who must use a public key (the rule itself is
//! [`crate::policy::keyonly`]), and how sshd is told: by steering key-only
//! connections to a key-only listener with nftables (`method =
//! "redirect"`), or by naming them in `Match Address` blocks (`reload`).

use super::{Cidr, PositiveDuration};
use crate::duration::HumanDuration;
use crate::time::{self, Timestamp};
use serde::Deserialize;
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
        time::before(now, self.window.0.0)
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
