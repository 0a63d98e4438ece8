//! The delay-based rate: additive/multiplicative increase while the queue is steady,
//! multiplicative decrease to [`BETA`] of what actually got through when it grows
//! (draft-ietf-rmcat-gcc-02 §5.5). Unlike GCC's, the rate also follows what got
//! through up at once once the queue has been steady for [`STEADY_BEFORE_FLOOR`]:
//! the room does not pace to the estimate, it sends what the allocation lets through,
//! which is a measurement of the path GCC would otherwise take seconds to climb to.

use std::time::{Duration, Instant};

use super::delay::Usage;

/// On overuse the rate drops to this share of the acknowledged rate.
const BETA: f64 = 0.85;
/// Far from the last known capacity the rate grows by this factor per second. Faster
/// than GCC's 1.08 because Chorus does not probe yet: this is what climbs back after
/// a cap is lifted.
const GROWTH_PER_SECOND: f64 = 1.4;
/// Near the last known capacity it grows by one packet of this size per response time.
const PACKET_BITS: f64 = 1200.0 * 8.0;
/// Added to the round trip to get the time one decision takes to show in feedback.
const RESPONSE_EXTRA: Duration = Duration::from_millis(100);
/// The rate never runs ahead of what got through by more than this (plus 10 kbit/s):
/// a sender that has less to send does not earn a larger estimate.
const MAX_AHEAD_OF_ACKED: f64 = 1.5;
/// Past this share of the capacity seen at the last overuse, that capacity is stale.
const CAPACITY_STALE: f64 = 1.5;
/// Within this share of the last capacity, growth is additive.
const NEAR_CAPACITY: f64 = 1.2;
/// After this long without overuse or a draining queue, what got through is a floor
/// for the rate: the path carried it without its queue growing. An application-limited
/// sender that sends more than the estimate (the room when a subscriber joins, or
/// after an overuse that was only jitter) is then measured at once, not climbed to at
/// [`GROWTH_PER_SECOND`]. Longer than the acknowledged window (500 ms), so that the
/// floor never counts what arrived before a decrease.
const STEADY_BEFORE_FLOOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// AIMD on the delay detector's verdicts. Rates in bits per second.
#[derive(Debug, Clone)]
pub struct RateControl {
    rate: f64,
    min: f64,
    max: f64,
    state: State,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
    /// The acknowledged rate at the last overuse: roughly the path's capacity.
    capacity: Option<f64>,
    /// The last verdict other than [`Usage::Normal`].
    unsteady_at: Option<Instant>,
    /// Decreases for overuse so far.
    overuses: u64,
    /// A probe's result and until when it holds the rate up against the acked ceiling
    /// (time for the sender to start using it).
    probed: Option<(f64, Instant)>,
}

/// How long a probe's result stands in for the acknowledged rate's ceiling.
const PROBE_HOLD: Duration = Duration::from_secs(3);

impl RateControl {
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        Self {
            rate: start.clamp(min, max),
            min,
            max,
            state: State::Increase,
            last_update: None,
            last_decrease: None,
            capacity: None,
            unsteady_at: None,
            overuses: 0,
            probed: None,
        }
    }

    /// A probe got `rate` through at `now`: the rate rises to it at once, and the
    /// ceiling of 1.5 × acknowledged does not pull it back for [`PROBE_HOLD`].
    pub fn probed(&mut self, rate: f64, now: Instant) {
        let rate = rate.clamp(self.min, self.max);
        if rate > self.rate {
            self.rate = rate;
            self.probed = Some((rate, now + PROBE_HOLD));
            // A capacity seen below it is stale: growth is multiplicative again.
            self.capacity = self.capacity.filter(|&c| c * CAPACITY_STALE >= rate);
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How many times the rate was lowered for overuse.
    pub fn overuses(&self) -> u64 {
        self.overuses
    }

    /// One verdict at `now`, with the acknowledged rate (if known) and the round trip.
    pub fn update(&mut self, usage: Usage, acked: Option<f64>, rtt: Duration, now: Instant) {
        let dt = self
            .last_update
            .replace(now)
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last))
            .min(Duration::from_secs(1));
        self.state = match (usage, self.state) {
            (Usage::Over, _) => State::Decrease,
            (Usage::Under, _) => State::Hold,
            (Usage::Normal, State::Hold | State::Decrease) => State::Increase,
            (Usage::Normal, State::Increase) => State::Increase,
        };
        if let (Some(capacity), Some(acked)) = (self.capacity, acked)
            && acked > capacity * CAPACITY_STALE
        {
            self.capacity = None;
        }
        if usage != Usage::Normal {
            self.unsteady_at = Some(now);
        }
        let response = rtt + RESPONSE_EXTRA;
        match self.state {
            State::Hold => {}
            State::Increase => {
                let steady = self
                    .unsteady_at
                    .is_none_or(|t| now.saturating_duration_since(t) >= STEADY_BEFORE_FLOOR);
                if let Some(acked) = acked.filter(|&a| steady && a > self.rate) {
                    self.rate = acked;
                    // As much as at the last overuse went through without a queue
                    // growing: that overuse did not mark the capacity.
                    if self.capacity.is_some_and(|c| acked >= c) {
                        self.capacity = None;
                    }
                }
                let near = self.capacity.is_some_and(|c| self.rate < c * NEAR_CAPACITY);
                let grown = if near {
                    self.rate + PACKET_BITS * dt.as_secs_f64() / response.as_secs_f64()
                } else {
                    self.rate * GROWTH_PER_SECOND.powf(dt.as_secs_f64())
                };
                let probed = self.probed.filter(|&(_, until)| now < until).map(|p| p.0);
                let ceiling = acked
                    .map_or(f64::MAX, |a| a * MAX_AHEAD_OF_ACKED + 10_000.0)
                    .max(probed.unwrap_or(0.0));
                // Growth never lowers a rate that is above the ceiling already.
                self.rate = grown.min(ceiling).max(self.rate.min(ceiling));
            }
            State::Decrease => {
                // One decrease per response time: the feedback that follows still shows
                // the queue built before it.
                let recent = self
                    .last_decrease
                    .is_some_and(|t| now.saturating_duration_since(t) < response);
                if !recent {
                    let base = acked.unwrap_or(self.rate);
                    self.rate = self.rate.min(base * BETA);
                    self.capacity = acked;
                    self.last_decrease = Some(now);
                    self.overuses += 1;
                    self.probed = None;
                }
                self.state = State::Hold;
            }
        }
        self.rate = self.rate.clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    #[test]
    fn verdicts_move_the_rate() {
        // (verdicts, acked bps, expected rate after ten updates 100 ms apart: range)
        let cases: [(Usage, Option<f64>, f64, f64); 4] = [
            // Normal grows multiplicatively: 1.4 in 1 s (the first update has no dt).
            (Usage::Normal, None, 1_000_000.0 * 1.35, 1_000_000.0 * 1.4),
            // Growth stops 50 % above what gets through.
            (Usage::Normal, Some(500_000.0), 760_000.0, 760_000.0),
            // Overuse: 0.85 of acked, once per response time (not ten times).
            (
                Usage::Over,
                Some(800_000.0),
                0.85 * 0.85 * 800_000.0,
                680_000.0,
            ),
            (Usage::Under, None, 1_000_000.0, 1_000_000.0),
        ];
        for (usage, acked, low, high) in cases {
            let t0 = Instant::now();
            let mut c = RateControl::new(1_000_000.0, 100_000.0, 20_000_000.0);
            for i in 0..=10 {
                c.update(usage, acked, RTT, t0 + Duration::from_millis(i * 100));
            }
            assert!(
                (low - 1.0..=high + 1.0).contains(&c.rate()),
                "{usage:?} acked {acked:?}: {} not in {low}..{high}",
                c.rate()
            );
        }
    }

    #[test]
    fn near_the_last_capacity_growth_is_additive() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1_000_000.0, 100_000.0, 20_000_000.0);
        c.update(Usage::Over, Some(1_000_000.0), RTT, t0);
        assert_eq!(c.rate(), 850_000.0);
        for i in 1..=10 {
            c.update(
                Usage::Normal,
                Some(850_000.0),
                RTT,
                t0 + Duration::from_millis(i * 100),
            );
        }
        // One packet per 150 ms response time for 1 s: +64 kbit/s, not +40 %.
        assert!((c.rate() - 914_000.0).abs() < 1_000.0, "{}", c.rate());
    }

    #[test]
    fn what_got_through_is_a_floor_once_the_queue_is_steady() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // An application-limited sender that sends 3 Mbit/s against a 1 Mbit/s start:
        // the rate is lifted to it at once, not climbed to at 40 %/s.
        let mut c = RateControl::new(1_000_000.0, 100_000.0, 20_000_000.0);
        c.update(Usage::Normal, Some(3_000_000.0), RTT, t0);
        assert_eq!(c.rate(), 3_000_000.0);
        // After an overuse, not for a second (the acknowledged window still holds what
        // arrived before the decrease).
        let mut c = RateControl::new(2_000_000.0, 100_000.0, 20_000_000.0);
        c.update(Usage::Over, Some(2_000_000.0), RTT, t0);
        assert_eq!(c.rate(), 1_700_000.0);
        c.update(Usage::Normal, Some(2_000_000.0), RTT, at(900));
        assert!(c.rate() < 1_800_000.0, "{}", c.rate());
        // A second of steady queue at the same rate: that overuse was not the capacity
        // (jitter): lifted, and the growth is multiplicative again.
        c.update(Usage::Normal, Some(2_000_000.0), RTT, at(1_000));
        let lifted = c.rate();
        assert!((2_000_000.0..2_100_000.0).contains(&lifted), "{lifted}");
        c.update(Usage::Normal, Some(2_000_000.0), RTT, at(2_000));
        assert!((c.rate() - lifted * 1.4).abs() < 1.0, "{}", c.rate());
    }

    #[test]
    fn bounds_hold() {
        let t0 = Instant::now();
        let mut c = RateControl::new(150_000.0, 100_000.0, 200_000.0);
        c.update(Usage::Over, Some(10_000.0), RTT, t0);
        assert_eq!(c.rate(), 100_000.0);
        for i in 1..=100 {
            c.update(
                Usage::Normal,
                None,
                RTT,
                t0 + Duration::from_millis(i * 100),
            );
        }
        assert_eq!(c.rate(), 200_000.0);
    }
}
