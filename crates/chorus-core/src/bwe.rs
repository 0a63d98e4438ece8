//! Downstream bandwidth estimation for one subscriber connection, from transport-wide
//! congestion control feedback: a GCC-style delay and loss controller, sans I/O.
//!
//! The sender numbers every packet it sends with [`BandwidthEstimator::on_sent`] (the
//! number goes into the transport-wide sequence number extension); the subscriber's
//! transport feedback says which numbers arrived and when on its clock
//! ([`BandwidthEstimator::on_feedback`]). From that:
//! - the delay side ([`delay`]) watches the queue on the path grow or drain and drives
//!   an AIMD rate ([`aimd`]): down to 0.85 × what got through on overuse, up otherwise,
//!   and not below what got through once the queue has been steady for a second;
//! - the loss side ([`loss`]) lowers above 10 % loss and lets the rate grow below 2 %
//!   (to at least what got through, a second after its last decrease);
//! - the estimate is the smaller of the two, within the configured bounds;
//! - a probe cluster ([`probe`]) sent above the estimate that gets through raises it
//!   at once to what got through (unless the queue is growing).
//!
//! Time is an argument; the estimate is a value the caller reads.

mod aimd;
mod delay;
mod loss;
pub mod probe;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

pub use delay::Usage;
pub use loss::LOW_LOSS;
pub use probe::{ProbeId, ProbeOutcome};

/// A bitrate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bitrate(pub u64);

impl Bitrate {
    pub const fn bps(self) -> u64 {
        self.0
    }

    pub const fn kbps(kbps: u64) -> Self {
        Self(kbps * 1000)
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kbit/s", self.0 / 1000)
    }
}

/// The 16-bit transport-wide sequence number as it travels in the header extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransportSeq(pub u16);

/// What the feedback says about one packet: when it arrived on the subscriber's clock
/// (an arbitrary origin: only differences matter), or that it did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketResult {
    pub seq: TransportSeq,
    pub arrival: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
pub struct BweConfig {
    pub start: Bitrate,
    pub min: Bitrate,
    pub max: Bitrate,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            start: Bitrate::kbps(1_000),
            min: Bitrate::kbps(100),
            max: Bitrate::kbps(20_000),
        }
    }
}

/// The estimator's state, for stats and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweStats {
    pub estimate: Bitrate,
    pub delay_based: Bitrate,
    pub loss_based: Bitrate,
    /// What the subscriber acknowledged over the last [`ACKED_WINDOW`].
    pub acked: Option<Bitrate>,
    pub loss_fraction: f64,
    pub usage: Usage,
    pub rtt: Duration,
    /// How many times the delay side lowered the estimate for a growing queue so far
    /// (a caller that looks now and then sees an overuse it missed).
    pub overuses: u64,
    pub probes: ProbeCounts,
}

/// Probe clusters of one connection, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeCounts {
    /// Clusters started.
    pub sent: u64,
    /// Concluded with a rate that got through.
    pub delivered: u64,
    /// Concluded without (too little arrived, or no feedback).
    pub failed: u64,
    /// Delivered ones that raised the estimate.
    pub raised: u64,
    /// What the last delivered one got through (before the ceiling on the raise).
    pub last_rate: Option<Bitrate>,
}

/// Sent packets remembered for their feedback: at 20 Mbit/s of 1200-byte packets this
/// is about four seconds.
const HISTORY: usize = 8192;
/// The acknowledged rate is measured over this much of the subscriber's clock.
const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// … and not before this much of it has been seen.
const ACKED_MIN_SPAN: Duration = Duration::from_millis(150);
/// A probe raises the estimate to at most this many times what was acknowledged
/// (plus 10 kbit/s): a shaper's token bucket lets a short cluster through at line rate
/// (a `tbf` cap of 300 kbit/s with a 4 kB burst passed clusters at twice the estimate,
/// second after second), so each probe may at most double what is known to get
/// through, and the layers climb with it.
const PROBE_OVER_ACKED: f64 = 2.0;
/// Before any round trip is measured.
const INITIAL_RTT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Sent {
    /// The unwrapped number, to tell a slot's current packet from an older one.
    seq: u64,
    at: Instant,
    size: u32,
    reported: bool,
    probe: Option<ProbeId>,
}

/// One subscriber connection's bandwidth estimator.
#[derive(Debug, Clone)]
pub struct BandwidthEstimator {
    origin: Instant,
    next_seq: u64,
    sent: Vec<Option<Sent>>,
    delay: delay::DelayDetector,
    rate: aimd::RateControl,
    loss: loss::LossControl,
    min: f64,
    max: f64,
    /// Acknowledged packets on the subscriber's clock: (arrival, size).
    acked: VecDeque<(Duration, u32)>,
    acked_bytes: u64,
    acked_first: Option<Duration>,
    /// The latest arrival acknowledged (feedback may list an earlier one after it).
    acked_newest: Duration,
    rtt: Option<Duration>,
    prober: probe::Prober,
    probes: ProbeCounts,
}

impl BandwidthEstimator {
    pub fn new(config: BweConfig, now: Instant) -> Self {
        let (start, min, max) = (
            config.start.0 as f64,
            config.min.0 as f64,
            config.max.0 as f64,
        );
        Self {
            origin: now,
            next_seq: 0,
            sent: vec![None; HISTORY],
            delay: delay::DelayDetector::default(),
            rate: aimd::RateControl::new(start, min, max),
            loss: loss::LossControl::new(start, min, max),
            min,
            max,
            acked: VecDeque::new(),
            acked_bytes: 0,
            acked_first: None,
            acked_newest: Duration::ZERO,
            rtt: None,
            prober: probe::Prober::default(),
            probes: ProbeCounts::default(),
        }
    }

    /// A probe cluster starts at `now`: send its packets with
    /// [`BandwidthEstimator::on_probe_sent`].
    pub fn start_probe(&mut self, now: Instant) -> ProbeId {
        self.probes.sent += 1;
        self.prober.start(now)
    }

    /// As [`BandwidthEstimator::on_sent`], for a packet of probe cluster `probe`.
    pub fn on_probe_sent(&mut self, probe: ProbeId, size: usize, now: Instant) -> TransportSeq {
        let tag = self.prober.on_sent(probe).then_some(probe);
        self.number(size, tag, now)
    }

    /// A packet of `size` bytes leaves at `now`: the number to write into it.
    pub fn on_sent(&mut self, size: usize, now: Instant) -> TransportSeq {
        self.number(size, None, now)
    }

    /// Probe cluster `probe` has all its packets sent: it concludes when all are
    /// reported.
    pub fn end_probe(&mut self, probe: ProbeId) {
        self.prober.close(probe);
    }

    fn number(&mut self, size: usize, probe: Option<ProbeId>, now: Instant) -> TransportSeq {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.sent[seq as usize % HISTORY] = Some(Sent {
            seq,
            at: now,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            reported: false,
            probe,
        });
        TransportSeq(seq as u16)
    }

    /// One transport feedback's results, in sequence order, arriving at `now`. Numbers
    /// never sent, too old to remember, or reported before are ignored.
    pub fn on_feedback(&mut self, results: &[PacketResult], now: Instant) {
        let (mut received, mut lost) = (0u32, 0u32);
        let mut rtt: Option<Duration> = None;
        for result in results {
            let Some(seq) = self.unwrap(result.seq) else {
                continue;
            };
            let Some(sent) = self.sent[seq as usize % HISTORY].as_mut() else {
                continue;
            };
            if sent.seq != seq || sent.reported {
                continue;
            }
            sent.reported = true;
            let sent = *sent;
            if let Some(id) = sent.probe {
                self.prober
                    .on_result(id, sent.at, result.arrival, sent.size);
            }
            let Some(arrived) = result.arrival else {
                lost += 1;
                continue;
            };
            received += 1;
            // The youngest packet acknowledged bounds the round trip best (it waited
            // least for the feedback interval).
            let flight = now.saturating_duration_since(sent.at);
            rtt = Some(rtt.map_or(flight, |r| r.min(flight)));
            self.on_acked(arrived, sent.size);
            self.delay.on_arrival(delay::Arrival {
                sent: sent.at.saturating_duration_since(self.origin),
                arrived,
            });
        }
        if received + lost == 0 {
            self.conclude_probes(now);
            return;
        }
        if let Some(rtt) = rtt {
            self.rtt = Some(self.rtt.map_or(rtt, |r| (r * 7 + rtt) / 8));
        }
        let rtt = self.rtt.unwrap_or(INITIAL_RTT);
        let acked = self.acked_rate();
        if received > 0 {
            self.rate.update(self.delay.usage(), acked, rtt, now);
        }
        let current = self.estimate_f64();
        self.loss.update(received, lost, current, acked, rtt, now);
        self.conclude_probes(now);
    }

    /// Applies the probe clusters concluded by now: a rate that got through raises
    /// the estimate to it, unless the queue is growing (then it is no free capacity).
    fn conclude_probes(&mut self, now: Instant) {
        for (_, outcome) in self.prober.conclude(now) {
            let ProbeOutcome::Delivered(rate) = outcome else {
                self.probes.failed += 1;
                continue;
            };
            self.probes.delivered += 1;
            self.probes.last_rate = Some(rate);
            let ceiling = self
                .acked_rate()
                .map_or(f64::MAX, |a| a * PROBE_OVER_ACKED + 10_000.0);
            let rate = (rate.0 as f64).min(ceiling);
            if self.delay.usage() == Usage::Over || rate <= self.estimate_f64() {
                continue;
            }
            self.probes.raised += 1;
            self.rate.probed(rate, now);
            self.loss.probed(rate);
        }
    }

    /// The estimate: the smaller of the delay and loss sides, within the bounds.
    pub fn estimate(&self) -> Bitrate {
        Bitrate(self.estimate_f64() as u64)
    }

    pub fn stats(&self) -> BweStats {
        BweStats {
            estimate: self.estimate(),
            delay_based: Bitrate(self.rate.rate() as u64),
            loss_based: Bitrate(self.loss.rate() as u64),
            acked: self.acked_rate().map(|r| Bitrate(r as u64)),
            loss_fraction: self.loss.fraction(),
            usage: self.delay.usage(),
            rtt: self.rtt.unwrap_or(INITIAL_RTT),
            overuses: self.rate.overuses(),
            probes: self.probes,
        }
    }

    fn estimate_f64(&self) -> f64 {
        self.rate
            .rate()
            .min(self.loss.rate())
            .clamp(self.min, self.max)
    }

    /// The 64-bit number of `seq`: the latest sent one with those low 16 bits.
    fn unwrap(&self, seq: TransportSeq) -> Option<u64> {
        let last = self.next_seq.checked_sub(1)?;
        let back = u64::from((last as u16).wrapping_sub(seq.0));
        last.checked_sub(back)
    }

    fn on_acked(&mut self, arrived: Duration, size: u32) {
        self.acked_first.get_or_insert(arrived);
        self.acked.push_back((arrived, size));
        self.acked_bytes += u64::from(size);
        self.acked_newest = self.acked_newest.max(arrived);
        let newest = self.acked_newest;
        while let Some(&(at, size)) = self.acked.front() {
            if newest.saturating_sub(at) <= ACKED_WINDOW {
                break;
            }
            self.acked.pop_front();
            self.acked_bytes -= u64::from(size);
        }
    }

    fn acked_rate(&self) -> Option<f64> {
        self.acked.back()?;
        let seen = self.acked_newest.saturating_sub(self.acked_first?);
        if seen < ACKED_MIN_SPAN {
            return None;
        }
        let span = seen.min(ACKED_WINDOW);
        Some(self.acked_bytes as f64 * 8.0 / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_wrap_and_stale_feedback_is_ignored() {
        let t0 = Instant::now();
        let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
        let mut last = TransportSeq(0);
        for i in 0..70_000u32 {
            last = bwe.on_sent(1200, t0 + Duration::from_micros(u64::from(i) * 100));
        }
        assert_eq!(last, TransportSeq((69_999u32 % 65_536) as u16));
        assert_eq!(bwe.unwrap(last), Some(69_999));
        assert_eq!(
            bwe.unwrap(TransportSeq(last.0.wrapping_sub(5))),
            Some(69_994)
        );
        // A number from before the history: its slot holds a newer packet.
        let old = TransportSeq(last.0.wrapping_sub(HISTORY as u16 + 3));
        let before = bwe.stats();
        bwe.on_feedback(
            &[PacketResult {
                seq: old,
                arrival: None,
            }],
            t0 + Duration::from_secs(8),
        );
        assert_eq!(bwe.stats(), before);
    }

    const MS: Duration = Duration::from_millis(1);

    /// `len` of 600 kbit/s (1200 bytes every 16 ms) over a 20 ms path, reported every
    /// 48 ms: the estimate settles at 1.5 × that.
    fn media(bwe: &mut BandwidthEstimator, t0: Instant, from: Duration, len: Duration) {
        let mut batch = Vec::new();
        let mut at = from;
        while at < from + len {
            let seq = bwe.on_sent(1200, t0 + at);
            batch.push(PacketResult {
                seq,
                arrival: Some(at + 20 * MS),
            });
            if batch.len() == 3 {
                bwe.on_feedback(&batch, t0 + at + 40 * MS);
                batch.clear();
            }
            at += 16 * MS;
        }
    }

    #[test]
    fn a_probe_raises_the_estimate_to_what_got_through() {
        // (ten 250-byte packets sent this far apart, arriving this far apart, lost,
        // how many get reported, the estimate after: kbit/s range, None = unchanged)
        type Case = (Duration, Duration, &'static [u64], u64, Option<(u64, u64)>);
        let us = Duration::from_micros;
        let cases: [Case; 7] = [
            // 1 Mbit/s arriving at its pace: the estimate rises to it at once.
            (2 * MS, 2 * MS, &[], 10, Some((990, 1_000))),
            // Through a queue a little slower: only to what arrived.
            (2 * MS, us(2100), &[], 10, Some((945, 955))),
            // Through one far slower (the link limits it below the estimate): nothing.
            (2 * MS, 3 * MS, &[], 10, None),
            // 2 Mbit/s arriving at its pace: at most 2 × what is acknowledged.
            (MS, MS, &[], 10, Some((1_140, 1_240))),
            // Three of ten lost: nothing.
            (2 * MS, 2 * MS, &[2, 5, 8], 10, None),
            // Only six reported yet: nothing.
            (2 * MS, 2 * MS, &[], 6, None),
            // Sent all at once: no rate.
            (Duration::ZERO, 2 * MS, &[], 10, None),
        ];
        for (spacing, gap, lost, reported, want) in cases {
            let t0 = Instant::now();
            let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
            media(&mut bwe, t0, Duration::ZERO, Duration::from_secs(2));
            let before = bwe.estimate().bps() / 1000;
            assert!((880..=940).contains(&before), "{before}");
            let start = Duration::from_secs(2);
            let id = bwe.start_probe(t0 + start);
            let results: Vec<_> = (0..10u64)
                .map(|i| {
                    let seq = bwe.on_probe_sent(id, 250, t0 + start + spacing * i as u32);
                    let arrival = start + 20 * MS + gap * i as u32;
                    PacketResult {
                        seq,
                        arrival: (!lost.contains(&i)).then_some(arrival),
                    }
                })
                .collect();
            bwe.end_probe(id);
            bwe.on_feedback(&results[..reported as usize], t0 + start + 80 * MS);
            let after = bwe.estimate().bps() / 1000;
            let case = format!("{spacing:?} {gap:?} {lost:?} {reported}: {before} → {after}");
            match want {
                Some((low, high)) => {
                    assert!((low..=high).contains(&after), "{case}");
                    // The media that follows (still 600 kbit/s) does not pull it back
                    // while the sender starts using it.
                    media(&mut bwe, t0, start + 100 * MS, Duration::from_secs(1));
                    let later = bwe.estimate().bps() / 1000;
                    assert!(later >= after, "{case}, then {later}");
                    assert_eq!(bwe.stats().probes.raised, 1);
                }
                None => assert!(after <= before + 10, "{case}"),
            }
        }
    }

    #[test]
    fn a_packet_is_counted_once() {
        let t0 = Instant::now();
        let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
        let seqs: Vec<_> = (0..30).map(|_| bwe.on_sent(1200, t0)).collect();
        let lost: Vec<_> = seqs
            .iter()
            .map(|&seq| PacketResult { seq, arrival: None })
            .collect();
        bwe.on_feedback(&lost, t0 + Duration::from_millis(100));
        let once = bwe.estimate();
        assert!(once < BweConfig::default().start, "all lost lowers: {once}");
        // The same report again (a duplicated RTCP packet) changes nothing.
        bwe.on_feedback(&lost, t0 + Duration::from_secs(2));
        assert_eq!(bwe.estimate(), once);
    }
}
