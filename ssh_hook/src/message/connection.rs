//! Connections that end before a login: closed, reset, disconnected, or
//! dropped for too many authentication failures.
//!
//! Most of these name the client by sshd's *connection id*: `A port P`, with
//! a preamble before authentication (`invalid user U A port P`,
//! `authenticating user U A port P`). After a login the preamble is
//! `user U`: a logged-in user leaving is not an event, so those lines are skipped.

use super::{client_event, strip_preauth};
use crate::address::{PortRule, endpoint_at_end, endpoint_at_start};
use crate::bytes;
use crate::event::{Event, Kind};

/// `Connection closed by ID[ [preauth]]` and `Connection reset by ID[ [preauth]]`.
pub(super) fn parse_connection_closed(msg: &[u8]) -> Option<Event<'_>> {
    let id = msg
        .strip_prefix(b"Connection closed by ")
        .or_else(|| msg.strip_prefix(b"Connection reset by "))?;
    parse_connection_id(Kind::ConnectionClosedPreauth, strip_preauth(id).0)
}

/// `Disconnected from ID[ [preauth]]`.
pub(super) fn parse_disconnected(msg: &[u8]) -> Option<Event<'_>> {
    let id = msg.strip_prefix(b"Disconnected from ")?;
    parse_connection_id(Kind::Disconnected, strip_preauth(id).0)
}

/// `Disconnecting ID: Too many authentication failures[ [preauth]]`. Other
/// reasons (some quoting the client) and 6.x's addressless
/// `Disconnecting: Too many authentication failures for U` are skipped.
pub(super) fn parse_disconnecting(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Disconnecting ")?;
    let id = strip_preauth(rest)
        .0
        .strip_suffix(b": Too many authentication failures")?;
    parse_connection_id(Kind::TooManyAuthFailures, id)
}

/// `Connection from ID timed out[ [preauth]]` (7.x+) and 6.x's `Connection
/// to A timed out while waiting to read|write [preauth]`: the client stopped
/// answering, a close like any other.
pub(super) fn parse_timed_out(msg: &[u8]) -> Option<Event<'_>> {
    let (msg, preauth) = strip_preauth(msg);
    if let Some(id) = msg
        .strip_prefix(b"Connection from ")
        .and_then(|rest| rest.strip_suffix(b" timed out"))
    {
        return parse_connection_id(Kind::ConnectionClosedPreauth, id);
    }
    let rest = msg.strip_prefix(b"Connection to ")?;
    let addr = rest
        .strip_suffix(b" timed out while waiting to read")
        .or_else(|| rest.strip_suffix(b" timed out while waiting to write"))?;
    let addr = crate::address::parse_ip(addr).filter(|_| preauth)?;
    Some(client_event(
        Kind::ConnectionClosedPreauth,
        addr,
        None,
        None,
    ))
}

/// `Connection from A port P with IP opts: …` (7.x+) and `Connection from A
/// with IP options:…` (6.x), fatal: source routing or other IP options,
/// which sshd refuses as spoofing attempts. The options are after the address.
pub(super) fn parse_ip_options(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Connection from ")?;
    let (endpoint, _) = bytes::split_once(rest, b" with IP opts: ")
        .or_else(|| bytes::split_once(rest, b" with IP options:"))?;
    let endpoint = endpoint_at_end(endpoint, PortRule::Optional)?;
    if endpoint.head.is_some() {
        return None;
    }
    Some(client_event(
        Kind::ProtocolError,
        endpoint.addr,
        endpoint.port,
        None,
    ))
}

/// `Disconnecting ID: REASON` for reasons other than too many failures
/// (`bad service request S`, `strict KEX violation: …`, `Packet corrupt`,
/// a change of user name). The preamble of ID and some reasons are client
/// text, so only two shapes are read: no preamble (the address comes
/// first), or a reason from a fixed list (the address ends ID). Anything
/// else is left to the pid (see `unaddressed`).
pub(super) fn parse_disconnecting_protocol(msg: &[u8]) -> Option<Event<'_>> {
    const FIXED_REASONS: [&[u8]; 4] = [
        b": Packet corrupt",
        b": no authentication methods enabled",
        b": Protocol error",
        b": Connection corrupted",
    ];
    let rest = strip_preauth(msg.strip_prefix(b"Disconnecting ")?).0;
    if let Some((addr, port, _reason)) = endpoint_at_start(rest) {
        return Some(client_event(Kind::ProtocolError, addr, port, None));
    }
    const STRICT_KEX: &[u8] = b": strict KEX violation: ";
    let strict_kex = bytes::rfind(rest, STRICT_KEX)
        .filter(|&at| is_sshd_words(&rest[at + STRICT_KEX.len()..]))
        .map(|at| &rest[..at]);
    let id = FIXED_REASONS
        .iter()
        .find_map(|reason| rest.strip_suffix(*reason))
        .or(strict_kex)?;
    parse_connection_id(Kind::ProtocolError, id)
}

/// The error texts `ssh_err()` gives a connection's fatal error with
/// (`ssherr.c`, those a client can cause), and the system errors sshd
/// passes through (`strerror`).
const SSH_ERRORS: [&[u8]; 20] = [
    b"message authentication code incorrect",
    b"Connection corrupted",
    b"Connection closed",
    b"Connection timed out",
    b"Protocol error",
    b"incomplete message",
    b"invalid format",
    b"string is too large",
    b"bignum is too large",
    b"invalid argument",
    b"unexpected bytes remain after decoding",
    b"incorrect signature",
    b"error in libcrypto",
    b"unexpected internal error",
    b"invalid elliptic curve value",
    b"unknown or unsupported key type",
    b"number is too large",
    b"Broken pipe",
    b"Connection reset by peer",
    b"No route to host",
];

/// `ssh_dispatch_run_fatal: Connection from ID: REASON` (7.x+): the client
/// broke the protocol after the key exchange (`message authentication code
/// incorrect`, `Connection corrupted`). REASON is one of sshd's error
/// texts (none holds `: `), so the last `: ` ends ID.
pub(super) fn parse_dispatch_fatal(msg: &[u8]) -> Option<Event<'_>> {
    let rest = strip_preauth(msg.strip_prefix(b"ssh_dispatch_run_fatal: Connection from ")?).0;
    let (id, reason) = bytes::rsplit_once(rest, b": ")?;
    if !SSH_ERRORS.contains(&reason) {
        return None;
    }
    parse_connection_id(Kind::ProtocolError, id)
}

/// Text made only of sshd's own words: letters, digits, spaces and `()-,'`
/// (no colon, so it cannot hide a second `ID:`).
fn is_sshd_words(text: &[u8]) -> bool {
    !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b" ()-,'".contains(b))
}

/// `Received disconnect from A port P:CODE: REASON [preauth]` (7.x+) and
/// `Received disconnect from A: CODE: REASON [preauth]` (6.x). The reason is
/// the client's, so the address is read from the front; only disconnects
/// before authentication count.
pub(super) fn parse_received_disconnect(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"Received disconnect from ")?;
    let (rest, preauth) = strip_preauth(rest);
    if !preauth {
        return None;
    }
    let (addr, port, _reason) = endpoint_at_start(rest)?;
    Some(client_event(Kind::ReceivedDisconnect, addr, port, None))
}

/// The event for a connection id at the end of `text`; `None` after login.
fn parse_connection_id(kind: Kind, text: &[u8]) -> Option<Event<'_>> {
    let endpoint = endpoint_at_end(text, PortRule::Optional)?;
    let user = match endpoint.head {
        None => None,
        Some(preamble) => Some(user_in_preamble(preamble)?),
    };
    Some(client_event(kind, endpoint.addr, endpoint.port, user))
}

/// The user named by a pre-authentication preamble; `None` for anything
/// else (notably `user U`, a logged-in user).
fn user_in_preamble(preamble: &[u8]) -> Option<&[u8]> {
    preamble
        .strip_prefix(b"invalid user ")
        .or_else(|| preamble.strip_prefix(b"authenticating user "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_name_the_client_only_where_unambiguous() {
        let cases: [(&[u8], Option<&str>); 8] = [
            (b"Disconnecting 203.0.113.5 port 4242: bad service request ssh-foo [preauth]", Some("203.0.113.5")),
            (b"Disconnecting invalid user x 6.6.6.6 port 1: y 203.0.113.5 port 4242: strict KEX violation: unexpected packet type 2 (seqnr 1) [preauth]", Some("203.0.113.5")),
            (b"Disconnecting authenticating user root 203.0.113.5 port 4242: Packet corrupt [preauth]", Some("203.0.113.5")),
            (b"Disconnecting invalid user admin 203.0.113.5 port 4242: Change of username or service not allowed: (admin,ssh-connection) -> (root 6.6.6.6 port 1,ssh-connection) [preauth]", None),
            (b"ssh_dispatch_run_fatal: Connection from 203.0.113.5 port 4242: message authentication code incorrect [preauth]", Some("203.0.113.5")),
            (b"ssh_dispatch_run_fatal: Connection from authenticating user x 6.6.6.6 port 1: y 203.0.113.5 port 4242: Broken pipe [preauth]", Some("203.0.113.5")),
            (b"ssh_dispatch_run_fatal: Connection from invalid user x 203.0.113.5 port 4242: 6.6.6.6 port 1: z", None),
            (b"ssh_dispatch_run_fatal: Connection from user alice 203.0.113.5 port 4242: Broken pipe", None),
        ];
        for (line, want) in cases {
            let got = parse_disconnecting_protocol(line)
                .or_else(|| parse_dispatch_fatal(line))
                .map(|e| {
                    assert_eq!(e.kind, Kind::ProtocolError);
                    e.addr.to_string()
                });
            assert_eq!(got.as_deref(), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn ip_options_are_protocol_errors() {
        for line in [
            &b"Connection from 203.0.113.5 port 4242 with IP opts: 0x83 0x07 0x04"[..],
            b"Connection from 203.0.113.5 with IP options: 83 07 04",
        ] {
            let event = parse_ip_options(line).unwrap();
            assert_eq!(
                (event.kind, event.addr.to_string()),
                (Kind::ProtocolError, "203.0.113.5".into())
            );
        }
    }

    #[test]
    fn timeouts_are_closes() {
        for line in [
            &b"Connection from 203.0.113.5 port 4242 timed out [preauth]"[..],
            b"Connection from authenticating user root 203.0.113.5 port 4242 timed out [preauth]",
            b"Connection to 203.0.113.5 timed out while waiting to read [preauth]",
        ] {
            let event = parse_timed_out(line).unwrap();
            assert_eq!(
                (event.kind, event.addr.to_string()),
                (Kind::ConnectionClosedPreauth, "203.0.113.5".into())
            );
        }
        assert_eq!(
            parse_timed_out(b"Connection to 203.0.113.5 timed out while waiting to read"),
            None
        );
    }

    fn parsed(line: &[u8]) -> (Kind, String, Option<u16>, Option<Vec<u8>>) {
        let parsers = [
            parse_connection_closed,
            parse_disconnected,
            parse_disconnecting,
            parse_received_disconnect,
        ];
        let event = parsers
            .iter()
            .find_map(|parse| parse(line))
            .expect("parsed");
        let user = event.user.map(|user| user.into_owned());
        (event.kind, event.addr.to_string(), event.port, user)
    }

    #[test]
    fn closed_in_every_generation() {
        let closed = Kind::ConnectionClosedPreauth;
        let cases: [(&[u8], _); 5] = [
            (
                b"Connection closed by 203.0.113.5 [preauth]",
                (closed, None, None),
            ),
            (
                b"Connection closed by 203.0.113.5 port 22 [preauth]",
                (closed, Some(22), None),
            ),
            (
                b"Connection closed by 203.0.113.5 port 55564",
                (closed, Some(55564), None),
            ),
            (
                b"Connection closed by invalid user ghost 203.0.113.5 port 1 [preauth]",
                (closed, Some(1), Some(b"ghost".to_vec())),
            ),
            (
                b"Connection reset by authenticating user root 203.0.113.5 port 2 [preauth]",
                (closed, Some(2), Some(b"root".to_vec())),
            ),
        ];
        for (line, (kind, port, user)) in cases {
            assert_eq!(parsed(line), (kind, "203.0.113.5".into(), port, user));
        }
    }

    #[test]
    fn logged_in_users_leaving_are_not_events() {
        assert_eq!(
            parse_disconnected(b"Disconnected from user root 127.0.0.1 port 58610"),
            None
        );
        assert_eq!(
            parse_connection_closed(b"Connection closed by user root 127.0.0.1 port 1"),
            None
        );
        let post_login = b"Received disconnect from 127.0.0.1 port 58610:11: disconnected by user";
        assert_eq!(parse_received_disconnect(post_login), None);
    }

    #[test]
    fn disconnected_before_login() {
        let line = b"Disconnected from authenticating user root 203.0.113.5 port 3 [preauth]";
        assert_eq!(
            parsed(line),
            (
                Kind::Disconnected,
                "203.0.113.5".into(),
                Some(3),
                Some(b"root".to_vec())
            )
        );
        let line = b"Disconnected from 203.0.113.5 port 3 [preauth]";
        assert_eq!(
            parsed(line),
            (Kind::Disconnected, "203.0.113.5".into(), Some(3), None)
        );
    }

    #[test]
    fn too_many_failures_only_with_an_address() {
        let line = b"Disconnecting invalid user bad user 127.0.0.1 port 55554: Too many authentication failures [preauth]";
        let expected = (
            Kind::TooManyAuthFailures,
            "127.0.0.1".into(),
            Some(55554),
            Some(b"bad user".to_vec()),
        );
        assert_eq!(parsed(line), expected);
        assert_eq!(
            parse_disconnecting(
                b"Disconnecting: Too many authentication failures for root [preauth]"
            ),
            None
        );
        let other = b"Disconnecting invalid user x 127.0.0.1 port 1: Change of username or service not allowed: (x,a) -> (y,a) [preauth]";
        assert_eq!(parse_disconnecting(other), None);
    }

    #[test]
    fn received_disconnect_reason_cannot_move_the_address() {
        let line =
            b"Received disconnect from 203.0.113.5 port 4:11: from 6.6.6.6 port 22 [preauth]";
        assert_eq!(
            parsed(line),
            (
                Kind::ReceivedDisconnect,
                "203.0.113.5".into(),
                Some(4),
                None
            )
        );
        let old = b"Received disconnect from 203.0.113.5: 11: Bye Bye [preauth]";
        assert_eq!(
            parsed(old),
            (Kind::ReceivedDisconnect, "203.0.113.5".into(), None, None)
        );
    }
}
