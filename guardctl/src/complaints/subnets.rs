//! `[report] unresponsive = "subnet"`: after contacts are judged, the
//! subnets holding the networks of every contact given up on as
//! unresponsive are written to the store, where a new ban's subnet rule
//! reads them and bans the subnet at `unresponsive_subnet_offenders`.
//! Refreshed after each report sent, each automatic pass, and by the
//! daemon's reporter every [`super::auto::EVERY`].

use super::contacts;
use crate::context::Context;
use authguard_core::addr;
use authguard_core::config::Unresponsive;
use authguard_core::policy;
use authguard_core::store::Store;
use authguard_core::time::Timestamp;
use std::collections::BTreeMap;

/// Rewrites the stricter subnets from the contacts' standing at `now`
/// (none with the option off, so turning it off empties the table).
fn rewrite(ctx: &Context, store: &mut Store, now: Timestamp) -> anyhow::Result<()> {
    let wanted = if ctx.config.report.unresponsive == Unresponsive::Subnet {
        wanted(ctx, store, now)?
    } else {
        BTreeMap::new()
    };
    let (added, removed) = store.set_unresponsive_subnets(&wanted, now)?;
    if added + removed > 0 {
        ctx.log(&format!(
            "report: {} subnets of unresponsive contacts get the subnet rule at {} offenders ({added} added, {removed} removed)",
            wanted.len(),
            ctx.config.report.unresponsive_subnet_offenders.0
        ));
    }
    Ok(())
}

/// Rewrites the stricter subnets, logging a failure instead of returning
/// it: callers have done their real work already (a report sent, a pass run).
pub fn refresh(ctx: &Context, store: &mut Store, now: Timestamp) {
    if let Err(e) = rewrite(ctx, store, now) {
        ctx.say(&format!(
            "report: the subnets of unresponsive contacts were not refreshed: {e:#}"
        ));
    }
}

/// Subnet → contact, for every contact given up on.
fn wanted(
    ctx: &Context,
    store: &Store,
    now: Timestamp,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut subnets = BTreeMap::new();
    for row in contacts::all(ctx, store, now)? {
        if !row.judgement.given_up {
            continue;
        }
        for network in store.contact_networks(&row.contact)? {
            let Ok(net) = addr::parse_target(&network) else {
                continue;
            };
            let subnet = policy::subnet_of(&ctx.config.policy, &net);
            subnets
                .entry(addr::display(&subnet))
                .or_insert_with(|| row.contact.clone());
        }
    }
    Ok(subnets)
}
