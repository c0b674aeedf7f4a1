//! Byte-slice helpers the parsers share. Log lines are bytes, not UTF-8:
//! user names may be anything.

/// Where `needle` first occurs in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Where `needle` last occurs in `haystack`.
pub(crate) fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(haystack.len());
    }
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

/// Every position where `needle` occurs in `haystack`, left to right.
pub(crate) fn find_all<'h>(
    haystack: &'h [u8],
    needle: &'h [u8],
) -> impl Iterator<Item = usize> + 'h {
    haystack
        .windows(needle.len().max(1))
        .enumerate()
        .filter(move |(_, window)| *window == needle)
        .map(|(at, _)| at)
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
