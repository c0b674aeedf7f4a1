//! The lock-out guard of `guardctl ban`: a ban that would cut the admin
//! off, or cut off everyone, is refused unless `--force`. The firewall
//! drops every packet from a banned source to `firewall.ports`, so a ban
//! covering the admin's own session freezes the very session that typed it.

use authguard_core::addr;
use ipnet::IpNet;
use std::net::IpAddr;

/// The widest IPv4 network a ban may cover without `--force`.
pub const WIDEST_V4: u8 = 8;
/// The widest IPv6 network a ban may cover without `--force`.
pub const WIDEST_V6: u8 = 32;

/// Why banning `net` is refused without `--force`, if it is: every
/// address (/0), wider than [`WIDEST_V4`] / [`WIDEST_V6`], or holding
/// `session` (the SSH session guardctl runs in) when no allow rule in
/// `allowed` covers the session.
pub fn ban_risk(net: &IpNet, session: Option<IpAddr>, allowed: &[IpNet]) -> Option<String> {
    let shown = addr::display(net);
    let (len, widest, family) = match net {
        IpNet::V4(n) => (n.prefix_len(), WIDEST_V4, "IPv4"),
        IpNet::V6(n) => (n.prefix_len(), WIDEST_V6, "IPv6"),
    };
    if len == 0 {
        return Some(format!("{shown} is every {family} address"));
    }
    if len < widest {
        return Some(format!(
            "{shown} is wider than /{widest}, the widest {family} ban guardctl makes without --force"
        ));
    }
    let session = session.map(addr::canonical)?;
    if net.contains(&session) && !super::covered(session, allowed) {
        return Some(format!(
            "{shown} holds {session}, the address of your SSH session: the ban would cut you off \
             (allow it first with `guardctl allow add {session}`)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        addr::parse_target(s).unwrap()
    }

    fn risk(target: &str, session: Option<&str>, allowed: &[&str]) -> Option<String> {
        let allowed: Vec<IpNet> = allowed.iter().map(|a| net(a)).collect();
        ban_risk(&net(target), session.map(|s| s.parse().unwrap()), &allowed)
    }

    #[test]
    fn every_address_and_too_wide_networks_are_refused() {
        assert!(risk("0.0.0.0/0", None, &[]).unwrap().contains("every IPv4"));
        assert!(risk("::/0", None, &[]).unwrap().contains("every IPv6"));
        assert!(
            risk("10.0.0.0/7", None, &[])
                .unwrap()
                .contains("wider than /8")
        );
        assert!(
            risk("2001::/31", None, &[])
                .unwrap()
                .contains("wider than /32")
        );
        assert_eq!(risk("10.0.0.0/8", None, &[]), None);
        assert_eq!(risk("2001:db8::/32", None, &[]), None);
    }

    #[test]
    fn a_ban_holding_the_session_is_refused_unless_the_session_is_allowed() {
        let why = risk("198.51.100.0/24", Some("198.51.100.7"), &[]).unwrap();
        assert!(
            why.contains("198.51.100.7") && why.contains("SSH session"),
            "{why}"
        );
        assert!(risk("198.51.100.7", Some("198.51.100.7"), &[]).is_some());
        assert_eq!(risk("198.51.100.0/24", Some("203.0.113.9"), &[]), None);
        assert_eq!(
            risk("198.51.100.0/24", Some("198.51.100.7"), &["198.51.100.7"]),
            None,
            "an allowed session is never dropped"
        );
        // IPv4 sessions written as IPv4-mapped IPv6 are the same address.
        assert!(risk("198.51.100.0/24", Some("::ffff:198.51.100.7"), &[]).is_some());
    }
}
