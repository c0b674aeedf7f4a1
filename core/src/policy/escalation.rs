//! Ban arithmetic: how long a source's next ban lasts, before the recidive
//! rule (see [`super::ban`]) can make it longer.

use crate::config::PolicyConfig;
use std::time::Duration;

/// How long the ban of a source that has had `earlier_bans` bans before lasts:
/// `ban_time × ban_time_factor^earlier_bans`, capped at `ban_time_max`.
pub fn ban_duration(policy: &PolicyConfig, earlier_bans: u32) -> Duration {
    escalate(
        policy.ban_time.0.0,
        policy.ban_time_factor.0,
        earlier_bans,
        policy.ban_time_max.0.0,
    )
}

/// `base × factor^n`, capped at `max` (and never below `base`).
pub fn escalate(base: Duration, factor: f64, n: u32, max: Duration) -> Duration {
    let exponent = i32::try_from(n).unwrap_or(i32::MAX);
    let secs = base.as_secs_f64() * factor.max(1.0).powi(exponent);
    if !secs.is_finite() || secs >= max.as_secs_f64() {
        return max.max(base);
    }
    Duration::from_secs(secs.round() as u64).max(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN10: Duration = Duration::from_secs(600);
    const DAYS90: Duration = Duration::from_secs(90 * 86_400);

    #[test]
    fn doubles_from_ten_minutes_to_the_cap() {
        assert_eq!(escalate(MIN10, 2.0, 0, DAYS90), MIN10);
        assert_eq!(escalate(MIN10, 2.0, 1, DAYS90), Duration::from_secs(1200));
        assert_eq!(escalate(MIN10, 2.0, 3, DAYS90), Duration::from_secs(4800));
        // 10m × 2^14 = 113 days: capped at 90 days.
        assert_eq!(escalate(MIN10, 2.0, 14, DAYS90), DAYS90);
        assert_eq!(escalate(MIN10, 2.0, u32::MAX, DAYS90), DAYS90);
    }

    #[test]
    fn default_policy_escalates() {
        let p = PolicyConfig::default();
        assert_eq!(ban_duration(&p, 0), MIN10);
        assert_eq!(ban_duration(&p, 2), Duration::from_secs(2400));
    }

    proptest! {
        #[test]
        fn monotonic_and_bounded(base in 1u64..100_000, factor in 1.0f64..10.0, n in 0u32..200, max_extra in 0u64..10_000_000) {
            let base = Duration::from_secs(base);
            let max = base + Duration::from_secs(max_extra);
            let d = escalate(base, factor, n, max);
            prop_assert!(d >= base && d <= max);
            prop_assert!(escalate(base, factor, n + 1, max) >= d);
        }
    }
}
