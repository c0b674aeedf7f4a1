//! `authguard.toml`: every key optional, every bad key or value an error
//! that names the key and its line.
//!
//! The PAM module and `guardctl` load the same file the same way; the
//! defaults are a contract (docs/ARCHITECTURE.md); `packaging/authguard.toml`
//! documents them, and a test keeps the two equal.

mod crowdsec;
mod keyonly;
mod policy;
mod report;
mod sections;
mod values;

pub use crowdsec::{CrowdsecConfig, DecisionScope, Url};
pub use keyonly::{KeyOnlyConfig, KeyOnlyMethod, KeyOnlyMode, Reload};
pub use policy::{BanScope, PolicyConfig, RecidiveConfig};
pub use report::{AutoReport, ReportConfig, Unresponsive};
pub use sections::{
    FirewallAction, FirewallBackend, FirewallConfig, GeoConfig, LogConfig, LogSource,
    MetricsConfig, PamConfig, PamModule, SshdLogConfig, StoreConfig, Textfile,
};
pub use values::{
    Cidr, Factor, GiveUpAfter, Ipv4Prefix, Ipv6Prefix, MailCap, MaxFailures, PositiveDuration,
    ProbeWeight, SendmailCommand, SubnetOffenders, WhoisServer,
};

use crate::addr;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the config lives unless `--config`, `AUTHGUARD_CONFIG` or PAM's `config=` say otherwise.
pub const DEFAULT_PATH: &str = "/etc/authguard/authguard.toml";

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists (or was named explicitly) but could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a bad value.
    #[error("{path}: {}{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// The dotted key (`policy.max_failures`), when known.
        key: Option<String>,
        /// What is wrong, in words.
        message: String,
    },
}

/// What to do when the store cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Admit the login (and log why): an outage never locks the admin out.
    #[default]
    Open,
    /// Refuse the login: for hosts where an unguarded password prompt is worse.
    Closed,
}

impl fmt::Display for FailMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailMode::Open => "open",
            FailMode::Closed => "closed",
        })
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// What to do when the store cannot be used.
    pub fail_mode: FailMode,
    /// Networks that are never banned (replaces the default list when set).
    pub allow: Vec<Cidr>,
    /// The SQLite store.
    pub store: StoreConfig,
    /// When to ban and for how long.
    pub policy: PolicyConfig,
    /// What the PAM module tells a refused client.
    pub pam: PamConfig,
    /// Where decisions are logged.
    pub log: LogConfig,
    /// How bans reach the packet filter.
    pub firewall: FirewallConfig,
    /// Long bans for repeat offenders.
    pub recidive: RecidiveConfig,
    /// Reading sshd's own log, for what PAM never sees.
    pub sshd_log: SshdLogConfig,
    /// Telling past offenders' clients that only keys are accepted.
    pub keyonly: KeyOnlyConfig,
    /// Who abuse reports come from.
    pub report: ReportConfig,
    /// What blocked countries (`guardctl geo block`) lose.
    pub geo: GeoConfig,
    /// The fleet: bans shared through CrowdSec's Local API.
    pub crowdsec: CrowdsecConfig,
    /// Prometheus metrics for node_exporter's textfile collector.
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fail_mode: FailMode::Open,
            allow: ["127.0.0.0/8", "::1"]
                .iter()
                .filter_map(|s| addr::parse_target(s).ok().map(Cidr))
                .collect(),
            store: StoreConfig::default(),
            policy: PolicyConfig::default(),
            pam: PamConfig::default(),
            log: LogConfig::default(),
            firewall: FirewallConfig::default(),
            recidive: RecidiveConfig::default(),
            sshd_log: SshdLogConfig::default(),
            keyonly: KeyOnlyConfig::default(),
            report: ReportConfig::default(),
            geo: GeoConfig::default(),
            crowdsec: CrowdsecConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Like [`Config::load`], but a missing file at the *default* path means
    /// the defaults: a fresh install with no config is a valid install.
    pub fn load_or_default(path: &Path, explicit: bool) -> Result<Config, ConfigError> {
        match Config::load(path) {
            Err(ConfigError::Read { source, .. })
                if !explicit && source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Config::default())
            }
            other => other,
        }
    }

    /// Parses and validates `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                key,
                message: e.message().trim().to_owned(),
            }
        })?;
        config.check_relations().map_err(|(key, message)| {
            let line = line_of_key(text, key);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                key: Some(key.to_owned()),
                message,
            }
        })?;
        Ok(config)
    }

    /// Checks that involve more than one key.
    fn check_relations(&self) -> Result<(), (&'static str, String)> {
        let p = &self.policy;
        if p.ban_time_max.0 < p.ban_time.0 {
            return Err((
                "policy.ban_time_max",
                format!(
                    "ban_time_max ({}) is shorter than ban_time ({})",
                    p.ban_time_max.0, p.ban_time.0
                ),
            ));
        }
        if self.store.retention.0 < self.recidive.window.0 && self.recidive.bans > 0 {
            return Err((
                "store.retention",
                format!(
                    "retention ({}) is shorter than recidive.window ({}): history would be deleted before the recidive rule can count it",
                    self.store.retention.0, self.recidive.window.0
                ),
            ));
        }
        if self.firewall.ports.is_empty() || self.firewall.ports.contains(&0) {
            return Err((
                "firewall.ports",
                "must list at least one port from 1 to 65535".into(),
            ));
        }
        if self.pam.message.contains('\0') {
            return Err(("pam.message", "must not contain a NUL character".into()));
        }
        let k = &self.keyonly;
        if k.port == 0 || self.firewall.ports.contains(&k.port) {
            return Err((
                "keyonly.port",
                format!(
                    "{} cannot be the key-only listener's port: it must be from 1 to 65535 and not one of [firewall] ports ({:?}), whose connections are redirected to it",
                    k.port, self.firewall.ports
                ),
            ));
        }
        if k.method == KeyOnlyMethod::Redirect && self.firewall.backend != FirewallBackend::Nftables
        {
            return Err((
                "keyonly.method",
                "\"redirect\" needs [firewall] backend = \"nftables\" (or use \"reload\")".into(),
            ));
        }
        if self.keyonly.message.contains('\0') {
            return Err(("keyonly.message", "must not contain a NUL character".into()));
        }
        self.crowdsec.check()
    }

    /// The configured allow-list network containing `ip`, if any.
    pub fn allowed_by(&self, ip: std::net::IpAddr) -> Option<&Cidr> {
        self.allow.iter().find(|c| c.0.contains(&ip))
    }

    /// True when `ip` is in the configured allow list.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allowed_by(ip).is_some()
    }
}

/// The 1-based line of byte `offset`, and the dotted key written on that line.
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let mut table = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if i + 1 == line_no {
            let key = if let Some(header) = table_header(trimmed) {
                header
            } else {
                let name = trimmed
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches('"');
                match (table.is_empty(), name.is_empty()) {
                    (_, true) => return (Some(line_no), None),
                    (true, false) => name.to_owned(),
                    (false, false) => format!("{table}.{name}"),
                }
            };
            return (Some(line_no), Some(key));
        }
        if let Some(header) = table_header(trimmed) {
            table = header;
        }
    }
    (Some(line_no), None)
}

fn table_header(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?.split(']').next()?;
    Some(inner.trim().to_owned())
}

/// The line on which a dotted key (`policy.ban_time_max`) is set, if it is.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let (want_table, want_key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut table = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = table_header(trimmed) {
            table = header;
        } else if table == want_table && trimmed.split('=').next().map(str::trim) == Some(want_key)
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("authguard.toml"))
    }

    fn error_of(text: &str) -> (Option<usize>, Option<String>, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.policy.max_failures.0, 5);
        assert_eq!(c.policy.find_time.0, HumanDuration::secs(600));
        assert_eq!(c.policy.ban_time_max.0, HumanDuration::secs(90 * 86_400));
        assert_eq!(c.policy.ipv6_prefix.0, 64);
        assert_eq!(
            c.store.path,
            PathBuf::from("/var/lib/authguard/authguard.db")
        );
        assert!(c.allows("127.0.0.9".parse().unwrap()));
        assert!(c.allows("::1".parse().unwrap()));
        assert!(!c.allows("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn a_full_file_parses() {
        let c = parse(
            "fail_mode = \"closed\"\nallow = [\"10.0.0.0/8\"]\n[store]\npath = \"/tmp/x.db\"\nbusy_timeout = \"250ms\"\n",
        );
        // 250ms is not a unit authguard knows: the error names the key.
        let Err(ConfigError::Invalid { key, line, .. }) = c else {
            panic!()
        };
        assert_eq!(
            (key.as_deref(), line),
            (Some("store.busy_timeout"), Some(5))
        );
        let c = parse("fail_mode = \"closed\"\nallow = [\"10.0.0.0/8\"]\n[policy]\nban_time = 60\nban_time_factor = 3\n").unwrap();
        assert_eq!(c.fail_mode, FailMode::Closed);
        assert!(
            !c.allows("127.0.0.1".parse().unwrap()),
            "setting allow replaces the default list"
        );
        assert_eq!(c.policy.ban_time.0, HumanDuration::secs(60));
        assert_eq!(c.policy.ban_time_factor.0, 3.0);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let (line, key, msg) = error_of("[policy]\nmax_failures = 3\nmax_failure = 4\n");
        assert_eq!(line, Some(3));
        assert_eq!(key.as_deref(), Some("policy.max_failure"));
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases = [
            ("[policy]\n\nfind_time = \"ten\"\n", 3, "policy.find_time"),
            ("[policy]\nmax_failures = 0\n", 2, "policy.max_failures"),
            ("[policy]\nipv6_prefix = 200\n", 2, "policy.ipv6_prefix"),
            (
                "[policy]\nban_time_factor = 0.5\n",
                2,
                "policy.ban_time_factor",
            ),
            ("[policy]\nban_time = \"0s\"\n", 2, "policy.ban_time"),
            ("fail_mode = \"ajar\"\n", 1, "fail_mode"),
            ("allow = [\"10.0.0.1/8\"]\n", 1, "allow"),
            (
                "[policy]\nban_time = \"1h\"\nban_time_max = \"10m\"\n",
                3,
                "policy.ban_time_max",
            ),
            ("[firewal]\nx = 1\n", 1, "firewal"),
            ("[store]\nretention = \"1d\"\n", 2, "store.retention"),
            (
                "[report]\nunresponsive = \"ban\"\n",
                2,
                "report.unresponsive",
            ),
            (
                "[report]\nunresponsive_subnet_offenders = 0\n",
                2,
                "report.unresponsive_subnet_offenders",
            ),
        ];
        for (text, want_line, want_key) in cases {
            let (line, key, msg) = error_of(text);
            assert_eq!(line, Some(want_line), "{text}: {msg}");
            assert_eq!(key.as_deref(), Some(want_key), "{text}: {msg}");
        }
    }

    #[test]
    fn error_display_names_file_line_and_key() {
        let err = parse("[policy]\nmax_failures = \"five\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("authguard.toml: line 2: key `policy.max_failures`: "),
            "{err}"
        );
    }

    #[test]
    fn shipped_config_documents_exactly_the_defaults() {
        let shipped = include_str!("../../../packaging/authguard.toml");
        assert_eq!(parse(shipped).unwrap(), Config::default());
        // Every key, uncommented, is valid and is the default.
        let uncommented: String = shipped
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest)
                    if rest.split('=').next().is_some_and(|k| {
                        k.trim().chars().all(|c| c.is_ascii_lowercase() || c == '_')
                            && rest.contains('=')
                    }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(uncommented.matches('=').count() >= 14, "{uncommented}");
        assert_eq!(parse(&uncommented).unwrap(), Config::default());
    }

    #[test]
    fn metrics_textfile_is_off_or_an_absolute_prom_file() {
        let m = parse("[metrics]\ntextfile = \"\"\ninterval = \"10s\"\n")
            .unwrap()
            .metrics;
        assert_eq!(m.textfile, Textfile(None));
        assert_eq!(m.interval.0, HumanDuration::secs(10));
        let m = parse("[metrics]\ntextfile = \"/run/x/ag.prom\"\n")
            .unwrap()
            .metrics;
        assert_eq!(m.textfile.0.as_deref(), Some(Path::new("/run/x/ag.prom")));
        for bad in ["\"ag.prom\"", "\"/run/x/ag.txt\"", "\"/run/x/\"", "3"] {
            let (line, key, message) = error_of(&format!("[metrics]\n\ntextfile = {bad}\n"));
            assert_eq!(
                (line, key.as_deref()),
                (Some(3), Some("metrics.textfile")),
                "{message}"
            );
        }
        let (line, key, _) = error_of("[metrics]\ninterval = \"0s\"\n");
        assert_eq!((line, key.as_deref()), (Some(2), Some("metrics.interval")));
    }

    #[test]
    fn geo_scope_is_ports_or_all() {
        assert_eq!(parse("").unwrap().geo.scope, BanScope::Ports);
        assert_eq!(
            parse("[geo]\nscope = \"all\"\n").unwrap().geo.scope,
            BanScope::All
        );
        let (line, key, _) = error_of("[geo]\nscope = \"world\"\n");
        assert_eq!((line, key.as_deref()), (Some(2), Some("geo.scope")));
    }

    #[test]
    fn geo_keyonly_takes_country_codes_only() {
        let geo = parse("[geo]\nkeyonly = [\"de\", \"CN\"]\n").unwrap().geo;
        let codes: Vec<&str> = geo.keyonly.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, ["DE", "CN"]);
        for bad in ["\"GER\"", "\"??\"", "\"ZZ\"", "\"1A\""] {
            let (line, key, message) = error_of(&format!("[geo]\n\nkeyonly = [{bad}]\n"));
            assert_eq!(
                (line, key.as_deref()),
                (Some(3), Some("geo.keyonly")),
                "{message}"
            );
            assert!(message.contains(bad.trim_matches('"')), "{message}");
        }
    }

    #[test]
    fn keyonly_port_must_not_be_a_guarded_port_and_redirect_needs_nftables() {
        let k = parse("[keyonly]\nmethod = \"redirect\"\nport = 2022\n")
            .unwrap()
            .keyonly;
        assert_eq!((k.method.as_str(), k.port), ("redirect", 2022));
        assert!(k.redirects(false), "redirect is asked for explicitly");
        assert!(KeyOnlyConfig::default().redirects(true));
        assert!(
            !KeyOnlyConfig::default().redirects(false),
            "auto without nftables"
        );
        let (_, key, message) = error_of("[firewall]\nports = [22, 2223]\n");
        assert_eq!(key.as_deref(), Some("keyonly.port"), "{message}");
        assert!(message.contains("2223"), "{message}");
        let (_, key, _) = error_of("[keyonly]\nport = 0\n");
        assert_eq!(key.as_deref(), Some("keyonly.port"));
        let (_, key, message) =
            error_of("[firewall]\nbackend = \"none\"\n[keyonly]\nmethod = \"redirect\"\n");
        assert_eq!(key.as_deref(), Some("keyonly.method"), "{message}");
        let (line, key, _) = error_of("[keyonly]\nmethod = \"teleport\"\n");
        assert_eq!((line, key.as_deref()), (Some(2), Some("keyonly.method")));
    }

    #[test]
    fn missing_default_file_means_defaults_but_explicit_does_not() {
        let missing = Path::new("/nonexistent/authguard.toml");
        assert_eq!(
            Config::load_or_default(missing, false).unwrap(),
            Config::default()
        );
        assert!(matches!(
            Config::load_or_default(missing, true),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn whois_server_is_a_host_with_an_optional_port_and_errors_name_the_key() {
        let c = parse("[report]\nwhois_server = \"127.0.0.1:4343\"\n").unwrap();
        assert_eq!(c.report.whois_server.to_string(), "127.0.0.1:4343");
        let c = parse("[report]\nwhois_server = \"whois.ripe.net\"\n").unwrap();
        assert_eq!(c.report.whois_server.port, 43);
        for bad in ["", "whois://x", "host:0", "host:99999", "two words"] {
            let err = parse(&format!("[report]\nwhois_server = {bad:?}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("key `report.whois_server`"), "{bad}: {err}");
        }
    }
}
