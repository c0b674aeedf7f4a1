//! Byte-slice helpers the parsers share. Log lines are bytes, not UTF-8:
//! user names may be anything.

/// Where `needle` first occurs in `haystack`. Needles here are a few
/// bytes and lines a hundred: a SIMD scan for one of the needle's rarer
/// bytes (its first that is not a space), then a compare, beats building
/// a substring finder per call.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((k, probe)) = probe_byte(needle) else {
        return Some(0);
    };
    let mut from = k;
    while let Some(hit) = memchr::memchr(probe, haystack.get(from..)?) {
        let at = from + hit - k;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from += hit + 1;
    }
    None
}

/// Where `needle` last occurs in `haystack`.
pub(crate) fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((k, probe)) = probe_byte(needle) else {
        return Some(haystack.len());
    };
    // The probe byte of a match starting at `at` sits at `at + k`, and
    // `at + needle.len()` must fit.
    let mut end = haystack.len().checked_sub(needle.len() - k - 1)?;
    while let Some(hit) = memchr::memrchr(probe, &haystack[..end]) {
        if let Some(at) = hit.checked_sub(k)
            && haystack[at..].starts_with(needle)
        {
            return Some(at);
        }
        end = hit;
    }
    None
}

/// The byte of `needle` to scan for, and its index: the first that is not
/// a space (spaces are everywhere in a log line). `None` for an empty needle.
fn probe_byte(needle: &[u8]) -> Option<(usize, u8)> {
    let k = needle.iter().position(|&b| b != b' ').unwrap_or(0);
    needle.get(k).map(|&b| (k, b))
}

/// Every position where `needle` occurs in `haystack`, left to right
/// (overlapping occurrences included).
pub(crate) fn find_all<'h>(
    haystack: &'h [u8],
    needle: &'h [u8],
) -> impl Iterator<Item = usize> + 'h {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + find(haystack.get(from..)?, needle)?;
        from = at + 1;
        Some(at)
    })
}

/// The text before and after the first `separator`, which is left out.
pub(crate) fn split_once<'a>(text: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = find(text, separator)?;
    Some((&text[..at], &text[at + separator.len()..]))
}

/// The text before and after the last `separator`, which is left out.
pub(crate) fn rsplit_once<'a>(text: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = rfind(text, separator)?;
    Some((&text[..at], &text[at + separator.len()..]))
}

/// The first space-separated token and the rest after that space (empty when none).
pub(crate) fn first_token(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|&b| b == b' ') {
        Some(space) => (&text[..space], &text[space + 1..]),
        None => (text, &[]),
    }
}

/// The line without its line ending (`\n`, `\r\n`, or `\r` as `sshd -E` writes).
pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// A decimal number of at most `max_digits` ASCII digits, and nothing else.
pub(crate) fn parse_decimal(digits: &[u8], max_digits: usize) -> Option<u64> {
    if digits.is_empty() || digits.len() > max_digits {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u64::from(b - b'0'))
    })
}

/// The leading run of ASCII digits and the rest.
pub(crate) fn split_digits(text: &[u8]) -> (&[u8], &[u8]) {
    let end = text
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_last_and_all() {
        assert_eq!(find(b"a from b from c", b" from "), Some(1));
        assert_eq!(rfind(b"a from b from c", b" from "), Some(8));
        assert_eq!(find(b"abc", b"x"), None);
        assert_eq!(rfind(b"ab", b"abc"), None);
        assert_eq!(find_all(b"xaxax", b"x").collect::<Vec<_>>(), vec![0, 2, 4]);
        assert_eq!(find(b"  port 1", b" port "), Some(1));
        assert_eq!(rfind(b" port  port ", b" port "), Some(6));
        assert_eq!(rfind(b"port ", b" port "), None);
        assert_eq!((find(b"ab", b""), rfind(b"ab", b"")), (Some(0), Some(2)));
        assert_eq!(find(b"   ", b"  "), Some(0));
        assert_eq!(rfind(b"   ", b"  "), Some(1));
    }

    proptest::proptest! {
        /// The same answers as the plain definitions.
        #[test]
        fn find_and_rfind_agree_with_windows(
            haystack in proptest::collection::vec(proptest::sample::select(b" ap\x00".to_vec()), 0..40),
            needle in proptest::collection::vec(proptest::sample::select(b" ap".to_vec()), 1..5),
        ) {
            let windows = || haystack.windows(needle.len());
            proptest::prop_assert_eq!(find(&haystack, &needle), windows().position(|w| w == needle.as_slice()));
            proptest::prop_assert_eq!(rfind(&haystack, &needle), windows().rposition(|w| w == needle.as_slice()));
        }
    }

    #[test]
    fn splits_on_separators_and_tokens() {
        assert_eq!(
            split_once(b"a: b: c", b": "),
            Some((&b"a"[..], &b"b: c"[..]))
        );
        assert_eq!(
            rsplit_once(b"a: b: c", b": "),
            Some((&b"a: b"[..], &b"c"[..]))
        );
        assert_eq!(
            first_token(b"host sshd[1]: x"),
            (&b"host"[..], &b"sshd[1]: x"[..])
        );
        assert_eq!(first_token(b"alone"), (&b"alone"[..], &b""[..]));
    }

    #[test]
    fn trims_every_line_ending() {
        assert_eq!(trim_line_end(b"x\r\n"), b"x");
        assert_eq!(trim_line_end(b"x\n"), b"x");
        assert_eq!(trim_line_end(b"x\r"), b"x");
        assert_eq!(trim_line_end(b"\r\n"), b"");
    }

    #[test]
    fn parses_bounded_decimals() {
        assert_eq!(parse_decimal(b"65535", 5), Some(65535));
        assert_eq!(parse_decimal(b"123456", 5), None);
        assert_eq!(parse_decimal(b"", 5), None);
        assert_eq!(parse_decimal(b"1a", 5), None);
        assert_eq!(split_digits(b"22: x"), (&b"22"[..], &b": x"[..]));
    }
}
