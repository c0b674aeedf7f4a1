//! Mailing a complaint and writing it down: the MTA first, the store
//! after, so nothing is recorded as sent that the MTA did not take.

use crate::context::Context;
use crate::mail;
use crate::report::Facts;
use anyhow::Context as _;
use authguard_core::policy::contacts::{self, Judgement};
use authguard_core::store::Store;
use authguard_core::store::reports::{ReportedSource, SentReport};
use authguard_core::time::Timestamp;

/// A complaint ready for the MTA: the message, and what the store will
/// keep of it once the MTA took it (`report.contact` is the checked
/// recipient).
#[derive(Debug)]
pub struct Outgoing {
    /// The whole message, headers first.
    pub message: String,
    /// Its record.
    pub report: SentReport,
}

/// What the store keeps of one source a complaint quoted `max_lines` of.
pub fn reported(facts: &Facts, max_lines: usize) -> ReportedSource {
    let (first, last) = facts.span();
    ReportedSource {
        address: facts.address.clone(),
        source: facts.network.clone(),
        first,
        last,
        lines: facts.quoted_lines(max_lines),
    }
}

/// How `contact` stands: its judgement, if it was ever reported to.
pub fn standing(
    ctx: &Context,
    store: &Store,
    contact: &str,
    now: Timestamp,
) -> anyhow::Result<Option<Judgement>> {
    let r = &ctx.config.report;
    let grace = grace_secs(ctx);
    Ok(store
        .contact_ledger(contact, grace)?
        .map(|ledger| contacts::judge(&ledger, grace, r.give_up_after.0, now)))
}

/// Why `contact` is no longer mailed, in words, if it is not.
pub fn given_up_words(j: &Judgement, contact: &str, ctx: &Context) -> Option<String> {
    j.given_up.then(|| {
        format!(
            "{contact} is unresponsive: {} of {} reported sources that can be judged attacked again more than {} after their report, and reports stop after {} (give_up_after)",
            j.sources_back,
            j.sources_judged,
            ctx.config.report.grace.0,
            ctx.config.report.give_up_after.0
        )
    })
}

/// `[report] grace` in seconds.
pub fn grace_secs(ctx: &Context) -> i64 {
    i64::try_from(ctx.config.report.grace.0.0.as_secs()).unwrap_or(i64::MAX)
}

/// Hands `out` to the MTA, then records it (sent at `report.sent`). An MTA that fails records
/// nothing; a store that fails after the MTA took it says which message
/// went unrecorded.
pub fn deliver(ctx: &Context, store: &mut Store, out: &Outgoing) -> anyhow::Result<()> {
    let r = &out.report;
    mail::submit(&ctx.config.report.sendmail.0, &out.message)
        .with_context(|| format!("the report to {} was not sent", r.contact))?;
    store.record_report(r).with_context(|| {
        format!(
            "the report to {} was sent (Message-ID <{}>) but could not be recorded",
            r.contact, r.message_id
        )
    })?;
    ctx.log(&format!(
        "report sent to {} about {} (Message-ID <{}>, {} log lines)",
        r.contact,
        r.sources
            .iter()
            .map(|s| s.address.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        r.message_id,
        r.sources.iter().map(|s| s.lines).sum::<u32>()
    ));
    Ok(())
}
