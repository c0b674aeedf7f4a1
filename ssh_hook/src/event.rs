//! What one sshd log line says happened: an [`Event`] of some [`Kind`].

use std::borrow::Cow;
use std::net::IpAddr;

/// One recognised sshd log line.
///
/// Parsed from text sshd wrote, so every field except `kind` and `addr` may be
/// missing: old OpenSSH versions leave out the port, bare messages carry no
/// pid or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// What happened.
    pub kind: Kind,
    /// The client's address. IPv4-mapped IPv6 is given as IPv4; a zone id is dropped.
    pub addr: IpAddr,
    /// The client's source port, when the line names it.
    pub port: Option<u16>,
    /// The user name the client asked for, as raw bytes: client-controlled,
    /// possibly not UTF-8, possibly containing spaces or text that looks like
    /// a log line. Borrowed from the line, except for journal JSON lines whose
    /// message had to be decoded.
    pub user: Option<Cow<'a, [u8]>>,
    /// The authentication method, for [`Kind::FailedAuth`] and [`Kind::Accepted`]
    /// when sshd named one authguard knows.
    pub method: Option<Method>,
    /// The pid of the sshd process that logged the line, when the framing has it.
    pub pid: Option<u32>,
    /// When the line was logged, in Unix seconds UTC, when the framing has it.
    pub time: Option<i64>,
    /// How many times the line says it happened: 1, or N for a syslog
    /// daemon's `message repeated N times: [ … ]` and PAM's `N more
    /// authentication failures`.
    pub times: u32,
}

impl<'a> Event<'a> {
    /// An event with only its kind and client known; the rest is filled in by the parsers.
    pub fn new(kind: Kind, addr: IpAddr, port: Option<u16>) -> Self {
        Event {
            kind,
            addr,
            port,
            user: None,
            method: None,
            pid: None,
            time: None,
            times: 1,
        }
    }

    /// The same event, owning its user name (for keeping it past the line).
    pub fn into_owned(self) -> Event<'static> {
        Event {
            kind: self.kind,
            addr: self.addr,
            port: self.port,
            user: self.user.map(|user| Cow::Owned(user.into_owned())),
            method: self.method,
            pid: self.pid,
            time: self.time,
            times: self.times,
        }
    }
}

/// An sshd line that names no address but belongs to the connection its
/// process was serving (OpenSSH 6.x's `Disconnecting: Too many
/// authentication failures for root [preauth]`, the listener's `…
/// logging rate-limited` after a drop). [`crate::Sequencer`] gives it the
/// address of the last line its pid logged with one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unaddressed<'a> {
    /// What happened.
    pub kind: Kind,
    /// The user name, when the line names one (client-controlled, as in [`Event::user`]).
    pub user: Option<Cow<'a, [u8]>>,
    /// The pid of the logging process: the only tie to a connection.
    pub pid: u32,
    /// When the line was logged, when the framing has it.
    pub time: Option<i64>,
    /// How many times the line says it happened.
    pub times: u32,
    /// The kind the pid's last addressed line must have (`None`: any), so
    /// that a line is tied only to the event sshd logs it right after.
    pub follows: Option<Kind>,
}

impl Unaddressed<'_> {
    /// The same line, owning its user name.
    pub fn into_owned(self) -> Unaddressed<'static> {
        Unaddressed {
            kind: self.kind,
            user: self.user.map(|user| Cow::Owned(user.into_owned())),
            pid: self.pid,
            time: self.time,
            times: self.times,
            follows: self.follows,
        }
    }
}

/// The kinds of sshd log lines authguard recognises. Each names the sshd
/// message it comes from; several OpenSSH versions' wordings map to one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `Failed password|keyboard-interactive/pam|publickey|hostbased|none for [invalid user ]U from A port P ssh2[: key]`.
    FailedAuth,
    /// `Invalid user U from A[ port P]`.
    InvalidUser,
    /// `Connection closed by [invalid|authenticating user U ]A[ port P][ [preauth]]`,
    /// and the same with `Connection reset by`. Never a logged-in user's connection.
    ConnectionClosedPreauth,
    /// `Disconnected from [invalid|authenticating user U ]A port P[ [preauth]]`.
    /// Never a logged-in user's disconnect.
    Disconnected,
    /// `Received disconnect from A port P:11: … [preauth]` (and 6.x's
    /// `Received disconnect from A: 11: … [preauth]`). Only before authentication.
    ReceivedDisconnect,
    /// `maximum authentication attempts exceeded for [invalid user ]U from A port P ssh2 [preauth]`.
    MaxAuthTries,
    /// `Disconnecting invalid|authenticating user U A port P: Too many authentication failures [preauth]`.
    TooManyAuthFailures,
    /// `PAM: Authentication failure for [illegal user ]U from A` and
    /// `pam_unix(sshd:auth): authentication failure; … rhost=A  user=U`.
    PamAuthFailure,
    /// `User U from A not allowed because …` (AllowUsers, DenyUsers, groups,
    /// shell, locked), `ROOT LOGIN REFUSED FROM A`, 9.9+'s RefuseConnection
    /// `administratively prohibited connection for U from A port P`,
    /// `Username too long from A port P`, PAM's account stack refusing.
    NotAllowed,
    /// `Did not receive identification string from A[ port P]`.
    NoIdentification,
    /// `banner exchange: Connection from A port P: invalid format` (and other reasons).
    BannerError,
    /// `Unable to negotiate with A port P: no matching … found. Their offer: …`.
    UnableToNegotiate,
    /// `Bad protocol version identification '…' from A port P`.
    BadProtocolVersion,
    /// `Timeout before authentication for A[ port P]` (LoginGraceTime ran out).
    PreauthTimeout,
    /// `Accepted password|publickey|keyboard-interactive/pam for U from A port P ssh2[: key]`.
    Accepted,
    /// `drop connection #N from [A]:P on [L]:LP penalty: REASON` (OpenSSH
    /// 9.8+): sshd refused a connection because PerSourcePenalties has the
    /// source penalised for earlier crashes, failed or absent
    /// authentication, RefuseConnection or LoginGraceTime.
    PenaltyDrop,
    /// `drop connection #N from [A]:P on [L]:LP Maxstartups` (before 9.8:
    /// `past MaxStartups`): too many unauthenticated connections at once,
    /// which is no one source's doing.
    MaxStartupsDrop,
    /// `srclimit_penalise: ipv4: new A/BITS active penalty of S seconds for
    /// penalty: REASON` (and `… A/BITS: activating ipv4 penalty …`): a
    /// PerSourcePenalties penalty comes into force for a source's network.
    PenaltyImposed,
    /// `PerSourcePenalties logging rate-limited: additional N connections
    /// dropped` (OpenSSH 9.8+): N refused connections sshd did not log one
    /// by one, from any penalised sources. Tied to the drop line logged
    /// just before it.
    PenaltyDropsUnlogged,
    /// The client broke the protocol after the banner: `ssh_dispatch_run_fatal:
    /// Connection from ID: REASON` (bad MAC, corrupt packets), `Disconnecting
    /// ID: REASON` for other reasons than failures (`bad service request`,
    /// `strict KEX violation`, a change of user name), `Bad packet length`,
    /// `Corrupted MAC on input`, IP options on the connection.
    ProtocolError,
    /// sshd's unprivileged child crashed serving the client (OpenSSH 9.8+:
    /// `Session process N unpriv child crash for connection from A to L`,
    /// `session process N for connection from A … killed by signal S`): what
    /// memory-corruption exploits look like from outside.
    ChildCrash,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Kind; 21] = [
        Kind::FailedAuth,
        Kind::InvalidUser,
        Kind::ConnectionClosedPreauth,
        Kind::Disconnected,
        Kind::ReceivedDisconnect,
        Kind::MaxAuthTries,
        Kind::TooManyAuthFailures,
        Kind::PamAuthFailure,
        Kind::NotAllowed,
        Kind::NoIdentification,
        Kind::BannerError,
        Kind::UnableToNegotiate,
        Kind::BadProtocolVersion,
        Kind::PreauthTimeout,
        Kind::Accepted,
        Kind::PenaltyDrop,
        Kind::MaxStartupsDrop,
        Kind::PenaltyImposed,
        Kind::PenaltyDropsUnlogged,
        Kind::ProtocolError,
        Kind::ChildCrash,
    ];

    /// The kind's name in JSON and in the store (`failed-auth`, `invalid-user`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FailedAuth => "failed-auth",
            Kind::InvalidUser => "invalid-user",
            Kind::ConnectionClosedPreauth => "connection-closed",
            Kind::Disconnected => "disconnected",
            Kind::ReceivedDisconnect => "received-disconnect",
            Kind::MaxAuthTries => "max-auth-tries",
            Kind::TooManyAuthFailures => "too-many-auth-failures",
            Kind::PamAuthFailure => "pam-auth-failure",
            Kind::NotAllowed => "user-not-allowed",
            Kind::NoIdentification => "no-identification",
            Kind::BannerError => "banner-error",
            Kind::UnableToNegotiate => "unable-to-negotiate",
            Kind::BadProtocolVersion => "bad-protocol-version",
            Kind::PreauthTimeout => "preauth-timeout",
            Kind::Accepted => "accepted",
            Kind::PenaltyDrop => "penalty-drop",
            Kind::MaxStartupsDrop => "maxstartups-drop",
            Kind::PenaltyImposed => "penalty-imposed",
            Kind::PenaltyDropsUnlogged => "penalty-drops-unlogged",
            Kind::ProtocolError => "protocol-error",
            Kind::ChildCrash => "child-crash",
        }
    }
}

/// The SSH authentication methods sshd names in `Failed …`/`Accepted …` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `password`.
    Password,
    /// `keyboard-interactive`, with or without a device (`keyboard-interactive/pam`).
    KeyboardInteractive,
    /// `publickey`.
    PublicKey,
    /// `hostbased`.
    HostBased,
    /// `gssapi-with-mic` or `gssapi-keyex`.
    GssApi,
    /// The SSH `none` method (clients probing which methods are allowed).
    None,
}

impl Method {
    /// The method sshd named, e.g. `keyboard-interactive/pam`; `None` when unknown.
    pub fn from_log_name(name: &[u8]) -> Option<Method> {
        let base = match name.iter().position(|&b| b == b'/') {
            Some(slash) => &name[..slash],
            None => name,
        };
        match base {
            b"password" => Some(Method::Password),
            b"keyboard-interactive" => Some(Method::KeyboardInteractive),
            b"publickey" => Some(Method::PublicKey),
            b"hostbased" => Some(Method::HostBased),
            b"gssapi-with-mic" | b"gssapi-keyex" => Some(Method::GssApi),
            b"none" => Some(Method::None),
            _ => None,
        }
    }

    /// Whether sshd appends key details (`: ED25519 SHA256:…`) after `ssh2` for this method.
    pub fn logs_key_details(self) -> bool {
        matches!(self, Method::PublicKey | Method::HostBased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn methods_by_log_name() {
        let known = [
            ("password", Method::Password),
            ("keyboard-interactive/pam", Method::KeyboardInteractive),
            ("keyboard-interactive", Method::KeyboardInteractive),
            ("publickey", Method::PublicKey),
            ("hostbased", Method::HostBased),
            ("gssapi-with-mic", Method::GssApi),
            ("none", Method::None),
        ];
        for (name, method) in known {
            assert_eq!(
                Method::from_log_name(name.as_bytes()),
                Some(method),
                "{name}"
            );
        }
        assert_eq!(Method::from_log_name(b"password for root"), None);
        assert_eq!(Method::from_log_name(b""), None);
    }

    #[test]
    fn into_owned_keeps_every_field() {
        let addr = Ipv4Addr::new(192, 0, 2, 1).into();
        let line = b"root".to_vec();
        let owned = Event {
            user: Some(Cow::Borrowed(&line[..])),
            method: Some(Method::Password),
            pid: Some(7),
            time: Some(1_700_000_000),
            ..Event::new(Kind::FailedAuth, addr, Some(22))
        }
        .into_owned();
        drop(line);
        assert_eq!(owned.user.as_deref(), Some(&b"root"[..]));
        assert_eq!(
            (owned.kind, owned.addr, owned.port),
            (Kind::FailedAuth, addr, Some(22))
        );
        assert_eq!(
            (owned.method, owned.pid, owned.time),
            (Some(Method::Password), Some(7), Some(1_700_000_000))
        );
    }
}
