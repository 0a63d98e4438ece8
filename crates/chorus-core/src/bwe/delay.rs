//! The delay side of the estimate: is the path's queue growing?
//!
//! Packets are grouped by send time into bursts ([`GROUP_SPAN`]); between two
//! consecutive groups the one-way delay variation is how much longer the second took to
//! arrive than to send. A trendline (least-squares slope over the last
//! [`WINDOW`] smoothed, accumulated variations) says whether the queue is growing, and
//! an overuse detector compares it with a threshold that adapts to the path's jitter
//! (the GCC design, draft-ietf-rmcat-gcc-02 §5).

use std::collections::VecDeque;
use std::time::Duration;

/// Packets sent within this span of the group's first belong to one group.
const GROUP_SPAN: Duration = Duration::from_millis(5);
/// How many delay samples the trendline fits.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Scales the slope into the detector's units (ms per group, times the sample count).
const TREND_GAIN: f64 = 4.0;
/// The slope counts at most this many samples' worth (more does not make it surer).
const MAX_SAMPLES: f64 = 60.0;
/// Threshold adaptation rates (up slowly, down quickly: GCC §5.4).
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
const THRESHOLD_INIT_MS: f64 = 12.5;
const THRESHOLD_MIN_MS: f64 = 6.0;
const THRESHOLD_MAX_MS: f64 = 600.0;
/// The detector must see the trend above the threshold this long to call overuse.
const OVERUSE_TIME_MS: f64 = 10.0;

/// What the delay side concludes after a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// The queue is steady.
    Normal,
    /// The queue grows: the sender sends more than the path carries.
    Over,
    /// The queue drains.
    Under,
}

/// One packet as the delay side needs it: send time on the server's clock, arrival on
/// the receiver's (the two clocks are never compared, only their differences).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub sent: Duration,
    pub arrived: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    first_sent: Duration,
    last_sent: Duration,
    last_arrived: Duration,
}

/// Inter-arrival grouping, trendline and overuse detector.
#[derive(Debug, Clone)]
pub struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    /// The first arrival seen: the trendline's x axis counts ms from it.
    origin: Option<Duration>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    samples: VecDeque<(f64, f64)>,
    count: usize,
    threshold_ms: f64,
    last_trend: f64,
    over_ms: f64,
    over_count: u32,
    last_update: Option<Duration>,
    usage: Usage,
}

impl Default for DelayDetector {
    fn default() -> Self {
        Self {
            current: None,
            previous: None,
            origin: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            samples: VecDeque::with_capacity(WINDOW + 1),
            count: 0,
            threshold_ms: THRESHOLD_INIT_MS,
            last_trend: 0.0,
            over_ms: 0.0,
            over_count: 0,
            last_update: None,
            usage: Usage::Normal,
        }
    }
}

impl DelayDetector {
    /// The conclusion so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// One acknowledged packet, in send order. A packet sent before the current group
    /// (reordered on the way out of the feedback) is ignored.
    pub fn on_arrival(&mut self, packet: Arrival) {
        self.origin.get_or_insert(packet.arrived);
        let Some(group) = self.current.as_mut() else {
            self.current = Some(Group {
                first_sent: packet.sent,
                last_sent: packet.sent,
                last_arrived: packet.arrived,
            });
            return;
        };
        if packet.sent < group.first_sent {
            return;
        }
        if packet.sent - group.first_sent <= GROUP_SPAN {
            group.last_sent = group.last_sent.max(packet.sent);
            group.last_arrived = group.last_arrived.max(packet.arrived);
            return;
        }
        // The packet opens a new group: the current one is complete.
        let done = *group;
        self.current = Some(Group {
            first_sent: packet.sent,
            last_sent: packet.sent,
            last_arrived: packet.arrived,
        });
        if let Some(previous) = self.previous.replace(done) {
            let send_ms = ms(done.last_sent) - ms(previous.last_sent);
            let arrival_ms = ms(done.last_arrived) - ms(previous.last_arrived);
            self.on_delta(send_ms, arrival_ms, done.last_arrived);
        }
    }

    fn on_delta(&mut self, send_ms: f64, arrival_ms: f64, arrived: Duration) {
        self.accumulated_ms += arrival_ms - send_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let x = ms(arrived) - ms(self.origin.unwrap_or(arrived));
        self.samples.push_back((x, self.smoothed_ms));
        if self.samples.len() > WINDOW {
            self.samples.pop_front();
        }
        self.count += 1;
        if self.samples.len() < WINDOW {
            return;
        }
        let trend = slope(&self.samples).unwrap_or(0.0);
        let modified = (self.count as f64).min(MAX_SAMPLES) * trend * TREND_GAIN;
        self.detect(modified, send_ms, arrived);
    }

    fn detect(&mut self, trend: f64, send_ms: f64, now: Duration) {
        if trend > self.threshold_ms {
            // Credit half the first interval: the trend may have crossed mid-way.
            self.over_ms += if self.over_count == 0 {
                send_ms / 2.0
            } else {
                send_ms
            };
            self.over_count += 1;
            if self.over_ms > OVERUSE_TIME_MS && self.over_count > 1 && trend >= self.last_trend {
                self.over_ms = 0.0;
                self.over_count = 0;
                self.usage = Usage::Over;
            }
        } else if trend < -self.threshold_ms {
            self.over_ms = 0.0;
            self.over_count = 0;
            self.usage = Usage::Under;
        } else {
            self.over_ms = 0.0;
            self.over_count = 0;
            self.usage = Usage::Normal;
        }
        self.last_trend = trend;
        self.adapt(trend, now);
    }

    /// The threshold follows |trend| so jitter alone does not read as overuse, but a
    /// sudden jump (a real queue) is not absorbed.
    fn adapt(&mut self, trend: f64, now: Duration) {
        let last = self.last_update.replace(now).unwrap_or(now);
        if trend.abs() > self.threshold_ms + 15.0 {
            return;
        }
        let k = if trend.abs() < self.threshold_ms {
            K_DOWN
        } else {
            K_UP
        };
        let dt_ms = (ms(now) - ms(last)).clamp(0.0, 100.0);
        self.threshold_ms += k * (trend.abs() - self.threshold_ms) * dt_ms;
        self.threshold_ms = self.threshold_ms.clamp(THRESHOLD_MIN_MS, THRESHOLD_MAX_MS);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The least-squares slope of `points`, or `None` when all x are equal.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut DelayDetector, groups: u64, gap_ms: u64, extra_ms_per_group: f64) {
        let mut arrived = 50.0;
        for i in 0..groups {
            let sent = Duration::from_millis(i * gap_ms);
            arrived += gap_ms as f64 + extra_ms_per_group;
            d.on_arrival(Arrival {
                sent,
                arrived: Duration::from_secs_f64(arrived / 1000.0),
            });
        }
    }

    #[test]
    fn usage_follows_the_queue() {
        // (delay added per 10 ms group, expected usage)
        let cases = [
            (0.0, Usage::Normal),
            (2.0, Usage::Over), // the queue grows 2 ms every 10 ms
            (-2.0, Usage::Under),
        ];
        for (extra, want) in cases {
            let mut d = DelayDetector::default();
            feed(&mut d, 100, 10, extra);
            assert_eq!(d.usage(), want, "extra {extra} ms per group");
        }
    }

    #[test]
    fn packets_within_a_burst_are_one_group() {
        let mut d = DelayDetector::default();
        // Each "group" is three packets 1 ms apart whose last one arrives ever later;
        // grouping by 5 ms means the spread inside a group is not a delay sample.
        for g in 0..100u64 {
            for p in 0..3u64 {
                let sent = Duration::from_millis(g * 20 + p);
                let arrived = Duration::from_millis(g * 20 + 40 + p * 3);
                d.on_arrival(Arrival { sent, arrived });
            }
        }
        assert_eq!(d.usage(), Usage::Normal);
    }

    #[test]
    fn alternating_jitter_is_not_overuse() {
        let mut d = DelayDetector::default();
        let mut arrived = 50i64;
        for i in 0..400i64 {
            // ±3 ms alternating jitter: no trend.
            arrived += 10 + if i % 2 == 0 { 3 } else { -3 };
            d.on_arrival(Arrival {
                sent: Duration::from_millis(i as u64 * 10),
                arrived: Duration::from_millis(arrived as u64),
            });
        }
        assert_eq!(d.usage(), Usage::Normal);
    }
}
