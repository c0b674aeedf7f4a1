//! The timestamps log framings write, turned into Unix seconds UTC. No time
//! zone database: only numeric offsets and `Z` are understood.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Month abbreviations as RFC 3164 and `journalctl -o short` write them.
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). `month` is 1–12; a day past the month's end rolls over.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let month = i64::from(month);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A calendar date and wall-clock time as a log line writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CivilTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl CivilTime {
    fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
    }

    /// Unix seconds, for a clock `utc_offset` seconds ahead of UTC.
    fn to_unix(self, utc_offset: i64) -> i64 {
        let seconds_of_day = i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        days_from_civil(self.year, self.month, self.day) * DAY + seconds_of_day - utc_offset
    }
}

/// An ISO 8601 / RFC 3339 timestamp at the start of `text`:
/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM]`. Returns the Unix time
/// (`None` without a zone: the clock's zone is unknown) and the text after it.
pub(crate) fn parse_iso(text: &[u8]) -> Option<(Option<i64>, &[u8])> {
    let (year, rest) = take_number(text, 4)?;
    let (month, rest) = take_number(rest.strip_prefix(b"-")?, 2)?;
    let (day, rest) = take_number(rest.strip_prefix(b"-")?, 2)?;
    let (clock, rest) = parse_clock(rest.strip_prefix(b"T")?)?;
    let (offset, rest) = parse_zone(skip_fraction(rest));
    let time = CivilTime {
        year: i64::from(year),
        month,
        day,
        ..clock
    };
    time.is_valid()
        .then(|| (offset.map(|offset| time.to_unix(offset)), rest))
}

/// An RFC 3164 timestamp at the start of `text`: `Mmm dd HH:MM:SS`, the day
/// space-padded (`Nov  4`), optionally with a fraction (`journalctl -o
/// short-precise`). Returns the Unix time and the text after it.
///
/// The format has no year and no zone: the year is `year_hint`, and the
/// clock is taken as UTC. A host logging in local time, or a line from
/// another year (December's lines read in January), gets a shifted time;
/// callers that care pass the year the line was written in.
pub(crate) fn parse_rfc3164(text: &[u8], year_hint: i32) -> Option<(i64, &[u8])> {
    let month_index = MONTHS.iter().position(|month| text.starts_with(month))?;
    let rest = text[3..].strip_prefix(b" ")?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (day, rest) = take_number(rest, 2).or_else(|| take_number(rest, 1))?;
    let (clock, rest) = parse_clock(rest.strip_prefix(b" ")?)?;
    let month = u32::try_from(month_index + 1).ok()?;
    let time = CivilTime {
        year: i64::from(year_hint),
        month,
        day,
        ..clock
    };
    time.is_valid()
        .then(|| (time.to_unix(0), skip_fraction(rest)))
}

/// `journalctl -o short-full` (and `with-unit`): `Www YYYY-MM-DD HH:MM:SS[.fraction] ZONE`.
/// The zone is an abbreviation: `UTC` and `GMT` (or a numeric offset) give
/// the time, any other (`CET`) leaves it unknown (`None`), as no zone
/// database is read. Returns the time and the text after the zone.
pub(crate) fn parse_weekday_full(text: &[u8]) -> Option<(Option<i64>, &[u8])> {
    const WEEKDAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    if !WEEKDAYS.iter().any(|day| text.starts_with(day)) {
        return None;
    }
    let rest = text[3..].strip_prefix(b" ")?;
    let (year, rest) = take_number(rest, 4)?;
    let (month, rest) = take_number(rest.strip_prefix(b"-")?, 2)?;
    let (day, rest) = take_number(rest.strip_prefix(b"-")?, 2)?;
    let (clock, rest) = parse_clock(rest.strip_prefix(b" ")?)?;
    let rest = skip_fraction(rest).strip_prefix(b" ")?;
    let (zone, _) = crate::bytes::first_token(rest);
    let offset = match zone {
        b"UTC" | b"GMT" => Some(0),
        _ => match parse_zone(zone) {
            (Some(offset), b"") => Some(offset),
            _ => None,
        },
    };
    let time = CivilTime {
        year: i64::from(year),
        month,
        day,
        ..clock
    };
    let rest = &rest[zone.len()..];
    time.is_valid()
        .then(|| (offset.map(|offset| time.to_unix(offset)), rest))
}

/// `HH:MM:SS` as a time on 1970-01-01, and the text after it.
fn parse_clock(text: &[u8]) -> Option<(CivilTime, &[u8])> {
    let (hour, rest) = take_number(text, 2)?;
    let (minute, rest) = take_number(rest.strip_prefix(b":")?, 2)?;
    let (second, rest) = take_number(rest.strip_prefix(b":")?, 2)?;
    let clock = CivilTime {
        year: 1970,
        month: 1,
        day: 1,
        hour,
        minute,
        second,
    };
    Some((clock, rest))
}

/// A zone designator (`Z`, `+HH:MM`, `-HHMM`) as seconds ahead of UTC, and
/// the text after it; `None` and the same text when there is none.
fn parse_zone(text: &[u8]) -> (Option<i64>, &[u8]) {
    if let Some(rest) = text.strip_prefix(b"Z") {
        return (Some(0), rest);
    }
    let sign = match text.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return (None, text),
    };
    let offset = take_number(&text[1..], 2).and_then(|(hours, rest)| {
        let rest = rest.strip_prefix(b":").unwrap_or(rest);
        let (minutes, rest) = take_number(rest, 2)?;
        Some((sign * i64::from(hours * 3600 + minutes * 60), rest))
    });
    match offset {
        Some((offset, rest)) => (Some(offset), rest),
        None => (None, text),
    }
}

/// The text after an optional `.digits` fraction of a second.
pub(crate) fn skip_fraction(text: &[u8]) -> &[u8] {
    match text.strip_prefix(b".") {
        Some(rest) => crate::bytes::split_digits(rest).1,
        None => text,
    }
}

/// Exactly `width` ASCII digits at the start of `text`, and the text after them.
fn take_number(text: &[u8], width: usize) -> Option<(u32, &[u8])> {
    let digits = text.get(..width)?;
    let value = crate::bytes::parse_decimal(digits, width)?;
    Some((u32::try_from(value).ok()?, &text[width..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(
            days_from_civil(2026, 11, 24) * DAY + 19 * 3600 + 50 * 60 + 1,
            1_795_549_801
        );
    }

    #[test]
    fn iso_with_every_zone_form() {
        let expected = Some((Some(1_795_514_401), &b" host"[..]));
        assert_eq!(parse_iso(b"2026-11-24T10:00:01Z host"), expected);
        assert_eq!(
            parse_iso(b"2026-11-24T10:00:01.123456+00:00 host"),
            expected
        );
        assert_eq!(parse_iso(b"2026-11-24T11:00:01+0100 host"), expected);
        assert_eq!(parse_iso(b"2026-11-24T05:00:01.003-05:00 host"), expected);
        assert_eq!(
            parse_iso(b"2026-11-24T10:00:01 host"),
            Some((None, &b" host"[..]))
        );
    }

    #[test]
    fn iso_refuses_what_is_not_a_time() {
        assert_eq!(parse_iso(b"2026-13-24T10:00:01Z"), None);
        assert_eq!(parse_iso(b"2026-11-24 10:00:01Z"), None);
        assert_eq!(parse_iso(b"2026-11-24T25:00:01Z"), None);
        assert_eq!(parse_iso(b"Failed password"), None);
    }

    #[test]
    fn rfc3164_with_padded_days_and_fractions() {
        assert_eq!(
            parse_rfc3164(b"Nov 24 10:00:01 h", 2026),
            Some((1_795_514_401, &b" h"[..]))
        );
        assert_eq!(
            parse_rfc3164(b"Nov 24 10:00:01.123456 h", 2026),
            Some((1_795_514_401, &b" h"[..]))
        );
        let fourth = 1_795_514_401 - 20 * DAY;
        assert_eq!(
            parse_rfc3164(b"Nov  4 10:00:01 h", 2026),
            Some((fourth, &b" h"[..]))
        );
        assert_eq!(
            parse_rfc3164(b"Nov 4 10:00:01 h", 2026),
            Some((fourth, &b" h"[..]))
        );
    }

    #[test]
    fn rfc3164_refuses_what_is_not_a_time() {
        assert_eq!(parse_rfc3164(b"Nov 32 10:00:01 h", 2026), None);
        assert_eq!(parse_rfc3164(b"Now 24 10:00:01 h", 2026), None);
        assert_eq!(parse_rfc3164(b"Nov 24 10:0:01 h", 2026), None);
    }
}
