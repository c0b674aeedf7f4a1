//! The config's value types: a network ([`Cidr`]), a duration that must
//! be positive, and numbers that must lie in a range. Each rejects a bad
//! value with words that name the range.

use crate::addr::{self, AddrError};
use crate::duration::HumanDuration;
use ipnet::IpNet;
use serde::Deserialize;

/// A network in the allow list; a bare address is a one-address network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr(pub IpNet);

impl TryFrom<String> for Cidr {
    type Error = AddrError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        addr::parse_target(&s).map(Cidr)
    }
}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($inner:ty), $from:literal, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize)]
        #[serde(try_from = $from)]
        pub struct $name(pub $inner);

        impl TryFrom<$inner> for $name {
            type Error = String;
            fn try_from(v: $inner) -> Result<Self, String> {
                let check: fn(&$inner) -> bool = $check;
                if check(&v) { Ok($name(v)) } else { Err(format!(concat!("{} is out of range: ", $what), v)) }
            }
        }
    };
}

bounded!(
    /// `max_failures`: at least 1.
    MaxFailures(u32), "u32", |v| *v >= 1, "must be at least 1"
);
bounded!(
    /// `ban_time_factor`: at least 1 (1 means no escalation).
    Factor(f64), "f64", |v| v.is_finite() && *v >= 1.0, "must be a number of at least 1"
);
bounded!(
    /// `ipv4_prefix`: 8 to 32; shorter would let one attacker ban a whole provider.
    Ipv4Prefix(u8), "u8", |v| (8..=32).contains(v), "must be from 8 to 32"
);
bounded!(
    /// `ipv6_prefix`: 16 to 128.
    Ipv6Prefix(u8), "u8", |v| (16..=128).contains(v), "must be from 16 to 128"
);

bounded!(
    /// `probe_weight`: from 0 (probes never count) to 1 (a full failure).
    ProbeWeight(f64), "f64", |v| (0.0..=1.0).contains(v), "must be a number from 0 to 1"
);

/// A duration that must be longer than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "HumanDuration")]
pub struct PositiveDuration(pub HumanDuration);

impl TryFrom<HumanDuration> for PositiveDuration {
    type Error = &'static str;
    fn try_from(d: HumanDuration) -> Result<Self, Self::Error> {
        if d.0.is_zero() {
            Err("must be longer than 0s")
        } else {
            Ok(PositiveDuration(d))
        }
    }
}

/// `[report] whois_server`: `host` or `host:port` (port 43 by default).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct WhoisServer {
    /// The host name or address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl TryFrom<String> for WhoisServer {
    type Error = &'static str;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        WhoisServer::parse(&text)
    }
}

impl WhoisServer {
    /// Parses `host` or `host:port`; a host names a machine, not a URL.
    pub fn parse(text: &str) -> Result<WhoisServer, &'static str> {
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or("the port after `:` must be a number from 1 to 65535")?,
            ),
            _ => (text, 43),
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(
                "must be a host name or address, optionally with :port (e.g. whois.iana.org)",
            );
        }
        Ok(WhoisServer {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for WhoisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// `[report] sendmail`: the MTA's submission command, an absolute program
/// path and its arguments, split at spaces (no shell is involved).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SendmailCommand(pub Vec<String>);

impl TryFrom<String> for SendmailCommand {
    type Error = &'static str;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let argv: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        match argv.first() {
            Some(program) if program.starts_with('/') => Ok(SendmailCommand(argv)),
            _ => {
                Err("must start with the MTA's absolute path (e.g. \"/usr/sbin/sendmail -t -oi\")")
            }
        }
    }
}

impl Default for SendmailCommand {
    fn default() -> Self {
        SendmailCommand(
            ["/usr/sbin/sendmail", "-t", "-oi"]
                .map(str::to_owned)
                .to_vec(),
        )
    }
}

impl std::fmt::Display for SendmailCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

bounded!(
    /// `[report] max_per_day`: automatic reports in any 24 hours, 1 to 1000.
    MailCap(u32), "u32", |v| (1..=1000).contains(v), "must be from 1 to 1000"
);
bounded!(
    /// `[report] give_up_after`: unresponsive reports before a contact is
    /// no longer mailed, at least 1.
    GiveUpAfter(u32), "u32", |v| *v >= 1, "must be at least 1"
);
bounded!(
    /// `[report] unresponsive_subnet_offenders`: banned sources inside a
    /// subnet of a contact given up on that get the subnet banned, 1 to 1000.
    SubnetOffenders(u32), "u32", |v| (1..=1000).contains(v), "must be from 1 to 1000"
);
