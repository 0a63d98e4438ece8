//! Drops counted where everyone may read them: each endpoint's task adds its drops to
//! its room's [`DropCounts`] as they happen, and the room reports them (`GET
//! /v1/rooms/{room}`, `/metrics`) without asking the tasks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::endpoint::DropReason;

/// Datagrams not taken, by [`DropReason`], summed over a room's plain-RTP participants.
#[derive(Debug, Default)]
pub struct DropCounts([AtomicU64; DropReason::ALL.len()]);

impl DropCounts {
    pub fn add(&self, reason: DropReason) {
        self.0[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize].load(Ordering::Relaxed)
    }

    /// Every reason with its count, zeros included, in [`DropReason::ALL`]'s order.
    pub fn reading(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().map(|r| (r, self.get(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason lands in its own counter (`ALL` and the discriminants agree).
    #[test]
    fn each_reason_counts_apart() {
        let counts = DropCounts::default();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                counts.add(reason);
            }
        }
        for (i, (reason, n)) in counts.reading().enumerate() {
            assert_eq!(reason, DropReason::ALL[i]);
            assert_eq!(n, i as u64 + 1, "{}", reason.as_str());
        }
    }
}
