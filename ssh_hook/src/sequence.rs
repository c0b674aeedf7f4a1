//! What a line means given the lines before it. The parse of one line
//! ([`crate::classify_line`]) is stateless, so it can run on every core;
//! two things need the log in order, and a [`Sequencer`] supplies them:
//!
//! - sshd lines that name no address but belong to a connection that did
//!   ([`Parsed::Unaddressed`]): tied to the last address their pid logged,
//!   never to one taken from their own text;
//! - a syslog daemon's `last message repeated N times` ([`Parsed::RepeatLast`]):
//!   the line before, again.

use crate::event::{Event, Kind, Method, Unaddressed};
use crate::framing::Parsed;
use std::borrow::Cow;
use std::net::IpAddr;

/// Slots of the pid table: a pid is remembered in slot `pid % PID_SLOTS`,
/// over whatever other pid was there. Two connections alive at once
/// whose pids share a slot lose the older one's tie (an addressless line
/// of it is then no event, never another's): with a hundred connections
/// at once, about one line in 160. No hashing on the hot path.
const PID_SLOTS: usize = 16_384;

/// How far apart in time (seconds) an unaddressed line may be from the
/// addressed line it is tied to: sshd's longest `LoginGraceTime` worth of
/// a pre-authentication connection, with room. A pid reused after that is
/// another connection.
const MAX_GAP: i64 = 600;

/// The last addressed line of one pid.
#[derive(Debug, Clone, Copy)]
struct Known {
    pid: u32,
    kind: Kind,
    addr: IpAddr,
    port: Option<u16>,
    time: Option<i64>,
}

/// The last line, while it was an sshd event (for `last message repeated`):
/// the event's fields, its user name in a reused buffer (no allocation per line).
#[derive(Debug, Default)]
struct Last {
    event: Option<LastEvent>,
    user: Option<Vec<u8>>,
}

/// An event without its user name, small enough to copy per line.
#[derive(Debug, Clone, Copy)]
struct LastEvent {
    kind: Kind,
    addr: IpAddr,
    port: Option<u16>,
    method: Option<Method>,
    pid: Option<u32>,
    time: Option<i64>,
}

/// Line-order memory across a log. Bounded: [`PID_SLOTS`] pids.
#[derive(Debug)]
pub struct Sequencer {
    pids: Vec<Option<Known>>,
    last: Last,
    keeps_last: bool,
}

impl Default for Sequencer {
    fn default() -> Sequencer {
        Sequencer {
            pids: vec![None; PID_SLOTS],
            last: Last::default(),
            keeps_last: true,
        }
    }
}

impl Sequencer {
    /// A sequencer that has seen nothing.
    pub fn new() -> Sequencer {
        Sequencer::default()
    }

    /// A sequencer for a reader that turns `last message repeated` into the
    /// line before itself (`guardctl scan`, which still has that line's
    /// bytes): it skips keeping a copy of every line's event, and a
    /// [`Parsed::RepeatLast`] it is given anyway is [`Parsed::NotSshd`].
    pub fn with_repeats_resolved() -> Sequencer {
        Sequencer {
            keeps_last: false,
            ..Sequencer::default()
        }
    }

    fn slot(pid: u32) -> usize {
        pid as usize % PID_SLOTS
    }

    /// `parsed`, the next line of the log, with what needs earlier lines
    /// resolved: the result is never [`Parsed::Unaddressed`] or
    /// [`Parsed::RepeatLast`]. An unaddressed line whose pid logged no
    /// address before (or too long ago, or not the line it must follow) is
    /// [`Parsed::Unrecognised`].
    pub fn resolve<'a>(&mut self, parsed: Parsed<'a>) -> Parsed<'a> {
        match parsed {
            Parsed::Event(event) => {
                self.remember(&event);
                Parsed::Event(event)
            }
            Parsed::Unaddressed(line) => match self.attribute(line) {
                Some(event) => {
                    self.remember_last(&event);
                    Parsed::Event(event)
                }
                None => self.forget_last(Parsed::Unrecognised),
            },
            Parsed::RepeatLast(times) => match self.repeat_last(times) {
                Some(event) => Parsed::Event(event),
                None => Parsed::NotSshd,
            },
            other @ (Parsed::NotSshd | Parsed::Unrecognised) => self.forget_last(other),
        }
    }

    fn remember(&mut self, event: &Event<'_>) {
        self.remember_last(event);
        let Some(pid) = event.pid else { return };
        self.pids[Self::slot(pid)] = Some(Known {
            pid,
            kind: event.kind,
            addr: event.addr,
            port: event.port,
            time: event.time,
        });
    }

    fn remember_last(&mut self, event: &Event<'_>) {
        if !self.keeps_last {
            return;
        }
        self.last.event = Some(LastEvent {
            kind: event.kind,
            addr: event.addr,
            port: event.port,
            method: event.method,
            pid: event.pid,
            time: event.time,
        });
        match (&event.user, &mut self.last.user) {
            (Some(user), Some(buffer)) => {
                buffer.clear();
                buffer.extend_from_slice(user);
            }
            (Some(user), none) => *none = Some(user.to_vec()),
            (None, kept) => *kept = None,
        }
    }

    fn forget_last<'a>(&mut self, parsed: Parsed<'a>) -> Parsed<'a> {
        self.last.event = None;
        parsed
    }

    /// The event `line` is, at the address its pid last logged.
    fn attribute<'a>(&self, line: Unaddressed<'a>) -> Option<Event<'a>> {
        let known = self.pids[Self::slot(line.pid)].filter(|k| k.pid == line.pid)?;
        if line.follows.is_some_and(|kind| kind != known.kind) {
            return None;
        }
        if let (Some(then), Some(now)) = (known.time, line.time)
            && (now - then).abs() > MAX_GAP
        {
            return None;
        }
        Some(Event {
            user: line.user,
            pid: Some(line.pid),
            time: line.time.or(known.time),
            times: line.times,
            ..Event::new(line.kind, known.addr, known.port)
        })
    }

    fn repeat_last(&self, times: u32) -> Option<Event<'static>> {
        let last = self.last.event?;
        Some(Event {
            user: self.last.user.clone().map(Cow::Owned),
            method: last.method,
            pid: last.pid,
            time: last.time,
            times,
            ..Event::new(last.kind, last.addr, last.port)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::classify_line;

    /// Each line's event through one sequencer: (kind, address, times).
    fn events(lines: &[&str]) -> Vec<Option<(Kind, String, u32)>> {
        let mut sequencer = Sequencer::new();
        lines
            .iter()
            .map(|line| {
                let parsed = sequencer.resolve(classify_line(line.as_bytes(), 2026));
                parsed
                    .event()
                    .map(|e| (e.kind, e.addr.to_string(), e.times))
            })
            .collect()
    }

    fn some(kind: Kind, addr: &str, times: u32) -> Option<(Kind, String, u32)> {
        Some((kind, addr.into(), times))
    }

    #[test]
    fn an_old_disconnect_gets_its_pids_address() {
        let got = events(&[
            "Nov 24 10:00:01 h sshd[7]: Failed password for root from 203.0.113.5 port 4 ssh2",
            "Nov 24 10:00:01 h sshd[8]: Failed password for root from 198.51.100.9 port 5 ssh2",
            "Nov 24 10:00:02 h sshd[7]: Disconnecting: Too many authentication failures for root [preauth]",
        ]);
        assert_eq!(got[2], some(Kind::TooManyAuthFailures, "203.0.113.5", 1));
    }

    #[test]
    fn a_pid_without_an_address_or_too_long_ago_ties_nothing() {
        let got = events(&[
            "Nov 24 10:00:02 h sshd[7]: Disconnecting: Too many authentication failures for root [preauth]",
            "Nov 24 10:00:01 h sshd[8]: Failed password for root from 198.51.100.9 port 5 ssh2",
            "Nov 24 11:00:02 h sshd[8]: Disconnecting: Too many authentication failures for root [preauth]",
            "Disconnecting: Too many authentication failures for root [preauth]",
        ]);
        assert_eq!(
            got,
            [None, some(Kind::FailedAuth, "198.51.100.9", 1), None, None]
        );
    }

    #[test]
    fn a_rate_limit_summary_follows_only_its_drop_line() {
        let got = events(&[
            "Nov 24 10:00:01 h sshd[1]: drop connection #0 from [203.0.113.5]:4 on [192.0.2.1]:22 penalty: failed authentication",
            "Nov 24 10:00:01 h sshd[1]: PerSourcePenalties logging rate-limited: additional 12 connections dropped",
            "Nov 24 10:00:02 h sshd[1]: drop connection #9 from [198.51.100.9]:4 on [192.0.2.1]:22 Maxstartups",
            "Nov 24 10:00:02 h sshd[1]: PerSourcePenalties logging rate-limited: additional 3 connections dropped",
            "Nov 24 10:00:02 h sshd[1]: Maxstartups logging rate-limited: additional 3 connections dropped",
        ]);
        assert_eq!(got[1], some(Kind::PenaltyDropsUnlogged, "203.0.113.5", 12));
        assert_eq!(got[3], None, "a penalty summary after a MaxStartups drop");
        assert_eq!(got[4], some(Kind::MaxStartupsDrop, "198.51.100.9", 3));
    }

    #[test]
    fn last_message_repeated_repeats_only_an_sshd_event() {
        let got = events(&[
            "Nov 24 10:00:01 h sshd[7]: Failed password for root from 203.0.113.5 port 4 ssh2",
            "Nov 24 10:00:05 h last message repeated 4 times",
            "Nov 24 10:00:06 h CRON[9]: (root) CMD (true)",
            "Nov 24 10:00:07 h last message repeated 2 times",
        ]);
        assert_eq!(got[1], some(Kind::FailedAuth, "203.0.113.5", 4));
        assert_eq!((got[2].clone(), got[3].clone()), (None, None));
    }

    #[test]
    fn a_pid_sharing_a_slot_never_lends_its_address() {
        let other = 7 + PID_SLOTS as u32;
        let second = format!(
            "Nov 24 10:00:01 h sshd[{other}]: Failed password for root from 198.51.100.9 port 5 ssh2"
        );
        let fourth = format!(
            "Nov 24 10:00:02 h sshd[{other}]: Disconnecting: Too many authentication failures for root [preauth]"
        );
        let got = events(&[
            "Nov 24 10:00:01 h sshd[7]: Failed password for root from 203.0.113.5 port 4 ssh2",
            &second,
            "Nov 24 10:00:02 h sshd[7]: Disconnecting: Too many authentication failures for root [preauth]",
            &fourth,
        ]);
        assert_eq!(got[2], None, "pid 7's slot was taken");
        assert_eq!(got[3], some(Kind::TooManyAuthFailures, "198.51.100.9", 1));
    }
}
