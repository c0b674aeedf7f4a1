//! `guardctl report contacts`: every abuse contact reported to, judged by
//! what its reported sources did after their report.

use super::send::grace_secs;
use crate::context::Context;
use authguard_core::policy::contacts::{self, Judgement};
use authguard_core::store::Store;
use authguard_core::time::Timestamp;

/// One contact's line.
#[derive(Debug)]
pub struct ContactRow {
    /// The contact.
    pub contact: String,
    /// Reports sent to it.
    pub reports: u32,
    /// When the last one went.
    pub last_report: Timestamp,
    /// What its sources tell of it.
    pub judgement: Judgement,
}

/// Every contact, judged at `now`.
pub fn all(ctx: &Context, store: &Store, now: Timestamp) -> anyhow::Result<Vec<ContactRow>> {
    let grace = grace_secs(ctx);
    let give_up = ctx.config.report.give_up_after.0;
    Ok(store
        .contact_ledgers(grace)?
        .into_iter()
        .map(|l| ContactRow {
            judgement: contacts::judge(&l, grace, give_up, now),
            contact: l.contact,
            reports: l.reports,
            last_report: l.last_report,
        })
        .collect())
}
