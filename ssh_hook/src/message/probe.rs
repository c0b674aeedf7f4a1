//! Clients that never reach authentication: scanners, wrong protocols,
//! incompatible algorithms, and clients that just wait.

use super::{client_event, strip_preauth};
use crate::address::{PortRule, endpoint_at_end, endpoint_at_start};
use crate::bytes;
use crate::event::{Event, Kind};
use std::net::IpAddr;

/// `Did not receive identification string from A[ port P]` (OpenSSH up to 7.x).
pub(super) fn parse_no_identification(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Did not receive identification string from ")?;
    let (addr, port) = lone_endpoint(rest)?;
    Some(client_event(Kind::NoIdentification, addr, port, None))
}

/// `banner exchange: Connection from A port P: REASON` (OpenSSH 8.x+:
/// `invalid format`, `could not read protocol version`, …). The same
/// failures' `kex_exchange_identification: …` lines name no client and are skipped.
pub(super) fn parse_banner_error(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"banner exchange: Connection from ")?;
    let (addr, port, _reason) = endpoint_at_start(rest)?;
    Some(client_event(Kind::BannerError, addr, port, None))
}

/// `Unable to negotiate with A port P: no matching … found. Their offer: …`
/// (6.x: `with A: …`). The offer is the client's, so the address is read from the front.
pub(super) fn parse_unable_to_negotiate(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Unable to negotiate with ")?;
    let (addr, port, _reason) = endpoint_at_start(rest)?;
    Some(client_event(Kind::UnableToNegotiate, addr, port, None))
}

/// `Bad protocol version identification 'BANNER' from A port P` (up to
/// 7.x). The banner is the client's, so the address is read from the end.
pub(super) fn parse_bad_protocol_version(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Bad protocol version identification '")?;
    let endpoint = endpoint_at_end(rest, PortRule::Optional)?;
    endpoint.head?.strip_suffix(b"' from")?;
    Some(client_event(
        Kind::BadProtocolVersion,
        endpoint.addr,
        endpoint.port,
        None,
    ))
}

/// `Protocol major versions differ for A[ port P]: OURS vs. THEIRS` (up
/// to 7.x; the versions are the client's text, after the address).
pub(super) fn parse_major_versions_differ(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Protocol major versions differ for ")?;
    // No IPv6 address holds `: `, so the first one ends the endpoint.
    let (endpoint, _versions) = bytes::split_once(rest, b": ")?;
    let (addr, port) = lone_endpoint(endpoint)?;
    Some(client_event(Kind::BadProtocolVersion, addr, port, None))
}

/// `Could not write ident string to A[ port P]` (up to 7.x): the client
/// left before sshd's banner.
pub(super) fn parse_could_not_write_ident(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Could not write ident string to ")?;
    let (addr, port) = lone_endpoint(rest)?;
    Some(client_event(Kind::NoIdentification, addr, port, None))
}

/// `probed from A[ port P] with BANNER.  Don't panic.` and `scanned from …`:
/// sshd recognised a scanner by its banner (the client's text, after the address).
pub(super) fn parse_scanner(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg
        .strip_prefix(b"probed from ")
        .or_else(|| msg.strip_prefix(b"scanned from "))?;
    if !msg.ends_with(b".  Don't panic.") {
        return None;
    }
    let (endpoint, _banner) = bytes::split_once(rest, b" with ")?;
    let (addr, port) = lone_endpoint(endpoint)?;
    Some(client_event(Kind::BannerError, addr, port, None))
}

/// `Timeout before authentication for A[ port P]` (LoginGraceTime ran out).
pub(super) fn parse_preauth_timeout(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Timeout before authentication for ")?;
    let (addr, port) = lone_endpoint(rest)?;
    Some(client_event(Kind::PreauthTimeout, addr, port, None))
}

/// A text that is only `A[ port P][ [preauth]]`.
fn lone_endpoint(text: &[u8]) -> Option<(IpAddr, Option<u16>)> {
    let endpoint = endpoint_at_end(strip_preauth(text).0, PortRule::Optional)?;
    endpoint
        .head
        .is_none()
        .then_some((endpoint.addr, endpoint.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_banner_exchange_failures() {
        let cases: [&[u8]; 6] = [
            b"Protocol major versions differ for 203.0.113.5: SSH-2.0-OpenSSH_6.6.1p1 vs. SSH-1.5-Nmap from 6.6.6.6",
            b"Protocol major versions differ for 203.0.113.5 port 4242: SSH-2.0-OpenSSH_7.6p1 vs. SSH-1.5-x",
            b"Could not write ident string to 203.0.113.5",
            b"Could not write ident string to 203.0.113.5 port 4242",
            b"scanned from 203.0.113.5 with SSH-2.0-OpenSSH_5.1 from 6.6.6.6 port 1.  Don't panic.",
            b"probed from 203.0.113.5 port 4242 with SSH-2.0-OpenSSH_7.0 probe.  Don't panic.",
        ];
        for line in cases {
            let event = parse_major_versions_differ(line)
                .or_else(|| parse_could_not_write_ident(line))
                .or_else(|| parse_scanner(line))
                .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(line)));
            assert_eq!(event.addr.to_string(), "203.0.113.5");
        }
        let v6 = b"Protocol major versions differ for 2001:db8::5: SSH-2.0-x vs. SSH-1.5-y";
        assert_eq!(
            parse_major_versions_differ(v6).map(|e| e.addr.to_string()),
            Some("2001:db8::5".into())
        );
    }

    fn client(event: Option<Event<'_>>) -> Option<(Kind, String, Option<u16>)> {
        event.map(|event| (event.kind, event.addr.to_string(), event.port))
    }

    #[test]
    fn no_identification_old_and_new() {
        let line = b"Did not receive identification string from 203.0.113.5 port 40000";
        let expected = (Kind::NoIdentification, "203.0.113.5".into(), Some(40000));
        assert_eq!(client(parse_no_identification(line)), Some(expected));
        let line = b"Did not receive identification string from 203.0.113.5";
        assert_eq!(
            client(parse_no_identification(line)).map(|c| c.2),
            Some(None)
        );
    }

    #[test]
    fn banner_errors_with_an_address() {
        for reason in ["invalid format", "could not read protocol version"] {
            let line = format!("banner exchange: Connection from 127.0.0.1 port 55556: {reason}");
            let expected = (Kind::BannerError, "127.0.0.1".into(), Some(55556));
            assert_eq!(client(parse_banner_error(line.as_bytes())), Some(expected));
        }
    }

    #[test]
    fn unable_to_negotiate_old_and_new() {
        let line = b"Unable to negotiate with 127.0.0.1 port 49098: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,ext-info-c [preauth]";
        let expected = (Kind::UnableToNegotiate, "127.0.0.1".into(), Some(49098));
        assert_eq!(client(parse_unable_to_negotiate(line)), Some(expected));
        let line = b"Unable to negotiate with 2001:db8::7: no matching cipher found. Their offer: x from 6.6.6.6 port 1";
        let expected = (Kind::UnableToNegotiate, "2001:db8::7".into(), None);
        assert_eq!(client(parse_unable_to_negotiate(line)), Some(expected));
    }

    #[test]
    fn bad_protocol_version_banner_cannot_move_the_address() {
        let line = b"Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.5 port 4";
        let expected = (Kind::BadProtocolVersion, "203.0.113.5".into(), Some(4));
        assert_eq!(
            client(parse_bad_protocol_version(line)),
            Some(expected.clone())
        );
        let line =
            b"Bad protocol version identification 'x' from 6.6.6.6 port 1' from 203.0.113.5 port 4";
        assert_eq!(client(parse_bad_protocol_version(line)), Some(expected));
    }

    #[test]
    fn preauth_timeout() {
        let line = b"Timeout before authentication for 203.0.113.5 port 4";
        let expected = (Kind::PreauthTimeout, "203.0.113.5".into(), Some(4));
        assert_eq!(client(parse_preauth_timeout(line)), Some(expected));
        assert_eq!(
            parse_preauth_timeout(b"Timeout before authentication for x 203.0.113.5 port 4"),
            None
        );
    }
}
