//! Account checks before any authentication: `Invalid user …` and
//! `User … not allowed because …`.

use super::{client_event, strip_preauth, user_before_from};
use crate::address::{PortRule, endpoint_at_end};
use crate::bytes;
use crate::event::{Event, Kind};

/// `Invalid user U from A port P` (OpenSSH 7.x+), `Invalid user U from A`
/// (3.9–6.x), `Illegal user U from A` (before 3.9).
pub(super) fn parse_invalid_user(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg
        .strip_prefix(b"Invalid user ")
        .or_else(|| msg.strip_prefix(b"Illegal user "))?;
    let endpoint = endpoint_at_end(rest, PortRule::Optional)?;
    let user = user_before_from(&endpoint)?;
    Some(client_event(
        Kind::InvalidUser,
        endpoint.addr,
        endpoint.port,
        Some(user),
    ))
}

/// `User U from A not allowed because REASON` (AllowUsers, DenyUsers,
/// AllowGroups, DenyGroups; shell and locked-account reasons in older
/// versions). The reason is sshd's or the admin's text, never the client's,
/// so the last ` not allowed because ` is the real one. `U` is an existing
/// account's name (sshd checks these only for known users), not the
/// client's text. Newer versions log shell and locked-account refusals
/// without an address: those are skipped.
pub(super) fn parse_not_allowed(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"User ")?;
    let (user_and_host, reason) = bytes::rsplit_once(rest, b" not allowed because ")?;
    if reason.is_empty() {
        return None;
    }
    let endpoint = endpoint_at_end(user_and_host, PortRule::Optional)?;
    let user = user_before_from(&endpoint)?;
    Some(client_event(
        Kind::NotAllowed,
        endpoint.addr,
        endpoint.port,
        Some(user),
    ))
}

/// `administratively prohibited connection for [invalid user ]U from A
/// port P` (OpenSSH 9.9+: a `RefuseConnection yes` Match block refused it).
pub(super) fn parse_refused_connection(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"administratively prohibited connection for ")?;
    let endpoint = endpoint_at_end(rest, PortRule::Required)?;
    let user_part = user_before_from(&endpoint)?;
    let user = user_part
        .strip_prefix(b"invalid user ")
        .unwrap_or(user_part);
    Some(client_event(
        Kind::NotAllowed,
        endpoint.addr,
        endpoint.port,
        Some(user),
    ))
}

/// `ROOT LOGIN REFUSED FROM A[ port P]` (PermitRootLogin) and `Username too
/// long from A port P` (8.9+, before PAM): sshd's fixed words, then the client.
pub(super) fn parse_refused_account(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg
        .strip_prefix(b"ROOT LOGIN REFUSED FROM ")
        .or_else(|| msg.strip_prefix(b"Username too long from "))?;
    let endpoint = endpoint_at_end(strip_preauth(rest).0, PortRule::Optional)?;
    if endpoint.head.is_some() {
        return None;
    }
    Some(client_event(
        Kind::NotAllowed,
        endpoint.addr,
        endpoint.port,
        None,
    ))
}

/// tcp_wrappers refusing the connection (sshd built with libwrap, as
/// Debian's was up to 6.x): `refused connect from NAME (A)`, NAME the
/// client's reverse DNS name or its address again.
pub(super) fn parse_tcp_wrappers(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg
        .strip_prefix(b"refused connect from ")?
        .strip_suffix(b")")?;
    let (_name, addr) = bytes::rsplit_once(rest, b" (")?;
    let addr = crate::address::parse_ip(addr)?;
    Some(client_event(Kind::NotAllowed, addr, None, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_wrappers_refusals() {
        let event =
            parse_tcp_wrappers(b"refused connect from evil (6.6.6.6) (203.0.113.5)").unwrap();
        assert_eq!(event.addr.to_string(), "203.0.113.5");
        assert_eq!(
            parse_tcp_wrappers(b"refused connect from host.example"),
            None
        );
    }

    #[test]
    fn refusals_by_config_name_the_client() {
        let line = b"administratively prohibited connection for invalid user x from 6.6.6.6 port 1 from 203.0.113.5 port 4242";
        let event = parse_refused_connection(line).unwrap();
        assert_eq!(
            (event.kind, event.addr.to_string(), event.port),
            (Kind::NotAllowed, "203.0.113.5".into(), Some(4242))
        );
        assert_eq!(event.user.as_deref(), Some(&b"x from 6.6.6.6 port 1"[..]));
        for line in [
            &b"ROOT LOGIN REFUSED FROM 203.0.113.5 port 4242 [preauth]"[..],
            b"ROOT LOGIN REFUSED FROM 203.0.113.5",
            b"Username too long from 203.0.113.5 port 4242",
        ] {
            let event = parse_refused_account(line).unwrap();
            assert_eq!(event.addr.to_string(), "203.0.113.5");
        }
        assert_eq!(
            parse_refused_account(b"ROOT LOGIN REFUSED FROM x 203.0.113.5"),
            None
        );
    }

    #[test]
    fn invalid_user_with_and_without_port() {
        let event = parse_invalid_user(b"Invalid user admin from 203.0.113.5 port 4242").unwrap();
        assert_eq!((event.kind, event.port), (Kind::InvalidUser, Some(4242)));
        assert_eq!(event.user.as_deref(), Some(&b"admin"[..]));
        let old = parse_invalid_user(b"Invalid user admin from 203.0.113.5").unwrap();
        assert_eq!(
            (old.addr.to_string(), old.port),
            ("203.0.113.5".to_string(), None)
        );
    }

    #[test]
    fn invalid_user_may_be_empty() {
        let event = parse_invalid_user(b"Invalid user  from 203.0.113.5 port 4242").unwrap();
        assert_eq!(event.user.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn not_allowed_for_every_reason_with_an_address() {
        for reason in [
            "not listed in AllowUsers",
            "listed in DenyUsers",
            "none of user's groups are listed in AllowGroups",
            "a group is listed in DenyGroups",
            "not in any group",
            "shell /bin/false does not exist",
            "account is locked",
        ] {
            let line = format!("User bob from 198.51.100.7 not allowed because {reason}");
            let event = parse_not_allowed(line.as_bytes()).unwrap();
            assert_eq!(event.kind, Kind::NotAllowed);
            assert_eq!(event.addr.to_string(), "198.51.100.7", "{reason}");
            assert_eq!(event.user.as_deref(), Some(&b"bob"[..]));
        }
    }

    #[test]
    fn not_allowed_without_address_is_skipped() {
        assert_eq!(
            parse_not_allowed(b"User bob not allowed because account is locked"),
            None
        );
        assert_eq!(
            parse_not_allowed(b"User bob not allowed because shell /bin/x does not exist"),
            None
        );
    }
}
