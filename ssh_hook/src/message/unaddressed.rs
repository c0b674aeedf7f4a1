//! sshd messages that name no address but belong to the connection their
//! process serves: older sshd's disconnect and abort lines, and the
//! listener's rate-limit summaries that follow a drop line. Each becomes an
//! [`Unaddressed`] that [`crate::Sequencer`] ties to its pid's address; none
//! takes an address from its own text.

use super::strip_preauth;
use crate::bytes;
use crate::event::{Kind, Unaddressed};
use std::borrow::Cow;

/// An unaddressed message parser.
type Parser = for<'a> fn(&'a [u8]) -> Option<Unaddressed<'a>>;

const PARSERS: [Parser; 8] = [
    parse_too_many_failures,
    parse_invalid_user_request,
    parse_rate_limited,
    parse_socket_reset,
    parse_negotiation_failure,
    parse_account_refused,
    parse_packet_error,
    parse_other_disconnect,
];

/// The unaddressed event in `msg` (already without `error: `/`fatal: `),
/// with pid 0 and no time: the framing fills them in.
pub(crate) fn parse_unaddressed(msg: &[u8]) -> Option<Unaddressed<'_>> {
    PARSERS.iter().find_map(|parse| parse(msg))
}

fn unaddressed<'a>(kind: Kind, user: Option<&'a [u8]>) -> Unaddressed<'a> {
    Unaddressed {
        kind,
        user: user.map(Cow::Borrowed),
        pid: 0,
        time: None,
        times: 1,
        follows: None,
    }
}

/// `Disconnecting: Too many authentication failures for U [preauth]`
/// (OpenSSH ≤ 6.x, and 7.x without the user): the MaxAuthTries disconnect
/// before sshd named the connection in it.
fn parse_too_many_failures(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, _) = strip_preauth(msg);
    let rest = msg.strip_prefix(b"Disconnecting: Too many authentication failures")?;
    let user = match rest {
        b"" => None,
        _ => Some(rest.strip_prefix(b" for ")?),
    };
    Some(unaddressed(Kind::TooManyAuthFailures, user))
}

/// `input_userauth_request: invalid user U [preauth]` (OpenSSH ≤ 7.x),
/// logged after the addressed `Invalid user U from A`.
fn parse_invalid_user_request(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, _) = strip_preauth(msg);
    let user = msg.strip_prefix(b"input_userauth_request: invalid user ")?;
    Some(unaddressed(Kind::InvalidUser, Some(user)))
}

/// `PerSourcePenalties logging rate-limited: additional N connections
/// dropped` and the same for `Maxstartups` (OpenSSH 9.8+): logged by the
/// listener right after the drop line it is in the call of, naming how
/// many drops went unlogged since the last logged one.
fn parse_rate_limited(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (reason, rest) = bytes::split_once(msg, b" logging rate-limited: additional ")?;
    let kind = match reason {
        b"PerSourcePenalties" => Kind::PenaltyDropsUnlogged,
        b"Maxstartups" => Kind::MaxStartupsDrop,
        _ => return None,
    };
    let (count, rest) = bytes::split_digits(rest);
    let times = u32::try_from(bytes::parse_decimal(count, 10)?).ok()?;
    if rest != b" connections dropped" || times == 0 {
        return None;
    }
    let follows = match kind {
        Kind::PenaltyDropsUnlogged => Kind::PenaltyDrop,
        _ => Kind::MaxStartupsDrop,
    };
    Some(Unaddressed {
        times,
        follows: Some(follows),
        ..unaddressed(kind, None)
    })
}

/// `Read from socket failed: Connection reset by peer [preauth]` (OpenSSH
/// 6.x, a `fatal:`): the client went away before authenticating.
fn parse_socket_reset(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, preauth) = strip_preauth(msg);
    let is_reset = matches!(
        msg,
        b"Read from socket failed: Connection reset by peer"
            | b"Connection reset by peer"
            | b"Read error from remote host: Connection reset by peer"
            | b"Write failed: Broken pipe"
            | b"Write failed: Connection reset by peer"
    );
    (preauth && is_reset).then(|| unaddressed(Kind::ConnectionClosedPreauth, None))
}

/// OpenSSH 6.x's key exchange failures, before `Unable to negotiate with
/// A` named the client: `no matching cipher found: client … server …`,
/// `Unable to negotiate a key exchange method`, `no hostkey alg`.
fn parse_negotiation_failure(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, preauth) = strip_preauth(msg);
    let known = [
        &b"no matching cipher found: "[..],
        b"no matching mac found: ",
        b"no matching comp found: ",
        b"no matching key exchange method found",
        b"Unable to negotiate a key exchange method",
        b"no hostkey alg",
    ];
    let failed = known.iter().any(|prefix| msg.starts_with(prefix));
    (preauth && failed).then(|| unaddressed(Kind::UnableToNegotiate, None))
}

/// An existing account refused without the client named: `User U not
/// allowed because account is locked` (or its shell is missing), and
/// `Access denied for user U by PAM account configuration [preauth]`.
fn parse_account_refused(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, _) = strip_preauth(msg);
    let user = if let Some(rest) = msg.strip_prefix(b"User ") {
        let (user, reason) = bytes::rsplit_once(rest, b" not allowed because ")?;
        // `User U from A not allowed …` names the client and is parsed elsewhere.
        if reason.is_empty() || bytes::find(user, b" from ").is_some() {
            return None;
        }
        user
    } else {
        msg.strip_prefix(b"Access denied for user ")?
            .strip_suffix(b" by PAM account configuration")?
    };
    Some(unaddressed(Kind::NotAllowed, Some(user)))
}

/// Broken packets before authentication: `Bad packet length N.`,
/// `Corrupted MAC on input.`, `dispatch_protocol_error: type N seq N`.
fn parse_packet_error(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, preauth) = strip_preauth(msg);
    let broken = msg.starts_with(b"Bad packet length ")
        || msg == b"Corrupted MAC on input."
        || msg.starts_with(b"dispatch_protocol_error: type ");
    (preauth && broken).then(|| unaddressed(Kind::ProtocolError, None))
}

/// Any other `Disconnecting …: REASON [preauth]`: 6.x's `Disconnecting:
/// Change of username or service not allowed: …`, and the newer lines
/// whose client text on both sides of the address leaves it ambiguous.
fn parse_other_disconnect(msg: &[u8]) -> Option<Unaddressed<'_>> {
    let (msg, preauth) = strip_preauth(msg);
    (preauth && msg.starts_with(b"Disconnecting")).then(|| unaddressed(Kind::ProtocolError, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_user_times(msg: &[u8]) -> Option<(Kind, Option<Vec<u8>>, u32)> {
        parse_unaddressed(msg).map(|u| (u.kind, u.user.map(|u| u.into_owned()), u.times))
    }

    #[test]
    fn old_too_many_failures_with_and_without_user() {
        assert_eq!(
            kind_user_times(
                b"Disconnecting: Too many authentication failures for root from 6.6.6.6 [preauth]"
            ),
            Some((
                Kind::TooManyAuthFailures,
                Some(b"root from 6.6.6.6".to_vec()),
                1
            ))
        );
        assert_eq!(
            kind_user_times(b"Disconnecting: Too many authentication failures [preauth]"),
            Some((Kind::TooManyAuthFailures, None, 1))
        );
        assert_eq!(
            parse_unaddressed(b"Disconnecting: Too many authentication failuresX"),
            None
        );
    }

    #[test]
    fn rate_limit_summaries_follow_their_drop_kind() {
        let u = parse_unaddressed(
            b"PerSourcePenalties logging rate-limited: additional 17 connections dropped",
        )
        .unwrap();
        assert_eq!(
            (u.kind, u.times, u.follows),
            (Kind::PenaltyDropsUnlogged, 17, Some(Kind::PenaltyDrop))
        );
        let u = parse_unaddressed(
            b"Maxstartups logging rate-limited: additional 3 connections dropped",
        )
        .unwrap();
        assert_eq!(
            (u.kind, u.times, u.follows),
            (Kind::MaxStartupsDrop, 3, Some(Kind::MaxStartupsDrop))
        );
        for bad in [
            &b"PerSourcePenalties logging rate-limited: additional 0 connections dropped"[..],
            b"PerSourcePenalties logging rate-limited: additional x connections dropped",
            b"PerSourcePenalties logging rate-limited: additional 99999999999 connections dropped",
            b"Other logging rate-limited: additional 3 connections dropped",
        ] {
            assert_eq!(
                parse_unaddressed(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refused_accounts_and_broken_packets() {
        assert_eq!(
            kind_user_times(b"User bob not allowed because account is locked"),
            Some((Kind::NotAllowed, Some(b"bob".to_vec()), 1))
        );
        assert_eq!(
            kind_user_times(b"Access denied for user bob by PAM account configuration [preauth]"),
            Some((Kind::NotAllowed, Some(b"bob".to_vec()), 1))
        );
        assert_eq!(
            parse_unaddressed(b"User bob from 203.0.113.5 not allowed because x"),
            None
        );
        for line in [
            &b"Bad packet length 1349676916. [preauth]"[..],
            b"Corrupted MAC on input. [preauth]",
            b"dispatch_protocol_error: type 20 seq 3 [preauth]",
            b"Disconnecting: Change of username or service not allowed: (a,ssh-connection) -> (b,ssh-connection) [preauth]",
            b"Disconnecting invalid user a 203.0.113.5 port 4: Change of username or service not allowed: (a,x) -> (b 6.6.6.6 port 1,x) [preauth]",
        ] {
            assert_eq!(kind_user_times(line).map(|k| k.0), Some(Kind::ProtocolError), "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(parse_unaddressed(b"Corrupted MAC on input."), None);
    }

    #[test]
    fn resets_and_negotiation_failures_only_before_authentication() {
        assert_eq!(
            kind_user_times(b"Read from socket failed: Connection reset by peer [preauth]"),
            Some((Kind::ConnectionClosedPreauth, None, 1))
        );
        assert_eq!(
            parse_unaddressed(b"Read from socket failed: Connection reset by peer"),
            None
        );
        assert_eq!(
            kind_user_times(
                b"no matching cipher found: client aes128-cbc server aes256-ctr [preauth]"
            )
            .map(|k| k.0),
            Some(Kind::UnableToNegotiate)
        );
        assert_eq!(
            kind_user_times(b"input_userauth_request: invalid user admin [preauth]"),
            Some((Kind::InvalidUser, Some(b"admin".to_vec()), 1))
        );
    }
}
