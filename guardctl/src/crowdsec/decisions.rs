//! A decisions stream read as it arrives: each decision is judged by the
//! policy (`policy::fleet`) and, if held, kept as a few words (its origin
//! and scenario interned), so 100,000 decisions cost a few megabytes, not
//! their JSON. Malformed entries are counted and skipped, never fatal; a
//! body that is not the stream's JSON is one error naming what was wrong.

use authguard_core::config::Config;
use authguard_core::policy::fleet::{self, Offered, Skip, Verdict};
use authguard_core::store::fleet::Pulled;
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
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

/// What one pull brought.
#[derive(Debug, Default)]
pub struct Collected {
    held: Vec<Held>,
    words: Vec<String>,
    word_ids: HashMap<String, u32>,
    /// Ids of the stream's `deleted` decisions.
    pub deleted: Vec<i64>,
    /// Skipped decisions by reason (`type "captcha" is not a ban`, …),
    /// with one example each.
    pub skipped: BTreeMap<&'static str, (u64, String)>,
    /// Entries that were not decisions at all (a field missing or mistyped).
    pub malformed: u64,
}

impl Collected {
    /// Held decisions.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// The held decisions' networks.
    pub fn held_nets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.held.iter().map(|h| h.net)
    }

    /// The held decisions' ids.
    pub fn held_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.held.iter().map(|h| h.id)
    }

    /// The held decisions as the store takes them, `chunk` at a time.
    pub fn pulled_chunks(&self, chunk: usize) -> impl Iterator<Item = Vec<Pulled>> + '_ {
        self.held.chunks(chunk.max(1)).map(|c| {
            c.iter()
                .map(|h| Pulled {
                    decision_id: h.id,
                    net: h.net,
                    expires: h.expires,
                    origin: self.words[h.origin as usize].clone(),
                    scenario: self.words[h.scenario as usize].clone(),
                })
                .collect()
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

    fn offer(&mut self, judge: &Judge<'_>, d: &RawDecision) {
        let offered = Offered {
            kind: &d.kind,
            scope: &d.scope,
            value: &d.value,
            duration: &d.duration,
            origin: &d.origin,
            scenario: &d.scenario,
        };
        match fleet::judge(judge.config, judge.allowed, &offered, judge.now) {
            Verdict::Enforce { net, expires, .. } if self.held.len() < MAX_HELD => {
                let (origin, scenario) = (self.word(&d.origin), self.word(&d.scenario));
                self.held.push(Held {
                    id: d.id,
                    net,
                    expires,
                    origin,
                    scenario,
                });
            }
            Verdict::Enforce { .. } => self.skip("over the limit of one pull", || d.value.clone()),
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

/// One decision of the stream, as sent.
#[derive(Debug, Deserialize)]
struct RawDecision {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    scope: String,
    value: String,
    duration: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    scenario: String,
}

/// Parses a stream body (`{"new": [...] | null, "deleted": [...] | null}`).
pub fn parse_stream(
    reader: impl Read,
    judge: &Judge<'_>,
    collected: &mut Collected,
) -> anyhow::Result<()> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    Body { judge, collected }
        .deserialize(&mut de)
        .map_err(|e| anyhow::anyhow!("the LAPI's answer is not a decisions stream: {e}"))?;
    de.end()
        .map_err(|e| anyhow::anyhow!("the LAPI's answer goes on after the stream: {e}"))
}

struct Body<'j, 'c> {
    judge: &'j Judge<'j>,
    collected: &'c mut Collected,
}

impl<'de> DeserializeSeed<'de> for Body<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body<'_, '_> {
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
                collected: self.collected,
            })?;
        }
        Ok(())
    }
}

/// `new` or `deleted`: a list, or `null` (the LAPI's empty list).
struct List<'j, 'c> {
    new: bool,
    judge: &'j Judge<'j>,
    collected: &'c mut Collected,
}

impl<'de> DeserializeSeed<'de> for List<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for List<'_, '_> {
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
        // An entry that is not a decision is counted, not fatal: read it
        // as any JSON first, then as a decision.
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            match RawDecision::deserialize(value) {
                Ok(d) if self.new => self.collected.offer(self.judge, &d),
                Ok(d) => self.collected.deleted.push(d.id),
                Err(_) => self.collected.malformed += 1,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> anyhow::Result<Collected> {
        let config = Config::default();
        let allowed = ["192.0.2.0/24".parse().unwrap()];
        let judge = Judge {
            config: &config,
            allowed: &allowed,
            now: 1_000,
        };
        let mut c = Collected::default();
        parse_stream(body.as_bytes(), &judge, &mut c)?;
        Ok(c)
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
        assert_eq!(c.held_ids().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(c.deleted, [3]);
        assert_eq!(c.malformed, 2);
        let kinds: Vec<&str> = c.skipped.keys().copied().collect();
        assert_eq!(kinds, ["allowed network", "not a ban", "too wide"]);
        let pulled: Vec<Pulled> = c.pulled_chunks(10).flatten().collect();
        assert_eq!(
            (
                pulled[1].net.to_string().as_str(),
                pulled[1].origin.as_str()
            ),
            ("198.51.100.0/24", "CAPI")
        );
        assert_eq!(pulled[0].expires, 1_000 + 3600);
        assert_eq!(c.words.len(), 3, "origins and scenarios are kept once each");
    }

    #[test]
    fn nothing_new_is_nulls_and_a_wrong_body_is_an_error_in_words() {
        let c = parse(r#"{"deleted":null,"new":null}"#).unwrap();
        assert_eq!((c.held_len(), c.deleted.len()), (0, 0));
        let html = parse("<html><body>502 Bad Gateway</body></html>").unwrap_err();
        assert!(
            html.to_string().contains("not a decisions stream"),
            "{html}"
        );
        assert!(parse(r#"{"new":[{"id":1,"#).is_err(), "a truncated body");
        assert!(parse(r#"{"new":"everything"}"#).is_err());
    }
}
