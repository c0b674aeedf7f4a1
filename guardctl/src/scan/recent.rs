//! One source's recent failures for the scan's replay, oldest first. The
//! first [`INLINE`] live in place, in the source's map entry: replaying a
//! million-line log touches one cache line per event instead of two (the
//! entry and a heap buffer). More spill into a `VecDeque`.

use std::collections::VecDeque;

/// Failures kept in place: a source is banned after `max_failures` (5) of
/// weight 1, so most never need more.
const INLINE: usize = 6;

/// `(time, weight)` of each failure still within `find_time`.
#[derive(Debug, Default)]
pub(super) struct Recent {
    inline: [(i64, f64); INLINE],
    len: usize,
    /// Used once more than `INLINE` are kept at once, until it empties.
    more: VecDeque<(i64, f64)>,
}

impl Recent {
    pub(super) fn push(&mut self, failure: (i64, f64)) {
        if self.more.is_empty() && self.len < INLINE {
            self.inline[self.len] = failure;
            self.len += 1;
            return;
        }
        if self.more.is_empty() {
            self.more.extend(&self.inline[..self.len]);
            self.len = 0;
        }
        self.more.push_back(failure);
    }

    pub(super) fn front(&self) -> Option<(i64, f64)> {
        match self.more.front() {
            Some(&f) => Some(f),
            None => self.inline[..self.len].first().copied(),
        }
    }

    pub(super) fn pop_front(&mut self) {
        if self.more.pop_front().is_none() && self.len > 0 {
            self.inline.copy_within(1..self.len, 0);
            self.len -= 1;
        }
    }

    /// The weights' sum.
    pub(super) fn weight(&self) -> f64 {
        let inline: f64 = self.inline[..self.len].iter().map(|&(_, w)| w).sum();
        inline + self.more.iter().map(|&(_, w)| w).sum::<f64>()
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.more.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_the_spill() {
        let mut r = Recent::default();
        for t in 0..10 {
            r.push((t, 0.5));
        }
        assert_eq!(r.weight(), 5.0);
        for t in 0..10 {
            assert_eq!(r.front(), Some((t, 0.5)));
            r.pop_front();
        }
        assert_eq!(r.front(), None);
        r.push((20, 1.0));
        r.push((21, 2.0));
        r.pop_front();
        assert_eq!((r.front(), r.weight()), (Some((21, 2.0)), 2.0));
        r.clear();
        assert_eq!(r.front(), None);
    }
}
