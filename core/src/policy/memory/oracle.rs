//! The oracle: the same event sequences through the SQLite store and
//! through [`MemoryFacts`] must come to the same decisions, bans and all.
//! One set of rules, two sets of facts; a rule written twice would differ.

use super::{MemoryBan, MemoryFacts, Replayed};
use crate::config::{Config, KeyOnlyMode, MaxFailures, PositiveDuration};
use crate::duration::HumanDuration;
use crate::policy::whole;
use crate::store::Store;
use crate::store::admission::{Attempt, Decision};
use crate::store::bans::BanRecord;
use crate::store::log_events::{LogEvent, LogOutcome, Worth};
use crate::store::test_support::TempStore;
use proptest::prelude::*;
use std::net::IpAddr;

const ADDRESSES: [&str; 8] = [
    "198.51.100.1",
    "198.51.100.2",
    "198.51.100.3",
    "198.51.101.1",
    "2001:db8:1:1::1",
    "2001:db8:1:2::1",
    "2001:db8:1:2::9",
    "127.0.0.1",
];
const USERS: [&[u8]; 2] = [b"root", b"admin"];

#[derive(Debug, Clone)]
enum Step {
    Attempt { who: usize, user: usize },
    Success { who: usize, user: usize },
    LogFailure { who: usize, half: bool },
    Unban { who: usize },
}

fn step() -> impl Strategy<Value = (Step, i64)> {
    let who = 0..ADDRESSES.len();
    let kind = prop_oneof![
        6 => (who.clone(), 0..2usize).prop_map(|(who, user)| Step::Attempt { who, user }),
        1 => (who.clone(), 0..2usize).prop_map(|(who, user)| Step::Success { who, user }),
        4 => (who.clone(), any::<bool>()).prop_map(|(who, half)| Step::LogFailure { who, half }),
        1 => who.prop_map(|who| Step::Unban { who }),
    ];
    (kind, 0..45i64)
}

fn secs(n: u64) -> PositiveDuration {
    PositiveDuration(HumanDuration::secs(n))
}

fn config() -> impl Strategy<Value = Config> {
    (
        1..4u32,
        any::<bool>(),
        0..4u32,
        prop_oneof![Just(0u32), Just(2)],
    )
        .prop_map(|(max, offenders, recidive, subnet)| {
            let mut c = Config::default();
            c.policy.max_failures = MaxFailures(max);
            c.policy.find_time = secs(120);
            c.policy.ban_time = secs(30);
            c.policy.subnet_offenders = subnet;
            c.recidive.bans = recidive;
            c.recidive.window = secs(1_000);
            c.recidive.ban_time = secs(400);
            c.keyonly.mode = if offenders {
                KeyOnlyMode::Offenders
            } else {
                KeyOnlyMode::Off
            };
            c.keyonly.window = secs(200);
            c
        })
}

/// What both sides are compared on: the outcome, and a new ban's every field.
#[allow(clippy::large_enum_variant)] // test-only, short-lived
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Allowed,
    AlreadyBanned,
    KeyOnly,
    Counted(u32),
    Banned(BanSeen, Option<BanSeen>),
}

type BanSeen = (String, i64, Option<i64>, String, String, String, u32);

fn from_record(b: &BanRecord) -> BanSeen {
    let (origin, scope) = (b.origin.to_string(), b.scope.as_str().to_owned());
    let (source, reason) = (b.source.clone(), b.reason.clone());
    (source, b.since, b.expires, origin, scope, reason, b.level)
}

fn from_memory(b: &MemoryBan) -> BanSeen {
    let (origin, scope) = (b.origin.to_string(), b.scope.as_str().to_owned());
    let source = crate::addr::display(&b.net);
    (
        source,
        b.since,
        b.expires,
        origin,
        scope,
        b.reason.clone(),
        b.level,
    )
}

fn seen_in_memory(r: Replayed) -> Seen {
    match r {
        Replayed::Allowed => Seen::Allowed,
        Replayed::AlreadyBanned => Seen::AlreadyBanned,
        Replayed::KeyOnly => Seen::KeyOnly,
        Replayed::Counted(w) => Seen::Counted(whole(w)),
        Replayed::Banned(b, s) => Seen::Banned(from_memory(&b), s.as_ref().map(from_memory)),
    }
}

fn store_attempt(store: &mut Store, c: &Config, ip: IpAddr, user: &[u8], now: i64) -> Seen {
    let attempt = Attempt {
        ip,
        user,
        service: "sshd",
    };
    match store.admit(c, &attempt, now).unwrap() {
        Decision::Allowed { .. } => Seen::Allowed,
        Decision::KeyOnly { .. } => Seen::KeyOnly,
        Decision::Refused { created: false, .. } => Seen::AlreadyBanned,
        Decision::Refused { ban, subnet, .. } => {
            Seen::Banned(from_record(&ban), subnet.as_deref().map(from_record))
        }
        Decision::Admitted { failures, .. } => Seen::Counted(failures),
    }
}

fn store_log_failure(store: &mut Store, c: &Config, ip: IpAddr, weight: f64, now: i64) -> Seen {
    let event = LogEvent {
        ip,
        user: None,
        kind: "invalid-user",
        worth: Worth::Failure(weight),
        line: b"Invalid user x from 198.51.100.1 port 22",
        at: now,
    };
    match store
        .record_log_events(c, &[event], None, now)
        .unwrap()
        .remove(0)
    {
        LogOutcome::Allowed => Seen::Allowed,
        LogOutcome::AlreadyBanned => Seen::AlreadyBanned,
        LogOutcome::Noted => unreachable!("every event here is a failure"),
        LogOutcome::Counted(w) => Seen::Counted(whole(w)),
        LogOutcome::Banned(b, s) => Seen::Banned(from_record(&b), s.as_deref().map(from_record)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_store_and_memory_decide_alike(config in config(), steps in prop::collection::vec(step(), 1..60)) {
        let t = TempStore::new("oracle");
        let mut store = t.open();
        let mut memory = MemoryFacts::new();
        let mut now = 1_000_000;
        for (i, (step, dt)) in steps.into_iter().enumerate() {
            now += dt;
            let (store_saw, memory_saw) = match step {
                Step::Attempt { who, user } => {
                    let (ip, user) = (ADDRESSES[who].parse().unwrap(), USERS[user]);
                    (Some(store_attempt(&mut store, &config, ip, user, now)),
                     Some(seen_in_memory(memory.admit(&config, ip, user, now))))
                }
                Step::LogFailure { who, half } => {
                    let ip = ADDRESSES[who].parse().unwrap();
                    let w = if half { 0.5 } else { 1.0 };
                    (Some(store_log_failure(&mut store, &config, ip, w, now)),
                     Some(seen_in_memory(memory.log_failure(&config, ip, w, "invalid-user", now))))
                }
                Step::Success { who, user } => {
                    let (ip, user) = (ADDRESSES[who].parse().unwrap(), USERS[user]);
                    store.record_success(&config.policy, ip, user, None, now).unwrap();
                    memory.forgive(&crate::policy::source_of(&config.policy, ip), user);
                    (None, None)
                }
                Step::Unban { who } => {
                    let source = crate::policy::source_of(&config.policy, ADDRESSES[who].parse().unwrap());
                    store.unban(Some(&source), false, now).unwrap();
                    memory.unban(&source, now);
                    (None, None)
                }
            };
            prop_assert_eq!(store_saw, memory_saw, "step {} at {}", i, now);
        }
    }
}
