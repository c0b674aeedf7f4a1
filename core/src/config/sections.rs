//! The config's sections that are plain settings: `[store]`, `[pam]`,
//! `[log]`, `[firewall]`, `[sshd_log]`, `[geo]`, `[metrics]`.

use super::{BanScope, PositiveDuration, ProbeWeight};
use crate::duration::HumanDuration;
use serde::Deserialize;
use std::path::PathBuf;

/// `[geo]`: how the firewall treats blocked countries' ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoConfig {
    /// `ports`: their new connections to `[firewall] ports` are dropped;
    /// `all`: every new connection they open, on any port.
    pub scope: BanScope,
    /// Countries whose sources must use a key (the key-only mechanism:
    /// sshd's snippet and the PAM module), rather than being dropped.
    pub keyonly: Vec<crate::geo::Country>,
}

/// `[sshd_log]`: the daemon follows sshd's log and counts what PAM never
/// sees (public-key scanners, invalid users, protocol probes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshdLogConfig {
    /// Where sshd's log is read from.
    pub source: LogSource,
    /// The weight of a protocol probe (no banner, junk, old key exchange).
    pub probe_weight: ProbeWeight,
    /// Whether the PAM module guards sshd; then password failures in the
    /// log are evidence only (PAM counted them).
    pub pam_module: PamModule,
}

impl Default for SshdLogConfig {
    fn default() -> Self {
        SshdLogConfig {
            source: LogSource::Journal,
            probe_weight: ProbeWeight(0.5),
            pam_module: PamModule::Auto,
        }
    }
}

/// `[sshd_log] source`: `"journal"`, `"off"`, or an absolute file path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum LogSource {
    /// systemd's journal (sshd's units), with a cursor kept in the store.
    #[default]
    Journal,
    /// A syslog file such as `/var/log/auth.log`, followed across rotation.
    File(PathBuf),
    /// Not read.
    Off,
}

impl TryFrom<String> for LogSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "journal" => Ok(LogSource::Journal),
            "off" => Ok(LogSource::Off),
            path if path.starts_with('/') => Ok(LogSource::File(PathBuf::from(path))),
            other => Err(format!(
                "{other:?} is not \"journal\", \"off\" or an absolute file path"
            )),
        }
    }
}

/// `[sshd_log] pam_module`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PamModule {
    /// Look for `pam_authguard.so` in `/etc/pam.d/sshd`.
    #[default]
    Auto,
    /// The module guards sshd.
    Active,
    /// It does not: the log counts password failures too.
    Inactive,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// How long an admission may wait for another writer before the store counts as unusable.
    pub busy_timeout: HumanDuration,
    /// Attempts and ended bans older than this are deleted by the daemon.
    pub retention: PositiveDuration,
}

/// `[pam]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PamConfig {
    /// Sent to a refused client as PAM_ERROR_MSG.
    pub message: String,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The syslog datagram socket (`/dev/log`; journald listens there too).
    pub socket: PathBuf,
}

/// `[firewall]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallConfig {
    /// Which packet filter bans are pushed into.
    pub backend: FirewallBackend,
    /// The TCP ports whose new connections banned sources lose.
    pub ports: Vec<u16>,
    /// What happens to a banned source's packets.
    pub action: FirewallAction,
    /// How often the daemon rebuilds the firewall from the store regardless.
    pub resync: PositiveDuration,
}

/// `[firewall] backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    /// nftables, table `inet authguard`.
    #[default]
    Nftables,
    /// No firewall: PAM refusals only.
    None,
}

/// `[firewall] action`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallAction {
    /// Silently drop (the scanner waits for a timeout).
    #[default]
    Drop,
    /// Answer with a TCP reset.
    Reject,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            backend: FirewallBackend::Nftables,
            ports: vec![22],
            action: FirewallAction::Drop,
            resync: PositiveDuration(HumanDuration::secs(30)),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/authguard/authguard.db"),
            busy_timeout: HumanDuration::secs(1),
            retention: PositiveDuration(HumanDuration::secs(180 * 86_400)),
        }
    }
}

impl Default for PamConfig {
    fn default() -> Self {
        PamConfig {
            message: "Access from your address is temporarily blocked.".into(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            socket: PathBuf::from("/dev/log"),
        }
    }
}

/// `[metrics]`: the daemon writes `guardctl metrics`' text into a file for
/// node_exporter's textfile collector, every `interval`, while the file's
/// directory exists (Debian's `prometheus-node-exporter` makes it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The `.prom` file; `""`: none written.
    pub textfile: Textfile,
    /// How often the daemon rewrites it.
    pub interval: PositiveDuration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            textfile: Textfile(Some(PathBuf::from(
                "/var/lib/prometheus/node-exporter/authguard.prom",
            ))),
            interval: PositiveDuration(HumanDuration::secs(60)),
        }
    }
}

/// `[metrics] textfile`: `""` (off) or an absolute path ending in `.prom`
/// (node_exporter reads only those).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Textfile(pub Option<PathBuf>);

impl TryFrom<String> for Textfile {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let path = PathBuf::from(&s);
        match s.as_str() {
            "" => Ok(Textfile(None)),
            _ if !path.is_absolute() => Err(format!("{s:?} is not \"\" or an absolute path")),
            _ if path.extension().is_none_or(|e| e != "prom") || path.file_stem().is_none() => {
                Err(format!(
                    "{s:?} does not end in .prom (node_exporter's textfile collector reads only *.prom)"
                ))
            }
            _ => Ok(Textfile(Some(path))),
        }
    }
}
