//! `guardctl scan`'s arithmetic: what a log holds (lines, sshd lines,
//! events by kind, failures by source) and which sources the current
//! policy would have banned, replaying the events in order through the
//! policy's in-memory facts (the same rules the store applies: threshold,
//! escalation, recidive, subnet). No store, no firewall: a dry run, like
//! fail2ban-regex. [`parallel`] parses on every core and hands lines back
//! in order.

pub mod parallel;

use authguard_core::addr;
use authguard_core::config::Config;
use authguard_core::policy::memory::{MemoryBan, MemoryFacts, Replayed};
use ipnet::IpNet;
use ssh_hook::{Event, Kind, Parsed, Sequencer, Tracker, Verdict, Weights};
use std::collections::BTreeMap;

/// A source the policy would ban, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct WouldBan {
    /// The source (`203.0.113.7`, `2001:db8::/64`).
    pub source: String,
    /// How many bans it would have earned.
    pub bans: u32,
    /// The line that tipped its first ban (counted from 1).
    pub first_line: u64,
}

/// Everything counted so far.
#[derive(Debug)]
pub struct Tally {
    /// Lines read.
    pub lines: u64,
    /// Lines from sshd (recognised or not).
    pub sshd_lines: u64,
    /// Lines holding an event.
    pub events: u64,
    /// sshd lines holding no known event.
    pub missed: u64,
    /// Sources the policy would ban.
    pub would_ban: BTreeMap<String, WouldBan>,
    /// Events by kind, indexed like [`Kind::ALL`].
    by_kind: [u64; Kind::ALL.len()],
    /// The policy's facts, replayed: failure windows, bans, and each
    /// source's total failure weight.
    facts: MemoryFacts,
    sequencer: Sequencer,
    tracker: Tracker,
    weights: Weights,
    config: Config,
    last_time: i64,
}

impl Tally {
    /// An empty tally for the policy in `config`.
    pub fn new(config: &Config, weights: Weights) -> Tally {
        Tally {
            lines: 0,
            sshd_lines: 0,
            events: 0,
            missed: 0,
            would_ban: BTreeMap::new(),
            by_kind: [0; Kind::ALL.len()],
            facts: MemoryFacts::new(),
            // `parallel` turns `last message repeated` into the line before.
            sequencer: Sequencer::with_repeats_resolved(),
            tracker: Tracker::new(),
            weights,
            config: config.clone(),
            last_time: 0,
        }
    }

    /// The next line as parsed, with what needs the lines before it
    /// resolved (see [`Sequencer`]). Call for every line, in order.
    pub fn resolve<'a>(&mut self, parsed: Parsed<'a>) -> Parsed<'a> {
        self.sequencer.resolve(parsed)
    }

    /// Counts one line that is not sshd's.
    pub fn other_line(&mut self) {
        self.lines += 1;
    }

    /// Counts one sshd line without a known event.
    pub fn missed_line(&mut self) {
        self.lines += 1;
        self.sshd_lines += 1;
        self.missed += 1;
    }

    /// Counts one event; returns its verdict.
    pub fn event(&mut self, event: &Event<'_>) -> Verdict {
        self.lines += 1;
        self.sshd_lines += 1;
        self.events += 1;
        self.by_kind[event.kind as usize] += 1;
        let verdict = self.tracker.weigh(event, &self.weights);
        // Lines without a time (bare messages) count as simultaneous with the last timed one.
        let at = event.time.unwrap_or(self.last_time);
        self.last_time = at;
        if let Verdict::Failure { weight, .. } = verdict {
            let kind = event.kind.as_str();
            let replayed = self
                .facts
                .log_failure(&self.config, event.addr, weight, kind, at);
            if let Replayed::Banned(ban, subnet) = replayed {
                self.would_ban(&ban);
                subnet.iter().for_each(|s| self.would_ban(s));
            }
        }
        verdict
    }

    fn would_ban(&mut self, ban: &MemoryBan) {
        let name = addr::display(&ban.net);
        let line = self.lines;
        let entry = self.would_ban.entry(name.clone()).or_insert(WouldBan {
            source: name,
            bans: 0,
            first_line: line,
        });
        entry.bans = ban.level;
    }

    /// How many sources failed at least once.
    pub fn failing_sources(&self) -> usize {
        self.facts.failure_weights().count()
    }

    /// Sources by failure weight, heaviest first.
    pub fn top_sources(&self, n: usize) -> Vec<(String, f64)> {
        let mut v: Vec<(IpNet, f64)> = self.facts.failure_weights().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v.into_iter().map(|(s, w)| (addr::display(&s), w)).collect()
    }

    /// Every kind with its count (zero included), in report order.
    pub fn kinds(&self) -> Vec<(&'static str, u64)> {
        Kind::ALL
            .iter()
            .map(|k| (k.as_str(), self.by_kind[*k as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights() -> Weights {
        Weights {
            probe: 0.5,
            pam_active: false,
        }
    }

    #[test]
    fn a_key_scanner_is_banned_after_five_dropped_connections_and_counted_once() {
        let config = Config::default();
        let mut t = Tally::new(&config, weights());
        for port in 1..=6u16 {
            for line in [
                format!(
                    "Nov 24 10:00:0{} h sshd[9]: Failed publickey for root from 203.0.113.5 port {port} ssh2: RSA SHA256:x",
                    port
                ),
                format!(
                    "Nov 24 10:00:0{} h sshd[9]: Connection closed by authenticating user root 203.0.113.5 port {port} [preauth]",
                    port
                ),
                format!(
                    "Nov 24 10:00:0{} h CRON[1]: pam_unix(cron:session): session opened",
                    port
                ),
            ] {
                match t.resolve(ssh_hook::classify_line(line.as_bytes(), 2026)) {
                    Parsed::Event(e) => {
                        t.event(&e);
                    }
                    Parsed::Unrecognised | Parsed::Unaddressed(_) => t.missed_line(),
                    Parsed::NotSshd | Parsed::RepeatLast(_) => t.other_line(),
                }
            }
        }
        assert_eq!((t.lines, t.sshd_lines, t.events, t.missed), (18, 12, 12, 0));
        assert_eq!(t.top_sources(1), [("203.0.113.5".to_owned(), 6.0)]);
        let ban = &t.would_ban["203.0.113.5"];
        assert_eq!(
            (ban.bans, ban.first_line),
            (1, 14),
            "tipped by the fifth close"
        );
        assert!(t.kinds().contains(&("failed-auth", 6)));
    }

    #[test]
    fn allowed_sources_are_never_banned() {
        let config = Config::default();
        let mut t = Tally::new(&config, weights());
        for port in 1..=9u16 {
            let line = format!("Invalid user x from 127.0.0.5 port {port}");
            let e = ssh_hook::parse_message(line.as_bytes()).unwrap();
            t.event(&e);
        }
        assert!(t.would_ban.is_empty());
        assert_eq!(t.failing_sources(), 0);
    }
}
