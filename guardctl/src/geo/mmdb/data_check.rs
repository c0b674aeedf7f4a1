//! Checks a MaxMind DB data section before the `maxminddb` crate decodes
//! it: every value the search tree (or the metadata) refers to must lie
//! inside the section, nest at most [`MAX_DEPTH`] deep, and never reach a
//! pointer to a pointer. The crate decodes recursively and follows
//! pointers as it meets them, so a crafted section whose pointers loop
//! would recurse until the stack overflows and the process aborts; here a
//! loop is an error naming the offset.
//!
//! Format (MaxMind DB spec 2.0): a control byte holds the type (3 bits; 0
//! means "extended", the next byte + 7) and a size (5 bits, extended by 1–3
//! bytes past 28). Pointers (type 1) carry 11–32 bits of offset instead.

use std::collections::HashSet;

/// Deeper nesting than any real database uses (GeoLite2: 4 levels).
pub const MAX_DEPTH: u32 = 32;

/// The checker: `validated` remembers pointer targets already checked, so
/// values shared through pointers (GeoLite2 shares most) cost once.
pub struct DataCheck<'a> {
    data: &'a [u8],
    validated: HashSet<usize>,
}

impl<'a> DataCheck<'a> {
    /// A checker over one data section (or the metadata section).
    pub fn new(data: &'a [u8]) -> DataCheck<'a> {
        DataCheck {
            data,
            validated: HashSet::new(),
        }
    }

    /// Checks the value at `offset` and everything it refers to.
    pub fn value_at(&mut self, offset: usize) -> Result<(), String> {
        self.value(offset, 0).map(|_| ())
    }

    /// Checks one value; returns the offset just past it.
    fn value(&mut self, offset: usize, depth: u32) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "data nested deeper than {MAX_DEPTH} levels at offset {offset} (a pointer loop?)"
            ));
        }
        let ctrl = self.byte(offset)?;
        if ctrl >> 5 == 1 {
            return self.pointer(offset, ctrl, depth);
        }
        let (kind, after_type) = match ctrl >> 5 {
            0 => (usize::from(self.byte(offset + 1)?) + 7, offset + 2),
            t => (usize::from(t), offset + 1),
        };
        let (size, start) = self.size(ctrl, after_type)?;
        match kind {
            2 | 4 => self.skip(start, size),
            3 => self.fixed(start, size, 8),
            15 => self.fixed(start, size, 4),
            5 => self.at_most(start, size, 2),
            6 | 8 => self.at_most(start, size, 4),
            9 => self.at_most(start, size, 8),
            10 => self.at_most(start, size, 16),
            14 => Ok(start),
            7 => self.items(start, size.saturating_mul(2), depth),
            11 => self.items(start, size, depth),
            other => Err(format!("data type {other} at offset {offset}")),
        }
    }

    /// A pointer: its target must not be a pointer; checked once.
    fn pointer(&mut self, offset: usize, ctrl: u8, depth: u32) -> Result<usize, String> {
        let extra = usize::from((ctrl >> 3) & 0x3) + 1;
        let bytes = self.bytes(offset + 1, extra)?;
        let low = usize::from(ctrl & 0x7);
        let joined = |start: usize| {
            bytes
                .iter()
                .fold(start, |acc, &b| (acc << 8) | usize::from(b))
        };
        let target = match extra {
            1 => joined(low),
            2 => joined(low) + 2048,
            3 => joined(low) + 526_336,
            _ => joined(0),
        };
        if self.byte(target)? >> 5 == 1 {
            return Err(format!(
                "pointer at offset {offset} points to another pointer"
            ));
        }
        if !self.validated.contains(&target) {
            self.value(target, depth + 1)?;
            self.validated.insert(target);
        }
        Ok(offset + 1 + extra)
    }

    /// `count` values one after another (a map's keys and values, or an
    /// array's elements).
    fn items(&mut self, mut at: usize, count: usize, depth: u32) -> Result<usize, String> {
        for _ in 0..count {
            at = self.value(at, depth + 1)?;
        }
        Ok(at)
    }

    /// The size in the control byte, extended by the bytes after `at`.
    fn size(&self, ctrl: u8, at: usize) -> Result<(usize, usize), String> {
        let small = usize::from(ctrl & 0x1f);
        let extended = |len: usize, base: usize| -> Result<(usize, usize), String> {
            let b = self.bytes(at, len)?;
            let n = b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
            Ok((base + n, at + len))
        };
        match small {
            0..=28 => Ok((small, at)),
            29 => extended(1, 29),
            30 => extended(2, 285),
            _ => extended(3, 65_821),
        }
    }

    /// A fixed-size number: its size must be `want`.
    fn fixed(&self, start: usize, size: usize, want: usize) -> Result<usize, String> {
        if size != want {
            return Err(format!(
                "a {want}-byte number of {size} bytes at offset {start}"
            ));
        }
        self.skip(start, size)
    }

    /// An integer of at most `max` bytes.
    fn at_most(&self, start: usize, size: usize, max: usize) -> Result<usize, String> {
        if size > max {
            return Err(format!(
                "a {size}-byte integer (at most {max}) at offset {start}"
            ));
        }
        self.skip(start, size)
    }

    /// `len` bytes from `start`, which must lie inside the section.
    fn skip(&self, start: usize, len: usize) -> Result<usize, String> {
        self.bytes(start, len).map(|_| start + len)
    }

    fn byte(&self, at: usize) -> Result<u8, String> {
        self.data
            .get(at)
            .copied()
            .ok_or_else(|| format!("data offset {at} is past the section's end"))
    }

    fn bytes(&self, at: usize, len: usize) -> Result<&'a [u8], String> {
        at.checked_add(len)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| format!("data at offset {at} runs past the section's end"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of one entry: "a" → `value`.
    fn map_of(value: &[u8]) -> Vec<u8> {
        let mut v = vec![0xE1, 0x41, b'a'];
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn well_formed_values_pass() {
        // {"a": "xy"}, then a pointer to it.
        let mut data = map_of(&[0x42, b'x', b'y']);
        data.extend_from_slice(&[0x20, 0x00]);
        let mut check = DataCheck::new(&data);
        check.value_at(0).unwrap();
        check.value_at(6).unwrap();
        // uint32 (type 6) of 2 bytes, a boolean, a double, an array of two.
        let data = [
            0xC2, 1, 2, 0x01, 0x07, 0x68, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x04, 0x40, 0x40,
        ];
        let mut check = DataCheck::new(&data);
        check.value_at(0).unwrap();
        check.value_at(3).unwrap();
        check.value_at(5).unwrap();
        check.value_at(14).unwrap();
    }

    #[test]
    fn a_pointer_loop_is_an_error_not_a_stack_overflow() {
        // {"a": <pointer to offset 0>}: the map contains itself.
        let data = map_of(&[0x20, 0x00]);
        let err = DataCheck::new(&data).value_at(0).unwrap_err();
        assert!(err.contains("deeper than"), "{err}");
    }

    #[test]
    fn damage_is_named() {
        let cases: [(&[u8], &str); 4] = [
            (&[0x45, b'a'], "runs past"),
            (&[0x20, 0x05], "past the section's end"),
            (&[0x20, 0x02, 0x20, 0x00], "another pointer"),
            (&[0x00, 0x05], "data type 12"),
        ];
        for (data, want) in cases {
            let err = DataCheck::new(data).value_at(0).unwrap_err();
            assert!(err.contains(want), "{data:?}: {err}");
        }
        let err = DataCheck::new(&[0x64, 0, 0, 0]).value_at(0).unwrap_err();
        assert!(err.contains("8-byte number of 4 bytes"), "{err}");
        let err = DataCheck::new(&[0xA3, 0, 0, 0]).value_at(0).unwrap_err();
        assert!(err.contains("3-byte integer (at most 2)"), "{err}");
    }
}
