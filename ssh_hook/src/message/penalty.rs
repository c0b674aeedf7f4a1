//! sshd's own defences (OpenSSH 9.8+): the listener refusing a connection
//! because its source is penalised (PerSourcePenalties) or because too many
//! connections are unauthenticated (MaxStartups), and the penalties it imposes.
//!
//! Every field of these lines is sshd's: addresses it took from the socket
//! and fixed reason texts (`srclimit.c`, `sshd.c` `drop_connection()`). No
//! client text reaches them, so they are read strictly, start to end.

use super::client_event;
use crate::address::{parse_ip, parse_port};
use crate::bytes;
use crate::event::{Event, Kind};
use std::net::IpAddr;

/// The reasons `srclimit_penalise()` gives (OpenSSH 9.8 to 10.x).
const PENALTY_REASONS: [&[u8]; 5] = [
    b"penalty: caused crash",
    b"penalty: failed authentication",
    b"penalty: connections without attempting authentication",
    b"penalty: connection prohibited by RefuseConnection",
    b"penalty: exceeded LoginGraceTime",
];

/// `drop connection #N from [A]:P on [L]:LP REASON`: N is how many
/// connections were unauthenticated at the time. REASON is a penalty
/// (a [`Kind::PenaltyDrop`]) or `Maxstartups` (10.x; `past MaxStartups`
/// before 9.8), a [`Kind::MaxStartupsDrop`].
pub(super) fn parse_drop_connection(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"drop connection #")?;
    let (count, rest) = bytes::split_digits(rest);
    bytes::parse_decimal(count, 10)?;
    let rest = rest.strip_prefix(b" from ")?;
    let (addr, port, rest) = bracketed_endpoint(rest)?;
    let rest = rest.strip_prefix(b" on ")?;
    let (_local, _local_port, reason) = bracketed_endpoint(rest)?;
    let reason = reason.strip_prefix(b" ")?;
    let kind = if PENALTY_REASONS.contains(&reason) {
        Kind::PenaltyDrop
    } else if matches!(
        reason,
        // 10.x, 9.9, before 9.8; and a full penalty table refusing everyone.
        b"Maxstartups"
            | b"past Maxstartups"
            | b"past MaxStartups"
            | b"too many penalised addresses"
    ) {
        Kind::MaxStartupsDrop
    } else {
        return None;
    };
    Some(client_event(kind, addr, Some(port), None))
}

/// What the listener logs when a session process ends badly (OpenSSH
/// 9.8+), naming the connection as `connection from A to L` (or
/// `connection from A`): `Timeout before authentication for connection
/// from A to L, pid = N[ (early)| (sending config)| (sending keys)]`, and
/// the child crashes, `Session process N unpriv child crash for connection
/// from A to L` and `session process N for connection from A to L killed by
/// signal S[ …]`. All sshd's text.
pub(super) fn parse_session_end(msg: &[u8]) -> Option<Event<'_>> {
    if let Some(rest) = msg.strip_prefix(b"Timeout before authentication for connection from ") {
        let (addr, rest) = listener_peer(rest)?;
        rest.strip_prefix(b", pid = ")?;
        return Some(client_event(Kind::PreauthTimeout, addr, None, None));
    }
    let rest = msg
        .strip_prefix(b"Session process ")
        .or_else(|| msg.strip_prefix(b"session process "))?;
    let (pid, rest) = bytes::split_digits(rest);
    bytes::parse_decimal(pid, 10)?;
    let rest = rest
        .strip_prefix(b" unpriv child crash for connection from ")
        .or_else(|| rest.strip_prefix(b" for connection from "))?;
    let (addr, rest) = listener_peer(rest)?;
    let crashed = rest.is_empty() || rest.starts_with(b" killed by signal ");
    crashed.then(|| client_event(Kind::ChildCrash, addr, None, None))
}

/// `A to L…` or `A, …` or `A` after `connection from `: the peer address
/// and the text after the local one.
fn listener_peer(text: &[u8]) -> Option<(IpAddr, &[u8])> {
    let (peer, rest) = address_token(text)?;
    let rest = match rest.strip_prefix(b" to ") {
        Some(local) => address_token(local)?.1,
        None => rest,
    };
    Some((peer, rest))
}

/// The address up to the next space or comma, and the text from there.
fn address_token(text: &[u8]) -> Option<(IpAddr, &[u8])> {
    let end = text
        .iter()
        .position(|&b| b == b' ' || b == b',')
        .unwrap_or(text.len());
    Some((parse_ip(&text[..end])?, &text[end..]))
}

/// A penalty coming into force for a source (OpenSSH 9.8+ at VERBOSE;
/// 10.1+ also at INFO):
/// `srclimit_penalise: ipv4: new A/BITS active penalty of S seconds for REASON`
/// and `srclimit_penalise: A/BITS: activating ipv4 penalty of S seconds for REASON`.
/// A `deferred` penalty is not yet in force and is no event. The address
/// is the penalised network's first address (the source itself for /32
/// and /128).
pub(super) fn parse_penalty_imposed(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"srclimit_penalise: ")?;
    let (network, rest) = if let Some(rest) = rest
        .strip_prefix(b"ipv4: new ")
        .or_else(|| rest.strip_prefix(b"ipv6: new "))
    {
        let (network, rest) = bytes::split_once(rest, b" ")?;
        (network, rest.strip_prefix(b"active penalty of ")?)
    } else {
        let (network, rest) = bytes::split_once(rest, b": activating ")?;
        let rest = rest
            .strip_prefix(b"ipv4 penalty of ")
            .or_else(|| rest.strip_prefix(b"ipv6 penalty of "))?;
        (network, rest)
    };
    let (seconds, reason) = bytes::split_digits(rest);
    bytes::parse_decimal(seconds, 10)?;
    let reason = reason.strip_prefix(b" seconds for ")?;
    if !PENALTY_REASONS.contains(&reason) {
        return None;
    }
    let (addr, bits) = bytes::split_once(network, b"/")?;
    bytes::parse_decimal(bits, 3).filter(|&b| b <= 128)?;
    let addr = parse_ip(addr)?;
    Some(client_event(Kind::PenaltyImposed, addr, None, None))
}

/// `[A]:P` at the start of `text`, and what follows it.
fn bracketed_endpoint(text: &[u8]) -> Option<(IpAddr, u16, &[u8])> {
    let rest = text.strip_prefix(b"[")?;
    let (addr, rest) = bytes::split_once(rest, b"]:")?;
    let (port, rest) = bytes::split_digits(rest);
    Some((parse_ip(addr)?, parse_port(port)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ends_seen_by_the_listener() {
        let cases: [(&[u8], Kind); 6] = [
            (b"Timeout before authentication for connection from 203.0.113.5 to 198.51.100.1, pid = 12345", Kind::PreauthTimeout),
            (b"Timeout before authentication for connection from 203.0.113.5 to 198.51.100.1, pid = 12345 (sending config)", Kind::PreauthTimeout),
            (b"Timeout before authentication for connection from 203.0.113.5, pid = 12345", Kind::PreauthTimeout),
            (b"Session process 12345 unpriv child crash for connection from 203.0.113.5 to 198.51.100.1", Kind::ChildCrash),
            (b"session process 12345 for connection from 203.0.113.5 to 198.51.100.1 killed by signal 11", Kind::ChildCrash),
            (b"Session process 7 unpriv child crash for connection from 2001:db8::5 to 2001:db8::1", Kind::ChildCrash),
        ];
        for (line, kind) in cases {
            let event = parse_session_end(line)
                .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(line)));
            assert_eq!(event.kind, kind);
            assert!(
                event.addr.to_string().ends_with("::5") || event.addr.to_string() == "203.0.113.5"
            );
        }
        assert_eq!(
            parse_session_end(b"session process 1 for connection from 203.0.113.5 to 198.51.100.1 terminated abnormally, status=0x1"),
            None
        );
    }

    fn client(event: Option<Event<'_>>) -> Option<(Kind, String, Option<u16>)> {
        event.map(|event| (event.kind, event.addr.to_string(), event.port))
    }

    #[test]
    fn every_penalty_reason_and_any_count_is_a_penalty_drop() {
        for reason in PENALTY_REASONS {
            for count in ["0", "1", "17", "250"] {
                let mut line =
                    format!("drop connection #{count} from [203.0.113.5]:40000 on [192.0.2.1]:22 ")
                        .into_bytes();
                line.extend_from_slice(reason);
                let expected = (Kind::PenaltyDrop, "203.0.113.5".into(), Some(40000));
                assert_eq!(client(parse_drop_connection(&line)), Some(expected));
            }
        }
        let v6 = b"drop connection #3 from [2001:db8::7]:50123 on [2001:db8::1]:22 \
                   penalty: failed authentication";
        let expected = (Kind::PenaltyDrop, "2001:db8::7".into(), Some(50123));
        assert_eq!(client(parse_drop_connection(v6)), Some(expected));
    }

    #[test]
    fn maxstartups_drops_old_and_new() {
        for reason in ["Maxstartups", "past MaxStartups"] {
            let line =
                format!("drop connection #10 from [198.51.100.9]:1234 on [192.0.2.1]:22 {reason}");
            let expected = (Kind::MaxStartupsDrop, "198.51.100.9".into(), Some(1234));
            assert_eq!(
                client(parse_drop_connection(line.as_bytes())),
                Some(expected)
            );
        }
    }

    #[test]
    fn malformed_drops_are_no_event() {
        for line in [
            &b"drop connection #x from [203.0.113.5]:1 on [192.0.2.1]:22 Maxstartups"[..],
            b"drop connection #1 from 203.0.113.5:1 on [192.0.2.1]:22 Maxstartups",
            b"drop connection #1 from [203.0.113.5]:1 on [192.0.2.1]:22 penalty: made up",
            b"drop connection #1 from [203.0.113.5]:1 on [192.0.2.1]:22",
            b"drop connection #1 from [203.0.113.5]:99999 on [192.0.2.1]:22 Maxstartups",
        ] {
            assert_eq!(parse_drop_connection(line), None, "{line:?}");
        }
    }

    #[test]
    fn penalties_in_force_name_their_network() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"srclimit_penalise: ipv4: new 203.0.113.5/32 active penalty of 30 seconds \
                  for penalty: caused crash",
                "203.0.113.5",
            ),
            (
                b"srclimit_penalise: 203.0.113.5/32: activating ipv4 penalty of 16 seconds \
                  for penalty: failed authentication",
                "203.0.113.5",
            ),
            (
                b"srclimit_penalise: ipv6: new 2001:db8:1:2::/64 active penalty of 90 seconds \
                  for penalty: exceeded LoginGraceTime",
                "2001:db8:1:2::",
            ),
        ];
        for (line, addr) in cases {
            let expected = (Kind::PenaltyImposed, addr.into(), None);
            assert_eq!(client(parse_penalty_imposed(line)), Some(expected));
        }
        let deferred = b"srclimit_penalise: ipv4: new 203.0.113.5/32 deferred penalty of 5 \
                         seconds for penalty: failed authentication";
        assert_eq!(parse_penalty_imposed(deferred), None);
    }
}
