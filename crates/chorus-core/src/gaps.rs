//! Closing the holes that deliberate drops would leave in a numbering.
//!
//! When the forwarder drops a packet on purpose (a temporal layer above the cap),
//! the subscriber must not see a missing sequence number (it would NACK it) nor a
//! missing picture id (its decoder would wait for that frame). `GapCloser` maps
//! input numbers to a "closed" numbering in which dropped numbers do not exist,
//! while loss (numbers never seen) still leaves its gap.
//!
//! Limits: a drop closes its gap only if no later number has been forwarded yet
//! (reordering among dropped packets is fine); otherwise it leaves its hole, because
//! numbers after it have already gone out counting it. Only the last [`RUNS`] runs of drops are remembered;
//! a packet older than those is refused rather than guessed.

/// Runs of consecutive dropped numbers remembered, for packets arriving late.
/// With three temporal layers capped at TL0 there is one run every four frames,
/// so eight runs cover about a second of video at 30 fps.
pub const RUNS: usize = 8;

/// Why a number cannot be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    /// It was dropped before and its slot has been closed.
    Dropped,
    /// Older than the oldest run remembered.
    TooOld,
}

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// First dropped number.
    from: u64,
    /// First number after the run.
    to: u64,
    /// Numbers dropped up to `to`, this run included.
    removed: u64,
}

/// Maps numbers of one stream (sequence numbers, or picture ids) to a numbering
/// without the ones dropped on purpose. Fixed size; no allocation.
#[derive(Debug, Clone, Default)]
pub struct GapCloser {
    runs: [Run; RUNS],
    len: usize,
    /// Highest number forwarded: a drop below it cannot close its slot.
    highest_kept: Option<u64>,
    /// Numbers below this are older than what is remembered (after evictions).
    floor: u64,
    /// Numbers removed below `floor`.
    floor_removed: u64,
}

impl GapCloser {
    /// The stream starts over (a new source): forget everything.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// `n` is forwarded: its number in the closed numbering.
    pub fn keep(&mut self, n: u64) -> Result<u64, Unmapped> {
        if n < self.floor {
            return Err(Unmapped::TooOld);
        }
        // Newest run first: in-order packets hit it at once.
        let removed = match self.runs[..self.len].iter().rev().find(|r| r.from <= n) {
            Some(r) if n < r.to => return Err(Unmapped::Dropped),
            Some(r) => r.removed,
            None => self.floor_removed,
        };
        self.highest_kept = Some(self.highest_kept.map_or(n, |h| h.max(n)));
        Ok(n - removed)
    }

    /// `n` is dropped on purpose. Returns whether its slot is closed.
    pub fn drop(&mut self, n: u64) -> bool {
        if n < self.floor {
            return false;
        }
        let i = self.runs[..self.len].partition_point(|r| r.from <= n);
        if i > 0 && n < self.runs[i - 1].to {
            return true; // the same number again (another packet of a dropped frame)
        }
        if self.highest_kept.is_some_and(|h| n <= h) {
            return false; // a later number already went out with this slot counted
        }
        let joins_prev = i > 0 && self.runs[i - 1].to == n;
        let joins_next = i < self.len && self.runs[i].from == n + 1;
        // The first run whose `removed` already counts `n` after the change below.
        let counted = match (joins_prev, joins_next) {
            (true, true) => {
                self.runs[i - 1].to = self.runs[i].to;
                self.runs[i - 1].removed = self.runs[i].removed + 1;
                self.runs.copy_within(i + 1..self.len, i);
                self.len -= 1;
                i
            }
            (true, false) => {
                self.runs[i - 1].to += 1;
                self.runs[i - 1].removed += 1;
                i
            }
            (false, true) => {
                self.runs[i].from = n;
                self.runs[i].removed += 1;
                i + 1
            }
            (false, false) => {
                let Some(i) = self.make_room(i) else {
                    return false;
                };
                let before = if i > 0 {
                    self.runs[i - 1].removed
                } else {
                    self.floor_removed
                };
                self.runs.copy_within(i..self.len, i + 1);
                self.runs[i] = Run {
                    from: n,
                    to: n + 1,
                    removed: before,
                };
                self.len += 1;
                i
            }
        };
        // Every run from the new one on is one further from its input numbers.
        for r in &mut self.runs[counted..self.len] {
            r.removed += 1;
        }
        true
    }

    /// Room for a run at index `i`, forgetting the oldest run if full; the index it
    /// moved to, or `None` if the new run would be the one forgotten.
    fn make_room(&mut self, i: usize) -> Option<usize> {
        if self.len < RUNS {
            return Some(i);
        }
        if i == 0 {
            return None;
        }
        let oldest = self.runs[0];
        self.floor = oldest.to;
        self.floor_removed = oldest.removed;
        self.runs.copy_within(1..self.len, 0);
        self.len -= 1;
        Some(i - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Keep(u64),
        Drop(u64),
    }
    use Op::*;

    /// (operations, what each returns: Ok(mapped) for Keep, Ok(1/0) closed or not for Drop)
    #[test]
    fn gap_closer_table() {
        type Want = Result<u64, Unmapped>;
        let cases: &[(&str, &[(Op, Want)])] = &[
            (
                "drops in order close their slots",
                &[
                    (Keep(10), Ok(10)),
                    (Drop(11), Ok(1)),
                    (Drop(12), Ok(1)),
                    (Keep(13), Ok(11)),
                    (Drop(14), Ok(1)),
                    (Keep(15), Ok(12)),
                ],
            ),
            (
                "loss keeps its gap",
                &[(Keep(10), Ok(10)), (Drop(11), Ok(1)), (Keep(14), Ok(13))],
            ),
            (
                "late packets map with the offset of their time",
                &[
                    (Keep(10), Ok(10)),
                    (Drop(12), Ok(1)),
                    (Keep(13), Ok(12)),
                    (Keep(11), Ok(11)),
                    (Keep(12), Err(Unmapped::Dropped)),
                ],
            ),
            (
                "late drops close their slots while nothing after them went out",
                &[
                    (Keep(10), Ok(10)),
                    (Drop(13), Ok(1)),
                    (Drop(11), Ok(1)),
                    (Drop(12), Ok(1)),
                    (Keep(14), Ok(11)),
                    (Keep(15), Ok(12)),
                ],
            ),
            (
                "a late drop between runs shifts the later runs",
                &[
                    (Keep(10), Ok(10)),
                    (Drop(11), Ok(1)),
                    (Drop(15), Ok(1)),
                    (Drop(13), Ok(1)),
                    (Keep(16), Ok(13)),
                    (Keep(14), Ok(12)),
                    (Keep(12), Ok(11)),
                ],
            ),
            (
                "a late drop leaves its hole",
                &[(Keep(10), Ok(10)), (Keep(12), Ok(12)), (Drop(11), Ok(0))],
            ),
            (
                "duplicates map the same",
                &[
                    (Keep(10), Ok(10)),
                    (Drop(11), Ok(1)),
                    (Drop(11), Ok(1)),
                    (Keep(12), Ok(11)),
                    (Keep(12), Ok(11)),
                ],
            ),
        ];
        for (what, ops) in cases {
            let mut g = GapCloser::default();
            for (i, (op, want)) in ops.iter().enumerate() {
                let got = match *op {
                    Keep(n) => g.keep(n),
                    Drop(n) => Ok(g.drop(n) as u64),
                };
                assert_eq!(got, *want, "{what}: step {i} {op:?}");
            }
        }
    }

    #[test]
    fn old_runs_are_forgotten_not_guessed() {
        let mut g = GapCloser::default();
        // RUNS + 2 separate drops: 1, 3, 5, …
        for i in 0..(RUNS as u64 + 2) {
            assert_eq!(g.keep(2 * i), Ok(i));
            assert!(g.drop(2 * i + 1));
        }
        assert_eq!(g.keep(0), Err(Unmapped::TooOld));
        assert_eq!(g.keep(2), Err(Unmapped::TooOld));
        // Still remembered: everything from the third run on.
        assert_eq!(g.keep(6), Ok(3));
        assert_eq!(g.keep(100), Ok(100 - (RUNS as u64 + 2)));
    }
}
