//! Clients that never reach authentication: scanners, wrong protocols,
//! incompatible algorithms, and clients that just wait.

use super::{client_event, strip_preauth};
use crate::address::{PortRule, endpoint_at_end, endpoint_at_start};
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
