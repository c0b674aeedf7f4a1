//! Client addresses and the *sources* they count against.
//!
//! A source is the client address aggregated to its prefix (`ipv4_prefix`,
//! `ipv6_prefix`); an IPv4-mapped IPv6 address is its IPv4 address, and a
//! zone id (`fe80::1%eth0`) is dropped. Sources and bans are kept as
//! [`IpNet`]s; [`display`] renders one address as itself and a network as a CIDR.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::IpAddr;

/// Why a `PAM_RHOST` (or another remote-host string) gave no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RhostError {
    /// The string was empty (no remote host: a local login).
    #[error("no remote address given")]
    Empty,
    /// The string is not an IP address: most often a host name from sshd's
    /// `UseDNS yes`, which authguard will not guess at.
    #[error("remote host is not an address (UseDNS yes?)")]
    NotAnAddress,
}

/// Why an address or CIDR typed by a person was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Neither an IP address nor a CIDR network.
    #[error("`{0}` is not an IP address or CIDR network")]
    Invalid(String),
    /// A CIDR with bits set after the prefix; the message suggests the network meant.
    #[error("`{given}` has host bits set after the prefix; did you mean {suggested}?")]
    HostBits {
        /// What was typed.
        given: String,
        /// The network with the host bits cleared.
        suggested: String,
    },
}

/// Parses a remote host as PAM or sshd gives it: an IPv4 or IPv6 address,
/// optionally in brackets, optionally with a zone id. IPv4-mapped IPv6
/// becomes IPv4. Anything else (host names, garbage) is an error, never guessed at.
pub fn parse_rhost(text: &str) -> Result<IpAddr, RhostError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RhostError::Empty);
    }
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let without_zone = match unbracketed.split_once('%') {
        // A zone id only ever follows an IPv6 address.
        Some((addr, _zone)) if addr.contains(':') => addr,
        Some(_) => return Err(RhostError::NotAnAddress),
        None => unbracketed,
    };
    without_zone
        .parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| RhostError::NotAnAddress)
}

/// Maps IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to IPv4; every other address is itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The source an address counts against: the address truncated to the
/// configured prefix of its family.
pub fn source_of(ip: IpAddr, ipv4_prefix: u8, ipv6_prefix: u8) -> IpNet {
    match canonical(ip) {
        IpAddr::V4(v4) => IpNet::V4(
            Ipv4Net::new(v4, ipv4_prefix.min(32))
                .map(|n| n.trunc())
                .unwrap_or_else(|_| Ipv4Net::from(v4)),
        ),
        IpAddr::V6(v6) => IpNet::V6(
            Ipv6Net::new(v6, ipv6_prefix.min(128))
                .map(|n| n.trunc())
                .unwrap_or_else(|_| Ipv6Net::from(v6)),
        ),
    }
}

/// Parses an address or CIDR typed by a person (`203.0.113.7`,
/// `2001:db8::/64`, `::ffff:192.0.2.1`). A CIDR with host bits set is an
/// error that suggests the network, rather than a silent truncation.
/// A plain address becomes a full-length network.
pub fn parse_target(text: &str) -> Result<IpNet, AddrError> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(canonical(ip)));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| AddrError::Invalid(text.to_owned()))?;
    let net = canonical_net(net);
    if net.trunc() != net {
        return Err(AddrError::HostBits {
            given: text.to_owned(),
            suggested: display(&net.trunc()),
        });
    }
    Ok(net)
}

/// An IPv4-mapped IPv6 network (`::ffff:0:0/96` and longer) as the IPv4 network it is.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// How a source is shown everywhere (tables, JSON, logs, the store's
/// `source` column): one address as the bare address, a network as CIDR.
pub fn display(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// A network as a closed range of 16-byte keys, so IPv4 and IPv6 share one
/// ordering in the store (IPv4 sits in `::ffff:0:0/96`, as the kernel maps it).
pub fn range_keys(net: &IpNet) -> ([u8; 16], [u8; 16]) {
    (key_of(net.network()), key_of(net.broadcast()))
}

/// The 16-byte store key of one address.
pub fn key_of(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The keys of every network, of any prefix length, that could contain `ip`:
/// the address masked at each prefix of its family (33 for IPv4, 129 for IPv6).
/// A containment lookup is then an indexed `IN` over these, O(log n) each.
pub fn containing_network_keys(ip: IpAddr) -> Vec<[u8; 16]> {
    match canonical(ip) {
        IpAddr::V4(v4) => (0..=32u8)
            .filter_map(|p| Ipv4Net::new(v4, p).ok())
            .map(|n| key_of(IpAddr::V4(n.network())))
            .collect(),
        IpAddr::V6(v6) => (0..=128u8)
            .filter_map(|p| Ipv6Net::new(v6, p).ok())
            .map(|n| key_of(IpAddr::V6(n.network())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    #[test]
    fn rhost_forms() {
        assert_eq!(
            parse_rhost("203.0.113.7"),
            Ok("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_rhost("::ffff:203.0.113.7"),
            Ok("203.0.113.7".parse().unwrap())
        );
        assert_eq!(parse_rhost("fe80::1%eth0"), Ok("fe80::1".parse().unwrap()));
        assert_eq!(
            parse_rhost("[2001:db8::1]"),
            Ok("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_rhost(""), Err(RhostError::Empty));
        assert_eq!(
            parse_rhost("attacker.example.com"),
            Err(RhostError::NotAnAddress)
        );
        assert_eq!(
            parse_rhost("1.2.3.4 port 22"),
            Err(RhostError::NotAnAddress)
        );
        assert_eq!(parse_rhost("1.2.3.4%eth0"), Err(RhostError::NotAnAddress));
    }

    #[test]
    fn sources_aggregate_to_prefix() {
        let ip = "2001:db8:1:2:aaaa::5".parse().unwrap();
        assert_eq!(display(&source_of(ip, 32, 64)), "2001:db8:1:2::/64");
        assert_eq!(display(&source_of(ip, 32, 128)), "2001:db8:1:2:aaaa::5");
        let v4 = "::ffff:198.51.100.9".parse().unwrap();
        assert_eq!(display(&source_of(v4, 32, 64)), "198.51.100.9");
        assert_eq!(display(&source_of(v4, 24, 64)), "198.51.100.0/24");
    }

    #[test]
    fn targets_reject_garbage_and_host_bits() {
        assert!(matches!(parse_target("nope"), Err(AddrError::Invalid(_))));
        assert!(matches!(
            parse_target("10.0.0.1/33"),
            Err(AddrError::Invalid(_))
        ));
        assert_eq!(
            parse_target("203.0.113.7/24"),
            Err(AddrError::HostBits {
                given: "203.0.113.7/24".into(),
                suggested: "203.0.113.0/24".into()
            })
        );
        assert_eq!(
            display(&parse_target("::ffff:192.0.2.0/120").unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            display(&parse_target("2001:db8::/32").unwrap()),
            "2001:db8::/32"
        );
    }

    proptest! {
        #[test]
        fn source_contains_its_address(bytes in any::<[u8; 16]>(), p4 in 0u8..=32, p6 in 0u8..=128) {
            let ip = canonical(IpAddr::V6(Ipv6Addr::from(bytes)));
            let source = source_of(ip, p4, p6);
            prop_assert!(source.contains(&ip));
            prop_assert_eq!(source.trunc(), source);
        }

        #[test]
        fn mapped_v4_is_the_same_source(a in any::<u32>(), p4 in 0u8..=32) {
            let v4 = std::net::Ipv4Addr::from(a);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            prop_assert_eq!(source_of(mapped, p4, 64), source_of(IpAddr::V4(v4), p4, 64));
            prop_assert_eq!(parse_rhost(&mapped.to_string()), Ok(IpAddr::V4(v4)));
        }

        #[test]
        fn containing_keys_find_every_enclosing_network(bytes in any::<[u8; 16]>(), p in 0u8..=128) {
            let ip = canonical(IpAddr::V6(Ipv6Addr::from(bytes)));
            let net = source_of(ip, p.min(32), p);
            let (lo, hi) = range_keys(&net);
            prop_assert!(containing_network_keys(ip).contains(&lo));
            prop_assert!(lo <= key_of(ip) && key_of(ip) <= hi);
        }

        #[test]
        fn display_parses_back(bytes in any::<[u8; 16]>(), p in 0u8..=128) {
            let ip = canonical(IpAddr::V6(Ipv6Addr::from(bytes)));
            let net = source_of(ip, p.min(32), p);
            prop_assert_eq!(parse_target(&display(&net)), Ok(net));
        }

        #[test]
        fn rhost_never_panics(s in ".{0,64}") {
            let _ = parse_rhost(&s);
            let _ = parse_target(&s);
        }
    }
}
