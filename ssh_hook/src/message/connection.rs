//! Connections that end before a login: closed, reset, disconnected, or
//! dropped for too many authentication failures.
//!
//! Most of these name the client by sshd's *connection id*: `A port P`, with
//! a preamble before authentication (`invalid user U A port P`,
//! `authenticating user U A port P`). After a login the preamble is
//! `user U`: a logged-in user leaving is not an event, so those lines are skipped.

use super::{client_event, strip_preauth};
use crate::address::{PortRule, endpoint_at_end, endpoint_at_start};
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
