//! What one log line is ([`Parsed`]) and the part every framing shares:
//! whether the program is sshd's, and what sshd's message says once the
//! framing (syslog, RFC 5424, the journal's JSON) has given its pid and time.

use crate::bytes;
use crate::event::{Event, Unaddressed};
use crate::message::{parse_message, parse_unaddressed, strip_severity};

/// What a log line is, for tools that count what they did not understand
/// (`guardctl scan --show-missed`) and for the [`crate::Sequencer`] that
/// reads lines in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a line from sshd (another program, or no framing and no event).
    NotSshd,
    /// sshd's, but no event authguard knows.
    Unrecognised,
    /// sshd's, and this event.
    Event(Event<'a>),
    /// sshd's, an event naming no address: its pid's connection has it.
    Unaddressed(Unaddressed<'a>),
    /// A syslog daemon's `last message repeated N times`: the line before,
    /// N more times.
    RepeatLast(u32),
}

impl<'a> Parsed<'a> {
    /// The event, if the line alone names one (what needs the lines before
    /// it, [`Parsed::Unaddressed`] and [`Parsed::RepeatLast`], gives `None`).
    pub fn event(self) -> Option<Event<'a>> {
        match self {
            Parsed::Event(event) => Some(event),
            _ => None,
        }
    }

    /// The same, owning what it borrowed from the line.
    pub fn into_owned(self) -> Parsed<'static> {
        match self {
            Parsed::NotSshd => Parsed::NotSshd,
            Parsed::Unrecognised => Parsed::Unrecognised,
            Parsed::Event(event) => Parsed::Event(event.into_owned()),
            Parsed::Unaddressed(line) => Parsed::Unaddressed(line.into_owned()),
            Parsed::RepeatLast(times) => Parsed::RepeatLast(times),
        }
    }
}

/// OpenSSH's server programs, as syslog and the journal name them:
/// OpenSSH 9.8+ splits sshd into `sshd`, `sshd-session` and `sshd-auth`.
pub const SSHD_PROGRAMS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// Whether a syslog identifier names one of OpenSSH's server programs.
pub(crate) fn is_sshd_program(program: &[u8]) -> bool {
    SSHD_PROGRAMS.iter().any(|p| p.as_bytes() == program)
}

/// The event in `message` if `program` is sshd's, with the framing's pid and time.
pub(crate) fn from_program<'a>(
    program: &[u8],
    pid: Option<u32>,
    time: Option<i64>,
    message: &'a [u8],
) -> Parsed<'a> {
    if !is_sshd_program(program) {
        return Parsed::NotSshd;
    }
    sshd_message(pid, time, message)
}

/// What sshd's `message` says, with the framing's pid and time. Carriers'
/// additions are read off first: Solaris' `[ID N FACILITY.LEVEL]` and
/// rsyslog's `message repeated N times: [ … ]`.
pub(crate) fn sshd_message(pid: Option<u32>, time: Option<i64>, message: &[u8]) -> Parsed<'_> {
    let message = bytes::trim_line_end(message);
    let message = strip_solaris_id(message);
    let (times, message) = strip_repeated(message);
    if let Some(event) = parse_message(message) {
        let times = times.saturating_mul(event.times);
        return Parsed::Event(Event {
            pid,
            time,
            times,
            ..event
        });
    }
    let unaddressed = parse_unaddressed(strip_severity(message));
    match (pid, unaddressed) {
        (Some(pid), Some(line)) => Parsed::Unaddressed(Unaddressed {
            pid,
            time,
            times: times.saturating_mul(line.times),
            ..line
        }),
        _ => Parsed::Unrecognised,
    }
}

/// The message after Solaris' and illumos' `[ID 800047 auth.info] `.
fn strip_solaris_id(message: &[u8]) -> &[u8] {
    let Some(rest) = message.strip_prefix(b"[ID ") else {
        return message;
    };
    let (id, rest) = bytes::split_digits(rest);
    let stripped = (!id.is_empty())
        .then(|| rest.strip_prefix(b" "))
        .flatten()
        .and_then(|rest| bytes::split_once(rest, b"] "))
        .filter(|(selector, _)| is_selector(selector));
    stripped.map_or(message, |(_, rest)| rest)
}

/// A syslog selector, `auth.info`: a facility and a level, letters and digits.
pub(crate) fn is_selector(text: &[u8]) -> bool {
    bytes::split_once(text, b".").is_some_and(|(facility, level)| {
        let word = |w: &[u8]| !w.is_empty() && w.iter().all(u8::is_ascii_alphanumeric);
        word(facility) && word(level)
    })
}

/// rsyslog's repeated-message reduction: `message repeated N times: [ MSG]`
/// stands for N more lines of MSG. Returns N (1 for any other message) and MSG.
fn strip_repeated(message: &[u8]) -> (u32, &[u8]) {
    let reduced = message
        .strip_prefix(b"message repeated ")
        .map(bytes::split_digits)
        .and_then(|(count, rest)| Some((count, rest.strip_prefix(b" times: [")?)))
        .and_then(|(count, rest)| Some((count, rest.strip_suffix(b"]")?)))
        .and_then(|(count, inner)| {
            let times = u32::try_from(bytes::parse_decimal(count, 10)?).ok()?;
            Some((times, inner.strip_prefix(b" ").unwrap_or(inner)))
        });
    reduced
        .filter(|&(times, _)| times > 0)
        .unwrap_or((1, message))
}

/// A process id: at most 10 digits that fit a `u32`.
pub(crate) fn parse_pid(digits: &[u8]) -> Option<u32> {
    bytes::parse_decimal(digits, 10).and_then(|pid| u32::try_from(pid).ok())
}
