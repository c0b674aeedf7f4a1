//! Pulled decisions, a rule of their own: which of the fleet's ban
//! decisions (CrowdSec's LAPI) this host enforces. Input from the network,
//! so every field is checked, and no decision can lock the admin out: an
//! allowed network always wins, a range wider than `[crowdsec]
//! min_ipv4_prefix`/`min_ipv6_prefix` is refused, and /0 never passes.

use crate::addr;
use crate::config::{Config, DecisionScope};
use crate::time::Timestamp;
use ipnet::IpNet;
use std::fmt;

/// The longest decision honoured; longer is taken for a broken sender.
pub const MAX_DECISION_SECS: i64 = 3650 * 86_400;

/// One decision as the LAPI sent it (borrowed from the parsed body).
#[derive(Debug, Clone, Copy)]
pub struct Offered<'a> {
    /// `ban`, `captcha`, …
    pub kind: &'a str,
    /// `Ip`, `Range`, `Country`, `AS`, …
    pub scope: &'a str,
    /// The address or network.
    pub value: &'a str,
    /// Go's duration text, `3h59m59.5s`.
    pub duration: &'a str,
    /// `crowdsec`, `cscli`, `CAPI`, `lists`.
    pub origin: &'a str,
    /// `crowdsecurity/ssh-bf`, …
    pub scenario: &'a str,
}

/// What this host does with one offered decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Enforced: a ban of `net` until `expires` (an allowed network inside
    /// `net` keeps winning at PAM and in nftables, as over any ban).
    Enforce {
        /// The banned address or network.
        net: IpNet,
        /// When it ends.
        expires: Timestamp,
    },
    /// Not enforced, for this reason (logged and counted).
    Skip(Skip),
}

/// Why an offered decision is not enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not a ban (`captcha`, …).
    NotABan(String),
    /// A scope authguard does not enforce, or one `[crowdsec] scopes` leaves out.
    Scope(String),
    /// Left out by `[crowdsec] origins` or the scenario filters.
    Filtered,
    /// The value is not an address or network of its scope.
    BadValue(String),
    /// The duration is not Go's duration text, not positive, or absurd.
    BadDuration(String),
    /// Wider than the configured limit (or /0).
    TooWide(IpNet),
    /// Inside an allowed network: the admin's networks always win.
    Allowed(IpNet),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotABan(kind) => write!(f, "type {kind:?} is not a ban"),
            Skip::Scope(scope) => write!(f, "scope {scope:?} is not pulled"),
            Skip::Filtered => f.write_str("left out by [crowdsec] origins or scenario filters"),
            Skip::BadValue(v) => write!(f, "value {v:?} is not an address or network of its scope"),
            Skip::BadDuration(d) => write!(
                f,
                "duration {d:?} is not a positive Go duration up to 3650d"
            ),
            Skip::TooWide(net) => write!(
                f,
                "{} is wider than [crowdsec] min_ipv4_prefix/min_ipv6_prefix",
                addr::display(net)
            ),
            Skip::Allowed(net) => write!(f, "inside the allowed network {}", addr::display(net)),
        }
    }
}

/// Decides one offered decision at `now`; `allowed` are every allowed
/// network (the config's and the store's).
pub fn judge(config: &Config, allowed: &[IpNet], offered: &Offered<'_>, now: Timestamp) -> Verdict {
    match judged(config, allowed, offered, now) {
        Ok(verdict) => verdict,
        Err(skip) => Verdict::Skip(skip),
    }
}

fn judged(
    config: &Config,
    allowed: &[IpNet],
    d: &Offered<'_>,
    now: Timestamp,
) -> Result<Verdict, Skip> {
    let c = &config.crowdsec;
    if !d.kind.eq_ignore_ascii_case("ban") {
        return Err(Skip::NotABan(d.kind.to_owned()));
    }
    let scope = c
        .scopes
        .iter()
        .find(|s| s.as_lapi().eq_ignore_ascii_case(d.scope))
        .ok_or_else(|| Skip::Scope(d.scope.to_owned()))?;
    if !passes_filters(config, d) {
        return Err(Skip::Filtered);
    }
    let net = parse_value(*scope, d.value).ok_or_else(|| Skip::BadValue(d.value.to_owned()))?;
    let secs = go_duration_secs(d.duration)
        .filter(|s| *s > 0 && *s <= MAX_DECISION_SECS)
        .ok_or_else(|| Skip::BadDuration(d.duration.to_owned()))?;
    let min = match net {
        IpNet::V4(_) => c.min_ipv4_prefix.0,
        IpNet::V6(_) => c.min_ipv6_prefix.0,
    };
    if net.prefix_len() == 0 || net.prefix_len() < min {
        return Err(Skip::TooWide(net));
    }
    if let Some(a) = allowed.iter().find(|a| a.contains(&net)) {
        return Err(Skip::Allowed(*a));
    }
    Ok(Verdict::Enforce {
        net,
        expires: now.saturating_add(secs),
    })
}

fn passes_filters(config: &Config, d: &Offered<'_>) -> bool {
    let c = &config.crowdsec;
    let origin_ok =
        c.origins.is_empty() || c.origins.iter().any(|o| o.eq_ignore_ascii_case(d.origin));
    let scenario = d.scenario.to_ascii_lowercase();
    let has = |w: &String| scenario.contains(&w.to_ascii_lowercase());
    let containing_ok = c.scenarios_containing.is_empty() || c.scenarios_containing.iter().any(has);
    let excluded = c.scenarios_not_containing.iter().any(has);
    origin_ok && containing_ok && !excluded
}

/// An `Ip` is one address (a CIDR of one address is accepted too); a
/// `Range` a network, its host bits dropped (`cscli decisions add --range`
/// keeps `198.51.100.7/24` as typed).
fn parse_value(scope: DecisionScope, value: &str) -> Option<IpNet> {
    let net = match addr::parse_target(value) {
        Ok(net) => net,
        Err(addr::AddrError::HostBits { suggested, .. }) => addr::parse_target(&suggested).ok()?,
        Err(_) => return None,
    };
    let single = net.prefix_len() == net.max_prefix_len();
    match scope {
        DecisionScope::Ip => single.then_some(net),
        DecisionScope::Range => Some(net),
    }
}

/// Whole seconds of a Go duration (`3h59m59.5s`, `168h0m0s`, `500ms`,
/// `-1m30s`), rounded down; `None` when it is not one.
pub fn go_duration_secs(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() || rest.len() > 64 {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut nanos: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let per: i128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        nanos = nanos.checked_add(scaled(number, per)?)?;
        rest = next;
    }
    let secs = i64::try_from(nanos / 1_000_000_000).ok()?;
    Some(if negative { -secs } else { secs })
}

/// `number` (digits with at most one `.`) times `per`, in nanoseconds.
fn scaled(number: &str, per: i128) -> Option<i128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut value = whole.checked_mul(per)?;
    let mut scale = per;
    for digit in fraction.bytes().take(18) {
        scale /= 10;
        value = value.checked_add(i128::from(digit - b'0') * scale)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(
        scope: &'static str,
        value: &'static str,
        duration: &'static str,
    ) -> Offered<'static> {
        Offered {
            kind: "ban",
            scope,
            value,
            duration,
            origin: "cscli",
            scenario: "crowdsecurity/ssh-bf",
        }
    }

    fn net(s: &str) -> IpNet {
        addr::parse_target(s).unwrap()
    }

    #[test]
    fn go_durations_as_crowdsec_writes_them() {
        assert_eq!(go_duration_secs("3h59m59.5s"), Some(4 * 3600 - 1));
        assert_eq!(go_duration_secs("168h0m0s"), Some(168 * 3600));
        assert_eq!(go_duration_secs("1.5h"), Some(5400));
        assert_eq!(go_duration_secs("500ms"), Some(0));
        assert_eq!(go_duration_secs("-1m30s"), Some(-90));
        assert_eq!(
            go_duration_secs("2562047h47m16.854775807s"),
            Some(9_223_372_036)
        );
        for bad in ["", "h", "10", "1x", "1..2s", "1h-2m", "ten minutes"] {
            assert_eq!(go_duration_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bans_of_ips_and_ranges_are_enforced_until_their_end() {
        let c = Config::default();
        assert_eq!(
            judge(&c, &[], &offered("Ip", "203.0.113.7", "4h"), 100),
            Verdict::Enforce {
                net: net("203.0.113.7"),
                expires: 100 + 4 * 3600
            }
        );
        let v6 = judge(&c, &[], &offered("Range", "2001:db8:1::/48", "1h"), 0);
        assert!(matches!(v6, Verdict::Enforce { .. }), "{v6:?}");
        let range = offered("range", "198.51.100.0/24", "1h");
        assert!(matches!(judge(&c, &[], &range, 0), Verdict::Enforce { .. }));
    }

    #[test]
    fn what_is_not_a_ban_we_can_hold_is_skipped_with_its_reason() {
        let c = Config::default();
        let skip = |d: Offered<'_>| match judge(&c, &[], &d, 0) {
            Verdict::Skip(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            skip(Offered {
                kind: "captcha",
                ..offered("Ip", "203.0.113.7", "1h")
            }),
            Skip::NotABan("captcha".into())
        );
        assert_eq!(
            skip(offered("Country", "CN", "1h")),
            Skip::Scope("Country".into())
        );
        assert_eq!(
            skip(offered("Ip", "203.0.113.0/24", "1h")),
            Skip::BadValue("203.0.113.0/24".into())
        );
        assert_eq!(
            skip(offered("Ip", "not an ip", "1h")),
            Skip::BadValue("not an ip".into())
        );
        assert!(matches!(
            judge(&c, &[], &offered("Range", "198.51.100.7/24", "1h"), 0),
            Verdict::Enforce { net, .. } if net == self::net("198.51.100.0/24")
        ));
        assert_eq!(
            skip(offered("Ip", "203.0.113.7", "-5m")),
            Skip::BadDuration("-5m".into())
        );
        assert_eq!(
            skip(offered("Ip", "203.0.113.7", "99999h")),
            Skip::BadDuration("99999h".into())
        );
        assert_eq!(
            skip(offered("Range", "0.0.0.0/0", "1h")),
            Skip::TooWide(net("0.0.0.0/0"))
        );
        assert_eq!(
            skip(offered("Range", "10.0.0.0/8", "1h")),
            Skip::TooWide(net("10.0.0.0/8"))
        );
        assert_eq!(
            skip(offered("Range", "::/0", "1h")),
            Skip::TooWide(net("::/0"))
        );
        assert_eq!(
            skip(offered("Range", "2001::/16", "1h")),
            Skip::TooWide(net("2001::/16"))
        );
    }

    #[test]
    fn allowed_networks_win_and_filters_apply() {
        let mut c = Config::default();
        let office = [net("198.51.100.0/24")];
        assert_eq!(
            judge(&c, &office, &offered("Ip", "198.51.100.7", "1h"), 0),
            Verdict::Skip(Skip::Allowed(net("198.51.100.0/24")))
        );
        let wider = judge(&c, &office, &offered("Range", "198.51.0.0/16", "1h"), 0);
        assert!(matches!(wider, Verdict::Enforce { .. }), "{wider:?}");
        c.crowdsec.origins = vec!["crowdsec".into()];
        assert_eq!(
            judge(&c, &[], &offered("Ip", "203.0.113.7", "1h"), 0),
            Verdict::Skip(Skip::Filtered)
        );
        c.crowdsec.origins.clear();
        c.crowdsec.scenarios_not_containing = vec!["SSH".into()];
        assert_eq!(
            judge(&c, &[], &offered("Ip", "203.0.113.7", "1h"), 0),
            Verdict::Skip(Skip::Filtered)
        );
        c.crowdsec.scopes = vec![DecisionScope::Ip];
        c.crowdsec.scenarios_not_containing.clear();
        assert_eq!(
            judge(&c, &[], &offered("Range", "203.0.113.0/24", "1h"), 0),
            Verdict::Skip(Skip::Scope("Range".into()))
        );
    }
}
