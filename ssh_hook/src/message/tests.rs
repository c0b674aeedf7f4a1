//! [`parse_message`] over real sshd messages from several OpenSSH versions,
//! crafted injections, and messages that must be ignored.

use super::*;
use crate::event::Method;
use proptest::prelude::*;
use std::net::Ipv4Addr;

/// What a test expects of a parsed message: kind, address, port, user.
type Expected<'a> = (Kind, &'a str, Option<u16>, Option<&'a [u8]>);

/// Kind, address, port and user of a parsed message.
type Parsed = (Kind, String, Option<u16>, Option<Vec<u8>>);

fn parsed(msg: &[u8]) -> Option<Parsed> {
    let event = parse_message(msg)?;
    Some((
        event.kind,
        event.addr.to_string(),
        event.port,
        event.user.map(Cow::into_owned),
    ))
}

fn assert_parses(msg: &[u8], (kind, addr, port, user): Expected<'_>) {
    let expected = (kind, addr.to_string(), port, user.map(<[u8]>::to_vec));
    assert_eq!(
        parsed(msg),
        Some(expected),
        "{}",
        String::from_utf8_lossy(msg)
    );
}

/// Messages as OpenSSH 9.2 wrote them here (`sshd -E`, so with `\r` line
/// endings and without `error: `), provoked with real clients.
#[test]
fn openssh_9_2_real_messages() {
    let cases: [(&[u8], Expected<'_>); 14] = [
        (b"Invalid user denied from 127.0.0.1 port 49072\r", (Kind::InvalidUser, "127.0.0.1", Some(49072), Some(b"denied"))),
        (b"Failed password for invalid user denied from 127.0.0.1 port 49072 ssh2\r", (Kind::FailedAuth, "127.0.0.1", Some(49072), Some(b"denied"))),
        (b"Failed password for root from 127.0.0.1 port 49060 ssh2", (Kind::FailedAuth, "127.0.0.1", Some(49060), Some(b"root"))),
        (b"Connection closed by authenticating user root 127.0.0.1 port 49060 [preauth]", (Kind::ConnectionClosedPreauth, "127.0.0.1", Some(49060), Some(b"root"))),
        (b"Failed password for invalid user ghost from ::1 port 38576 ssh2", (Kind::FailedAuth, "::1", Some(38576), Some(b"ghost"))),
        (b"Unable to negotiate with 127.0.0.1 port 49098: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,ext-info-c,kex-strict-c-v00@openssh.com [preauth]", (Kind::UnableToNegotiate, "127.0.0.1", Some(49098), None)),
        (b"User nobody from 127.0.0.1 not allowed because listed in DenyUsers", (Kind::NotAllowed, "127.0.0.1", None, Some(b"nobody"))),
        (b"maximum authentication attempts exceeded for root from 127.0.0.1 port 55542 ssh2 [preauth]", (Kind::MaxAuthTries, "127.0.0.1", Some(55542), Some(b"root"))),
        (b"Disconnecting authenticating user root 127.0.0.1 port 55542: Too many authentication failures [preauth]", (Kind::TooManyAuthFailures, "127.0.0.1", Some(55542), Some(b"root"))),
        (b"banner exchange: Connection from 127.0.0.1 port 55556: invalid format", (Kind::BannerError, "127.0.0.1", Some(55556), None)),
        (b"banner exchange: Connection from 127.0.0.1 port 55570: could not read protocol version", (Kind::BannerError, "127.0.0.1", Some(55570), None)),
        (b"Connection closed by 127.0.0.1 port 55564", (Kind::ConnectionClosedPreauth, "127.0.0.1", Some(55564), None)),
        (b"Connection reset by 127.0.0.1 port 55586 [preauth]", (Kind::ConnectionClosedPreauth, "127.0.0.1", Some(55586), None)),
        (b"Accepted publickey for root from 127.0.0.1 port 58610 ssh2: ED25519 SHA256:0Sq6pbB2FiTV+DiMO1wSQqPaDOr5j+0U9oC/7faK7XM", (Kind::Accepted, "127.0.0.1", Some(58610), Some(b"root"))),
    ];
    for (msg, expected) in cases {
        assert_parses(msg, expected);
    }
}

/// Messages in the wordings of OpenSSH 6.x (no ports, old disconnect form).
#[test]
fn openssh_6_messages() {
    let cases: [(&[u8], Expected<'_>); 8] = [
        (b"Invalid user admin from 198.51.100.4", (Kind::InvalidUser, "198.51.100.4", None, Some(b"admin"))),
        (b"Failed none for invalid user admin from 198.51.100.4 port 5 ssh2", (Kind::FailedAuth, "198.51.100.4", Some(5), Some(b"admin"))),
        (b"Received disconnect from 198.51.100.4: 11: Bye Bye [preauth]", (Kind::ReceivedDisconnect, "198.51.100.4", None, None)),
        (b"Connection closed by 198.51.100.4 [preauth]", (Kind::ConnectionClosedPreauth, "198.51.100.4", None, None)),
        (b"Did not receive identification string from 198.51.100.4", (Kind::NoIdentification, "198.51.100.4", None, None)),
        (b"Bad protocol version identification 'GET / HTTP/1.1' from 198.51.100.4 port 5", (Kind::BadProtocolVersion, "198.51.100.4", Some(5), None)),
        (b"error: maximum authentication attempts exceeded for root from 198.51.100.4 port 5 ssh2 [preauth]", (Kind::MaxAuthTries, "198.51.100.4", Some(5), Some(b"root"))),
        (b"Failed publickey for root from 198.51.100.4 port 5 ssh2: RSA 4f:d2:aa:01:22:9e:0b:33:a5:6c:48:9c:01:2d:c1:7e", (Kind::FailedAuth, "198.51.100.4", Some(5), Some(b"root"))),
    ];
    for (msg, expected) in cases {
        assert_parses(msg, expected);
    }
}

/// Messages in the wordings of OpenSSH 7.x and 8.x, as syslog has them (with `error: `).
#[test]
fn openssh_7_and_8_messages() {
    let cases: [(&[u8], Expected<'_>); 9] = [
        (b"Received disconnect from 203.0.113.9 port 41000:11: Bye Bye [preauth]", (Kind::ReceivedDisconnect, "203.0.113.9", Some(41000), None)),
        (b"error: Received disconnect from 203.0.113.9 port 41000:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", (Kind::ReceivedDisconnect, "203.0.113.9", Some(41000), None)),
        (b"Disconnected from 203.0.113.9 port 41000 [preauth]", (Kind::Disconnected, "203.0.113.9", Some(41000), None)),
        (b"Disconnected from invalid user test 203.0.113.9 port 41000 [preauth]", (Kind::Disconnected, "203.0.113.9", Some(41000), Some(b"test"))),
        (b"Did not receive identification string from 203.0.113.9 port 41000", (Kind::NoIdentification, "203.0.113.9", Some(41000), None)),
        (b"error: PAM: Authentication failure for illegal user test from 203.0.113.9", (Kind::PamAuthFailure, "203.0.113.9", None, Some(b"test"))),
        (b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root", (Kind::PamAuthFailure, "203.0.113.9", None, Some(b"root"))),
        (b"Failed keyboard-interactive/pam for invalid user test from 203.0.113.9 port 41000 ssh2", (Kind::FailedAuth, "203.0.113.9", Some(41000), Some(b"test"))),
        (b"User bob from 203.0.113.9 not allowed because none of user's groups are listed in AllowGroups", (Kind::NotAllowed, "203.0.113.9", None, Some(b"bob"))),
    ];
    for (msg, expected) in cases {
        assert_parses(msg, expected);
    }
}

/// The methods of `Failed`/`Accepted` lines come through.
#[test]
fn methods_come_through() {
    let event =
        parse_message(b"Accepted keyboard-interactive/pam for alice from 2001:db8::9 port 2 ssh2")
            .unwrap();
    assert_eq!(
        (event.kind, event.method),
        (Kind::Accepted, Some(Method::KeyboardInteractive))
    );
    let event = parse_message(b"Accepted password for alice from 2001:db8::9 port 2 ssh2").unwrap();
    assert_eq!(event.method, Some(Method::Password));
    assert_eq!(
        parse_message(b"Invalid user a from 192.0.2.1 port 1")
            .unwrap()
            .method,
        None
    );
}

#[test]
fn ipv6_mapped_and_zoned_addresses() {
    assert_parses(
        b"Failed password for root from ::ffff:203.0.113.5 port 22 ssh2",
        (Kind::FailedAuth, "203.0.113.5", Some(22), Some(b"root")),
    );
    assert_parses(
        b"Invalid user x from fe80::1%eth0 port 22",
        (Kind::InvalidUser, "fe80::1", Some(22), Some(b"x")),
    );
    assert_parses(
        b"Connection closed by invalid user x 2001:db8:1:2::7 port 22 [preauth]",
        (
            Kind::ConnectionClosedPreauth,
            "2001:db8:1:2::7",
            Some(22),
            Some(b"x"),
        ),
    );
}

#[test]
fn injected_failed_password_keeps_the_real_address() {
    let msg = b"Failed password for invalid user evil from 6.6.6.6 port 22 ssh2 from 203.0.113.5 port 4242 ssh2";
    assert_parses(
        msg,
        (
            Kind::FailedAuth,
            "203.0.113.5",
            Some(4242),
            Some(b"evil from 6.6.6.6 port 22 ssh2"),
        ),
    );
}

#[test]
fn injected_invalid_user_keeps_the_real_address() {
    let msg = b"Invalid user x from 1.2.3.4 from 203.0.113.9 port 5";
    assert_parses(
        msg,
        (
            Kind::InvalidUser,
            "203.0.113.9",
            Some(5),
            Some(b"x from 1.2.3.4"),
        ),
    );
}

#[test]
fn injected_connection_closed_keeps_the_real_address() {
    let msg = b"Connection closed by invalid user a 1.2.3.4 port 5 203.0.113.7 port 22 [preauth]";
    assert_parses(
        msg,
        (
            Kind::ConnectionClosedPreauth,
            "203.0.113.7",
            Some(22),
            Some(b"a 1.2.3.4 port 5"),
        ),
    );
    // Provoked for real against sshd 9.2 with `ssh 'nosuchuser from 6.6.6.6 port 22'@127.0.0.1`.
    let msg = b"Connection closed by invalid user nosuchuser from 6.6.6.6 port 22 127.0.0.1 port 49058 [preauth]";
    let user = b"nosuchuser from 6.6.6.6 port 22";
    assert_parses(
        msg,
        (
            Kind::ConnectionClosedPreauth,
            "127.0.0.1",
            Some(49058),
            Some(user),
        ),
    );
}

#[test]
fn user_with_bytes_that_are_not_utf8() {
    let msg = b"Failed password for invalid user \xff\xfe from 203.0.113.5 port 1 ssh2";
    assert_parses(
        msg,
        (Kind::FailedAuth, "203.0.113.5", Some(1), Some(b"\xff\xfe")),
    );
}

#[test]
fn user_containing_preauth_and_quotes() {
    let msg = b"Connection closed by invalid user x [preauth] 203.0.113.5 port 1 [preauth]";
    assert_parses(
        msg,
        (
            Kind::ConnectionClosedPreauth,
            "203.0.113.5",
            Some(1),
            Some(b"x [preauth]"),
        ),
    );
    let msg = b"Invalid user [preauth] from 203.0.113.5 port 1";
    assert_parses(
        msg,
        (
            Kind::InvalidUser,
            "203.0.113.5",
            Some(1),
            Some(b"[preauth]"),
        ),
    );
    let msg = b"Invalid user 'a\" from 6.6.6.6' from 203.0.113.5 port 1";
    assert_parses(
        msg,
        (
            Kind::InvalidUser,
            "203.0.113.5",
            Some(1),
            Some(b"'a\" from 6.6.6.6'"),
        ),
    );
}

#[test]
fn user_named_like_an_address_is_not_one() {
    let msg = b"Disconnecting invalid user 6.6.6.6 port 22 203.0.113.5 port 1: Too many authentication failures [preauth]";
    assert_parses(
        msg,
        (
            Kind::TooManyAuthFailures,
            "203.0.113.5",
            Some(1),
            Some(b"6.6.6.6 port 22"),
        ),
    );
    let msg = b"maximum authentication attempts exceeded for invalid user invalid user x from 203.0.113.5 port 1 ssh2 [preauth]";
    assert_parses(
        msg,
        (
            Kind::MaxAuthTries,
            "203.0.113.5",
            Some(1),
            Some(b"invalid user x"),
        ),
    );
}

#[test]
fn messages_without_a_client_or_not_events_are_ignored() {
    let ignored: [&[u8]; 16] = [
        b"Server listening on 0.0.0.0 port 22.",
        b"Server listening on :: port 22.",
        b"error: kex_exchange_identification: Connection closed by remote host",
        b"kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\"",
        b"error: kex_exchange_identification: read: Connection reset by peer",
        b"Protocol major versions differ: 2 vs. 1",
        b"input_userauth_request: invalid user admin [preauth]",
        b"Disconnecting: Too many authentication failures for root [preauth]",
        b"pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
        b"Connection from 127.0.0.1 port 58586 on 127.0.0.1 port 2299 rdomain \"\"",
        b"Postponed publickey for root from 127.0.0.1 port 58610 ssh2 [preauth]",
        b"Close session: user root from 127.0.0.1 port 58610 id 0",
        b"Received disconnect from 127.0.0.1 port 58610:11: disconnected by user",
        b"Disconnected from user root 127.0.0.1 port 58610",
        b"Could not get shadow information for NOUSER",
        b"",
    ];
    for msg in ignored {
        assert_eq!(parsed(msg), None, "{}", String::from_utf8_lossy(msg));
    }
}

/// Pieces of sshd's formats an attacker would put in a user name.
const HOSTILE_PIECES: [&[u8]; 16] = [
    b" from ",
    b" port ",
    b"22",
    b" ssh2",
    b": ",
    b"6.6.6.6",
    b"::ffff:6.6.6.6",
    b"fe80::1%lo",
    b" [preauth]",
    b"invalid user ",
    b"authenticating user ",
    b"user ",
    b"\xff\xfe",
    b"\"",
    b" ",
    b"\r\n",
];

/// A user name for the property tests: hostile pieces and random bytes.
fn hostile_user() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        proptest::sample::select(&HOSTILE_PIECES[..]).prop_map(<[u8]>::to_vec),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// A message template with the client's user name in it, its kind, and
/// whether the user comes back byte for byte (not when sshd's own
/// `invalid user ` marker is optional there).
const TEMPLATES: [(&str, Kind, bool); 8] = [
    (
        "Invalid user {U} from {A} port {P}",
        Kind::InvalidUser,
        true,
    ),
    (
        "Failed password for invalid user {U} from {A} port {P} ssh2",
        Kind::FailedAuth,
        true,
    ),
    (
        "Failed password for {U} from {A} port {P} ssh2",
        Kind::FailedAuth,
        false,
    ),
    (
        "Failed publickey for invalid user {U} from {A} port {P} ssh2: ED25519 SHA256:0Sq6pbB2FiTV+DiMO1wSQqPaDOr5j",
        Kind::FailedAuth,
        true,
    ),
    (
        "Connection closed by invalid user {U} {A} port {P} [preauth]",
        Kind::ConnectionClosedPreauth,
        true,
    ),
    (
        "Disconnected from authenticating user {U} {A} port {P} [preauth]",
        Kind::Disconnected,
        true,
    ),
    (
        "Disconnecting invalid user {U} {A} port {P}: Too many authentication failures [preauth]",
        Kind::TooManyAuthFailures,
        true,
    ),
    (
        "maximum authentication attempts exceeded for invalid user {U} from {A} port {P} ssh2 [preauth]",
        Kind::MaxAuthTries,
        true,
    ),
];

fn fill(template: &str, user: &[u8], addr: IpAddr, port: u16) -> Vec<u8> {
    let (before, after) = template.split_once("{U}").unwrap();
    let after = after
        .replace("{A}", &addr.to_string())
        .replace("{P}", &port.to_string());
    [before.as_bytes(), user, after.as_bytes()].concat()
}

proptest! {
    /// Whatever the user name, the address and port are the real ones, and
    /// the user name comes back as it was given.
    #[test]
    fn no_user_name_moves_the_address(user in hostile_user(), addr in any::<IpAddr>(), port in any::<u16>()) {
        for (template, kind, user_exact) in TEMPLATES {
            let msg = fill(template, &user, addr, port);
            let event = parse_message(&msg).expect("parsed");
            prop_assert_eq!((event.kind, event.addr, event.port), (kind, addr.to_canonical(), Some(port)));
            if user_exact {
                prop_assert_eq!(event.user.as_deref(), Some(&user[..]));
            }
        }
    }

    /// Any bytes as a user name, not only hostile pieces.
    #[test]
    fn any_bytes_as_user_name(user in proptest::collection::vec(any::<u8>(), 0..60), addr in any::<Ipv4Addr>()) {
        let msg = fill(TEMPLATES[0].0, &user, IpAddr::V4(addr), 22);
        let event = parse_message(&msg).expect("parsed");
        prop_assert_eq!((event.addr, event.user.as_deref()), (IpAddr::V4(addr), Some(&user[..])));
    }

    /// Any bytes: no panic.
    #[test]
    fn never_panics(msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_message(&msg);
    }
}

/// Every place OpenSSH puts client text in a line authguard reads (from
/// OpenSSH 6.6-10.2's format strings): `{T}` is the client's text, `{A}`
/// and `{P}` the connection's address and port. The bool says whether the
/// line must always parse; where client text stands on both sides of the
/// address, sshd's line may be dropped as ambiguous, never misread.
const CLIENT_TEXT_TEMPLATES: [(&str, bool); 30] = [
    // User names.
    ("Invalid user {T} from {A} port {P}", true),
    ("Invalid user {T} from {A}", true),
    ("Illegal user {T} from {A}", true),
    (
        "Failed password for invalid user {T} from {A} port {P} ssh2",
        true,
    ),
    ("Failed password for {T} from {A} port {P} ssh2", true),
    (
        "Failed password for illegal user {T} from {A} port {P}",
        true,
    ),
    (
        "Failed none for invalid user {T} from {A} port {P} ssh2",
        true,
    ),
    ("Accepted password for {T} from {A} port {P} ssh2", true),
    (
        "maximum authentication attempts exceeded for invalid user {T} from {A} port {P} ssh2 [preauth]",
        true,
    ),
    (
        "Connection closed by invalid user {T} {A} port {P} [preauth]",
        true,
    ),
    (
        "Connection reset by authenticating user {T} {A} port {P} [preauth]",
        true,
    ),
    (
        "Disconnected from invalid user {T} {A} port {P} [preauth]",
        true,
    ),
    (
        "Disconnecting invalid user {T} {A} port {P}: Too many authentication failures [preauth]",
        true,
    ),
    (
        "Connection from invalid user {T} {A} port {P} timed out [preauth]",
        true,
    ),
    (
        "ssh_dispatch_run_fatal: Connection from invalid user {T} {A} port {P}: message authentication code incorrect [preauth]",
        true,
    ),
    (
        "administratively prohibited connection for invalid user {T} from {A} port {P}",
        true,
    ),
    (
        "PAM: Authentication failure for illegal user {T} from {A}",
        true,
    ),
    (
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={A}  user={T}",
        true,
    ),
    (
        "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={A}  user={T}",
        true,
    ),
    // Key and certificate details after `ssh2: ` (a certificate's key ID is the client's).
    (
        "Failed publickey for root from {A} port {P} ssh2: ED25519-CERT SHA256:9cvP ID {T} (serial 0) CA ED25519 SHA256:m+Cg",
        false,
    ),
    (
        "Accepted publickey for root from {A} port {P} ssh2: RSA-CERT SHA256:9cvP ID {T} (serial 1) CA RSA SHA256:x",
        false,
    ),
    (
        "Failed hostbased for root from {A} port {P} ssh2: RSA SHA256:x, client user \"{T}\", client host \"h\"",
        false,
    ),
    // The user name and the key ID at once.
    (
        "Failed publickey for {T} from {A} port {P} ssh2: ED25519-CERT SHA256:9cvP ID {T} (serial 0) CA ED25519 SHA256:m",
        false,
    ),
    // Client version strings and banners.
    (
        "Bad protocol version identification '{T}' from {A} port {P}",
        true,
    ),
    (
        "Protocol major versions differ for {A} port {P}: SSH-2.0-OpenSSH_7.6p1 vs. {T}",
        true,
    ),
    ("scanned from {A} port {P} with {T}.  Don't panic.", true),
    // Disconnect reasons and algorithm offers.
    (
        "Received disconnect from {A} port {P}:11: {T} [preauth]",
        true,
    ),
    ("Received disconnect from {A}: 11: {T} [preauth]", true),
    (
        "Unable to negotiate with {A} port {P}: no matching key exchange method found. Their offer: {T} [preauth]",
        true,
    ),
    (
        "Disconnecting invalid user {T} {A} port {P}: Change of username or service not allowed: ({T},ssh-connection) -> (root,ssh-connection) [preauth]",
        false,
    ),
];

/// Client text as sshd logs it: hostile pieces of sshd's formats, in any
/// order, with sshd's sanitising applied (no raw line ends, octal for
/// control and high bytes, as `strnvis` writes them).
fn client_text() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: [&[u8]; 33] = [
        b" from 6.6.6.6 port 22 ssh2",
        b" 6.6.6.6 port 22",
        b" from 6.6.6.6",
        b" from ",
        b" port ",
        b"22",
        b" ssh2",
        b": ",
        b":",
        b"6.6.6.6",
        b"::ffff:6.6.6.6",
        b"2001:db8::6",
        b"[6.6.6.6]:22",
        b" on ",
        b" [preauth]",
        b"invalid user ",
        b"authenticating user ",
        b"user ",
        b" ID ",
        b" (serial 0) CA ",
        b"ED25519 SHA256:x",
        b"'",
        b"\"",
        b" ",
        b" with ",
        b".  Don't panic.",
        b":11: ",
        b" rhost=",
        b"user=",
        b" timed out",
        b"(",
        b")",
        b"\\303\\251",
    ];
    let piece = prop_oneof![
        4 => proptest::sample::select(&PIECES[..]).prop_map(<[u8]>::to_vec),
        1 => "[a-zA-Z0-9._-]{0,4}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

fn fill_all(template: &str, text: &[u8], addr: IpAddr, port: u16) -> Vec<u8> {
    let filled = template
        .replace("{A}", &addr.to_string())
        .replace("{P}", &port.to_string());
    filled
        .split("{T}")
        .map(str::as_bytes)
        .collect::<Vec<_>>()
        .join(text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Item 6 of the OpenSSH 10 issue: whatever a client puts in any field
    /// it controls, the address found is the connection's own or none.
    #[test]
    fn client_text_never_gives_another_address(
        text in client_text(),
        addr in prop_oneof![
            Just(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5))),
            any::<Ipv4Addr>().prop_map(IpAddr::V4),
            any::<std::net::Ipv6Addr>().prop_map(IpAddr::V6),
        ],
        port in 1..=u16::MAX,
    ) {
        for (template, must_parse) in CLIENT_TEXT_TEMPLATES {
            let msg = fill_all(template, &text, addr, port);
            match parse_message(&msg) {
                Some(event) => prop_assert_eq!(
                    event.addr, addr.to_canonical(),
                    "{}", String::from_utf8_lossy(&msg)
                ),
                None => prop_assert!(!must_parse, "not parsed: {}", String::from_utf8_lossy(&msg)),
            }
            // The same through a syslog header, and the pid tie.
            let line = [b"Dec  7 10:00:00 host sshd[9]: ".as_slice(), &msg].concat();
            let mut sequencer = crate::Sequencer::new();
            if let Some(event) = sequencer.resolve(crate::classify_line(&line, 2026)).event() {
                prop_assert_eq!(event.addr, addr.to_canonical(), "{}", String::from_utf8_lossy(&line));
            }
        }
    }
}
