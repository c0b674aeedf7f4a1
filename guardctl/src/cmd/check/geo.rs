//! `guardctl check`'s country findings: a blocked country holding this SSH
//! session, blocks nothing enforces, and `[geo] keyonly` countries the
//! data lacks or the firewall drops anyway.

use super::Finding;
use crate::context::Context;
use crate::lockout;
use authguard_core::geo::Country;
use authguard_core::store::Store;
use std::net::IpAddr;

/// Blocked countries: does one of them hold this SSH session's address,
/// with no allow rule for it? (Then the firewall drops the admin.)
pub(super) fn blocked_finding(ctx: &Context, store: Option<&Store>) -> Finding {
    use authguard_core::config::FirewallBackend;
    let ok = Finding::ok;
    let Some(store) = store else {
        return ok("countries: not checked (the store does not open)".into());
    };
    let state = match GeoState::read(ctx, store) {
        Ok(state) => state,
        Err(e) => return ok(format!("countries: not checked ({e:#})")),
    };
    let blocked = state.blocked.join(", ");
    match state.session_risk {
        _ if state.blocked.is_empty() => ok("no countries blocked".into()),
        Some((address, country)) => Finding::warning(
            format!(
                "{address} (your SSH session) is in {country}, which is blocked, and no \
                 allow rule covers it: the firewall drops your connections"
            ),
            format!("`guardctl allow add {address}`, or `guardctl geo unblock {country}`"),
        ),
        None if ctx.config.firewall.backend == FirewallBackend::None => Finding::warning(
            format!(
                "countries blocked ({blocked}) but [firewall] backend is \"none\": nothing drops them"
            ),
            "set [firewall] backend = \"nftables\", or `guardctl geo unblock` them".into(),
        ),
        None => ok(format!(
            "countries blocked: {blocked} ({})",
            crate::cmd::geo::scope_words(ctx)
        )),
    }
}

/// The blocked countries, and this SSH session's place among them.
struct GeoState {
    /// Their codes.
    blocked: Vec<String>,
    /// The session's address and country, when it is blocked and not allowed.
    session_risk: Option<(IpAddr, Country)>,
}

impl GeoState {
    fn read(ctx: &Context, store: &Store) -> anyhow::Result<GeoState> {
        let blocked: Vec<String> = store
            .geo_blocked()?
            .into_iter()
            .map(|b| b.country)
            .collect();
        let codes: Vec<Country> = blocked
            .iter()
            .filter_map(|c| Country::parse(c).ok().flatten())
            .collect();
        let allowed = crate::firewall::Desired::allowed(&ctx.config, store)?;
        let session = lockout::session_address();
        let session_risk = lockout::session_risk(&codes, session, &allowed, |ip| {
            crate::cmd::geo::country_of(store, ip)
        })?;
        Ok(GeoState {
            blocked,
            session_risk,
        })
    }
}

/// `[geo] keyonly`: each country must be in the imported data (else
/// nobody is key-only for it), and should not be blocked as well (then
/// the firewall drops it before sshd can ask for a key).
pub(super) fn keyonly_finding(ctx: &Context, store: Option<&Store>) -> Finding {
    let countries = &ctx.config.geo.keyonly;
    if countries.is_empty() {
        return Finding::ok("no key-only countries ([geo] keyonly)".into());
    }
    let Some(store) = store else {
        return Finding::ok("key-only countries: not checked (the store does not open)".into());
    };
    let problem = keyonly_problem(store, countries).and_then(|p| match p {
        Some(p) => Ok(Some(p)),
        None => keyonly_session(ctx, store, countries),
    });
    match problem {
        Ok(Some((what, fix))) => Finding::warning(what, fix),
        Ok(None) => Finding::ok(format!("key-only countries: {}", codes(countries))),
        Err(e) => Finding::ok(format!("key-only countries: not checked ({e:#})")),
    }
}

/// The first thing wrong with the key-only countries, and its fix.
fn keyonly_problem(
    store: &Store,
    countries: &[Country],
) -> anyhow::Result<Option<(String, String)>> {
    let mut missing = Vec::new();
    for country in countries {
        if !store.geo_has_country(*country)? {
            missing.push(*country);
        }
    }
    if !missing.is_empty() {
        return Ok(Some((
            format!(
                "[geo] keyonly names {}, which the country data does not hold: nobody from there is key-only",
                codes(&missing)
            ),
            "`guardctl geo import` a database that has them (e.g. /usr/share/tor/geoip /usr/share/tor/geoip6)".into(),
        )));
    }
    let blocked: Vec<Country> = store
        .geo_blocked()?
        .iter()
        .filter_map(|b| Country::parse(&b.country).ok().flatten())
        .filter(|b| countries.contains(b))
        .collect();
    if blocked.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        format!(
            "key-only and blocked as well: {}; the firewall drops them before sshd can ask for a key",
            codes(&blocked)
        ),
        format!(
            "`guardctl geo unblock {}` to let key logins in",
            codes(&blocked).replace(", ", " ")
        ),
    )))
}

/// This SSH session comes from a key-only country, with no allow rule for
/// it: its next password login will be refused.
fn keyonly_session(
    ctx: &Context,
    store: &Store,
    countries: &[Country],
) -> anyhow::Result<Option<(String, String)>> {
    let allowed = crate::firewall::Desired::allowed(&ctx.config, store)?;
    let session = lockout::session_address();
    let risk = lockout::session_risk(countries, session, &allowed, |ip| {
        crate::cmd::geo::country_of(store, ip)
    })?;
    Ok(risk.map(|(address, country)| {
        (
            format!(
                "{address} (your SSH session) is in {country}, which is key-only: your next password login from there will be refused"
            ),
            format!("log in with a key, or `guardctl allow add {address}`"),
        )
    }))
}

fn codes(countries: &[Country]) -> String {
    countries
        .iter()
        .map(Country::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
