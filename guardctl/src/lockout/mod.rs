//! The lock-out guards: `guardctl ban`'s in [`ban`], and here `guardctl
//! geo block`'s: would blocking these countries cut the admin off?
//! Allowed networks are accepted before any country is dropped, so the
//! admin is safe exactly when an allow rule covers the address they
//! connect from.
//!
//! [`risks`] decides, as a pure function of the session's address, the
//! allowed networks and a country lookup; [`session_address`] reads the
//! address from the environment sshd gives a login.

pub mod ban;

use authguard_core::addr;
use authguard_core::geo::Country;
use ipnet::IpNet;
use std::net::IpAddr;

/// The client address of the SSH session guardctl runs in: the first field
/// of `SSH_CONNECTION`, else of `SSH_CLIENT` (sshd sets both; `sudo` keeps
/// neither unless told to). `None` outside an SSH session.
pub fn session_address() -> Option<IpAddr> {
    let var = |name| std::env::var(name).ok();
    session_from(
        var("SSH_CONNECTION").as_deref(),
        var("SSH_CLIENT").as_deref(),
    )
}

/// [`session_address`] from the two variables' values.
fn session_from(connection: Option<&str>, client: Option<&str>) -> Option<IpAddr> {
    [connection, client]
        .into_iter()
        .flatten()
        .find_map(|value| addr::parse_rhost(value.split_whitespace().next()?).ok())
}

/// Why blocking would lock the admin out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOut {
    /// The session's own address is in a country being blocked, and no
    /// allow rule covers it.
    Session {
        /// The session's client address.
        address: IpAddr,
        /// Its country.
        country: Country,
    },
    /// An allowed network (where the admin comes from, presumably) is in a
    /// country being blocked, and no allow rule covers the session.
    AllowedNetwork {
        /// The allowed network.
        network: IpNet,
        /// The country of its first address.
        country: Country,
        /// The session's client address, when guardctl runs in one.
        session: Option<IpAddr>,
    },
}

impl LockOut {
    /// The refusal, in plain words, with what to do about it.
    pub fn message(&self) -> String {
        let advice = match self {
            LockOut::Session { address, .. } => {
                format!("add an allow rule (`guardctl allow add {address}`) or pass --force")
            }
            LockOut::AllowedNetwork { .. } => "add an allow rule for the addresses you use \
                 (`guardctl allow add CIDR`) or pass --force"
                .to_owned(),
        };
        format!("{}; {advice}", self.reason())
    }

    /// Why blocking is a risk, without the advice.
    pub fn reason(&self) -> String {
        match self {
            LockOut::Session { address, country } => format!(
                "{address} (your SSH session) is in {country}: blocking {country} would lock you out"
            ),
            LockOut::AllowedNetwork {
                network,
                country,
                session,
            } => {
                let you = match session {
                    Some(a) => format!("no allow rule covers your SSH session ({a})"),
                    None => "guardctl does not run in an SSH session, so where you connect \
                             from is unknown"
                        .to_owned(),
                };
                format!(
                    "the allowed network {} is in {country}, and {you}: blocking {country} would \
                     lock you out whenever you connect from {country} outside it",
                    addr::display(network)
                )
            }
        }
    }
}

/// What blocking `countries` would risk. Nothing when an allow rule covers
/// `session`; else the session itself when its country is being blocked;
/// else each allowed network whose first address is in one of them.
/// `lookup` gives an address's country.
pub fn risks<E>(
    countries: &[Country],
    session: Option<IpAddr>,
    allowed: &[IpNet],
    mut lookup: impl FnMut(IpAddr) -> Result<Option<Country>, E>,
) -> Result<Vec<LockOut>, E> {
    let session = session.map(addr::canonical);
    if session.is_some_and(|s| covered(s, allowed)) {
        return Ok(Vec::new());
    }
    if let Some((address, country)) = session_risk(countries, session, allowed, &mut lookup)? {
        return Ok(vec![LockOut::Session { address, country }]);
    }
    let mut found = Vec::new();
    for network in allowed {
        if let Some(country) = blocked_country(countries, network.network(), &mut lookup)? {
            found.push(LockOut::AllowedNetwork {
                network: *network,
                country,
                session,
            });
        }
    }
    Ok(found)
}

/// The session's own risk: its address and country, when that country is
/// one of `countries` and no allow rule covers the address (`guardctl
/// check` asks this of the blocked countries).
pub fn session_risk<E>(
    countries: &[Country],
    session: Option<IpAddr>,
    allowed: &[IpNet],
    mut lookup: impl FnMut(IpAddr) -> Result<Option<Country>, E>,
) -> Result<Option<(IpAddr, Country)>, E> {
    let session = session.map(addr::canonical);
    let Some(address) = session.filter(|s| !covered(*s, allowed)) else {
        return Ok(None);
    };
    Ok(blocked_country(countries, address, &mut lookup)?.map(|country| (address, country)))
}

/// True when an allow rule in `allowed` covers `ip`.
fn covered(ip: IpAddr, allowed: &[IpNet]) -> bool {
    allowed.iter().any(|n| n.contains(&ip))
}

/// `ip`'s country, if it is one of `countries`.
fn blocked_country<E>(
    countries: &[Country],
    ip: IpAddr,
    lookup: &mut impl FnMut(IpAddr) -> Result<Option<Country>, E>,
) -> Result<Option<Country>, E> {
    Ok(lookup(ip)?.filter(|c| countries.contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn cc(code: &str) -> Country {
        Country::parse(code).unwrap().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        addr::parse_target(s).unwrap()
    }

    /// 198.51.100.0/24 is in XB, 203.0.113.0/24 in XC, the rest nowhere.
    fn lookup(ip: IpAddr) -> Result<Option<Country>, Infallible> {
        let net_of = |s: &str| net(s).contains(&ip);
        Ok(if net_of("198.51.100.0/24") {
            Some(cc("XB"))
        } else if net_of("203.0.113.0/24") {
            Some(cc("XC"))
        } else {
            None
        })
    }

    fn decide(countries: &[&str], session: Option<&str>, allowed: &[&str]) -> Vec<LockOut> {
        let countries: Vec<Country> = countries.iter().map(|c| cc(c)).collect();
        let allowed: Vec<IpNet> = allowed.iter().map(|a| net(a)).collect();
        risks(&countries, session.map(ip), &allowed, lookup).unwrap()
    }

    #[test]
    fn the_session_in_a_blocked_country_is_a_risk_unless_allowed() {
        let loopback = ["127.0.0.0/8", "::1"];
        let risks = decide(&["XB"], Some("198.51.100.7"), &loopback);
        assert_eq!(
            risks,
            [LockOut::Session {
                address: ip("198.51.100.7"),
                country: cc("XB")
            }]
        );
        let message = risks[0].message();
        assert!(message.starts_with("198.51.100.7 (your SSH session) is in XB"));
        assert!(message.contains("would lock you out"), "{message}");
        assert!(
            message.contains("guardctl allow add 198.51.100.7"),
            "{message}"
        );
        assert!(message.contains("--force"), "{message}");
        // IPv4-mapped, as sshd may report it.
        assert_eq!(
            decide(&["XB"], Some("::ffff:198.51.100.7"), &loopback).len(),
            1
        );
        assert!(decide(&["XB"], Some("198.51.100.7"), &["198.51.100.0/25"]).is_empty());
        assert!(decide(&["XC"], Some("198.51.100.7"), &loopback).is_empty());
        assert!(decide(&["XB"], Some("192.0.2.1"), &loopback).is_empty());
        assert!(decide(&["XB"], None, &loopback).is_empty());
    }

    #[test]
    fn an_allowed_network_in_a_blocked_country_is_a_risk_unless_the_session_is_allowed() {
        let allowed = ["127.0.0.0/8", "198.51.100.0/24"];
        // The session is allowed: safe, wherever it is.
        assert!(decide(&["XB"], Some("198.51.100.7"), &allowed).is_empty());
        // The session is elsewhere and not allowed, or unknown.
        for session in [Some("192.0.2.1"), None] {
            let risks = decide(&["XB", "XC"], session, &allowed);
            assert_eq!(
                risks,
                [LockOut::AllowedNetwork {
                    network: net("198.51.100.0/24"),
                    country: cc("XB"),
                    session: session.map(ip),
                }],
                "{session:?}"
            );
            let message = risks[0].message();
            assert!(
                message.starts_with("the allowed network 198.51.100.0/24 is in XB"),
                "{message}"
            );
            assert!(message.contains("--force"), "{message}");
        }
        assert!(decide(&["XC"], None, &allowed).is_empty());
        // Both: the session's own risk is the one said.
        let both = decide(&["XB", "XC"], Some("203.0.113.9"), &allowed);
        assert!(
            matches!(both.as_slice(), [LockOut::Session { .. }]),
            "{both:?}"
        );
    }

    #[test]
    fn lookup_errors_are_passed_on() {
        let failing = |_| Err::<Option<Country>, _>("store locked");
        let got = risks(&[cc("XB")], Some(ip("198.51.100.7")), &[], failing);
        assert_eq!(got, Err("store locked"));
    }

    #[test]
    fn the_session_address_comes_from_ssh_connection_then_ssh_client() {
        let conn = Some("198.51.100.7 50000 192.0.2.1 22");
        let client = Some("203.0.113.9 50001 22");
        assert_eq!(session_from(conn, client), Some(ip("198.51.100.7")));
        assert_eq!(session_from(None, client), Some(ip("203.0.113.9")));
        assert_eq!(session_from(Some(""), client), Some(ip("203.0.113.9")));
        assert_eq!(session_from(Some("garbage 1 2 3"), None), None);
        assert_eq!(
            session_from(Some("fe80::1%eth0 50000 fe80::2 22"), None),
            Some(ip("fe80::1"))
        );
        assert_eq!(session_from(None, None), None);
    }
}
