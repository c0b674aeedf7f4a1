//! `[crowdsec]`: the fleet, through CrowdSec's Local API. The daemon pulls
//! the LAPI's ban decisions into the store as a bouncer and pushes its own
//! bans as alerts as a machine; logins are still decided from the local
//! store alone. Empty `url` (the default): no fleet.

use super::{Ipv4Prefix, Ipv6Prefix, PositiveDuration};
use crate::duration::HumanDuration;
use serde::Deserialize;
use std::path::PathBuf;

/// `[crowdsec]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrowdsecConfig {
    /// The LAPI (`http://127.0.0.1:8080/`); empty: no fleet.
    pub url: String,
    /// The bouncer API key (pull), in a file readable by root only.
    pub api_key_file: PathBuf,
    /// This host's machine name (push); empty: pull only.
    pub machine_id: String,
    /// The machine's password, in a file readable by root only.
    pub password_file: PathBuf,
    /// How often the daemon asks the LAPI what changed.
    pub pull_interval: PositiveDuration,
    /// Which decision scopes are pulled (`ip`, `range`; others are skipped).
    pub scopes: Vec<DecisionScope>,
    /// Pull only decisions of these origins (`crowdsec`, `cscli`, `CAPI`,
    /// `lists`); empty: every origin.
    pub origins: Vec<String>,
    /// Pull only decisions whose scenario contains one of these words.
    pub scenarios_containing: Vec<String>,
    /// Skip decisions whose scenario contains one of these words.
    pub scenarios_not_containing: Vec<String>,
    /// A pulled IPv4 range wider than this prefix is refused.
    pub min_ipv4_prefix: Ipv4Prefix,
    /// A pulled IPv6 range wider than this prefix is refused.
    pub min_ipv6_prefix: Ipv6Prefix,
    /// The scenario our pushed alerts carry.
    pub scenario: String,
    /// A CA file for an https LAPI (empty: the system's roots).
    pub ca_file: PathBuf,
    /// A client certificate for CrowdSec's TLS authentication (empty:
    /// none). With one, it authenticates the pull (its OU in the LAPI's
    /// `bouncers_allowed_ou`) and the push (in `agents_allowed_ou`), and
    /// `api_key_file` and `password_file` are not read.
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
    /// Plain http to an address other than loopback (credentials and
    /// decisions would cross the network in clear).
    pub insecure_http: bool,
    /// How long one request to the LAPI may take.
    pub timeout: PositiveDuration,
}

/// A decision scope authguard can enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionScope {
    /// One address.
    Ip,
    /// A network in CIDR form.
    Range,
}

impl DecisionScope {
    /// The LAPI's word for it (`Ip`, `Range`).
    pub fn as_lapi(self) -> &'static str {
        match self {
            DecisionScope::Ip => "Ip",
            DecisionScope::Range => "Range",
        }
    }
}

impl Default for CrowdsecConfig {
    fn default() -> Self {
        let dir = PathBuf::from("/etc/authguard/crowdsec");
        CrowdsecConfig {
            url: String::new(),
            api_key_file: dir.join("bouncer.key"),
            machine_id: String::new(),
            password_file: dir.join("machine.password"),
            pull_interval: PositiveDuration(HumanDuration::secs(2)),
            scopes: vec![DecisionScope::Ip, DecisionScope::Range],
            origins: Vec::new(),
            scenarios_containing: Vec::new(),
            scenarios_not_containing: Vec::new(),
            min_ipv4_prefix: Ipv4Prefix(16),
            min_ipv6_prefix: Ipv6Prefix(32),
            scenario: "authguard/ssh-bf".into(),
            ca_file: PathBuf::new(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            insecure_http: false,
            timeout: PositiveDuration(HumanDuration::secs(10)),
        }
    }
}

impl CrowdsecConfig {
    /// True when a LAPI is configured.
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    /// True when a TLS client certificate authenticates us, instead of the
    /// API key and the machine password.
    pub fn client_cert(&self) -> bool {
        !self.cert_file.as_os_str().is_empty()
    }

    /// True when our bans are pushed (a machine id is set).
    pub fn pushes(&self) -> bool {
        self.enabled() && !self.machine_id.is_empty()
    }

    /// The checks that involve more than one key, as `(key, message)`.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled() {
            return Ok(());
        }
        let url = Url::parse(&self.url).map_err(|e| ("crowdsec.url", e))?;
        if !url.https && !url.loopback && !self.insecure_http {
            return Err((
                "crowdsec.url",
                format!(
                    "{} is plain http to {}, not loopback: use https, or set insecure_http = true",
                    self.url, url.host
                ),
            ));
        }
        if self.cert_file.as_os_str().is_empty() != self.key_file.as_os_str().is_empty() {
            return Err((
                "crowdsec.cert_file",
                "cert_file and key_file go together".into(),
            ));
        }
        if self.client_cert() && !url.https {
            return Err((
                "crowdsec.cert_file",
                format!(
                    "a client certificate needs an https:// url, not {}",
                    self.url
                ),
            ));
        }
        if self.scenario.is_empty() || self.scenario.contains(char::is_whitespace) {
            return Err((
                "crowdsec.scenario",
                "must be one word such as authguard/ssh-bf".into(),
            ));
        }
        Ok(())
    }
}

/// The parts of a LAPI URL the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https` rather than `http`.
    pub https: bool,
    /// The host, as written (brackets removed from an IPv6 literal).
    pub host: String,
    /// The port (80 or 443 unless given).
    pub port: u16,
    /// The host is a loopback address or `localhost`.
    pub loopback: bool,
}

impl Url {
    /// Parses `http://HOST[:PORT][/]` or `https://…`; anything else is an
    /// error in words.
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{text:?} is not an http:// or https:// URL"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("{text:?} has no host, or a bad port"))?;
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| crate::addr::canonical(ip).is_loopback());
        Ok(Url {
            https,
            host,
            port,
            loopback,
        })
    }
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            (host, rest.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_plain_http_only_to_loopback() {
        let u = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!((u.https, u.port, u.loopback), (false, 8080, true));
        let u = Url::parse("https://[2001:db8::1]/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.loopback),
            ("2001:db8::1", 443, false)
        );
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://:80/").is_err());
        assert!(Url::parse("http://h:0/").is_err());

        let mut c = CrowdsecConfig {
            url: "http://192.0.2.10:8080/".into(),
            ..CrowdsecConfig::default()
        };
        assert_eq!(c.check().unwrap_err().0, "crowdsec.url");
        c.insecure_http = true;
        assert!(c.check().is_ok());
        c.url = "https://lapi.example:8443".into();
        c.insecure_http = false;
        assert!(c.check().is_ok());
        c.cert_file = "/etc/authguard/crowdsec/client.pem".into();
        assert_eq!(c.check().unwrap_err().0, "crowdsec.cert_file");
        c.key_file = "/etc/authguard/crowdsec/client.key".into();
        assert!(c.check().is_ok() && c.client_cert());
        c.url = "http://127.0.0.1:8080".into();
        let (key, why) = c.check().unwrap_err();
        assert!(
            key == "crowdsec.cert_file" && why.contains("https"),
            "{why}"
        );
    }
}
