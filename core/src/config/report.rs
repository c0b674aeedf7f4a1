//! `[report]`: abuse reports — who they come from, how they are mailed,
//! which go out without a person, and when a contact that never acts is
//! no longer told.

use super::{
    GiveUpAfter, MailCap, PositiveDuration, SendmailCommand, SubnetOffenders, WhoisServer,
};
use crate::duration::HumanDuration;
use serde::Deserialize;

/// `[report]`. An empty sender means `root@HOSTNAME` and the host name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// The `From:` address (and X-ARF `Reported-From`).
    pub from: String,
    /// Who reports, in words (a person, a company, the host).
    pub reporter: String,
    /// Names of this host's own accounts (`/etc/passwd`) never appear in a
    /// report: the user names an attacker guessed are fine to show, the
    /// names of real local accounts are not.
    pub redact_users: bool,
    /// Where abuse contacts are asked first (`host` or `host:port`, whois
    /// port 43 by default); its referral is followed to the registry.
    pub whois_server: WhoisServer,
    /// How long an abuse contact found by whois is kept (in the store)
    /// before it is asked again.
    pub whois_max_age: PositiveDuration,
    /// The MTA's submission command; the message goes to its standard input.
    pub sendmail: SendmailCommand,
    /// Which bans are reported without a person (empty: none).
    pub auto: Vec<AutoReport>,
    /// At most one automatic report per abuse contact this often.
    pub interval: PositiveDuration,
    /// At most this many automatic reports in any 24 hours, all contacts
    /// together.
    pub max_per_day: MailCap,
    /// Contacts that want X-ARF (`abuse@isp.example`, or `@isp.example` for
    /// a whole domain).
    pub xarf: Vec<String>,
    /// A reported source seen attacking again this long after its report
    /// counts against its contact.
    pub grace: PositiveDuration,
    /// A contact judged unresponsive after this many reports is no longer
    /// mailed.
    pub give_up_after: GiveUpAfter,
    /// What the networks of a contact given up on get.
    pub unresponsive: Unresponsive,
    /// With `unresponsive = "subnet"`: banned sources inside one of its
    /// subnets that get the subnet banned.
    pub unresponsive_subnet_offenders: SubnetOffenders,
}

impl Default for ReportConfig {
    fn default() -> Self {
        let days = |n: u64| PositiveDuration(HumanDuration::secs(n * 86_400));
        ReportConfig {
            from: String::new(),
            reporter: String::new(),
            redact_users: true,
            whois_server: WhoisServer {
                host: "whois.iana.org".into(),
                port: 43,
            },
            whois_max_age: days(30),
            sendmail: SendmailCommand::default(),
            auto: Vec::new(),
            interval: days(1),
            max_per_day: MailCap(20),
            xarf: Vec::new(),
            grace: days(2),
            give_up_after: GiveUpAfter(3),
            unresponsive: Unresponsive::Ignore,
            unresponsive_subnet_offenders: SubnetOffenders(2),
        }
    }
}

impl ReportConfig {
    /// Whether `contact` wants X-ARF rather than plain text.
    pub fn wants_xarf(&self, contact: &str) -> bool {
        let contact = contact.to_ascii_lowercase();
        self.xarf.iter().any(|want| {
            let want = want.to_ascii_lowercase();
            if want.starts_with('@') {
                contact.ends_with(&want)
            } else {
                contact == want
            }
        })
    }
}

/// `[report] auto`: a kind of ban reported without a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoReport {
    /// A repeat offender's long ban (the recidive rule).
    Recidive,
    /// Every ban this host made from its own evidence (PAM, sshd's log, recidive).
    Ban,
}

/// `[report] unresponsive`: what the networks of a contact given up on
/// (unresponsive after `give_up_after` reports) get, beyond no more mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unresponsive {
    /// Nothing more.
    Ignore,
    /// The subnet rule, at `unresponsive_subnet_offenders`, for the subnets
    /// (`[policy] subnet_ipv4_prefix`, `subnet_ipv6_prefix`) holding
    /// sources whose abuse contact it is, even with the rule off.
    Subnet,
}
