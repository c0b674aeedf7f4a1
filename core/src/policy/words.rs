//! The words a ban carries: who made it ([`Origin`]) and why it ended
//! ([`EndReason`]). Stored as text (a contract: `list --json` shows these
//! words); a word this build does not know (a newer authguard wrote it)
//! is kept as it is, never an error.

use std::fmt;

/// Who decided a ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The PAM module's attempts reached the threshold.
    Pam,
    /// sshd's log did.
    SshdLog,
    /// An admin (`guardctl ban`).
    Manual,
    /// The recidive rule: a repeat offender's long ban.
    Recidive,
    /// The subnet rule: enough banned sources in one subnet.
    Subnet,
    /// The fleet: a decision pulled from CrowdSec's LAPI.
    Crowdsec,
    /// A word this build does not know.
    Other(String),
}

impl Origin {
    /// Every origin this build knows (all but [`Origin::Other`]).
    pub const KNOWN: [Origin; 6] = [
        Origin::Pam,
        Origin::SshdLog,
        Origin::Manual,
        Origin::Recidive,
        Origin::Subnet,
        Origin::Crowdsec,
    ];
}

/// Why a ban ended before or at its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// It ran out.
    Expired,
    /// An admin lifted it (`guardctl unban`): no longer a past offender.
    Unbanned,
    /// An allow-list entry covering it was added.
    Allowed,
    /// The recidive sweep replaced it with the long ban.
    Replaced,
    /// The fleet deleted the decision it mirrored.
    Deleted,
    /// A word this build does not know.
    Other(String),
}

macro_rules! words {
    ($ty:ident { $($variant:ident => $word:literal),* $(,)? }) => {
        impl $ty {
            /// The stored word.
            pub fn as_str(&self) -> &str {
                match self {
                    $($ty::$variant => $word,)*
                    $ty::Other(word) => word,
                }
            }

            /// The variant for a stored word.
            pub fn from_word(word: &str) -> $ty {
                match word {
                    $($word => $ty::$variant,)*
                    other => $ty::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, word: &&str) -> bool {
                self.as_str() == *word
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

words!(Origin {
    Pam => "pam",
    SshdLog => "sshd-log",
    Manual => "manual",
    Recidive => "recidive",
    Subnet => "subnet",
    Crowdsec => "crowdsec",
});

words!(EndReason {
    Expired => "expired",
    Unbanned => "unbanned",
    Allowed => "allowed",
    Replaced => "replaced",
    Deleted => "deleted",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_comes_back_and_unknown_ones_are_kept() {
        for o in Origin::KNOWN {
            assert_eq!(Origin::from_word(o.as_str()), o);
        }
        assert_eq!(
            Origin::from_word("fleet-2"),
            Origin::Other("fleet-2".into())
        );
        assert_eq!(EndReason::from_word("expired"), EndReason::Expired);
        assert_eq!(EndReason::from_word("later").as_str(), "later");
    }
}
