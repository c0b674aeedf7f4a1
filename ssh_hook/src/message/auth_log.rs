//! sshd's authentication log lines, all written by one format
//! (`%s %s for %s%.100s from %.200s port %d ssh2%s%s`):
//! `Failed|Accepted METHOD for [invalid user ]U from A port P ssh2[: DETAILS]`,
//! and `maximum authentication attempts exceeded for [invalid user ]U from A port P ssh2`.
//!
//! The user name before the address is the client's, and so, for public-key
//! and host-based methods, are parts of the details after `ssh2` (a
//! certificate's key id, a client host name). So the anchor ` ssh2` is chosen
//! with care: see [`find_ssh2_anchor`].

use super::{client_event, strip_preauth, user_before_from};
use crate::address::{Endpoint, PortRule, endpoint_at_end};
use crate::bytes;
use crate::event::{Event, Kind, Method};

/// What sshd prints after the address and port.
const SSH2: &[u8] = b" ssh2";

/// `Failed METHOD for …` and `Accepted METHOD for …`. (`Postponed` and
/// `Partial` lines are steps of one login, not events.)
pub(super) fn parse_failed_or_accepted(msg: &[u8]) -> Option<Event<'_>> {
    let (kind, rest) = match msg.strip_prefix(b"Failed ") {
        Some(rest) => (Kind::FailedAuth, rest),
        None => (Kind::Accepted, msg.strip_prefix(b"Accepted ")?),
    };
    // The method is sshd's name for it, or for an unknown method the
    // client's string: it may contain " for ", but cannot reach the address.
    let (method_name, target) = bytes::split_once(rest, b" for ")?;
    let method = Method::from_log_name(method_name);
    let with_details = method.is_some_and(Method::logs_key_details);
    let mut event = parse_target(kind, target, with_details)?;
    event.method = method;
    Some(event)
}

/// `maximum authentication attempts exceeded for [invalid user ]U from A port P ssh2 [preauth]`.
pub(super) fn parse_max_auth_tries(msg: &[u8]) -> Option<Event<'_>> {
    let target = msg.strip_prefix(b"maximum authentication attempts exceeded for ")?;
    parse_target(Kind::MaxAuthTries, target, false)
}

/// `[invalid user ]U from A port P ssh2[: DETAILS][ [preauth]]`, and
/// before OpenSSH 3.9 (or for protocol 1) `[illegal user ]U from A port P[ ssh1]`.
fn parse_target(kind: Kind, target: &[u8], with_details: bool) -> Option<Event<'_>> {
    let (target, _) = strip_preauth(target);
    let endpoint = match find_ssh2_anchor(target, with_details) {
        Anchor::At(endpoint) => endpoint,
        Anchor::Ambiguous => return None,
        // Not the ` ssh2` format at all: an old or protocol 1 line ends at the port.
        Anchor::Absent => {
            let end = target.strip_suffix(b" ssh1").unwrap_or(target);
            endpoint_at_end(end, PortRule::Required)?
        }
    };
    let user_part = user_before_from(&endpoint)?;
    // sshd writes "invalid user " (before 3.9 "illegal user ") before a
    // name that has no account.
    let user = user_part
        .strip_prefix(b"invalid user ")
        .or_else(|| user_part.strip_prefix(b"illegal user "))
        .unwrap_or(user_part);
    Some(client_event(kind, endpoint.addr, endpoint.port, Some(user)))
}

/// Where sshd's ` ssh2` is, if the line has one.
enum Anchor<'a> {
    /// The client before the real ` ssh2`.
    At(Endpoint<'a>),
    /// No ` ssh2` that could be sshd's: the line is in another format.
    Absent,
    /// Several could be, and the details do not tell which: drop the line.
    Ambiguous,
}

/// Where the real ` ssh2` is: the one after ` from A port P` and followed by
/// the end of the message or, for key methods, by `: DETAILS`.
///
/// Text before it (the user) and, for key methods, after it (a certificate
/// key id, a client host name) is the client's, so a fake `from A port P
/// ssh2` may appear on either side. The real anchor is always a candidate;
/// when it is the only one, it is taken. Otherwise, for key methods, the
/// last candidate is taken only when the details after it are a plain
/// `TYPE FINGERPRINT` (a fake inside certificate or host details would be
/// followed by more text). Anything else is ambiguous.
fn find_ssh2_anchor(target: &[u8], with_details: bool) -> Anchor<'_> {
    let mut candidates = bytes::find_all(target, SSH2)
        .filter_map(|at| anchor_candidate(target, at, with_details).map(|e| (at, e)));
    let Some((_, first)) = candidates.next() else {
        return Anchor::Absent;
    };
    let Some((last_at, last)) = candidates.last() else {
        return Anchor::At(first);
    };
    let plain = target[last_at + SSH2.len()..]
        .strip_prefix(b": ")
        .is_some_and(is_plain_key);
    if plain {
        Anchor::At(last)
    } else {
        Anchor::Ambiguous
    }
}

/// The client before ` ssh2` at `at`, if that ` ssh2` could be sshd's:
/// preceded by ` from A port P`, followed by the end or (key methods) `: `.
fn anchor_candidate(target: &[u8], at: usize, with_details: bool) -> Option<Endpoint<'_>> {
    let after = &target[at + SSH2.len()..];
    let tail_fits = after.is_empty() || (with_details && after.starts_with(b": "));
    if !tail_fits {
        return None;
    }
    endpoint_at_end(&target[..at], PortRule::Required)
        .filter(|endpoint| user_before_from(endpoint).is_some())
}

/// A plain key's details, `TYPE FINGERPRINT`: `ED25519 SHA256:base64`, or
/// OpenSSH 6.x's `RSA 4f:…:aa`. No quote, no third word.
fn is_plain_key(details: &[u8]) -> bool {
    let Some((key_type, fingerprint)) = bytes::split_once(details, b" ") else {
        return false;
    };
    let is_type_byte = |b: &u8| b.is_ascii_alphanumeric() || b"-_@.".contains(b);
    let is_fingerprint_byte = |b: &u8| b.is_ascii_alphanumeric() || b"+/=:".contains(b);
    !key_type.is_empty()
        && !fingerprint.is_empty()
        && key_type.iter().all(is_type_byte)
        && fingerprint.iter().all(is_fingerprint_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_of<'a>(event: &'a Event<'_>) -> &'a [u8] {
        event.user.as_deref().unwrap()
    }

    #[test]
    fn every_method_fails() {
        let methods = [
            ("password", Method::Password),
            ("keyboard-interactive/pam", Method::KeyboardInteractive),
            ("publickey", Method::PublicKey),
            ("hostbased", Method::HostBased),
            ("none", Method::None),
        ];
        for (name, method) in methods {
            let line =
                format!("Failed {name} for invalid user oracle from 203.0.113.5 port 4242 ssh2");
            let event = parse_failed_or_accepted(line.as_bytes()).unwrap();
            assert_eq!(
                (event.kind, event.method),
                (Kind::FailedAuth, Some(method)),
                "{name}"
            );
            assert_eq!(user_of(&event), b"oracle");
        }
    }

    #[test]
    fn unknown_method_still_fails_without_a_method() {
        let event =
            parse_failed_or_accepted(b"Failed foo for root from 203.0.113.5 port 1 ssh2").unwrap();
        assert_eq!((event.kind, event.method), (Kind::FailedAuth, None));
    }

    #[test]
    fn public_key_details_are_not_the_address() {
        let line = b"Failed publickey for root from 203.0.113.5 port 58586 ssh2: ED25519 SHA256:9cvP6Cdhe19uzyc8iPBaL8ulRWIMLAg5EcO9d34d3oU";
        let event = parse_failed_or_accepted(line).unwrap();
        assert_eq!(
            (event.addr.to_string(), event.port),
            ("203.0.113.5".into(), Some(58586))
        );
    }

    #[test]
    fn password_lines_take_no_details() {
        let line = b"Failed password for root from 203.0.113.5 port 1 ssh2: ED25519 SHA256:x";
        assert_eq!(parse_failed_or_accepted(line), None);
    }

    #[test]
    fn fake_anchor_in_user_of_a_key_line_loses_to_the_plain_key() {
        let line = b"Failed publickey for x from 6.6.6.6 port 22 ssh2: RSA SHA256:a from 203.0.113.5 port 9 ssh2: RSA SHA256:b";
        let event = parse_failed_or_accepted(line).unwrap();
        assert_eq!(
            (event.addr.to_string(), event.port),
            ("203.0.113.5".into(), Some(9))
        );
        assert_eq!(
            user_of(&event),
            b"x from 6.6.6.6 port 22 ssh2: RSA SHA256:a"
        );
    }

    #[test]
    fn fake_anchor_in_a_certificate_key_id_drops_the_line() {
        // A real line (sshd 9.2, a self-made certificate): the key id is the
        // client's. The same bytes could come from user `root from 127.0.0.1
        // port 58586 ssh2: ED25519-CERT … ID evil` at 6.6.6.6, so neither
        // address can be trusted.
        let line = b"Failed publickey for root from 127.0.0.1 port 58586 ssh2: ED25519-CERT SHA256:9cvP6Cdhe19uzyc8iPBaL8ulRWIMLAg5EcO9d34d3oU ID evil from 6.6.6.6 port 22 ssh2: ED25519 SHA256:x (serial 0) CA ED25519 SHA256:m+CgV4XSvuBGW/KoqUFSowjKHvhu7fxlrFBKKO/o6Uo";
        assert_eq!(parse_failed_or_accepted(line), None);
    }

    #[test]
    fn certificate_without_fake_anchor_is_parsed() {
        let line = b"Failed publickey for root from 127.0.0.1 port 58586 ssh2: ED25519-CERT SHA256:9cvP ID from 6.6.6.6 port 22 (serial 0) CA ED25519 SHA256:m+Cg";
        let event = parse_failed_or_accepted(line).unwrap();
        assert_eq!(
            (event.addr.to_string(), event.port),
            ("127.0.0.1".into(), Some(58586))
        );
    }

    #[test]
    fn fakes_on_both_sides_are_dropped_not_guessed() {
        let line = b"Failed publickey for u from 6.6.6.6 port 1 ssh2: X-CERT F ID z from 203.0.113.5 port 2 ssh2: X-CERT F ID from 7.7.7.7 port 3 ssh2: q (serial 0) CA X F";
        assert_eq!(parse_failed_or_accepted(line), None);
    }

    #[test]
    fn fake_anchor_in_a_client_host_name_drops_the_line() {
        let line = br#"Failed hostbased for u from 203.0.113.5 port 2 ssh2: client user "u", client host "h from 6.6.6.6 port 22 ssh2: RSA SHA256""#;
        assert_eq!(parse_failed_or_accepted(line), None);
        let honest = br#"Failed hostbased for u from 203.0.113.5 port 2 ssh2: client user "u", client host "h.example""#;
        assert_eq!(
            parse_failed_or_accepted(honest).map(|e| e.addr.to_string()),
            Some("203.0.113.5".into())
        );
    }

    #[test]
    fn lines_without_ssh2_end_at_the_port() {
        for line in [
            &b"Failed password for root from 203.0.113.5 port 4242"[..],
            b"Failed password for illegal user admin from 203.0.113.5 port 4242",
            b"Failed password for root from 203.0.113.5 port 4242 ssh1",
            b"Failed none for invalid user x ssh2 from 6.6.6.6 port 1 from 203.0.113.5 port 4242",
        ] {
            let event = parse_failed_or_accepted(line).unwrap();
            assert_eq!(
                (event.addr.to_string(), event.port),
                ("203.0.113.5".into(), Some(4242)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let event = parse_failed_or_accepted(
            b"Failed password for illegal user admin from 203.0.113.5 port 4242",
        )
        .unwrap();
        assert_eq!(user_of(&event), b"admin");
        // A fake ssh2 tail in the user name of a line ending at the port
        // is still the user's: the real endpoint is last.
        let line = b"Failed password for x from 6.6.6.6 port 1 ssh2 from 203.0.113.5 port 4242";
        assert_eq!(
            parse_failed_or_accepted(line).map(|e| e.addr.to_string()),
            Some("203.0.113.5".into())
        );
    }

    #[test]
    fn accepted_with_key_details() {
        let line = b"Accepted publickey for root from 127.0.0.1 port 58610 ssh2: ED25519 SHA256:0Sq6pbB2FiTV+DiMO1wSQqPaDOr5j+0U9oC/7faK7XM";
        let event = parse_failed_or_accepted(line).unwrap();
        assert_eq!(
            (event.kind, event.method),
            (Kind::Accepted, Some(Method::PublicKey))
        );
        assert_eq!(user_of(&event), b"root");
    }

    #[test]
    fn steps_of_one_login_are_not_events() {
        assert_eq!(
            parse_failed_or_accepted(
                b"Postponed publickey for root from 127.0.0.1 port 1 ssh2 [preauth]"
            ),
            None
        );
        assert_eq!(
            parse_failed_or_accepted(
                b"Partial publickey for root from 127.0.0.1 port 1 ssh2: RSA SHA256:x"
            ),
            None
        );
    }

    #[test]
    fn max_auth_tries_for_valid_and_invalid_users() {
        let line = b"maximum authentication attempts exceeded for invalid user bad user from 127.0.0.1 port 55554 ssh2 [preauth]";
        let event = parse_max_auth_tries(line).unwrap();
        assert_eq!((event.kind, event.port), (Kind::MaxAuthTries, Some(55554)));
        assert_eq!(user_of(&event), b"bad user");
        let line = b"maximum authentication attempts exceeded for root from 127.0.0.1 port 55542 ssh2 [preauth]";
        assert_eq!(user_of(&parse_max_auth_tries(line).unwrap()), b"root");
    }
}
