//! Which packets of a stream arrived, by extended sequence number.

/// A set of extended sequence numbers: one bit per number from the lowest inserted
/// (rounded down to a multiple of 64), so a track costs a bit per packet numbered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    /// The number of bit 0 of `words[0]`; a multiple of 64.
    base: u64,
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; false if it was there already.
    pub fn insert(&mut self, seq: u64) -> bool {
        let aligned = seq & !63;
        if self.words.is_empty() {
            self.base = aligned;
        } else if aligned < self.base {
            let missing = ((self.base - aligned) / 64) as usize;
            self.words.splice(0..0, std::iter::repeat_n(0, missing));
            self.base = aligned;
        }
        let word = ((seq - self.base) / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (seq % 64);
        if self.words[word] & bit != 0 {
            return false;
        }
        self.words[word] |= bit;
        self.len += 1;
        true
    }

    pub fn contains(&self, seq: u64) -> bool {
        seq >= self.base
            && self
                .words
                .get(((seq - self.base) / 64) as usize)
                .is_some_and(|w| w & 1 << (seq % 64) != 0)
    }

    /// Distinct numbers in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Numbers in the set that are above `after` and at most `through`.
    pub fn count_between(&self, after: u64, through: u64) -> u64 {
        if self.words.is_empty() {
            return 0;
        }
        let end = self.base + self.words.len() as u64 * 64;
        let (from, to) = (after.saturating_add(1).max(self.base), through.min(end - 1));
        if from > to {
            return 0;
        }
        let (first, last) = ((from - self.base) / 64, (to - self.base) / 64);
        (first..=last)
            .map(|w| {
                let mut word = self.words[w as usize];
                if w == first {
                    word &= u64::MAX << (from % 64);
                }
                if w == last {
                    word &= u64::MAX >> (63 - to % 64);
                }
                u64::from(word.count_ones())
            })
            .sum()
    }
}
