//! What a subscriber connection may spend on resends: a share of its bandwidth
//! estimate. On a congested link the queue drops many packets at once; answering every
//! NACK for them in full sends several times what the link carries, the resends are
//! lost in turn and NACKed again, and nothing gets through (measured on a 300 kbit/s
//! tbf link: 1,000 resends a second against 35 forwarded packets).

use std::time::{Duration, Instant};

use crate::bwe::Bitrate;

/// Share of the estimate resends may take.
pub const RESEND_SHARE: f64 = 0.25;
/// Most resends at once: this long's worth of the share.
pub const RESEND_BURST: Duration = Duration::from_millis(250);
/// … but always at least one full-size packet.
const MIN_BURST_BYTES: f64 = 1500.0;

/// A token bucket in bytes whose rate follows the estimate.
#[derive(Debug, Clone, Default)]
pub struct ResendBudget {
    bytes: f64,
    last: Option<Instant>,
}

impl ResendBudget {
    /// Whether a resend of `size` bytes may go out at `now` with `estimate`; takes it
    /// from the budget if so.
    pub fn take(&mut self, size: usize, estimate: Bitrate, now: Instant) -> bool {
        let per_second = estimate.bps() as f64 * RESEND_SHARE / 8.0;
        let burst = (per_second * RESEND_BURST.as_secs_f64()).max(MIN_BURST_BYTES);
        self.bytes = match self.last {
            None => burst,
            Some(last) => {
                let refill = now.saturating_duration_since(last).as_secs_f64() * per_second;
                (self.bytes + refill).min(burst)
            }
        };
        self.last = Some(now);
        let size = size as f64;
        if self.bytes >= size {
            self.bytes -= size;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resends of 1,200 bytes offered every 10 ms for `secs`: how many go out.
    fn sent_over(estimate_bps: u64, secs: u64) -> u64 {
        let t0 = Instant::now();
        let mut budget = ResendBudget::default();
        (0..secs * 100)
            .filter(|i| {
                let now = t0 + Duration::from_millis(10 * i);
                budget.take(1200, Bitrate(estimate_bps), now)
            })
            .count() as u64
    }

    #[test]
    fn resends_take_a_quarter_of_the_estimate_and_a_burst() {
        // (estimate, seconds, packets allowed): rate × share × time + the burst.
        let cases = [
            (300_000u64, 10u64, 78u64 + 1), // 75 kbit/s: 7.8 packets/s; burst 2.3 KB = 1
            (1_600_000, 10, 416 + 8),       // 400 kbit/s: 41.7 packets/s; burst 12.5 KB
            (0, 10, 1),                     // no estimate: one packet's burst, no refill
        ];
        for (estimate, secs, allowed) in cases {
            let sent = sent_over(estimate, secs);
            assert!(
                sent.abs_diff(allowed) <= 2,
                "{estimate} bit/s over {secs} s: {sent} resends, about {allowed} expected"
            );
        }
    }
}
