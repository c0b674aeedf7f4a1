//! Client addresses and ports as sshd prints them, and where they sit in a message.

use crate::bytes;
use std::net::IpAddr;

/// Longest address token considered: a full IPv6 address with an embedded
/// IPv4 part (45 bytes), brackets and an interface-name zone id.
const MAX_ADDRESS_TOKEN: usize = 64;

/// An IP address token: IPv4 or IPv6, optionally bracketed, optionally with a
/// zone id (`fe80::1%eth0`, dropped). IPv4-mapped IPv6 becomes IPv4. Host
/// names (sshd's `UseDNS yes`) are not addresses: `None`.
pub(crate) fn parse_ip(token: &[u8]) -> Option<IpAddr> {
    if token.len() > MAX_ADDRESS_TOKEN {
        return None;
    }
    if let Some(v4) = parse_dotted_quad(token) {
        return Some(IpAddr::V4(v4));
    }
    let unbracketed = token
        .strip_prefix(b"[")
        .and_then(|inner| inner.strip_suffix(b"]"))
        .unwrap_or(token);
    let without_zone = match unbracketed.iter().position(|&b| b == b'%') {
        // A zone id only ever follows an IPv6 address.
        Some(percent) if unbracketed[..percent].contains(&b':') => &unbracketed[..percent],
        Some(_) => return None,
        None => unbracketed,
    };
    if let Some(v4) = parse_dotted_quad(without_zone) {
        return Some(IpAddr::V4(v4));
    }
    let text = std::str::from_utf8(without_zone).ok()?;
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The common case, fast: `a.b.c.d` with canonical octets (0 to 255, no
/// leading zero), as std's parser accepts them. Anything else: `None`, and
/// std's parser decides.
fn parse_dotted_quad(token: &[u8]) -> Option<std::net::Ipv4Addr> {
    // One pass, no iterator: this runs once per event.
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if token.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let start = at;
        let mut value = 0u16;
        while at - start < 3 {
            match token.get(at) {
                Some(&d) if d.is_ascii_digit() => value = value * 10 + u16::from(d - b'0'),
                _ => break,
            }
            at += 1;
        }
        let leading_zero = at - start > 1 && token[start] == b'0';
        if at == start || leading_zero {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (at == token.len()).then_some(std::net::Ipv4Addr::from(octets))
}

/// A TCP port: 1 to 5 digits, nothing else.
pub(crate) fn parse_port(digits: &[u8]) -> Option<u16> {
    bytes::parse_decimal(digits, 5).and_then(|port| u16::try_from(port).ok())
}

/// Whether a message must name the client's port where its address ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortRule {
    /// `… A port P` only (OpenSSH 7.x and later for this message).
    Required,
    /// `… A port P`, or `… A` as OpenSSH 6.x wrote it.
    Optional,
}

/// The client named at the very end of a text: `… A port P` (or `… A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint<'a> {
    /// The text before the address, without the space between them; `None`
    /// when the address starts the text.
    pub(crate) head: Option<&'a [u8]>,
    /// The client's address.
    pub(crate) addr: IpAddr,
    /// The client's port, when the text names it.
    pub(crate) port: Option<u16>,
}

/// Reads the client from the end of `text`, where sshd's format fixes it, so
/// that nothing earlier in the text (a user name) can move it.
pub(crate) fn endpoint_at_end(text: &[u8], rule: PortRule) -> Option<Endpoint<'_>> {
    let with_port = bytes::rsplit_once(text, b" port ")
        .and_then(|(rest, digits)| parse_port(digits).map(|port| (rest, Some(port))));
    let (rest, port) = match (with_port, rule) {
        (Some(found), _) => found,
        (None, PortRule::Optional) => (text, None),
        (None, PortRule::Required) => return None,
    };
    let (head, token) = match rest.iter().rposition(|&b| b == b' ') {
        Some(space) => (Some(&rest[..space]), &rest[space + 1..]),
        None => (None, rest),
    };
    Some(Endpoint {
        head,
        addr: parse_ip(token)?,
        port,
    })
}

/// Reads the client from the start of `text`: `A port P:…` or OpenSSH 6.x's
/// `A: …`. Returns the text after that colon. Safe only where nothing
/// client-controlled comes before the address.
pub(crate) fn endpoint_at_start(text: &[u8]) -> Option<(IpAddr, Option<u16>, &[u8])> {
    let (token, rest) = bytes::first_token(text);
    if let Some(after_port) = rest.strip_prefix(b"port ") {
        let (digits, after_digits) = bytes::split_digits(after_port);
        let after_colon = after_digits.strip_prefix(b":")?;
        return Some((parse_ip(token)?, Some(parse_port(digits)?), after_colon));
    }
    let addr = parse_ip(token.strip_suffix(b":")?)?;
    Some((addr, None, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_ipv4_path_agrees_with_std() {
        for text in [
            "1.2.3.4",
            "255.255.255.255",
            "0.0.0.0",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.0004",
            "10.0.0.1",
            "",
        ] {
            let std = text.parse::<std::net::Ipv4Addr>().ok();
            let fast = parse_dotted_quad(text.as_bytes());
            assert!(
                fast.is_none() || fast == std,
                "{text:?}: fast {fast:?} vs std {std:?}"
            );
            assert_eq!(parse_ip(text.as_bytes()), std.map(IpAddr::V4), "{text:?}");
        }
    }
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn parses_every_address_form() {
        assert_eq!(parse_ip(b"203.0.113.5"), Some(v4(203, 0, 113, 5)));
        assert_eq!(parse_ip(b"::ffff:203.0.113.5"), Some(v4(203, 0, 113, 5)));
        assert_eq!(
            parse_ip(b"2001:db8::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip(b"fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(
            parse_ip(b"[2001:db8::2]"),
            Some("2001:db8::2".parse().unwrap())
        );
        assert_eq!(parse_ip(b"::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for token in [
            &b"host.example.com"[..],
            b"1.2.3.4%eth0",
            b"",
            b"1.2.3",
            b"\xff",
            b"1.2.3.4 ",
        ] {
            assert_eq!(parse_ip(token), None, "{token:?}");
        }
        assert_eq!(parse_ip(&[b'1'; 100]), None);
    }

    #[test]
    fn parses_ports() {
        assert_eq!(parse_port(b"22"), Some(22));
        assert_eq!(parse_port(b"65535"), Some(65535));
        assert_eq!(parse_port(b"65536"), None);
        assert_eq!(parse_port(b"-1"), None);
        assert_eq!(parse_port(b""), None);
    }

    #[test]
    fn endpoint_at_end_ignores_lookalikes_before_it() {
        let found = endpoint_at_end(
            b"x from 6.6.6.6 port 22 from 203.0.113.5 port 4242",
            PortRule::Required,
        );
        let found = found.unwrap();
        assert_eq!((found.addr, found.port), (v4(203, 0, 113, 5), Some(4242)));
        assert_eq!(found.head, Some(&b"x from 6.6.6.6 port 22 from"[..]));
    }

    #[test]
    fn endpoint_at_end_with_and_without_port() {
        let bare = endpoint_at_end(b"203.0.113.5", PortRule::Optional).unwrap();
        assert_eq!((bare.head, bare.port), (None, None));
        assert_eq!(endpoint_at_end(b"203.0.113.5", PortRule::Required), None);
        let old = endpoint_at_end(b"u from 203.0.113.5", PortRule::Optional).unwrap();
        assert_eq!(
            (old.head, old.addr),
            (Some(&b"u from"[..]), v4(203, 0, 113, 5))
        );
        assert_eq!(
            endpoint_at_end(b"u from host.example port 22", PortRule::Optional),
            None
        );
    }

    #[test]
    fn endpoint_at_start_in_both_generations() {
        let (addr, port, rest) = endpoint_at_start(b"203.0.113.5 port 22:11: Bye").unwrap();
        assert_eq!(
            (addr, port, rest),
            (v4(203, 0, 113, 5), Some(22), &b"11: Bye"[..])
        );
        let (addr, port, rest) = endpoint_at_start(b"::1: 11: Bye").unwrap();
        assert_eq!(
            (addr, port, rest),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), None, &b"11: Bye"[..])
        );
        assert_eq!(endpoint_at_start(b"203.0.113.5 port x:"), None);
        assert_eq!(endpoint_at_start(b"203.0.113.5 Bye"), None);
    }
}
