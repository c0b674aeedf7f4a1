//! What an sshd event means for its source's failure count: the policy
//! table README.md documents, in one place.
//!
//! - A failed public key alone is not a failure: clients try several keys
//!   before the right one. A connection that *ends before authentication*
//!   after only failed keys is one. At sshd's default LogLevel INFO the
//!   failed keys of a valid user are not logged at all: the close then says
//!   `authenticating user U`, which only a client that tried to log in and
//!   gave up unauthenticated produces, and counts the same.
//! - Password and keyboard-interactive failures count once: when the PAM
//!   module is active it has counted them already, so the log is evidence.
//! - Protocol probes (no banner, junk, old key exchange, timeouts) weigh
//!   `probe_weight`.
//! - A connection sshd's PerSourcePenalties refused (`drop connection …
//!   penalty: …`) is a full failure: sshd has already judged the source.
//!   MaxStartups drops and the penalties' own notices never count.
//!
//! A [`Tracker`] remembers, per connection, what it has seen, so the close
//! of a key-only connection can be told from any other close.

use crate::event::{Event, Kind, Method};
use authguard_core::store::log_events::Worth;
use std::collections::HashMap;
use std::net::IpAddr;

/// How much an event counts toward a ban of its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A failure of this weight (1.0 for a full failure).
    Failure {
        /// Added to the source's failures within `find_time`.
        weight: f64,
        /// Why, for logs and `guardctl scan`.
        why: &'static str,
        /// The PAM module may have counted this attempt already (a
        /// keyboard-interactive try sshd logs only at VERBOSE): the store
        /// counts it only if PAM recorded nothing from the source just before.
        unless_pam_saw_it: bool,
    },
    /// Known, but not counted (kept as evidence).
    Evidence,
    /// A successful login.
    Success,
}

impl Verdict {
    /// What the store makes of it: the one translation from a log
    /// verdict to core's [`Worth`].
    pub fn worth(&self) -> Worth {
        match *self {
            Verdict::Failure {
                weight,
                unless_pam_saw_it: true,
                ..
            } => Worth::FailureUnlessPam(weight),
            Verdict::Failure { weight, .. } => Worth::Failure(weight),
            Verdict::Evidence => Worth::Evidence,
            Verdict::Success => Worth::Success,
        }
    }

    /// True for a counted failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Verdict::Failure { .. })
    }

    /// This verdict followed by `then`, `times` over: failures add up.
    fn then(self, then: Verdict, times: u32) -> Verdict {
        match (self, then) {
            (Verdict::Success, _) | (_, Verdict::Success) => Verdict::Success,
            (
                Verdict::Failure {
                    weight,
                    why,
                    unless_pam_saw_it,
                },
                Verdict::Failure { weight: more, .. },
            ) => Verdict::Failure {
                weight: weight + more * f64::from(times),
                why,
                unless_pam_saw_it,
            },
            (
                Verdict::Evidence,
                Verdict::Failure {
                    weight,
                    why,
                    unless_pam_saw_it,
                },
            ) => Verdict::Failure {
                weight: weight * f64::from(times),
                why,
                unless_pam_saw_it,
            },
            (first, Verdict::Evidence) => first,
        }
    }
}

/// The knobs of the table (`[sshd_log]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Weight of a protocol probe (0 makes probes evidence only).
    pub probe: f64,
    /// The PAM module guards sshd: password and keyboard-interactive
    /// failures in the log are then evidence only (PAM counted them).
    pub pam_active: bool,
}

/// The most connections remembered at once; past it the oldest half is
/// forgotten (a flood of half-open connections cannot grow memory).
const MAX_CONNECTIONS: usize = 65_536;

/// One connection: the client's address and port (or the logging pid when
/// an old sshd left the port out), packed into two integers so hashing it
/// is two writes (IPv4 as IPv4-mapped IPv6; the second word is
/// `1<<48 | port` or `pid`).
type Connection = (u128, u64);

#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    failed_keys: bool,
    counted: bool,
    order: u64,
}

/// Per-connection memory across lines.
#[derive(Debug, Default)]
pub struct Tracker {
    connections: HashMap<Connection, Seen, foldhash::fast::RandomState>,
    next: u64,
}

impl Tracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// The verdict on `event`, remembering what it says about its connection.
    /// An event that happened `times` over weighs as that many: after the
    /// second, the connection's memory no longer changes, so the second's
    /// verdict stands for all the rest.
    pub fn weigh(&mut self, event: &Event<'_>, weights: &Weights) -> Verdict {
        let first = self.weigh_once(event, weights);
        if event.times <= 1 {
            return first;
        }
        let rest = self.weigh_once(event, weights);
        first.then(rest, event.times - 1)
    }

    fn weigh_once(&mut self, event: &Event<'_>, weights: &Weights) -> Verdict {
        let key = connection(event);
        match event.kind {
            Kind::FailedAuth => self.failed_auth(key, event.method, weights),
            Kind::InvalidUser | Kind::NotAllowed => self.count_once(key, "invalid or refused user"),
            Kind::MaxAuthTries | Kind::TooManyAuthFailures => {
                self.count_once(key, "too many authentication attempts")
            }
            Kind::ConnectionClosedPreauth | Kind::Disconnected | Kind::ReceivedDisconnect => {
                self.closed(key, event.user.is_some(), weights)
            }
            Kind::PamAuthFailure => Verdict::Evidence,
            Kind::NoIdentification
            | Kind::BannerError
            | Kind::UnableToNegotiate
            | Kind::BadProtocolVersion
            | Kind::PreauthTimeout
            | Kind::ProtocolError => probe(weights),
            // sshd's own penalty for a crash is its harshest (90 s, past
            // `min` at once): a crash is what an exploit attempt leaves.
            Kind::ChildCrash => Verdict::Failure {
                weight: 1.0,
                why: "crashed sshd's unprivileged child",
                unless_pam_saw_it: false,
            },
            // sshd's own verdict: it refused the source because its penalty
            // passed PerSourcePenalties' `min` (four failed logins, sixteen
            // bare connections or one crash at the defaults). A source that
            // keeps knocking while refused counts a failure per knock.
            Kind::PenaltyDrop => Verdict::Failure {
                weight: 1.0,
                why: "refused by sshd's PerSourcePenalties",
                unless_pam_saw_it: false,
            },
            // MaxStartups is the server's load, not the source's fault; a
            // penalty coming into force restates failures already counted.
            // The rate-limit summary counts drops of any penalised sources,
            // not only of the one it is tied to: charging them to it would
            // take the address from a line that does not name one.
            Kind::MaxStartupsDrop | Kind::PenaltyImposed | Kind::PenaltyDropsUnlogged => {
                Verdict::Evidence
            }
            Kind::Accepted => {
                self.connections.remove(&key);
                Verdict::Success
            }
        }
    }

    fn failed_auth(&mut self, key: Connection, method: Option<Method>, w: &Weights) -> Verdict {
        match method {
            Some(Method::Password | Method::KeyboardInteractive) if !w.pam_active => {
                self.seen(key).counted = true;
                Verdict::Failure {
                    weight: 1.0,
                    why: "failed password",
                    unless_pam_saw_it: false,
                }
            }
            Some(Method::Password | Method::KeyboardInteractive) => {
                // PAM counted it; the close of this connection must not count again.
                self.seen(key).counted = true;
                Verdict::Evidence
            }
            _ => {
                self.seen(key).failed_keys = true;
                Verdict::Evidence
            }
        }
    }

    fn count_once(&mut self, key: Connection, why: &'static str) -> Verdict {
        let seen = self.seen(key);
        if seen.counted {
            return Verdict::Evidence;
        }
        seen.counted = true;
        Verdict::Failure {
            weight: 1.0,
            why,
            unless_pam_saw_it: false,
        }
    }

    fn closed(&mut self, key: Connection, authenticating: bool, w: &Weights) -> Verdict {
        let seen = self.connections.remove(&key).unwrap_or_default();
        if seen.counted || !(seen.failed_keys || authenticating) {
            return Verdict::Evidence;
        }
        Verdict::Failure {
            weight: 1.0,
            why: "closed before authentication",
            unless_pam_saw_it: w.pam_active && !seen.failed_keys,
        }
    }

    fn seen(&mut self, key: Connection) -> &mut Seen {
        if self.connections.len() >= MAX_CONNECTIONS && !self.connections.contains_key(&key) {
            self.forget_oldest_half();
        }
        self.next += 1;
        let order = self.next;
        self.connections.entry(key).or_insert(Seen {
            order,
            ..Seen::default()
        })
    }

    fn forget_oldest_half(&mut self) {
        let mut orders: Vec<u64> = self.connections.values().map(|s| s.order).collect();
        orders.sort_unstable();
        let cutoff = orders[orders.len() / 2];
        self.connections.retain(|_, s| s.order > cutoff);
    }
}

fn probe(weights: &Weights) -> Verdict {
    if weights.probe > 0.0 {
        Verdict::Failure {
            weight: weights.probe,
            why: "protocol probe",
            unless_pam_saw_it: false,
        }
    } else {
        Verdict::Evidence
    }
}

fn connection(event: &Event<'_>) -> Connection {
    let addr = match event.addr {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    };
    match event.port {
        Some(port) => (addr, 1 << 48 | u64::from(port)),
        None => (addr, event.pid.map_or(0, u64::from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_message;

    const PAM_OFF: Weights = Weights {
        probe: 0.5,
        pam_active: false,
    };
    const PAM_ON: Weights = Weights {
        probe: 0.5,
        pam_active: true,
    };

    fn verdicts(lines: &[&str], w: &Weights) -> Vec<Verdict> {
        let mut t = Tracker::new();
        lines
            .iter()
            .map(|l| {
                let e = parse_message(l.as_bytes()).unwrap_or_else(|| panic!("not parsed: {l}"));
                t.weigh(&e, w)
            })
            .collect()
    }

    fn weight(v: &[Verdict]) -> f64 {
        v.iter()
            .map(|v| match v {
                Verdict::Failure { weight, .. } => *weight,
                _ => 0.0,
            })
            .sum()
    }

    fn weigh_times(message: &str, times: u32, w: &Weights) -> Verdict {
        let e = parse_message(message.as_bytes()).unwrap();
        Tracker::new().weigh(&Event { times, ..e }, w)
    }

    #[test]
    fn an_event_n_times_over_weighs_n_times_what_it_would_once() {
        let failed = "Failed password for root from 203.0.113.5 port 4 ssh2";
        assert_eq!(weight(&[weigh_times(failed, 4, &PAM_OFF)]), 4.0);
        assert_eq!(weigh_times(failed, 4, &PAM_ON), Verdict::Evidence);
        let probe = "Did not receive identification string from 203.0.113.5 port 4";
        assert_eq!(weight(&[weigh_times(probe, 3, &PAM_OFF)]), 1.5);
        // Counted once per connection however often it is repeated.
        let invalid = "Invalid user x from 203.0.113.5 port 4";
        assert_eq!(weight(&[weigh_times(invalid, 1000, &PAM_OFF)]), 1.0);
        let drop = "drop connection #0 from [203.0.113.5]:4 on [192.0.2.1]:22 penalty: failed authentication";
        assert_eq!(
            weight(&[weigh_times(drop, u32::MAX, &PAM_OFF)]),
            f64::from(u32::MAX)
        );
    }

    #[test]
    fn unlogged_penalty_drops_count_nothing() {
        let e = Event {
            times: 40,
            ..Event::new(
                Kind::PenaltyDropsUnlogged,
                "203.0.113.5".parse().unwrap(),
                Some(4),
            )
        };
        assert_eq!(Tracker::new().weigh(&e, &PAM_OFF), Verdict::Evidence);
    }

    #[test]
    fn failed_keys_count_only_when_the_connection_ends_unauthenticated() {
        let scanner = [
            "Failed publickey for root from 203.0.113.5 port 4000 ssh2: ED25519 SHA256:abc",
            "Failed publickey for root from 203.0.113.5 port 4000 ssh2: RSA SHA256:def",
            "Connection closed by authenticating user root 203.0.113.5 port 4000 [preauth]",
        ];
        assert_eq!(weight(&verdicts(&scanner, &PAM_ON)), 1.0);
        let owner = [
            "Failed publickey for me from 192.0.2.7 port 5000 ssh2: RSA SHA256:old",
            "Accepted publickey for me from 192.0.2.7 port 5000 ssh2: ED25519 SHA256:new",
        ];
        assert_eq!(
            verdicts(&owner, &PAM_ON),
            [Verdict::Evidence, Verdict::Success]
        );
    }

    #[test]
    fn passwords_count_once_whoever_saw_them() {
        let lines = [
            "Failed password for root from 203.0.113.5 port 4001 ssh2",
            "Failed password for root from 203.0.113.5 port 4001 ssh2",
            "error: maximum authentication attempts exceeded for root from 203.0.113.5 port 4001 ssh2 [preauth]",
            "Disconnecting authenticating user root 203.0.113.5 port 4001: Too many authentication failures [preauth]",
            "Connection closed by authenticating user root 203.0.113.5 port 4001 [preauth]",
        ];
        assert_eq!(
            weight(&verdicts(&lines, &PAM_OFF)),
            2.0,
            "two passwords, no more"
        );
        assert_eq!(weight(&verdicts(&lines, &PAM_ON)), 0.0, "PAM counted them");
    }

    #[test]
    fn a_valid_users_close_counts_even_when_info_hid_the_failed_keys() {
        let at_info =
            ["Connection closed by authenticating user root 203.0.113.5 port 4002 [preauth]"];
        let v = verdicts(&at_info, &PAM_ON);
        assert_eq!(weight(&v), 1.0);
        assert!(
            matches!(
                v[0],
                Verdict::Failure {
                    unless_pam_saw_it: true,
                    ..
                }
            ),
            "PAM may have counted a keyboard-interactive try: {v:?}"
        );
        let banner_grab = ["Connection closed by 203.0.113.5 port 4003 [preauth]"];
        assert_eq!(verdicts(&banner_grab, &PAM_ON), [Verdict::Evidence]);
    }

    #[test]
    fn invalid_users_and_probes() {
        let lines = [
            "Invalid user admin from 203.0.113.9 port 6000",
            "Connection closed by invalid user admin 203.0.113.9 port 6000 [preauth]",
            "Did not receive identification string from 203.0.113.9 port 6001",
            "Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.9 port 6002",
        ];
        let v = verdicts(&lines, &PAM_ON);
        assert_eq!(weight(&v), 2.0, "{v:?}");
        let no_probes = Weights {
            probe: 0.0,
            pam_active: true,
        };
        assert_eq!(weight(&verdicts(&lines, &no_probes)), 1.0);
    }

    #[test]
    fn sshd_penalty_drops_count_and_its_notices_and_maxstartups_do_not() {
        let drops = [
            "drop connection #0 from [203.0.113.7]:5000 on [192.0.2.1]:22 penalty: failed authentication",
            "drop connection #4 from [203.0.113.7]:5001 on [192.0.2.1]:22 penalty: caused crash",
        ];
        for w in [&PAM_OFF, &PAM_ON] {
            assert_eq!(weight(&verdicts(&drops, w)), 2.0);
        }
        let not_counted = [
            "drop connection #12 from [203.0.113.8]:5002 on [192.0.2.1]:22 Maxstartups",
            "srclimit_penalise: ipv4: new 203.0.113.7/32 active penalty of 30 seconds for penalty: caused crash",
        ];
        let v = verdicts(&not_counted, &PAM_OFF);
        assert!(v.iter().all(|v| *v == Verdict::Evidence), "{v:?}");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_half_open_connections() {
        let mut t = Tracker::new();
        for i in 0..200_000u32 {
            let line = format!(
                "Failed publickey for x from 10.{}.0.1 port {} ssh2: RSA SHA256:k",
                i / 60_000,
                i % 60_000 + 1
            );
            let e = parse_message(line.as_bytes()).unwrap();
            t.weigh(&e, &PAM_ON);
        }
        assert!(t.connections.len() <= MAX_CONNECTIONS);
    }
}
