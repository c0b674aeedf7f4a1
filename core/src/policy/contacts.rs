//! Whether an abuse contact acts on reports: judged from what its reported
//! sources did after their report ([`ContactLedger`]).
//!
//! A source can be judged once `grace` has passed since its report while
//! this host could see it (a ban in force drops its packets; the grace
//! counts from that ban's end). It is *back* if it offended later than
//! `grace` after its report. A contact is `unresponsive` when more than
//! half the sources that can be judged came back, `responsive` when at
//! most half did, `too early` while none can be judged yet. One found
//! unresponsive after `give_up_after` reports is no longer mailed.

use crate::time::Timestamp;

/// What became of one source after its first report to a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFate {
    /// The source.
    pub source: String,
    /// When it was first reported to this contact.
    pub reported: Timestamp,
    /// Its first offence (attempt or local ban) more than the grace after
    /// that, if any.
    pub back: Option<Timestamp>,
    /// Until when this host could not have seen it (a ban in force after
    /// the report drops its packets); `reported` if none.
    pub unseen_until: Timestamp,
}

/// One abuse contact's reports and what followed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLedger {
    /// The contact (lower case).
    pub contact: String,
    /// Reports sent to it.
    pub reports: u32,
    /// When the last one went.
    pub last_report: Timestamp,
    /// Each source reported to it.
    pub sources: Vec<SourceFate>,
}

/// What the contact's sources tell of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Most of its reported sources stopped.
    Responsive,
    /// Most came back after the grace.
    Unresponsive,
    /// No source can be judged yet.
    TooEarly,
}

impl Verdict {
    /// The word `report contacts` prints.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Responsive => "responsive",
            Verdict::Unresponsive => "unresponsive",
            Verdict::TooEarly => "too early",
        }
    }
}

/// A contact judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Distinct sources reported to it.
    pub sources_reported: u32,
    /// Of those, the ones that can be judged.
    pub sources_judged: u32,
    /// Of those, the ones seen attacking again after the grace.
    pub sources_back: u32,
    /// Unresponsive after `give_up_after` reports or more: not mailed again.
    pub given_up: bool,
}

/// Judges one contact at `now`.
pub fn judge(ledger: &ContactLedger, grace: i64, give_up_after: u32, now: Timestamp) -> Judgement {
    let mut judged = 0;
    let mut back = 0;
    for fate in &ledger.sources {
        if fate.back.is_some() {
            judged += 1;
            back += 1;
        } else if now >= fate.unseen_until.max(fate.reported).saturating_add(grace) {
            judged += 1;
        }
    }
    let verdict = if judged == 0 {
        Verdict::TooEarly
    } else if back * 2 > judged {
        Verdict::Unresponsive
    } else {
        Verdict::Responsive
    };
    Judgement {
        verdict,
        sources_reported: u32::try_from(ledger.sources.len()).unwrap_or(u32::MAX),
        sources_judged: judged,
        sources_back: back,
        given_up: verdict == Verdict::Unresponsive && ledger.reports >= give_up_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn ledger(reports: u32, fates: &[(Timestamp, Option<Timestamp>, Timestamp)]) -> ContactLedger {
        ContactLedger {
            contact: "abuse@isp.example".into(),
            reports,
            last_report: fates.iter().map(|f| f.0).max().unwrap_or(0),
            sources: fates
                .iter()
                .enumerate()
                .map(|(i, &(reported, back, unseen_until))| SourceFate {
                    source: format!("203.0.113.{i}"),
                    reported,
                    back,
                    unseen_until,
                })
                .collect(),
        }
    }

    #[test]
    fn nothing_can_be_judged_within_the_grace() {
        let l = ledger(1, &[(0, None, 0)]);
        let j = judge(&l, 2 * DAY, 3, DAY);
        assert_eq!((j.verdict, j.sources_judged), (Verdict::TooEarly, 0));
    }

    #[test]
    fn sources_that_stopped_make_a_contact_responsive() {
        let l = ledger(2, &[(0, None, 0), (0, Some(3 * DAY), 0)]);
        let j = judge(&l, 2 * DAY, 3, 5 * DAY);
        assert_eq!(
            j.verdict,
            Verdict::Responsive,
            "one of two back is not most"
        );
        assert_eq!((j.sources_judged, j.sources_back), (2, 1));
    }

    #[test]
    fn a_contact_whose_sources_come_back_is_given_up_after_enough_reports() {
        let fates = [(0, Some(3 * DAY), 0), (0, Some(4 * DAY), 0), (0, None, 0)];
        let j = judge(&ledger(2, &fates), 2 * DAY, 3, 5 * DAY);
        assert_eq!((j.verdict, j.given_up), (Verdict::Unresponsive, false));
        let j = judge(&ledger(3, &fates), 2 * DAY, 3, 5 * DAY);
        assert!(j.given_up);
    }

    #[test]
    fn a_source_the_firewall_drops_is_not_judged_until_its_ban_ends_plus_the_grace() {
        // Banned for 30 days after its report: silence proves nothing yet.
        let l = ledger(1, &[(0, None, 30 * DAY)]);
        assert_eq!(judge(&l, 2 * DAY, 3, 31 * DAY).verdict, Verdict::TooEarly);
        assert_eq!(judge(&l, 2 * DAY, 3, 32 * DAY).verdict, Verdict::Responsive);
    }
}
