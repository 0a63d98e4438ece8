//! What the server's rooms did together, kept outside any one room: the counts of rooms
//! that have closed (open rooms report their own), how long room turns take, and why
//! participants left.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus_protocol::LeaveReason;
use chorus_protocol::control::ForwardingStats;
use chorus_room_api::Histogram;

/// Upper bounds of the turn-time buckets, in µs: a turn is a batch of datagrams or a
/// command, the timers, and the sending; past 20 ms media waits visibly.
const TURN_BOUNDS_US: [u64; 10] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 50_000,
];

#[derive(Debug, Default)]
pub struct ServerTotals {
    retired: Mutex<ForwardingStats>,
    turns: TurnTimes,
    /// Participants that left, by reason (in [`LeaveReason::ALL`]'s order).
    left: [AtomicU64; LeaveReason::ALL.len()],
}

impl ServerTotals {
    /// A room closes: its counts join the server's.
    pub fn retire(&self, stats: &ForwardingStats) {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .absorb(stats);
    }

    pub fn retired(&self) -> ForwardingStats {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn turn(&self, took: Duration) {
        self.turns.observe(took);
    }

    pub fn turns(&self) -> Histogram {
        self.turns.reading()
    }

    pub fn left(&self, reason: LeaveReason) {
        if let Some(i) = LeaveReason::ALL.iter().position(|r| *r == reason) {
            self.left[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Participants that left since the server started, by reason.
    pub fn departures(&self) -> Vec<(LeaveReason, u64)> {
        LeaveReason::ALL
            .into_iter()
            .zip(&self.left)
            .map(|(reason, n)| (reason, n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// A histogram of atomics: rooms on every core observe it without a lock.
#[derive(Debug, Default)]
struct TurnTimes {
    /// One per bound, then the overflow.
    buckets: [AtomicU64; TURN_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl TurnTimes {
    fn observe(&self, took: Duration) {
        let us = took.as_micros() as u64;
        let i = TURN_BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    fn reading(&self) -> Histogram {
        let bounds = TURN_BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        Histogram {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each turn lands in the first bucket whose bound it does not exceed; the sum and
    /// count follow.
    #[test]
    fn turns_land_in_their_buckets() {
        let totals = ServerTotals::default();
        let us = Duration::from_micros;
        for took in [us(10), us(50), us(51), us(999), us(60_000)] {
            totals.turn(took);
        }
        let h = totals.turns();
        let at = |bound_us: f64| {
            h.buckets
                .iter()
                .find(|(b, _)| {
                    (*b - bound_us / 1e6).abs() < 1e-12
                        || (b.is_infinite() && bound_us.is_infinite())
                })
                .map(|(_, n)| *n)
        };
        assert_eq!(at(50.0), Some(2), "10 and 50 µs");
        assert_eq!(at(100.0), Some(1), "51 µs");
        assert_eq!(at(1_000.0), Some(1), "999 µs");
        assert_eq!(at(f64::INFINITY), Some(1), "60 ms");
        assert_eq!(h.count, 5);
        assert!((h.sum - 0.061_110).abs() < 1e-9, "{}", h.sum);
    }

    #[test]
    fn departures_count_by_reason() {
        let totals = ServerTotals::default();
        totals.left(LeaveReason::MediaTimeout);
        totals.left(LeaveReason::MediaTimeout);
        totals.left(LeaveReason::ClientLeft);
        let d = totals.departures();
        assert_eq!(d.len(), LeaveReason::ALL.len());
        let of = |r| d.iter().find(|(x, _)| *x == r).map(|(_, n)| *n);
        assert_eq!(of(LeaveReason::MediaTimeout), Some(2));
        assert_eq!(of(LeaveReason::ClientLeft), Some(1));
        assert_eq!(of(LeaveReason::ConnectionLost), Some(0));
    }

    #[test]
    fn closed_rooms_add_up() {
        let totals = ServerTotals::default();
        let mut a = ForwardingStats {
            forwarded: 10,
            skipped: [("muted".to_owned(), 2)].into(),
            plain_rtp_dropped: [("srtp_auth".to_owned(), 3)].into(),
            ..Default::default()
        };
        a.feedback.plis_sent = 1;
        totals.retire(&a);
        totals.retire(&a);
        let sum = totals.retired();
        assert_eq!(sum.forwarded, 20);
        assert_eq!(sum.skipped["muted"], 4);
        assert_eq!(sum.plain_rtp_dropped["srtp_auth"], 6);
        assert_eq!(sum.feedback.plis_sent, 2);
    }
}
