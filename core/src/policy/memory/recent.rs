//! One source's live failures in memory, oldest first. The first
//! [`INLINE`] live in place, in the source's map entry: replaying a
//! million-line log touches one cache line per event instead of two (the
//! entry and a heap buffer). More spill into a `VecDeque`.

use std::collections::VecDeque;

/// Failures kept in place: a source is banned after `max_failures` (5) of
/// weight 1, so most never need more.
const INLINE: usize = 6;

/// One live failure: when, its weight, and a hash of the user name (a
/// success forgives only that user's failures).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Failure {
    pub(super) at: i64,
    pub(super) weight: f64,
    pub(super) user: u64,
}

/// The live failures of one source.
#[derive(Debug, Default)]
pub(super) struct Recent {
    inline: [Failure; INLINE],
    len: usize,
    /// Used once more than `INLINE` are kept at once, until it empties.
    more: VecDeque<Failure>,
}

impl Recent {
    pub(super) fn push(&mut self, failure: Failure) {
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

    pub(super) fn front(&self) -> Option<Failure> {
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
        let inline: f64 = self.inline[..self.len].iter().map(|f| f.weight).sum();
        inline + self.more.iter().map(|f| f.weight).sum::<f64>()
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.more.clear();
    }

    /// Drops the failures at or before `since`.
    pub(super) fn drop_until(&mut self, since: i64) {
        while self.front().is_some_and(|f| f.at <= since) {
            self.pop_front();
        }
    }

    /// Drops `user`'s failures, keeping the others in order.
    pub(super) fn forgive(&mut self, user: u64) {
        let kept: Vec<Failure> = self.iter().filter(|f| f.user != user).collect();
        self.clear();
        kept.into_iter().for_each(|f| self.push(f));
    }

    fn iter(&self) -> impl Iterator<Item = Failure> + '_ {
        self.inline[..self.len]
            .iter()
            .chain(self.more.iter())
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(at: i64, weight: f64) -> Failure {
        Failure {
            at,
            weight,
            user: (at % 2) as u64,
        }
    }

    #[test]
    fn keeps_order_across_the_spill() {
        let mut r = Recent::default();
        for t in 0..10 {
            r.push(f(t, 0.5));
        }
        assert_eq!(r.weight(), 5.0);
        for t in 0..10 {
            assert_eq!(r.front(), Some(f(t, 0.5)));
            r.pop_front();
        }
        assert_eq!(r.front(), None);
        r.push(f(20, 1.0));
        r.push(f(21, 2.0));
        r.pop_front();
        assert_eq!((r.front(), r.weight()), (Some(f(21, 2.0)), 2.0));
        r.clear();
        assert_eq!(r.front(), None);
    }

    #[test]
    fn forgiving_a_user_keeps_the_others_in_order() {
        let mut r = Recent::default();
        (0..9).for_each(|t| r.push(f(t, 1.0)));
        r.forgive(0);
        assert_eq!(r.weight(), 4.0);
        r.drop_until(4);
        assert_eq!((r.front(), r.weight()), (Some(f(5, 1.0)), 2.0));
    }
}
