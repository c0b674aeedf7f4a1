//! A decisions stream read as it arrives: each decision is judged by the
//! policy (`policy::fleet`) and, if held, kept as a few words (its origin
//! and scenario interned) until a chunk is full, then handed on (to the
//! store). A 100,000-decision pull never sits in memory whole: only a
//! chunk and the held ids (for the startup reconciliation). Malformed
//! entries are counted and skipped, never fatal; a body that is not the
//! stream's JSON is one error naming what was wrong.

use authguard_core::config::Config;
use authguard_core::policy::fleet::{self, Offered, Skip, Verdict};
use authguard_core::store::fleet::Pulled;
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

/// Decisions held from one pull at most; more are counted and skipped,
/// so a runaway stream cannot grow the daemon without bound.
pub const MAX_HELD: usize = 500_000;

/// What a decision is judged against.
#[derive(Debug)]
pub struct Judge<'a> {
    /// The config (`[crowdsec]` filters and limits).
    pub config: &'a Config,
    /// Every allowed network (the config's and the store's).
    pub allowed: &'a [IpNet],
    /// The time decisions' durations count from.
    pub now: Timestamp,
}

/// One held decision, compact.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: i64,
    net: IpNet,
    expires: Timestamp,
    origin: u32,
    scenario: u32,
}

/// Where full chunks go: held decisions as the store takes them, and the
/// ids of deleted ones. An error stops the stream.
pub type Sink<'s> = dyn FnMut(Vec<Pulled>, Vec<i64>) -> anyhow::Result<()> + 's;

/// What one pull brought, a chunk at a time.
pub struct Intake<'s> {
    sink: &'s mut Sink<'s>,
    chunk: usize,
    pending: Vec<Held>,
    pending_deleted: Vec<i64>,
    words: Vec<String>,
    word_ids: HashMap<String, u32>,
    /// Ids of every held decision, in stream order.
    pub held_ids: Vec<i64>,
    /// Skipped decisions by reason (`type "captcha" is not a ban`, …),
    /// with one example each.
    pub skipped: BTreeMap<&'static str, (u64, String)>,
    /// Entries that were not decisions at all (a field missing or mistyped).
    pub malformed: u64,
    /// The sink's error, which stopped the stream.
    failed: Option<anyhow::Error>,
}

impl fmt::Debug for Intake<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("held", &self.held_ids.len())
            .field("malformed", &self.malformed)
            .finish_non_exhaustive()
    }
}

impl<'s> Intake<'s> {
    /// An intake handing `sink` at most `chunk` decisions at a time.
    pub fn new(chunk: usize, sink: &'s mut Sink<'s>) -> Intake<'s> {
        Intake {
            sink,
            chunk: chunk.max(1),
            pending: Vec::new(),
            pending_deleted: Vec::new(),
            words: Vec::new(),
            word_ids: HashMap::new(),
            held_ids: Vec::new(),
            skipped: BTreeMap::new(),
            malformed: 0,
            failed: None,
        }
    }

    /// Hands on what is pending (the stream's last, partial chunk).
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() && self.pending_deleted.is_empty() {
            return Ok(());
        }
        let pulled: Vec<Pulled> = self
            .pending
            .drain(..)
            .map(|h| Pulled {
                decision_id: h.id,
                net: h.net,
                expires: h.expires,
                origin: self.words[h.origin as usize].clone(),
                scenario: self.words[h.scenario as usize].clone(),
            })
            .collect();
        let deleted = std::mem::take(&mut self.pending_deleted);
        (self.sink)(pulled, deleted)
    }

    /// Flushes once a chunk is full; a sink error is kept to be returned
    /// once the parser has stopped.
    fn flush_full(&mut self) -> Result<(), &'static str> {
        if self.pending.len() < self.chunk && self.pending_deleted.len() < self.chunk {
            return Ok(());
        }
        self.flush().map_err(|e| {
            self.failed = Some(e);
            "stopped: a chunk of it could not be written"
        })
    }

    fn word(&mut self, w: &str) -> u32 {
        if let Some(&id) = self.word_ids.get(w) {
            return id;
        }
        let id = u32::try_from(self.words.len()).unwrap_or(u32::MAX);
        self.words.push(w.to_owned());
        self.word_ids.insert(w.to_owned(), id);
        id
    }

    fn skip(&mut self, why: &'static str, example: impl FnOnce() -> String) {
        let entry = self.skipped.entry(why).or_insert_with(|| (0, example()));
        entry.0 += 1;
    }

    fn offer(&mut self, judge: &Judge<'_>, d: &RawDecision<'_>) {
        let offered = Offered {
            kind: &d.kind,
            scope: &d.scope,
            value: &d.value,
            duration: &d.duration,
            origin: &d.origin,
            scenario: &d.scenario,
        };
        match fleet::judge(judge.config, judge.allowed, &offered, judge.now) {
            Verdict::Enforce { net, expires, .. } if self.held_ids.len() < MAX_HELD => {
                let (origin, scenario) = (self.word(&d.origin), self.word(&d.scenario));
                self.held_ids.push(d.id);
                self.pending.push(Held {
                    id: d.id,
                    net,
                    expires,
                    origin,
                    scenario,
                });
            }
            Verdict::Enforce { .. } => {
                self.skip("over the limit of one pull", || d.value.to_string())
            }
            Verdict::Skip(why) => {
                let example = why.to_string();
                self.skip(skip_kind(&why), || example);
            }
        }
    }
}

fn skip_kind(why: &Skip) -> &'static str {
    match why {
        Skip::NotABan(_) => "not a ban",
        Skip::Scope(_) => "scope not pulled",
        Skip::Filtered => "filtered out",
        Skip::BadValue(_) => "bad value",
        Skip::BadDuration(_) => "bad duration",
        Skip::TooWide(_) => "too wide",
        Skip::Allowed(_) => "allowed network",
    }
}

/// One decision of the stream, as sent (borrowed from its raw text where
/// it has no escapes).
#[derive(Debug, Deserialize)]
struct RawDecision<'a> {
    id: i64,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    scope: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
    #[serde(borrow)]
    duration: Cow<'a, str>,
    #[serde(default, borrow)]
    origin: Cow<'a, str>,
    #[serde(default, borrow)]
    scenario: Cow<'a, str>,
}

/// Parses a stream body (`{"new": [...] | null, "deleted": [...] | null}`).
/// Every chunk is handed on before it returns; on an error, the chunks
/// before it were.
pub fn parse_stream(
    reader: impl Read,
    judge: &Judge<'_>,
    intake: &mut Intake<'_>,
) -> anyhow::Result<()> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let parsed = Body { judge, intake }.deserialize(&mut de);
    if let Some(e) = intake.failed.take() {
        return Err(e);
    }
    parsed.map_err(|e| anyhow::anyhow!("the LAPI's answer is not a decisions stream: {e}"))?;
    de.end()
        .map_err(|e| anyhow::anyhow!("the LAPI's answer goes on after the stream: {e}"))?;
    intake.flush()
}

struct Body<'j, 'c, 's> {
    judge: &'j Judge<'j>,
    intake: &'c mut Intake<'s>,
}

impl<'de> DeserializeSeed<'de> for Body<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with `new` and `deleted`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let new = match key.as_str() {
                "new" => true,
                "deleted" => false,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(List {
                new,
                judge: self.judge,
                intake: self.intake,
            })?;
        }
        Ok(())
    }
}

/// `new` or `deleted`: a list, or `null` (the LAPI's empty list).
struct List<'j, 'c, 's> {
    new: bool,
    judge: &'j Judge<'j>,
    intake: &'c mut Intake<'s>,
}

impl<'de> DeserializeSeed<'de> for List<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for List<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of decisions or null")
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // An entry that is not a decision is counted, not fatal: cut it
        // out as raw JSON first, then read it as a decision.
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            match serde_json::from_str::<RawDecision<'_>>(raw.get()) {
                Ok(d) if self.new => self.intake.offer(self.judge, &d),
                Ok(d) => self.intake.pending_deleted.push(d.id),
                Err(_) => self.intake.malformed += 1,
            }
            self.intake.flush_full().map_err(A::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a stream handed on, and what the intake counted.
    #[derive(Debug, Default)]
    struct Parsed {
        pulled: Vec<Pulled>,
        deleted: Vec<i64>,
        chunks: usize,
        held_ids: Vec<i64>,
        skipped: Vec<&'static str>,
        malformed: u64,
        words: usize,
    }

    fn parse_in(body: &str, chunk: usize) -> anyhow::Result<Parsed> {
        let config = Config::default();
        let allowed = ["192.0.2.0/24".parse().unwrap()];
        let judge = Judge {
            config: &config,
            allowed: &allowed,
            now: 1_000,
        };
        let mut got = Parsed::default();
        let (mut pulled, mut deleted, mut chunks) = (Vec::new(), Vec::new(), 0);
        let mut sink = |p: Vec<Pulled>, d: Vec<i64>| {
            pulled.extend(p);
            deleted.extend(d);
            chunks += 1;
            Ok(())
        };
        let mut intake = Intake::new(chunk, &mut sink);
        parse_stream(body.as_bytes(), &judge, &mut intake)?;
        got.held_ids = std::mem::take(&mut intake.held_ids);
        got.skipped = intake.skipped.keys().copied().collect();
        (got.malformed, got.words) = (intake.malformed, intake.words.len());
        drop(intake);
        (got.pulled, got.deleted, got.chunks) = (pulled, deleted, chunks);
        Ok(got)
    }

    fn parse(body: &str) -> anyhow::Result<Parsed> {
        parse_in(body, 1_000)
    }

    fn decision(id: u32) -> String {
        format!(
            r#"{{"duration":"1h","id":{id},"origin":"cscli","scenario":"s","scope":"Ip","type":"ban","value":"203.0.113.{id}"}}"#
        )
    }

    #[test]
    fn a_stream_is_judged_as_it_is_read() {
        let body = r#"{"deleted":[{"duration":"-1s","id":3,"origin":"cscli","scenario":"x","scope":"Ip","type":"ban","value":"203.0.113.3"}],
            "new":[{"duration":"1h","id":1,"origin":"cscli","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"203.0.113.7"},
                   {"duration":"1h","id":2,"origin":"CAPI","scenario":"crowdsecurity/ssh-bf","scope":"Range","type":"ban","value":"198.51.100.7/24"},
                   {"duration":"1h","id":4,"origin":"cscli","scenario":"s","scope":"Ip","type":"captcha","value":"203.0.113.8"},
                   {"duration":"1h","id":5,"origin":"cscli","scenario":"s","scope":"Ip","type":"ban","value":"192.0.2.9"},
                   {"duration":"1h","id":6,"origin":"cscli","scenario":"s","scope":"Range","type":"ban","value":"0.0.0.0/0"},
                   {"id":"seven"}, 42]}"#;
        let c = parse(body).unwrap();
        assert_eq!(c.held_ids, [1, 2]);
        assert_eq!(c.deleted, [3]);
        assert_eq!(c.malformed, 2);
        assert_eq!(c.skipped, ["allowed network", "not a ban", "too wide"]);
        assert_eq!(
            (
                c.pulled[1].net.to_string().as_str(),
                c.pulled[1].origin.as_str()
            ),
            ("198.51.100.0/24", "CAPI")
        );
        assert_eq!(c.pulled[0].expires, 1_000 + 3600);
        assert_eq!(c.words, 3, "origins and scenarios are kept once each");
    }

    #[test]
    fn a_long_stream_is_handed_on_a_chunk_at_a_time() {
        let new: Vec<String> = (1..=5).map(decision).collect();
        let body = format!(r#"{{"new":[{}],"deleted":null}}"#, new.join(","));
        let c = parse_in(&body, 2).unwrap();
        assert_eq!(c.chunks, 3, "2 + 2 + the last 1");
        let ids: Vec<i64> = c.pulled.iter().map(|p| p.decision_id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_sink_that_fails_stops_the_stream_with_its_own_error() {
        let new: Vec<String> = (1..=5).map(decision).collect();
        let body = format!(r#"{{"new":[{}]}}"#, new.join(","));
        let config = Config::default();
        let judge = Judge {
            config: &config,
            allowed: &[],
            now: 1_000,
        };
        let mut calls = 0;
        let mut sink = |_: Vec<Pulled>, _: Vec<i64>| {
            calls += 1;
            anyhow::bail!("the store is locked")
        };
        let mut intake = Intake::new(2, &mut sink);
        let e = parse_stream(body.as_bytes(), &judge, &mut intake).unwrap_err();
        drop(intake);
        assert_eq!(e.to_string(), "the store is locked");
        assert_eq!(calls, 1, "nothing is read past the failed chunk");
    }

    #[test]
    fn nothing_new_is_nulls_and_a_wrong_body_is_an_error_in_words() {
        let c = parse(r#"{"deleted":null,"new":null}"#).unwrap();
        assert_eq!((c.held_ids.len(), c.deleted.len(), c.chunks), (0, 0, 0));
        let html = parse("<html><body>502 Bad Gateway</body></html>").unwrap_err();
        assert!(
            html.to_string().contains("not a decisions stream"),
            "{html}"
        );
        assert!(parse(r#"{"new":[{"id":1,"#).is_err(), "a truncated body");
        assert!(parse(r#"{"new":"everything"}"#).is_err());
    }
}
