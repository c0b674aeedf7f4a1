//! Prometheus metrics: what `guardctl metrics` prints and the daemon writes
//! for node_exporter's textfile collector, in the text exposition format.
//!
//! Everything is read from the store (counters, active bans, the daemon's
//! heartbeat, the fleet link's state), so no running daemon is needed.
//! Names follow Prometheus' conventions (`authguard_…`, `_total` counters,
//! seconds and bytes); labels are the store's own words (origin, outcome,
//! kind, reason): a bounded set, never an address or a user. The daemon's
//! writer of the textfile is in [`textfile`].

pub mod textfile;

use crate::crowdsec::link::LinkState;
use crate::heartbeat::Heartbeat;
use authguard_core::config::{Config, FirewallBackend};
use authguard_core::policy::Origin;
use authguard_core::store::metrics::{Counter, Figures};
use authguard_core::store::{self, Store, StoreError};
use authguard_core::time::Timestamp;
use std::fmt::Write as _;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric family: its name, type, help text and samples.
#[derive(Debug)]
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    /// A family of one unlabelled sample.
    fn single(name: &'static str, kind: Kind, help: &'static str, value: f64) -> Family {
        Family::new(name, kind, help).with(Vec::new(), value)
    }

    fn with(mut self, labels: Vec<(&'static str, String)>, value: f64) -> Family {
        self.samples.push((labels, value));
        self
    }
}

/// The origins every host may have, shown even at 0 so their series
/// exist from the start.
fn known_origins() -> [String; 6] {
    Origin::KNOWN.map(|o| o.as_str().to_owned())
}

/// The metrics text for the store as of `now`.
pub fn render(config: &Config, store: &Store, now: Timestamp) -> Result<String, StoreError> {
    let figures = store.figures(now)?;
    let mut families = ban_families(&figures);
    families.extend(attempt_families(&figures));
    families.push(Family::single(
        "authguard_keyonly_reloads_total",
        Kind::Counter,
        "Times sshd was reloaded for a new key-only snippet.",
        figures.get(Counter::KeyonlyReloads, "", "") as f64,
    ));
    families.push(Family::single(
        "authguard_store_size_bytes",
        Kind::Gauge,
        "Size of the store on disk: the database and its write-ahead log.",
        store::disk_size(store.path()) as f64,
    ));
    families.extend(daemon_families(
        config,
        Heartbeat::last(store).as_ref(),
        now,
    ));
    if config.crowdsec.enabled() {
        families.extend(fleet_families(LinkState::last(store).as_ref()));
    }
    Ok(exposition(&families))
}

/// Active bans, bans made and bans ended.
fn ban_families(f: &Figures) -> Vec<Family> {
    let mut active = Family::new(
        "authguard_bans_active",
        Kind::Gauge,
        "Bans refusing logins now, by origin.",
    );
    let mut made = Family::new(
        "authguard_bans_made_total",
        Kind::Counter,
        "Bans made, by origin.",
    );
    let mut origins = known_origins().to_vec();
    for (origin, _) in &f.active_bans {
        origins.push(origin.clone());
    }
    for t in f.counters.iter().filter(|t| t.counter == Counter::BansMade) {
        origins.push(t.first.clone());
    }
    origins.sort();
    origins.dedup();
    for origin in origins {
        let now = f
            .active_bans
            .iter()
            .find(|(o, _)| *o == origin)
            .map_or(0, |(_, n)| *n);
        active = active.with(vec![("origin", origin.clone())], now as f64);
        let total = f.get(Counter::BansMade, &origin, "");
        made = made.with(vec![("origin", origin)], total as f64);
    }
    let mut ended = Family::new(
        "authguard_bans_ended_total",
        Kind::Counter,
        "Bans ended, by origin and reason (expired, unbanned, allowed, replaced, deleted).",
    );
    for t in f
        .counters
        .iter()
        .filter(|t| t.counter == Counter::BansEnded)
    {
        let labels = vec![("origin", t.first.clone()), ("reason", t.second.clone())];
        ended = ended.with(labels, t.value as f64);
    }
    vec![active, made, ended]
}

/// Login attempts by outcome and sshd log events by kind.
fn attempt_families(f: &Figures) -> Vec<Family> {
    let mut attempts = Family::new(
        "authguard_attempts_total",
        Kind::Counter,
        "Password logins the PAM module decided, by outcome: admitted, refused (banned), keyonly.",
    );
    for outcome in ["admitted", "keyonly", "refused"] {
        let n = f.get(Counter::Attempts, outcome, "");
        attempts = attempts.with(vec![("outcome", outcome.to_owned())], n as f64);
    }
    let mut events = Family::new(
        "authguard_sshd_log_events_total",
        Kind::Counter,
        "Events recorded from sshd's log, by kind.",
    );
    for t in f
        .counters
        .iter()
        .filter(|t| t.counter == Counter::LogEvents)
    {
        events = events.with(vec![("kind", t.first.clone())], t.value as f64);
    }
    vec![attempts, events]
}

/// The daemon's heartbeat and, with nftables, the firewall it keeps.
fn daemon_families(config: &Config, beat: Option<&Heartbeat>, now: Timestamp) -> Vec<Family> {
    let alive = beat.is_some_and(|b| b.is_alive(config.firewall.resync.0.0, now));
    let mut out = vec![Family::single(
        "authguard_daemon_up",
        Kind::Gauge,
        "1 when guardctl daemon runs and its heartbeat is fresh.",
        f64::from(u8::from(alive)),
    )];
    let Some(beat) = beat else {
        return out;
    };
    out.push(Family::single(
        "authguard_daemon_heartbeat_timestamp_seconds",
        Kind::Gauge,
        "When the daemon last recorded its heartbeat (after each pass), in Unix seconds.",
        beat.last_sync as f64,
    ));
    out.push(Family::single(
        "authguard_daemon_start_time_seconds",
        Kind::Gauge,
        "When the daemon started, in Unix seconds.",
        beat.started as f64,
    ));
    if config.firewall.backend != FirewallBackend::Nftables {
        return out;
    }
    out.push(Family::single(
        "authguard_firewall_elements",
        Kind::Gauge,
        "Ban elements the daemon keeps in nftables table inet authguard.",
        beat.bans as f64,
    ));
    if let (Some(at), Some(ok)) = (beat.last_resync, beat.resync_ok) {
        out.push(Family::single(
            "authguard_firewall_last_resync_timestamp_seconds",
            Kind::Gauge,
            "When the daemon last rebuilt the firewall from the store, in Unix seconds.",
            at as f64,
        ));
        out.push(Family::single(
            "authguard_firewall_last_resync_success",
            Kind::Gauge,
            "1 when the last resync of the firewall succeeded.",
            f64::from(u8::from(ok)),
        ));
    }
    out
}

/// The CrowdSec link's state, once the daemon's link has recorded one.
fn fleet_families(state: Option<&LinkState>) -> Vec<Family> {
    let up = state.is_some_and(|s| s.reachable);
    let mut out = vec![Family::single(
        "authguard_crowdsec_link_up",
        Kind::Gauge,
        "1 when CrowdSec's LAPI answered the last pull.",
        f64::from(u8::from(up)),
    )];
    let Some(state) = state else {
        return out;
    };
    if let Some(at) = state.last_pull {
        out.push(Family::single(
            "authguard_crowdsec_last_pull_timestamp_seconds",
            Kind::Gauge,
            "When a pull from CrowdSec's LAPI last succeeded, in Unix seconds.",
            at as f64,
        ));
    }
    out.push(Family::single(
        "authguard_crowdsec_decisions_held",
        Kind::Gauge,
        "CrowdSec decisions held as active bans.",
        state.held as f64,
    ));
    out.push(Family::single(
        "authguard_crowdsec_outbox_items",
        Kind::Gauge,
        "This host's bans and unbans waiting to reach the LAPI.",
        state.outbox as f64,
    ));
    out
}

/// The families in the text exposition format (version 0.0.4).
fn exposition(families: &[Family]) -> String {
    let mut text = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(text, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(text, "# TYPE {} {kind}", f.name);
        for (labels, value) in &f.samples {
            text.push_str(f.name);
            if !labels.is_empty() {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(text, "{{{}}}", pairs.join(","));
            }
            let _ = writeln!(text, " {}", number(*value));
        }
    }
    text
}

/// A sample value: whole numbers without a fraction, as Prometheus prints them.
fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use authguard_core::store::metrics::Tally;

    fn figures() -> Figures {
        let tally = |counter, first: &str, second: &str, value| Tally {
            counter,
            first: first.into(),
            second: second.into(),
            value,
        };
        Figures {
            counters: vec![
                tally(Counter::Attempts, "admitted", "", 7),
                tally(Counter::LogEvents, "invalid-user", "", 3),
                tally(Counter::BansMade, "manual", "", 2),
                tally(Counter::BansEnded, "manual", "unbanned", 1),
                tally(Counter::KeyonlyReloads, "", "", 4),
            ],
            active_bans: vec![("manual".into(), 1)],
        }
    }

    #[test]
    fn families_have_help_type_and_bounded_labels() {
        let mut families = ban_families(&figures());
        families.extend(attempt_families(&figures()));
        let text = exposition(&families);
        for line in [
            "# TYPE authguard_bans_active gauge",
            "authguard_bans_active{origin=\"manual\"} 1",
            "authguard_bans_active{origin=\"pam\"} 0",
            "# TYPE authguard_bans_made_total counter",
            "authguard_bans_made_total{origin=\"manual\"} 2",
            "authguard_bans_ended_total{origin=\"manual\",reason=\"unbanned\"} 1",
            "authguard_attempts_total{outcome=\"admitted\"} 7",
            "authguard_attempts_total{outcome=\"keyonly\"} 0",
            "authguard_sshd_log_events_total{kind=\"invalid-user\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // Every sample line belongs to the family its TYPE line announced.
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap_or_default();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(family), "{line} outside {family}");
            }
        }
    }

    #[test]
    fn values_and_labels_are_written_as_the_format_wants() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1_790_000_000.0), "1790000000");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let f = Family::single("authguard_x", Kind::Gauge, "Line\none.", 1.0);
        assert_eq!(
            exposition(&[f]),
            "# HELP authguard_x Line\\none.\n# TYPE authguard_x gauge\nauthguard_x 1\n"
        );
    }

    #[test]
    fn the_daemon_families_follow_the_heartbeat() {
        let config = Config::default();
        let names = |fs: Vec<Family>| fs.iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(
            names(daemon_families(&config, None, 100)),
            ["authguard_daemon_up"]
        );
        let beat = Heartbeat {
            pid: std::process::id(),
            started: 50,
            last_sync: 100,
            bans: 3,
            last_error: None,
            last_resync: Some(90),
            resync_ok: Some(true),
        };
        let families = daemon_families(&config, Some(&beat), 100);
        assert_eq!(families[0].samples[0].1, 1.0, "this process is alive");
        assert_eq!(
            names(families),
            [
                "authguard_daemon_up",
                "authguard_daemon_heartbeat_timestamp_seconds",
                "authguard_daemon_start_time_seconds",
                "authguard_firewall_elements",
                "authguard_firewall_last_resync_timestamp_seconds",
                "authguard_firewall_last_resync_success",
            ]
        );
    }
}
