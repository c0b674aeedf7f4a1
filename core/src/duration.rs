//! Human durations: `90s`, `10m`, `1h30m`, `30d`, `2w` in, `9m 12s` out.

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration; write e.g. 90s, 10m, 1h, 30d")]
    Empty,
    /// A number without a unit, or a unit that is not one of s, m, h, d, w.
    #[error("`{0}` is not a duration; write e.g. 90s, 10m, 1h, 30d")]
    Invalid(String),
    /// Larger than authguard can represent (more than about 290 billion years).
    #[error("`{0}` is too long")]
    Overflow(String),
}

const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// Parses `90s`, `10m`, `1h30m`, `30d`, `2w` (units may repeat in any
/// order; whitespace between parts is allowed). Every number needs a unit.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = || DurationError::Invalid(trimmed.to_owned());
    let overflow = || DurationError::Overflow(trimmed.to_owned());
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in trimmed.chars().filter(|c| !c.is_whitespace()) {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let &(_, unit) = UNITS.iter().find(|(u, _)| *u == ch).ok_or_else(invalid)?;
        if digits.is_empty() {
            return Err(invalid());
        }
        let n: u64 = digits.parse().map_err(|_| overflow())?;
        let part = n.checked_mul(unit).ok_or_else(overflow)?;
        total = total.checked_add(part).ok_or_else(overflow)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(invalid());
    }
    if total > i64::MAX as u64 / 1000 {
        return Err(overflow());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration for a person: the two largest non-zero units,
/// `45s`, `9m 12s`, `2h 5m`, `3d 4h`, `12w 6d`.
pub fn human(duration: Duration) -> String {
    let mut rest = duration.as_secs();
    if rest == 0 {
        return "0s".into();
    }
    let mut parts = Vec::with_capacity(2);
    for (unit, secs) in UNITS {
        if rest >= secs && parts.len() < 2 {
            parts.push(format!("{}{unit}", rest / secs));
            rest %= secs;
        } else if !parts.is_empty() {
            // Only adjacent units: "1d 5s" would read oddly; stop after a gap.
            break;
        }
    }
    parts.join(" ")
}

/// Formats a duration exactly, in the syntax [`parse`] reads (`1h30m`).
pub fn exact(duration: Duration) -> String {
    let mut rest = duration.as_secs();
    if rest == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, secs) in UNITS {
        if rest >= secs {
            out.push_str(&format!("{}{unit}", rest / secs));
            rest %= secs;
        }
    }
    out
}

/// A duration that serializes as, and deserializes from, a human string
/// (an integer is taken as seconds). Used for config values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&exact(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"10m\", \"1h\" or \"30d\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(HumanDuration::secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
        }
        de.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["10", "m", "10x", "-5m", "1.5h", "ten minutes"] {
            assert!(
                matches!(parse(bad), Err(DurationError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(parse("  "), Err(DurationError::Empty));
        assert!(matches!(
            parse("99999999999999999999w"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn human_reads_well() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(552)), "9m 12s");
        assert_eq!(human(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(human(Duration::from_secs(90 * 86_400)), "12w 6d");
        assert_eq!(human(Duration::from_secs(86_405)), "1d");
    }

    proptest! {
        #[test]
        fn exact_round_trips(secs in 0u64..10_000_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(parse(&exact(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in ".{0,32}") {
            let _ = parse(&s);
        }
    }
}
