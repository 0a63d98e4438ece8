//! The loss-based rate: above [`HIGH_LOSS`] it lowers, below [`LOW_LOSS`] it lets the
//! estimate grow, in between it holds (draft-ietf-rmcat-gcc-02 §6). Random loss that
//! stays between the two therefore does not pull the estimate down.

use std::time::{Duration, Instant};

/// Loss above this share lowers the rate.
pub const HIGH_LOSS: f64 = 0.10;
/// Loss below this share lets the rate grow.
pub const LOW_LOSS: f64 = 0.02;
/// A loss figure needs at least this many packets.
const MIN_PACKETS: u32 = 20;
/// Growth per second when loss is low (as the delay side's, so neither lags).
const GROWTH_PER_SECOND: f64 = 1.4;
/// Lowered at most once per this plus a round trip.
const DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// This long after the last decrease, what got through while loss is low is a floor
/// for the rate (as on the delay side: see `aimd.rs`).
const STEADY_BEFORE_FLOOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct LossControl {
    rate: f64,
    min: f64,
    max: f64,
    received: u32,
    lost: u32,
    last_fraction: f64,
    last_update: Option<Instant>,
    last_decrease: Option<Instant>,
}

impl LossControl {
    pub fn new(start: f64, min: f64, max: f64) -> Self {
        Self {
            rate: start.clamp(min, max),
            min,
            max,
            received: 0,
            lost: 0,
            last_fraction: 0.0,
            last_update: None,
            last_decrease: None,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// A probe got `rate` through: the loss side does not hold the estimate below it.
    pub fn probed(&mut self, rate: f64) {
        self.rate = self.rate.max(rate.clamp(self.min, self.max));
    }

    /// The loss share of the last complete window.
    pub fn fraction(&self) -> f64 {
        self.last_fraction
    }

    /// One feedback's counts. `current` is the combined estimate (what the sender
    /// sends at): a decrease starts from it, not from a loss rate far above it.
    /// `acked` is what got through lately (bits per second), if known.
    pub fn update(
        &mut self,
        received: u32,
        lost: u32,
        current: f64,
        acked: Option<f64>,
        rtt: Duration,
        now: Instant,
    ) {
        self.received += received;
        self.lost += lost;
        let total = self.received + self.lost;
        if total < MIN_PACKETS {
            return;
        }
        let fraction = f64::from(self.lost) / f64::from(total);
        self.last_fraction = fraction;
        self.received = 0;
        self.lost = 0;
        let dt = self
            .last_update
            .replace(now)
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last))
            .min(Duration::from_secs(1));
        if fraction < LOW_LOSS {
            self.rate *= GROWTH_PER_SECOND.powf(dt.as_secs_f64());
            let steady = self
                .last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= STEADY_BEFORE_FLOOR);
            if let Some(acked) = acked.filter(|_| steady) {
                self.rate = self.rate.max(acked);
            }
        } else if fraction > HIGH_LOSS {
            let recent = self
                .last_decrease
                .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_INTERVAL + rtt);
            if !recent {
                self.rate = self.rate.min(current) * (1.0 - fraction / 2.0);
                self.last_decrease = Some(now);
            }
        }
        self.rate = self.rate.clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_bands() {
        // (lost of every 100, expected rate after one window at 1 s, from 1 Mbit/s)
        let cases = [
            (0, 1_400_000.0),
            (1, 1_400_000.0),
            (5, 1_000_000.0),  // between the bands: held
            (10, 1_000_000.0), // exactly 10 %: held
            (20, 900_000.0),   // 1 - 0.2 / 2
            (50, 750_000.0),
        ];
        for (lost, want) in cases {
            let t0 = Instant::now();
            let mut c = LossControl::new(1_000_000.0, 100_000.0, 20_000_000.0);
            c.update(100, 0, 1_000_000.0, None, Duration::ZERO, t0);
            c.update(
                100 - lost,
                lost,
                1_000_000.0,
                None,
                Duration::ZERO,
                t0 + Duration::from_secs(1),
            );
            let got = c.rate();
            assert!((got - want).abs() < 1.0, "{lost} %: {got} want {want}");
        }
    }

    #[test]
    fn what_got_through_is_a_floor_a_second_after_a_decrease() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut c = LossControl::new(1_000_000.0, 100_000.0, 20_000_000.0);
        c.update(100, 0, 1_000_000.0, Some(3_000_000.0), Duration::ZERO, t0);
        assert_eq!(c.rate(), 3_000_000.0, "low loss: at least what got through");
        c.update(
            70,
            30,
            3_000_000.0,
            Some(3_000_000.0),
            Duration::ZERO,
            at(100),
        );
        assert_eq!(c.rate(), 2_550_000.0, "30 % loss lowers");
        c.update(
            100,
            0,
            2_550_000.0,
            Some(5_000_000.0),
            Duration::ZERO,
            at(900),
        );
        assert!(c.rate() < 5_000_000.0, "{}: too soon", c.rate());
        c.update(
            100,
            0,
            2_550_000.0,
            Some(5_000_000.0),
            Duration::ZERO,
            at(1_100),
        );
        assert_eq!(c.rate(), 5_000_000.0);
    }

    #[test]
    fn decreases_are_spaced_and_small_windows_wait() {
        let t0 = Instant::now();
        let mut c = LossControl::new(1_000_000.0, 100_000.0, 20_000_000.0);
        c.update(5, 5, 1_000_000.0, None, Duration::ZERO, t0);
        assert_eq!(c.rate(), 1_000_000.0, "10 packets are no window");
        c.update(5, 5, 1_000_000.0, None, Duration::ZERO, t0);
        assert_eq!(c.rate(), 750_000.0);
        c.update(
            10,
            10,
            750_000.0,
            None,
            Duration::ZERO,
            t0 + Duration::from_millis(100),
        );
        assert_eq!(c.rate(), 750_000.0, "within 300 ms of the last decrease");
        c.update(
            10,
            10,
            750_000.0,
            None,
            Duration::ZERO,
            t0 + Duration::from_millis(400),
        );
        assert_eq!(c.rate(), 562_500.0);
    }
}
