//! The LAPI as a machine: this host's bans pushed as alerts
//! (`POST /v1/alerts`, each carrying its ban as a decision of origin
//! `authguard`), and deleted there when lifted here
//! (`DELETE /v1/decisions/{id}`). The JWT comes from
//! `POST /v1/watchers/login`; it lives an hour and dies with a LAPI restart,
//! so it is renewed before then and on any 401. Never logs the password.

use super::lapi::{agent, credential, read_body, snippet};
use anyhow::{Context as _, bail};
use authguard_core::config::CrowdsecConfig;
use authguard_core::store::bans::BanRecord;
use authguard_core::time::Timestamp;
use std::time::{Duration, Instant};

/// The LAPI as a machine: pushes this host's bans as alerts and deletes
/// their decisions when they are lifted here. Logs in for a JWT (which
/// lives an hour, and dies with a LAPI restart) and logs in again before
/// it runs out, or once on any 401.
pub struct Machine {
    agent: ureq::Agent,
    base: String,
    id: String,
    /// None: the TLS client certificate authenticates.
    password: Option<String>,
    scenario: String,
    token: Option<(String, Instant)>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password or the token.
        f.debug_struct("Machine")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Log in again this long after the last login (the JWT lives an hour).
const TOKEN_LIFE: Duration = Duration::from_secs(50 * 60);

impl Machine {
    /// A machine client for `[crowdsec]` (`machine_id`, `password_file`).
    pub fn new(config: &CrowdsecConfig) -> anyhow::Result<Machine> {
        Ok(Machine {
            agent: agent(config)?,
            base: config.url.trim_end_matches('/').to_owned(),
            id: config.machine_id.clone(),
            password: credential(config, &config.password_file, "password_file")?,
            scenario: config.scenario.clone(),
            token: None,
        })
    }

    /// The scenario our alerts carry.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    fn login(&mut self) -> anyhow::Result<String> {
        // With a client certificate the LAPI names the machine itself
        // (`CN@address`) and wants only the scenarios.
        let body = match &self.password {
            Some(password) => serde_json::json!({
                "machine_id": self.id,
                "password": password,
                "scenarios": [self.scenario],
            }),
            None => serde_json::json!({ "scenarios": [self.scenario] }),
        };
        let url = format!("{}/v1/watchers/login", self.base);
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("cannot reach the LAPI at {}", self.base))?;
        let status = response.status().as_u16();
        let text = read_body(&mut response)?;
        if status != 200 {
            bail!(
                "login as machine {:?} refused ({status}): {}",
                self.id,
                snippet(text.as_bytes())
            );
        }
        let answer: serde_json::Value = serde_json::from_str(&text)?;
        let token = answer["token"]
            .as_str()
            .context("the login answer has no token")?
            .to_owned();
        self.token = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    fn token(&mut self) -> anyhow::Result<String> {
        match &self.token {
            Some((t, at)) if at.elapsed() < TOKEN_LIFE => Ok(t.clone()),
            _ => self.login(),
        }
    }

    /// Sends one JWT request (`method` `path`, JSON `body`), logging in
    /// again once if the token was refused. Returns the status and body.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        for attempt in 0..2 {
            let token = self.token()?;
            let url = format!("{}{path}", self.base);
            let auth = format!("Bearer {token}");
            let sent = match (method, body) {
                ("POST", Some(b)) => self
                    .agent
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .send(b.to_owned()),
                ("DELETE", _) => self
                    .agent
                    .delete(&url)
                    .header("Authorization", &auth)
                    .call(),
                _ => self.agent.get(&url).header("Authorization", &auth).call(),
            };
            let mut response =
                sent.with_context(|| format!("cannot reach the LAPI at {}", self.base))?;
            let status = response.status().as_u16();
            let text = read_body(&mut response)?;
            if status == 401 && attempt == 0 {
                self.token = None;
                continue;
            }
            return Ok((status, text));
        }
        unreachable!("the loop returns on its second turn")
    }

    /// Pushes `ban` as an alert carrying its decision; returns the
    /// decision's id in the LAPI.
    pub fn push_ban(&mut self, ban: &BanRecord, now: Timestamp) -> anyhow::Result<Option<i64>> {
        let body = alert_json(ban, &self.scenario, now).to_string();
        let (status, text) = self.call("POST", "/v1/alerts", Some(&body))?;
        if status != 201 && status != 200 {
            bail!(
                "the LAPI refused the alert for {} ({status}): {}",
                ban.source,
                snippet(text.as_bytes())
            );
        }
        let ids: Vec<String> =
            serde_json::from_str(&text).context("the alert answer is not a list of ids")?;
        let Some(alert) = ids.first() else {
            return Ok(None);
        };
        let (status, text) = self.call("GET", &format!("/v1/alerts/{alert}"), None)?;
        if status != 200 {
            return Ok(None);
        }
        let alert: serde_json::Value = serde_json::from_str(&text)?;
        Ok(alert["decisions"][0]["id"].as_i64())
    }

    /// Deletes the decision `id` (`DELETE /v1/decisions/{id}`); a decision
    /// the LAPI no longer has counts as deleted.
    pub fn delete_decision(&mut self, id: i64) -> anyhow::Result<()> {
        let (status, text) = self.call("DELETE", &format!("/v1/decisions/{id}"), None)?;
        match status {
            200 => Ok(()),
            // 1.4.6 answers an unknown id with a 500 naming it.
            500 if text.contains("doesn't exist") => Ok(()),
            _ => bail!(
                "the LAPI did not delete decision {id} ({status}): {}",
                snippet(text.as_bytes())
            ),
        }
    }
}

/// The alert for one of our bans: the scenario, the failures as events,
/// the source, and the ban as a decision of origin `authguard`.
fn alert_json(ban: &BanRecord, scenario: &str, now: Timestamp) -> serde_json::Value {
    let scope = if ban.source.contains('/') {
        "Range"
    } else {
        "Ip"
    };
    let stop_at = authguard_core::time::rfc3339(now);
    // The LAPI ends a decision at stop_at + duration; permanent: ten years.
    let left = ban.expires.map_or(10 * 365 * 86_400, |e| (e - now).max(1));
    let mut source = serde_json::json!({ "scope": scope, "value": ban.source });
    source[if scope == "Ip" { "ip" } else { "range" }] = ban.source.clone().into();
    serde_json::json!([{
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": format!("authguard: {} banned: {}", ban.source, ban.reason),
        "events_count": ban.failures.max(1),
        "start_at": authguard_core::time::rfc3339(ban.since),
        "stop_at": stop_at,
        "capacity": 0,
        "leakspeed": "0",
        "simulated": false,
        "events": [],
        "source": source,
        "labels": [format!("origin:{}", ban.origin)],
        "decisions": [{
            "duration": format!("{left}s"),
            "origin": "authguard",
            "scenario": scenario,
            "scope": scope,
            "type": "ban",
            "value": ban.source,
        }],
    }])
}
