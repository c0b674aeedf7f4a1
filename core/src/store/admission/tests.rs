//! Admission against a real store file: thresholds, windows, escalation,
//! recidive, the subnet rule, successes, parallel processes.

use super::*;
use crate::config::{Config, MaxFailures, PolicyConfig};
use crate::policy::Origin;
use crate::store::bans::{BanLength, BanOutcome, NewBan};
use crate::store::test_support::TempStore;

/// A policy with `[keyonly] mode = "off"`: these tests replay repeat
/// password offences, which key-only signaling would refuse outright.
fn with_max_failures(n: u32) -> Config {
    Config {
        policy: PolicyConfig {
            max_failures: MaxFailures(n),
            ..PolicyConfig::default()
        },
        keyonly: crate::config::KeyOnlyConfig {
            mode: crate::config::KeyOnlyMode::Off,
            ..Default::default()
        },
        ..Config::default()
    }
}

#[test]
fn a_past_offender_is_key_only_and_its_passwords_still_count() {
    let t = TempStore::new("keyonly");
    let mut s = t.open();
    let c = with_max_failures(2);
    let keyonly = Config {
        keyonly: crate::config::KeyOnlyConfig::default(),
        ..c.clone()
    };
    for now in 0..2 {
        s.admit(&c, &attempt("203.0.113.70"), now).unwrap();
    }
    assert!(matches!(
        s.admit(&c, &attempt("203.0.113.70"), 2).unwrap(),
        Decision::Refused { created: true, .. }
    ));
    // The 10m ban has ended; within the 30d window the source is key-only,
    // and each refused password counts: the third is refused by a new ban.
    for now in [3_000, 3_001] {
        assert_eq!(
            s.admit(&keyonly, &attempt("203.0.113.70"), now).unwrap(),
            Decision::KeyOnly {
                why: "past offender".into()
            }
        );
    }
    // Told from a ban's refusals (kind `keyonly`), for the metrics.
    let figures = s.figures(3_001).unwrap();
    use crate::store::metrics::Counter;
    assert_eq!(figures.get(Counter::Attempts, "keyonly", ""), 2);
    assert_eq!(figures.get(Counter::Attempts, "refused", ""), 1);
    let Decision::Refused {
        ban, created: true, ..
    } = s.admit(&keyonly, &attempt("203.0.113.70"), 3_002).unwrap()
    else {
        panic!("persistence under key-only earns a ban")
    };
    assert_eq!(ban.level, 2, "the next, longer ban: {ban:?}");
    assert!(
        matches!(
            s.admit(&keyonly, &attempt("203.0.113.71"), 3_000).unwrap(),
            Decision::Admitted { failures: 1, .. }
        ),
        "a clean neighbour keeps its passwords"
    );
    // After the window it may use passwords again.
    let later = 3_002 + 1_200 + 30 * 86_400 + 1;
    assert!(matches!(
        s.admit(&keyonly, &attempt("203.0.113.70"), later).unwrap(),
        Decision::Admitted { .. }
    ));
}

#[test]
fn a_guesser_through_three_key_only_ban_cycles_reaches_recidive() {
    let t = TempStore::new("keyonly-recidive");
    let mut s = t.open();
    let c = Config {
        keyonly: crate::config::KeyOnlyConfig::default(),
        ..with_max_failures(2)
    };
    let mut now = 0;
    let mut bans = Vec::new();
    // It never stops guessing: each attempt as soon as the last ban ended.
    while bans.len() < 3 && now < 86_400 {
        match s.admit(&c, &attempt("203.0.113.80"), now).unwrap() {
            Decision::Refused {
                ban, created: true, ..
            } => {
                now = ban.expires.unwrap();
                bans.push(ban);
            }
            Decision::Refused { ban, .. } => now = ban.expires.unwrap(),
            _ => now += 1,
        }
    }
    let origins: Vec<Origin> = bans.iter().map(|b| b.origin.clone()).collect();
    assert_eq!(
        origins,
        [Origin::Pam, Origin::Pam, Origin::Recidive],
        "{bans:#?}"
    );
    assert_eq!(bans[2].scope, crate::config::BanScope::All);
    assert!(bans[2].expires.unwrap() - bans[2].since >= 30 * 86_400);
}

#[test]
fn a_key_only_country_is_refused_its_passwords_and_counts_them() {
    let t = TempStore::new("geo-keyonly");
    let mut s = t.open();
    let data = crate::geo::parse("fixture.csv", b"198.51.100.0,198.51.100.255,XA\n").unwrap();
    let ranges = crate::geo::merge(&[data]).unwrap();
    s.import_geo(&ranges, &["fixture.csv".into()], 0).unwrap();
    let mut c = with_max_failures(3);
    c.geo.keyonly = vec![crate::geo::Country::parse("XA").unwrap().unwrap()];
    for now in 1..4 {
        assert_eq!(
            s.admit(&c, &attempt("198.51.100.7"), now).unwrap(),
            Decision::KeyOnly {
                why: "country XA".into()
            },
            "refused unchecked"
        );
    }
    assert!(
        matches!(
            s.admit(&c, &attempt("198.51.100.7"), 4).unwrap(),
            Decision::Refused { created: true, .. }
        ),
        "the refused passwords counted"
    );
    assert!(matches!(
        s.admit(&c, &attempt("198.51.101.7"), 5).unwrap(),
        Decision::Admitted { .. }
    ));
    s.allow_add(&"198.51.100.0/28".parse().unwrap(), "office", 6)
        .unwrap();
    assert!(matches!(
        s.admit(&c, &attempt("198.51.100.7"), 7).unwrap(),
        Decision::Allowed { .. }
    ));
}

fn attempt(ip: &str) -> Attempt<'static> {
    Attempt {
        ip: ip.parse().unwrap(),
        user: b"root",
        service: "sshd",
    }
}

#[test]
fn fifth_failure_then_ban_then_refusal() {
    let t = TempStore::new("admit");
    let mut s = t.open();
    let p = with_max_failures(5);
    for i in 1..=5 {
        match s.admit(&p, &attempt("203.0.113.7"), 1000 + i).unwrap() {
            Decision::Admitted { failures, .. } => assert_eq!(failures, i as u32),
            other => panic!("attempt {i}: {other:?}"),
        }
    }
    let Decision::Refused {
        ban, created: true, ..
    } = s.admit(&p, &attempt("203.0.113.7"), 1006).unwrap()
    else {
        panic!("sixth attempt must create the ban")
    };
    assert_eq!(
        (
            ban.source.as_str(),
            ban.level,
            ban.failures,
            ban.origin.as_str()
        ),
        ("203.0.113.7", 1, 5, "pam")
    );
    assert_eq!(ban.expires, Some(1006 + 600));
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.7"), 1007).unwrap(),
        Decision::Refused { created: false, .. }
    ));
    // Another source is unaffected.
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.8"), 1007).unwrap(),
        Decision::Admitted { failures: 1, .. }
    ));
    // After the ban the source starts from zero, and the next ban is twice as long.
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.7"), 1606).unwrap(),
        Decision::Admitted { failures: 1, .. }
    ));
    for i in 0..4 {
        s.admit(&p, &attempt("203.0.113.7"), 1607 + i).unwrap();
    }
    let Decision::Refused { ban, .. } = s.admit(&p, &attempt("203.0.113.7"), 1700).unwrap() else {
        panic!()
    };
    assert_eq!((ban.level, ban.expires), (2, Some(1700 + 1200)));
    let history = s
        .history(
            &"203.0.113.7/32".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
            100,
            1700,
        )
        .unwrap();
    assert_eq!(history.bans.len(), 2);
    assert_eq!(
        history.bans[1].end_reason,
        Some(crate::policy::EndReason::Expired)
    );
}

#[test]
fn third_ban_within_the_window_is_the_long_recidive_ban_on_all_ports() {
    let t = TempStore::new("recidive");
    let mut s = t.open();
    let c = with_max_failures(1);
    let mut bans = Vec::new();
    // Banned at t=1, 1001 and 3001: each ban (10m, 20m) has ended before the next.
    for start in [0, 1000, 3000] {
        s.admit(&c, &attempt("203.0.113.66"), start).unwrap();
        let Decision::Refused {
            ban, created: true, ..
        } = s.admit(&c, &attempt("203.0.113.66"), start + 1).unwrap()
        else {
            panic!("no ban at {start}")
        };
        bans.push(ban);
    }
    assert_eq!(
        (bans[0].origin.as_str(), bans[0].scope.as_str()),
        ("pam", "ports")
    );
    assert_eq!(
        (bans[1].origin.as_str(), bans[1].expires),
        ("pam", Some(1001 + 1200))
    );
    let long = &bans[2];
    assert_eq!(
        (long.origin.as_str(), long.scope.as_str(), long.level),
        ("recidive", "all", 3)
    );
    assert_eq!(long.expires, Some(3001 + 30 * 86_400));
    assert!(
        long.reason.starts_with("3 bans within 1w"),
        "{}",
        long.reason
    );

    // Tightening the rule later: the sweep catches sources already over it.
    let mut strict = with_max_failures(1);
    strict.recidive.bans = 2;
    let t2 = TempStore::new("recidive-sweep");
    let mut s2 = t2.open();
    let mut lax = with_max_failures(1);
    lax.recidive.bans = 0;
    for start in [0, 1000] {
        s2.admit(&lax, &attempt("203.0.113.68"), start).unwrap();
        s2.admit(&lax, &attempt("203.0.113.68"), start + 1).unwrap();
    }
    let swept = s2.recidive_sweep(&strict, 1500).unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(
        (swept[0].origin.as_str(), swept[0].scope.as_str()),
        ("recidive", "all")
    );
    assert_eq!(
        s2.active_bans(1500).unwrap().len(),
        1,
        "the open ban was replaced, not doubled"
    );
    assert!(
        s2.recidive_sweep(&strict, 1600).unwrap().is_empty(),
        "once only"
    );

    // With the rule off, the third ban is an ordinary escalated one.
    let t = TempStore::new("recidive-off");
    let mut s = t.open();
    let mut off = with_max_failures(1);
    off.recidive.bans = 0;
    for start in [0, 1000, 3000] {
        s.admit(&off, &attempt("203.0.113.67"), start).unwrap();
        s.admit(&off, &attempt("203.0.113.67"), start + 1).unwrap();
    }
    let last = s.active_bans(3001).unwrap().pop().unwrap();
    assert_eq!(
        (last.origin.as_str(), last.scope.as_str(), last.expires),
        ("pam", "ports", Some(3001 + 2400))
    );
}

#[test]
fn retention_purges_old_history_in_batches_and_keeps_active_bans() {
    let t = TempStore::new("purge");
    let mut s = t.open();
    let c = with_max_failures(1);
    for i in 0..30 {
        s.admit(&c, &attempt(&format!("198.51.100.{i}")), 100)
            .unwrap();
    }
    // An old ban that ended, and an old permanent one that is still active.
    s.admit(&c, &attempt("203.0.113.1"), 100).unwrap();
    s.admit(&c, &attempt("203.0.113.1"), 101).unwrap();
    s.expire_due(10_000).unwrap();
    let forever = NewBan {
        net: "203.0.113.2/32".parse().unwrap(),
        length: BanLength::Permanent,
        reason: "r",
        origin: crate::policy::Origin::Manual,
        failures: 0,
    };
    s.ban(&c, &forever, 100).unwrap();
    s.admit(&c, &attempt("192.0.2.1"), 50_000).unwrap();
    let mut purged = 0;
    loop {
        let n = s.purge_batch(20_000, 10).unwrap();
        assert!(n <= 20, "a batch is small");
        if n == 0 {
            break;
        }
        purged += n;
    }
    assert_eq!(purged, 30 + 2 + 1, "old attempts and the ended ban");
    let left: Vec<String> = s
        .all_bans()
        .unwrap()
        .into_iter()
        .map(|b| b.source)
        .collect();
    assert_eq!(left, ["203.0.113.2"], "an active ban is never purged");
    assert_eq!(s.summary(50_000).unwrap().attempts_total, 1);
}

#[test]
fn enough_banned_sources_in_one_subnet_ban_the_subnet() {
    let t = TempStore::new("subnet");
    let mut s = t.open();
    let mut c = with_max_failures(1);
    c.policy.subnet_offenders = 3;
    let ban_of = |s: &mut Store, ip: &str, at| {
        s.admit(&c, &attempt(ip), at).unwrap();
        match s.admit(&c, &attempt(ip), at + 1).unwrap() {
            Decision::Refused {
                created: true,
                subnet,
                ..
            } => subnet,
            other => panic!("{other:?}"),
        }
    };
    assert!(ban_of(&mut s, "198.51.100.1", 10).is_none());
    assert!(ban_of(&mut s, "198.51.100.2", 20).is_none());
    assert!(
        ban_of(&mut s, "192.0.2.3", 30).is_none(),
        "another /24 does not count"
    );
    let subnet = ban_of(&mut s, "198.51.100.3", 40).expect("third source in the /24");
    assert_eq!(
        (subnet.source.as_str(), subnet.origin.as_str()),
        ("198.51.100.0/24", "subnet")
    );
    assert!(
        subnet.reason.starts_with("3 banned sources"),
        "{}",
        subnet.reason
    );
    // The whole /24 is refused now, even a source never seen.
    let Decision::Refused { ban, .. } = s.admit(&c, &attempt("198.51.100.200"), 50).unwrap() else {
        panic!()
    };
    assert_eq!(ban.source, "198.51.100.0/24");
    // IPv6: three /64s inside one /48.
    for (i, ip) in ["2001:db8:5:1::1", "2001:db8:5:2::1", "2001:db8:5:3::1"]
        .iter()
        .enumerate()
    {
        let got = ban_of(&mut s, ip, 100 + 10 * i as i64);
        assert_eq!(
            got.map(|b| b.source),
            (i == 2).then(|| "2001:db8:5::/48".to_string())
        );
    }
}

#[test]
fn an_unresponsive_contacts_subnet_is_banned_at_the_lower_threshold() {
    let t = TempStore::new("subnet-unresponsive");
    let mut s = t.open();
    let mut c = with_max_failures(1);
    c.report.unresponsive = crate::config::Unresponsive::Subnet;
    c.report.unresponsive_subnet_offenders = crate::config::SubnetOffenders(2);
    let held = [("198.51.100.0/24".to_owned(), "abuse@two.example".to_owned())];
    s.set_unresponsive_subnets(&held.into_iter().collect(), 0)
        .unwrap();
    let ban_of = |s: &mut Store, c: &Config, ip: &str, at| {
        s.admit(c, &attempt(ip), at).unwrap();
        match s.admit(c, &attempt(ip), at + 1).unwrap() {
            Decision::Refused {
                created: true,
                subnet,
                ..
            } => subnet,
            other => panic!("{other:?}"),
        }
    };
    // The subnet rule is off ([policy] subnet_offenders = 0), except here.
    assert!(ban_of(&mut s, &c, "203.0.113.1", 10).is_none());
    assert!(ban_of(&mut s, &c, "203.0.113.2", 20).is_none());
    assert!(ban_of(&mut s, &c, "198.51.100.1", 30).is_none());
    let subnet = ban_of(&mut s, &c, "198.51.100.2", 40).expect("two sources in a held /24");
    assert_eq!(
        (subnet.source.as_str(), subnet.origin.as_str()),
        ("198.51.100.0/24", "subnet")
    );
    assert!(
        subnet.reason.contains("abuse@two.example"),
        "{}",
        subnet.reason
    );
    // With the option off the table is not read: the usual rule decides.
    let mut off = c.clone();
    off.report.unresponsive = crate::config::Unresponsive::Ignore;
    s.set_unresponsive_subnets(
        &[("192.0.2.0/24".to_owned(), "abuse@x.example".to_owned())]
            .into_iter()
            .collect(),
        50,
    )
    .unwrap();
    assert!(ban_of(&mut s, &off, "192.0.2.1", 60).is_none());
    assert!(ban_of(&mut s, &off, "192.0.2.2", 70).is_none());
    // A usual threshold already lower than the option's stays.
    let mut usual = c.clone();
    usual.policy.subnet_offenders = 1;
    let own = ban_of(&mut s, &usual, "192.0.2.9", 80).expect("the usual rule at 1");
    assert!(!own.reason.contains("abuse contact"), "{}", own.reason);
}

#[test]
fn failures_outside_find_time_do_not_count() {
    let t = TempStore::new("window");
    let mut s = t.open();
    let p = Config::default();
    for i in 0..5 {
        s.admit(&p, &attempt("198.51.100.1"), i * 200).unwrap();
    }
    // At t=1000 only the attempts at 600 and 800 are within 10 minutes.
    assert!(matches!(
        s.admit(&p, &attempt("198.51.100.1"), 1000).unwrap(),
        Decision::Admitted { failures: 3, .. }
    ));
}

#[test]
fn successes_never_add_up_and_forgive_the_users_failures() {
    let t = TempStore::new("success");
    let mut s = t.open();
    let p = with_max_failures(3);
    let ip = "192.0.2.5".parse().unwrap();
    for i in 0..10 {
        let Decision::Admitted { attempt_id, .. } =
            s.admit(&p, &attempt("192.0.2.5"), 100 + i).unwrap()
        else {
            panic!("success {i} must be admitted")
        };
        // Every other time the id is lost (keyboard-interactive runs in a child).
        let id = (i % 2 == 0).then_some(attempt_id);
        assert_eq!(
            s.record_success(&p.policy, ip, b"root", id, 100 + i)
                .unwrap(),
            Some(attempt_id)
        );
    }
    // sshd calls setcred again in the session child: nothing more is marked.
    let Decision::Admitted { attempt_id, .. } = s.admit(&p, &attempt("192.0.2.5"), 150).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        s.record_success(&p.policy, ip, b"root", Some(attempt_id), 150)
            .unwrap(),
        Some(attempt_id)
    );
    assert_eq!(
        s.record_success(&p.policy, ip, b"root", Some(attempt_id), 150)
            .unwrap(),
        None
    );
    assert_eq!(
        s.record_success(&p.policy, ip, b"root", None, 150).unwrap(),
        None
    );
    // Two typos, then the right password: the typos are forgiven.
    s.admit(&p, &attempt("192.0.2.5"), 200).unwrap();
    s.admit(&p, &attempt("192.0.2.5"), 201).unwrap();
    s.admit(&p, &attempt("192.0.2.5"), 202).unwrap();
    s.record_success(&p.policy, ip, b"root", None, 202).unwrap();
    assert!(matches!(
        s.admit(&p, &attempt("192.0.2.5"), 203).unwrap(),
        Decision::Admitted { failures: 1, .. }
    ));
}

#[test]
fn ipv6_sources_aggregate_and_wider_bans_cover() {
    let t = TempStore::new("v6");
    let mut s = t.open();
    let p = with_max_failures(2);
    s.admit(&p, &attempt("2001:db8:1:2::1"), 10).unwrap();
    s.admit(&p, &attempt("2001:db8:1:2::2"), 11).unwrap();
    let Decision::Refused { ban, .. } = s.admit(&p, &attempt("2001:db8:1:2:ffff::3"), 12).unwrap()
    else {
        panic!()
    };
    assert_eq!(ban.source, "2001:db8:1:2::/64");
    let manual = NewBan {
        net: "198.51.100.0/24".parse().unwrap(),
        length: BanLength::Permanent,
        reason: "manual",
        origin: crate::policy::Origin::Manual,
        failures: 0,
    };
    assert!(matches!(
        s.ban(&p, &manual, 20).unwrap(),
        BanOutcome::Created(..)
    ));
    let Decision::Refused { ban, .. } = s.admit(&p, &attempt("198.51.100.77"), 21).unwrap() else {
        panic!()
    };
    assert_eq!(
        (ban.source.as_str(), ban.expires),
        ("198.51.100.0/24", None)
    );
}

#[test]
fn unban_and_allow_lift_bans() {
    let t = TempStore::new("unban");
    let mut s = t.open();
    let p = with_max_failures(1);
    s.admit(&p, &attempt("203.0.113.9"), 10).unwrap();
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.9"), 11).unwrap(),
        Decision::Refused { .. }
    ));
    let out = s
        .unban(Some(&"203.0.113.9/32".parse().unwrap()), false, 12)
        .unwrap();
    assert_eq!(out.lifted, vec!["203.0.113.9".to_string()]);
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.9"), 13).unwrap(),
        Decision::Admitted { failures: 1, .. }
    ));
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.9"), 14).unwrap(),
        Decision::Refused { .. }
    ));
    let (added, lifted) = s
        .allow_add(&"203.0.113.0/24".parse().unwrap(), "office", 15)
        .unwrap();
    assert!(added);
    assert_eq!(lifted, vec!["203.0.113.9".to_string()]);
    assert!(matches!(
        s.admit(&p, &attempt("203.0.113.9"), 16).unwrap(),
        Decision::Allowed { .. }
    ));
    assert!(s.active_bans(16).unwrap().is_empty());
    assert_eq!(
        s.all_bans().unwrap().len(),
        2,
        "lifted bans stay in history"
    );
    s.unban(Some(&"203.0.113.9/32".parse().unwrap()), true, 17)
        .unwrap();
    assert!(
        s.all_bans().unwrap().is_empty(),
        "--forget deletes the history"
    );
}

#[test]
fn parallel_processes_never_exceed_max_failures() {
    let t = TempStore::new("parallel");
    let p = Config::default();
    let admitted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                let mut s = Store::open(
                    &t.path,
                    super::super::Access::Write,
                    std::time::Duration::from_secs(5),
                )
                .unwrap();
                for _ in 0..4 {
                    if let Decision::Admitted { .. } =
                        s.admit(&p, &attempt("203.0.113.50"), 5000).unwrap()
                    {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.into_inner(), 5);
}
