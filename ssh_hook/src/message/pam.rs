//! PAM's view of a failed password, as logged inside sshd: sshd's own
//! `PAM: Authentication failure for …` and pam_unix's `authentication failure;` line.

use super::{client_event, user_before_from};
use crate::address::{PortRule, endpoint_at_end, parse_ip};
use crate::bytes;
use crate::event::{Event, Kind};

/// The PAM error texts (`pam_strerror`) sshd logs a failure with.
const PAM_FAILURES: [&[u8]; 4] = [
    b"Authentication failure for ",
    // OpenPAM's wording (FreeBSD, macOS).
    b"authentication error for ",
    b"User not known to the underlying authentication module for ",
    b"Maximum number of tries exceeded for ",
];

/// `PAM: Authentication failure for [illegal user ]U from A`. `A` is PAM's
/// remote host: a host name (sshd's `UseDNS yes`) is not an address and the
/// line is skipped.
pub(super) fn parse_pam_failure(msg: &[u8]) -> Option<Event<'_>> {
    let rest = msg.strip_prefix(b"PAM: ")?;
    let target = PAM_FAILURES
        .iter()
        .find_map(|failure| rest.strip_prefix(*failure))?;
    let endpoint = endpoint_at_end(target, PortRule::Optional)?;
    if endpoint.port.is_some() {
        return None;
    }
    let user_part = user_before_from(&endpoint)?;
    let user = user_part
        .strip_prefix(b"illegal user ")
        .unwrap_or(user_part);
    Some(client_event(
        Kind::PamAuthFailure,
        endpoint.addr,
        None,
        Some(user),
    ))
}

/// `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0
/// tty=ssh ruser= rhost=A[  user=U]`, and the count pam_unix logs when a
/// login's PAM session ends after several: `pam_unix(sshd:auth): N more
/// authentication failures; …` (older Linux-PAM: `PAM N more …`), an
/// event N times over. Everything before `rhost=` is sshd's (sshd sets no
/// PAM ruser); the user name comes last, so the first ` rhost=` is the real one.
pub(super) fn parse_pam_unix_failure(msg: &[u8]) -> Option<Event<'_>> {
    let (times, fields) = match msg.strip_prefix(b"pam_unix(sshd:auth): authentication failure; ") {
        Some(fields) => (1, fields),
        None => more_failures(msg)?,
    };
    let (_, from_rhost) = bytes::split_once(fields, b" rhost=")?;
    let (rhost, rest) = bytes::first_token(from_rhost);
    let addr = parse_ip(rhost)?;
    let user = rest.trim_ascii_start().strip_prefix(b"user=");
    Some(Event {
        times,
        ..client_event(Kind::PamAuthFailure, addr, None, user)
    })
}

/// `[pam_unix(sshd:auth): |PAM ]N more authentication failure[s]; FIELDS`: N and FIELDS.
fn more_failures(msg: &[u8]) -> Option<(u32, &[u8])> {
    let rest = msg
        .strip_prefix(b"pam_unix(sshd:auth): ")
        .or_else(|| msg.strip_prefix(b"PAM "))?;
    let (count, rest) = bytes::split_digits(rest);
    let times = u32::try_from(bytes::parse_decimal(count, 10)?).ok()?;
    let fields = rest
        .strip_prefix(b" more authentication failures; ")
        .or_else(|| rest.strip_prefix(b" more authentication failure; "))?;
    (times > 0).then_some((times, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_pam_failure_for_valid_and_illegal_users() {
        let event = parse_pam_failure(
            b"PAM: Authentication failure for illegal user admin from 203.0.113.5",
        )
        .unwrap();
        assert_eq!(
            (event.kind, event.addr.to_string()),
            (Kind::PamAuthFailure, "203.0.113.5".into())
        );
        assert_eq!(event.user.as_deref(), Some(&b"admin"[..]));
        let event =
            parse_pam_failure(b"PAM: Authentication failure for root from 2001:db8::5").unwrap();
        assert_eq!(
            (event.addr.to_string(), event.user.as_deref()),
            ("2001:db8::5".into(), Some(&b"root"[..]))
        );
    }

    #[test]
    fn sshd_pam_failure_from_a_host_name_is_skipped() {
        assert_eq!(
            parse_pam_failure(b"PAM: Authentication failure for root from host.example"),
            None
        );
        assert_eq!(
            parse_pam_failure(b"PAM: Authentication failure for root from 1.2.3.4 port 5"),
            None
        );
    }

    #[test]
    fn pam_unix_failure_with_and_without_user() {
        let line = b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root";
        let event = parse_pam_unix_failure(line).unwrap();
        assert_eq!(
            (event.addr.to_string(), event.user.as_deref()),
            ("203.0.113.5".into(), Some(&b"root"[..]))
        );
        let line = b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=::ffff:203.0.113.5";
        let event = parse_pam_unix_failure(line).unwrap();
        assert_eq!(
            (event.addr.to_string(), event.user),
            ("203.0.113.5".into(), None)
        );
    }

    #[test]
    fn pam_unix_user_cannot_move_the_address() {
        let line = b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=x rhost=6.6.6.6";
        let event = parse_pam_unix_failure(line).unwrap();
        assert_eq!(event.addr.to_string(), "203.0.113.5");
        assert_eq!(event.user.as_deref(), Some(&b"x rhost=6.6.6.6"[..]));
    }

    #[test]
    fn more_failures_count_n_times() {
        for line in [
            &b"PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root"[..],
            b"pam_unix(sshd:auth): 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root",
        ] {
            let event = parse_pam_unix_failure(line).unwrap();
            assert_eq!(
                (event.kind, event.addr.to_string(), event.times),
                (Kind::PamAuthFailure, "203.0.113.5".into(), 2)
            );
            assert_eq!(event.user.as_deref(), Some(&b"root"[..]));
        }
        let one = b"PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=2001:db8::5";
        assert_eq!(parse_pam_unix_failure(one).map(|e| e.times), Some(1));
        let zero = b"PAM 0 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=2001:db8::5";
        assert_eq!(parse_pam_unix_failure(zero), None);
    }

    #[test]
    fn openpam_wording() {
        let event =
            parse_pam_failure(b"PAM: authentication error for illegal user admin from 203.0.113.5")
                .unwrap();
        assert_eq!(event.addr.to_string(), "203.0.113.5");
    }

    #[test]
    fn other_pam_unix_lines_are_skipped() {
        assert_eq!(
            parse_pam_unix_failure(b"pam_unix(sshd:auth): check pass; user unknown"),
            None
        );
        assert_eq!(
            parse_pam_unix_failure(
                b"pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)"
            ),
            None
        );
    }
}
