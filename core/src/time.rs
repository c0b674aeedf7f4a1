//! Wall-clock time as the store keeps it (Unix seconds) and as people and
//! programs read it (RFC 3339 UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC. The store's only time unit.
pub type Timestamp = i64;

/// Now, in store time.
pub fn now() -> Timestamp {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => secs(d),
        // A clock before 1970 is a broken clock; treat it as the epoch.
        Err(_) => 0,
    }
}

/// A duration in store seconds, saturating (a 500-year window is "forever",
/// never an overflow). The one conversion every window and ban length uses.
pub fn secs(d: Duration) -> Timestamp {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The instant `d` before `now` (the start of a window), saturating.
pub fn before(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_sub(secs(d))
}

/// The instant `d` after `now` (the end of a ban), saturating.
pub fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(secs(d))
}

/// Splits a timestamp into UTC calendar fields (year, month, day, hour, minute, second).
pub fn civil(ts: Timestamp) -> (i64, u32, u32, u32, u32, u32) {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    (year, month, day, h as u32, m as u32, s as u32)
}

/// RFC 3339 in UTC with a `Z`, e.g. `2026-11-24T19:50:01Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    let (y, mo, d, h, mi, s) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_549_801), "2026-11-24T19:50:01Z");
    }

    #[test]
    fn windows_saturate_instead_of_overflowing() {
        let forever = Duration::from_secs(u64::MAX);
        assert_eq!(secs(forever), i64::MAX);
        assert_eq!(before(100, forever), i64::MIN + 101);
        assert_eq!(after(100, forever), i64::MAX);
        assert_eq!(before(1_000, Duration::from_secs(600)), 400);
    }
}
