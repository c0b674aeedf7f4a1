//! The store's figures against a real store file: counters by label, and
//! counters that stay where they were across the retention purge and
//! `unban --forget`.

use super::*;
use crate::config::Config;
use crate::policy::Origin;
use crate::store::admission::Attempt;
use crate::store::bans::{BanLength, NewBan};
use crate::store::log_events::{LogEvent, Worth};
use crate::store::test_support::TempStore;

fn ban(s: &mut Store, target: &str, now: Timestamp) {
    let new = NewBan {
        net: crate::addr::parse_target(target).unwrap(),
        length: BanLength::For(Duration::from_secs(600)),
        reason: "test",
        origin: Origin::Manual,
        failures: 0,
    };
    s.ban(&Config::default(), &new, now).unwrap();
}

fn login(s: &mut Store, ip: &str, now: Timestamp) {
    let attempt = Attempt {
        ip: ip.parse().unwrap(),
        user: b"root",
        service: "sshd",
    };
    s.admit(&Config::default(), &attempt, now).unwrap();
}

fn log_event(s: &mut Store, ip: &str, kind: &str, now: Timestamp) {
    let event = LogEvent {
        ip: ip.parse().unwrap(),
        user: None,
        kind,
        worth: Worth::Failure(0.5),
        line: b"a line",
        at: now,
    };
    s.record_log_events(&Config::default(), &[event], None, now)
        .unwrap();
}

/// Every counter, as (counter, first, second, value).
fn counters(s: &Store, now: Timestamp) -> Vec<(Counter, String, String, u64)> {
    s.figures(now)
        .unwrap()
        .counters
        .into_iter()
        .map(|t| (t.counter, t.first, t.second, t.value))
        .collect()
}

#[test]
fn bans_and_attempts_are_counted_by_their_bounded_labels() {
    let t = TempStore::new("metrics-labels");
    let mut s = t.open();
    ban(&mut s, "203.0.113.7", 100);
    ban(&mut s, "198.51.100.0/24", 100);
    s.unban(
        Some(&crate::addr::parse_target("203.0.113.7").unwrap()),
        false,
        200,
    )
    .unwrap();
    for now in 300..305 {
        login(&mut s, "192.0.2.9", now);
    }
    // The sixth earns a ban and is refused; so is the seventh, under it.
    login(&mut s, "192.0.2.9", 306);
    login(&mut s, "192.0.2.9", 307);
    log_event(&mut s, "192.0.2.50", "invalid-user", 400);
    log_event(&mut s, "192.0.2.51", "invalid-user", 401);
    log_event(&mut s, "192.0.2.52", "no-identification", 402);
    let f = s.figures(500).unwrap();
    assert_eq!(f.get(Counter::BansMade, "manual", ""), 2);
    assert_eq!(f.get(Counter::BansMade, "pam", ""), 1);
    assert_eq!(f.get(Counter::BansEnded, "manual", "unbanned"), 1);
    assert_eq!(f.get(Counter::Attempts, "admitted", ""), 5);
    assert_eq!(f.get(Counter::Attempts, "refused", ""), 2);
    assert_eq!(f.get(Counter::LogEvents, "invalid-user", ""), 2);
    assert_eq!(f.get(Counter::LogEvents, "no-identification", ""), 1);
    assert_eq!(
        f.active_bans,
        [("manual".to_owned(), 1), ("pam".to_owned(), 1)]
    );
}

#[test]
fn counters_never_go_down_across_the_purge_and_forget() {
    let t = TempStore::new("metrics-monotonic");
    let mut s = t.open();
    ban(&mut s, "203.0.113.7", 100);
    ban(&mut s, "203.0.113.8", 100);
    s.unban(
        Some(&crate::addr::parse_target("203.0.113.7").unwrap()),
        false,
        150,
    )
    .unwrap();
    for now in 160..163 {
        login(&mut s, "192.0.2.9", now);
    }
    log_event(&mut s, "192.0.2.50", "invalid-user", 170);
    s.count(Counter::KeyonlyReloads, "", 1).unwrap();
    let before = counters(&s, 200);
    assert!(before.len() >= 5, "{before:?}");

    // The purge deletes everything older than 10_000 (the 203.0.113.8 ban
    // has ended by expiry by then), a batch of 2 rows at a time.
    s.expire_due(10_000).unwrap();
    while s.purge_batch(10_000, 2).unwrap() > 0 {}
    let rows: i64 = s
        .conn()
        .query_row(
            "SELECT (SELECT count(*) FROM bans) + (SELECT count(*) FROM attempts)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "everything was purged");
    let after_purge = counters(&s, 10_001);
    let expired = after_purge
        .iter()
        .find(|c| c.0 == Counter::BansEnded && c.2 == "expired")
        .map(|c| c.3);
    assert_eq!(expired, Some(1), "the expiry is counted: {after_purge:?}");
    let without_expiry: Vec<_> = after_purge
        .iter()
        .filter(|c| !(c.0 == Counter::BansEnded && c.2 == "expired"))
        .cloned()
        .collect();
    assert_eq!(without_expiry, before, "purged rows stay counted");

    // Forget: a ban, lifted and deleted with its attempts.
    ban(&mut s, "192.0.2.33", 20_000);
    login(&mut s, "192.0.2.33", 20_001);
    let before_forget = counters(&s, 20_002);
    let target = crate::addr::parse_target("192.0.2.33").unwrap();
    let done = s.unban(Some(&target), true, 20_003).unwrap();
    assert_eq!(done.forgotten, 2, "{done:?}");
    let f = s.figures(20_004).unwrap();
    assert!(f.active_bans.is_empty());
    assert_eq!(f.get(Counter::BansEnded, "manual", "unbanned"), 2);
    for (counter, first, second, value) in before_forget {
        assert!(
            f.get(counter, &first, &second) >= value,
            "{counter:?} {first} {second} went down"
        );
    }
    // unban --all --forget folds every row in too.
    ban(&mut s, "192.0.2.34", 30_000);
    let made = s
        .figures(30_001)
        .unwrap()
        .get(Counter::BansMade, "manual", "");
    s.unban(None, true, 30_002).unwrap();
    assert_eq!(
        s.figures(30_003)
            .unwrap()
            .get(Counter::BansMade, "manual", ""),
        made
    );
}
