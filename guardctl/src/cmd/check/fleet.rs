//! `guardctl check`'s word on the fleet: can the daemon read its key, and
//! what did its last pull say (reachable, skipped decisions, allowed
//! networks that won over a pulled one). Never the key itself.

use super::Finding;
use crate::context::Context;
use crate::crowdsec::lapi::credential;
use crate::crowdsec::link::LinkState;
use authguard_core::store::Store;

pub(super) fn finding(ctx: &Context, store: Option<&Store>) -> Finding {
    let c = &ctx.config.crowdsec;
    if !c.enabled() {
        return Finding::ok("crowdsec: no fleet ([crowdsec] url is empty)".into());
    }
    if let Err(e) = credential(c, &c.api_key_file, "api_key_file") {
        return Finding::fail(
            format!("crowdsec: {e:#}"),
            Some("write the key of `cscli bouncers add NAME -o raw` there, mode 0600".into()),
        );
    }
    let Some(state) = store.and_then(LinkState::last) else {
        return Finding::warning(
            format!("crowdsec: {} has not been pulled yet", c.url),
            "start the daemon (systemctl start authguard)".into(),
        );
    };
    let allowed = state.skipped.get("allowed network").copied().unwrap_or(0);
    let won = if allowed > 0 {
        format!("; allowed networks won over {allowed} pulled decision(s)")
    } else {
        String::new()
    };
    match &state.last_error {
        None => Finding::ok(format!(
            "crowdsec: {} reachable, {} decisions held{won}",
            c.url, state.held
        )),
        Some(e) => Finding::warning(
            format!("crowdsec: the last pull from {} failed: {e}{won}", c.url),
            "check [crowdsec] url and the LAPI (cscli lapi status); logins are decided from the local store meanwhile".into(),
        ),
    }
}
