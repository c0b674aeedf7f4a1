//! The bare sshd message, without syslog or journal framing:
//! `Failed password for root from 203.0.113.5 port 4242 ssh2`.
//!
//! The rule every parser here keeps: **user-controlled text never moves the
//! address.** User names (and certificate key ids, client banners, disconnect
//! reasons) may contain spaces, `from 1.2.3.4`, `port 22`, `[preauth]`, quotes
//! or bytes that are not UTF-8. So each message is read from the part of its
//! format that sshd fixes: a literal prefix, and the client address where the
//! format puts it (most often at the very end, before an optional
//! ` [preauth]`). The user name is whatever lies between. Where a format has
//! client text on both sides of the address and the parse is ambiguous, the
//! line is dropped rather than guessed at.
//!
//! Parsers borrow from the message and never allocate.

mod account;
mod auth_log;
mod connection;
mod pam;
mod penalty;
mod probe;
mod unaddressed;

use crate::address::Endpoint;
use crate::bytes;
use crate::event::{Event, Kind};
use std::borrow::Cow;
use std::net::IpAddr;

pub(crate) use unaddressed::parse_unaddressed;

/// A message parser: the event, or `None` when the message is not its kind.
type Parser = for<'a> fn(&'a [u8]) -> Option<Event<'a>>;

/// The parsers by the first byte of the message each one's literal prefix
/// starts with, so a line is tried only against the few it could be
/// (the hot path of a million-line scan). Within a group, order matters
/// only where prefixes are shared (noted).
fn parsers_for(first: u8) -> &'static [Parser] {
    match first {
        b'F' | b'A' => &[auth_log::parse_failed_or_accepted],
        b'm' => &[auth_log::parse_max_auth_tries],
        b'I' => &[account::parse_invalid_user],
        b'U' => &[
            account::parse_not_allowed,
            account::parse_refused_account,
            probe::parse_unable_to_negotiate,
        ],
        b'a' => &[account::parse_refused_connection],
        b'R' => &[
            account::parse_refused_account,
            connection::parse_received_disconnect,
        ],
        b'r' => &[account::parse_tcp_wrappers],
        b'C' => &[
            connection::parse_connection_closed,
            connection::parse_timed_out,
            connection::parse_ip_options,
            probe::parse_could_not_write_ident,
        ],
        b'D' => &[
            connection::parse_disconnected,
            // `parse_disconnecting` first: the same prefix, other reasons.
            connection::parse_disconnecting,
            connection::parse_disconnecting_protocol,
            probe::parse_no_identification,
        ],
        b's' => &[
            connection::parse_dispatch_fatal,
            probe::parse_scanner,
            penalty::parse_session_end,
            penalty::parse_penalty_imposed,
        ],
        b'S' => &[penalty::parse_session_end],
        b'P' => &[
            pam::parse_pam_failure,
            pam::parse_pam_unix_failure,
            probe::parse_major_versions_differ,
        ],
        b'p' => &[pam::parse_pam_unix_failure, probe::parse_scanner],
        b'b' => &[probe::parse_banner_error],
        b'B' => &[probe::parse_bad_protocol_version],
        b'T' => &[probe::parse_preauth_timeout, penalty::parse_session_end],
        b'd' => &[penalty::parse_drop_connection],
        _ => &[],
    }
}

/// Parses one bare sshd message (no syslog prefix; a trailing line ending is
/// ignored). `None` for messages that are not an event authguard knows, or
/// that name no client address (`kex_exchange_identification: Connection
/// closed by remote host`, host names from `UseDNS yes`). The returned event
/// borrows its user name from `msg` and has no pid or time.
pub fn parse_message(msg: &[u8]) -> Option<Event<'_>> {
    let msg = strip_severity(bytes::trim_line_end(msg));
    let first = *msg.first()?;
    parsers_for(first).iter().find_map(|parse| parse(msg))
}

/// The message without the `error: ` or `fatal: ` that sshd's syslog output
/// puts before messages of those levels.
pub(crate) fn strip_severity(msg: &[u8]) -> &[u8] {
    msg.strip_prefix(b"error: ")
        .or_else(|| msg.strip_prefix(b"fatal: "))
        .unwrap_or(msg)
}

/// The message without the ` [preauth]` sshd's monitor appends to what its
/// unprivileged child logged, and whether it was there. Only the very end counts.
fn strip_preauth(msg: &[u8]) -> (&[u8], bool) {
    match msg.strip_suffix(b" [preauth]") {
        Some(rest) => (rest, true),
        None => (msg, false),
    }
}

/// The user name in `U from` before an endpoint (`None` when the endpoint's
/// head does not end with ` from`). `U` may be empty (`Invalid user  from …`).
fn user_before_from<'a>(endpoint: &Endpoint<'a>) -> Option<&'a [u8]> {
    endpoint.head?.strip_suffix(b" from")
}

/// The event for a client at an endpoint, with the user name if known.
fn client_event<'a>(
    kind: Kind,
    addr: IpAddr,
    port: Option<u16>,
    user: Option<&'a [u8]>,
) -> Event<'a> {
    Event {
        user: user.map(Cow::Borrowed),
        ..Event::new(kind, addr, port)
    }
}

#[cfg(test)]
mod tests;
