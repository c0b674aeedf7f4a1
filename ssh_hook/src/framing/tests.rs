//! [`parse_line`] over every framing, and lines it must skip.

use super::*;
use crate::event::Kind;
use proptest::prelude::*;

/// 2026-11-24T10:00:01Z.
const T: i64 = 1_795_514_401;
/// The message most tests frame.
const MSG: &str = "Failed password for invalid user admin from 203.0.113.5 port 4242 ssh2";

/// Kind, address, port, pid and time of a parsed line.
type Framed = (Kind, String, Option<u16>, Option<u32>, Option<i64>);

fn framed(line: &str) -> Option<Framed> {
    let event = parse_line(line.as_bytes(), 2026)?;
    Some((
        event.kind,
        event.addr.to_string(),
        event.port,
        event.pid,
        event.time,
    ))
}

fn expect(pid: Option<u32>, time: Option<i64>) -> Option<Framed> {
    Some((
        Kind::FailedAuth,
        "203.0.113.5".into(),
        Some(4242),
        pid,
        time,
    ))
}

#[test]
fn rfc3164_and_journal_short() {
    assert_eq!(
        framed(&format!("Nov 24 10:00:01 host sshd[123]: {MSG}\n")),
        expect(Some(123), Some(T))
    );
    let fourth = T - 20 * 86_400;
    assert_eq!(
        framed(&format!("Nov  4 10:00:01 host sshd[123]: {MSG}")),
        expect(Some(123), Some(fourth))
    );
}

#[test]
fn openssh_9_8_program_names() {
    let line = format!("Nov 24 10:00:01 host sshd-session[4567]: {MSG}");
    assert_eq!(framed(&line), expect(Some(4567), Some(T)));
    let line = "Nov 24 10:00:01 host sshd-session[4567]: Connection closed by invalid user admin 203.0.113.5 port 4242 [preauth]";
    let event = parse_line(line.as_bytes(), 2026).unwrap();
    assert_eq!(
        (event.kind, event.user.as_deref()),
        (Kind::ConnectionClosedPreauth, Some(&b"admin"[..]))
    );
    let line = "Nov 24 10:00:01 host sshd-auth[5]: Disconnected from invalid user admin 203.0.113.5 port 4242 [preauth]";
    assert_eq!(
        framed(line).map(|f| (f.0, f.3)),
        Some((Kind::Disconnected, Some(5)))
    );
}

#[test]
fn rfc3164_with_priority_and_without_host() {
    assert_eq!(
        framed(&format!("<38>Nov 24 10:00:01 host sshd[123]: {MSG}")),
        expect(Some(123), Some(T))
    );
    assert_eq!(
        framed(&format!("<38>Nov 24 10:00:01 sshd[123]: {MSG}")),
        expect(Some(123), Some(T))
    );
    assert_eq!(
        framed(&format!("<38>sshd[123]: {MSG}")),
        expect(Some(123), None)
    );
    assert_eq!(
        framed(&format!("Nov 24 10:00:01 host sshd: {MSG}")),
        expect(None, Some(T))
    );
}

#[test]
fn journal_short_precise() {
    assert_eq!(
        framed(&format!("Nov 24 10:00:01.123456 host sshd[123]: {MSG}")),
        expect(Some(123), Some(T))
    );
}

#[test]
fn rsyslog_iso_and_journal_short_iso() {
    let line = format!("2026-11-24T10:00:01.123456+00:00 host sshd[123]: {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("2026-11-24T10:00:01+0000 host sshd[123]: {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("2026-11-24T11:00:01+01:00 host sshd-session[9]: {MSG}");
    assert_eq!(framed(&line), expect(Some(9), Some(T)));
}

#[test]
fn rfc5424() {
    let line = format!("<38>1 2026-11-24T10:00:01.003Z host sshd 123 - - {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("<38>1 - host sshd - - - \u{FEFF}{MSG}");
    assert_eq!(framed(&line), expect(None, None));
    let line = format!(
        r#"<38>1 2026-11-24T10:00:01Z host sshd-session 7 ID47 [a b="x\]y"][c@1 d="\"]"] {MSG}"#
    );
    assert_eq!(framed(&line), expect(Some(7), Some(T)));
    let line = format!("<38>1 2026-11-24T10:00:01Z host cron 7 - - {MSG}");
    assert_eq!(framed(&line), None);
}

#[test]
fn journal_short_unix_and_monotonic() {
    assert_eq!(
        framed(&format!("1795514401.123456 host sshd[123]: {MSG}")),
        expect(Some(123), Some(T))
    );
    assert_eq!(
        framed(&format!("[ 1234.567890] host sshd[123]: {MSG}")),
        expect(Some(123), None)
    );
}

#[test]
fn journal_cat_and_bare_messages() {
    assert_eq!(framed(MSG), expect(None, None));
    assert_eq!(framed(&format!("{MSG}\r\n")), expect(None, None));
    assert_eq!(framed(&format!("error: {MSG}")), expect(None, None));
}

#[test]
fn headers_without_a_timestamp() {
    assert_eq!(
        framed(&format!("host sshd[123]: {MSG}")),
        expect(Some(123), None)
    );
    assert_eq!(
        framed(&format!("sshd[123]: {MSG}")),
        expect(Some(123), None)
    );
    assert_eq!(framed(&format!("host sshd: {MSG}")), expect(None, None));
    assert_eq!(framed(&format!("sshd-session: {MSG}")), expect(None, None));
    assert_eq!(framed(&format!("host cron[1]: {MSG}")), None);
    assert_eq!(framed(&format!("cron[1]: {MSG}")), None);
}

#[test]
fn a_bare_message_never_reads_as_a_header() {
    // User names and unknown method names are the client's text, second
    // in a bare message: `sshd[1]:` there is not a header.
    let line = "User sshd[1]: Invalid user x from 6.6.6.6 port 1 from 203.0.113.5 not allowed because not listed in AllowUsers";
    assert_eq!(framed(line).map(|f| f.1), Some("203.0.113.5".into()));
    let line = "Failed sshd[1]: for root from 203.0.113.5 port 4242 ssh2";
    assert_eq!(framed(line).map(|f| f.1), Some("203.0.113.5".into()));
}

#[test]
fn vendor_and_carrier_additions() {
    let line = format!("Nov 24 10:00:01 host sshd[123]: [ID 800047 auth.info] {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("Nov 24 10:00:01 <auth.info> host sshd[123]: {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("Nov 24 10:00:01 host sshd[123]: [ID x auth.info] {MSG}");
    assert_eq!(framed(&line), None, "not a Solaris id");
}

#[test]
fn rsyslog_repeated_messages_count_n_times() {
    let line = format!("Nov 24 10:00:01 host sshd[123]: message repeated 3 times: [ {MSG}]");
    let event = parse_line(line.as_bytes(), 2026).unwrap();
    assert_eq!(
        (event.kind, event.times, event.port),
        (Kind::FailedAuth, 3, Some(4242))
    );
    let line = format!("Nov 24 10:00:01 host sshd[123]: message repeated 3 times: [ {MSG}");
    assert_eq!(framed(&line), None, "no closing bracket");
    let line = format!("Nov 24 10:00:01 host cron[1]: message repeated 3 times: [ {MSG}]");
    assert_eq!(framed(&line), None);
}

#[test]
fn bsd_last_message_repeated() {
    for line in [
        "Nov 24 10:00:01 host last message repeated 3 times",
        "Nov 24 10:00:01 host --- last message repeated 3 times ---",
        "Nov 24 10:00:01 last message repeated 3 times",
    ] {
        assert_eq!(
            classify_line(line.as_bytes(), 2026),
            Parsed::RepeatLast(3),
            "{line}"
        );
    }
    let line = "Nov 24 10:00:01 host last message repeated 0 times";
    assert_eq!(classify_line(line.as_bytes(), 2026), Parsed::NotSshd);
}

#[test]
fn journal_short_full_and_with_unit() {
    let line = format!("Tue 2026-11-24 10:00:01 UTC host sshd[123]: {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("Tue 2026-11-24 11:00:01.123 +0100 host sshd[123]: {MSG}");
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
    let line = format!("Tue 2026-11-24 11:00:01 CET host sshd[123]: {MSG}");
    assert_eq!(framed(&line), expect(Some(123), None), "no zone database");
}

#[test]
fn unaddressed_lines_carry_their_pid() {
    let line = "Nov 24 10:00:01 host sshd[7]: Disconnecting: Too many authentication failures for root [preauth]";
    match classify_line(line.as_bytes(), 2026) {
        Parsed::Unaddressed(u) => assert_eq!(
            (u.kind, u.pid, u.time),
            (Kind::TooManyAuthFailures, 7, Some(T))
        ),
        other => panic!("{other:?}"),
    }
    let no_pid = "Nov 24 10:00:01 host sshd: Disconnecting: Too many authentication failures for root [preauth]";
    assert_eq!(classify_line(no_pid.as_bytes(), 2026), Parsed::Unrecognised);
}

#[test]
fn a_classifier_reuses_a_timestamp_only_when_it_repeats() {
    let mut classifier = Classifier::new(2026);
    let times: Vec<Option<i64>> = [
        format!("Nov 24 10:00:01 host sshd[1]: {MSG}"),
        format!("Nov 24 10:00:01.999 host sshd[1]: {MSG}"),
        format!("Nov 24 10:00:02 host sshd[1]: {MSG}"),
        format!("Nov 24 10:00:01host sshd[1]: {MSG}"),
        format!("Nov 24 10:00:01 host sshd[1]: {MSG}"),
    ]
    .iter()
    .map(|line| {
        classifier
            .classify(line.as_bytes())
            .event()
            .and_then(|e| e.time)
    })
    .collect();
    assert_eq!(times, [Some(T), Some(T), Some(T + 1), None, Some(T)]);
}

#[test]
fn journal_json() {
    let line = format!(
        r#"{{"__REALTIME_TIMESTAMP":"1795514401000000","_PID":"123","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"{MSG}"}}"#
    );
    assert_eq!(framed(&line), expect(Some(123), Some(T)));
}

#[test]
fn ipv6_in_framed_lines() {
    let line =
        "2026-11-24T10:00:01+00:00 host sshd[1]: Invalid user x from 2001:db8::1%eth0 port 22";
    assert_eq!(framed(line).map(|f| f.1), Some("2001:db8::1".to_string()));
    let line = "Nov 24 10:00:01 host sshd[1]: Invalid user x from ::ffff:198.51.100.1 port 22";
    assert_eq!(framed(line).map(|f| f.1), Some("198.51.100.1".to_string()));
}

#[test]
fn other_programs_are_skipped() {
    for program in [
        "sudo[1]",
        "cron[2]",
        "sshd2[3]",
        "systemd-logind[4]",
        "sshdx",
    ] {
        let line = format!("Nov 24 10:00:01 host {program}: {MSG}");
        assert_eq!(framed(&line), None, "{program}");
    }
    assert_eq!(
        framed(&format!("2026-11-24T10:00:01Z host su[1]: {MSG}")),
        None
    );
    assert_eq!(framed(&format!("<38>other[1]: {MSG}")), None);
}

#[test]
fn sshd_lines_that_are_not_events_are_skipped() {
    let lines = [
        "Nov 24 10:00:01 host sshd[1]: Server listening on 0.0.0.0 port 22.",
        "Nov 24 10:00:01 host sshd[1]: error: kex_exchange_identification: Connection closed by remote host",
        "2026-11-24T10:00:01Z host sshd-session[1]: pam_unix(sshd:session): session closed for user root",
        "",
        "\n",
        "Nov 24 10:00:01 host sshd[1]:",
        "Nov 24 10:00:01",
    ];
    for line in lines {
        assert_eq!(framed(line), None, "{line}");
    }
}

#[test]
fn header_text_cannot_be_injected_through_the_message() {
    // The framing is read first; a message that looks like a header is only a message.
    let line = "Nov 24 10:00:01 host sshd[1]: Invalid user Nov 24 10:00:01 h sshd[2]: x from 203.0.113.5 port 3";
    let event = parse_line(line.as_bytes(), 2026).unwrap();
    assert_eq!(
        (event.pid, event.addr.to_string()),
        (Some(1), "203.0.113.5".into())
    );
}

proptest! {
    /// Any bytes in any framing: no panic.
    #[test]
    fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_line(&line, 2026);
    }

    /// Any bytes after a valid header: no panic, and no event from another program.
    #[test]
    fn never_panics_after_a_header(tail in proptest::collection::vec(any::<u8>(), 0..120), sshd in any::<bool>()) {
        let header: &[u8] = if sshd { b"Nov 24 10:00:01 host sshd[1]: " } else { b"Nov 24 10:00:01 host cron[1]: " };
        let line = [header, &tail].concat();
        let parsed = parse_line(&line, 2026);
        prop_assert!(sshd || parsed.is_none());
    }
}
