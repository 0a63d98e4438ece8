//! What RTCP reports say (RFC 3550 §6.4), computed from the packets themselves: the
//! sender information of a stream the server sends, and the report block of a stream it
//! receives (loss, jitter, the last sender report it answers). Sans-I/O: times are
//! passed in, NTP time (for sender reports) as well.

use std::time::{Duration, Instant};

use crate::seq::ExtSeq;

/// A sender report's sender information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: u64,
    /// The RTP timestamp that corresponds to `ntp`.
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// One sent stream's counters.
#[derive(Debug, Clone)]
pub struct SenderStats {
    clock_rate: u32,
    packets: u32,
    octets: u32,
    last: Option<(u32, Instant)>,
}

impl SenderStats {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            packets: 0,
            octets: 0,
            last: None,
        }
    }

    /// A packet with this timestamp and payload size went out at `now`.
    pub fn sent(&mut self, rtp_timestamp: u32, payload_len: usize, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        self.last = Some((rtp_timestamp, now));
    }

    /// The sender information at `now` (NTP `ntp`), the RTP timestamp carried forward
    /// from the last packet at the stream's clock rate; `None` before any packet.
    pub fn report(&self, ntp: u64, now: Instant) -> Option<SenderInfo> {
        let (ts, at) = self.last?;
        let elapsed = now.saturating_duration_since(at);
        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        Some(SenderInfo {
            ntp,
            rtp_timestamp: ts.wrapping_add(ticks as u32),
            packets: self.packets,
            octets: self.octets,
        })
    }
}

/// A reception report block, as RFC 3550 §6.4.1 lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// Lost since the previous report, out of 256.
    pub fraction_lost: u8,
    /// Lost since the start (24 bits, clamped).
    pub total_lost: u32,
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the last sender report's NTP time (0: none yet).
    pub last_sr: u32,
    /// Since that sender report, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// One received stream's statistics.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    clock_rate: u32,
    base: Option<u64>,
    highest: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// RFC 3550 A.8, in timestamp units, scaled by 16 as its reference code keeps it.
    jitter_q4: u64,
    last_transit: Option<i64>,
    origin: Option<Instant>,
    last_sr: Option<(u32, Instant)>,
}

impl ReceiverStats {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            base: None,
            highest: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            origin: None,
            last_sr: None,
        }
    }

    /// A packet (not a retransmission) arrived.
    pub fn received(&mut self, seq: ExtSeq, rtp_timestamp: u32, arrival: Instant) {
        let base = *self.base.get_or_insert(seq.0);
        if seq.0 < base {
            return;
        }
        self.received += 1;
        self.highest = self.highest.max(seq.0);
        // Transit time in timestamp units, against an arbitrary origin.
        let origin = *self.origin.get_or_insert(arrival);
        let arrival_ts = arrival.saturating_duration_since(origin).as_nanos()
            * u128::from(self.clock_rate)
            / 1_000_000_000;
        let transit = arrival_ts as i64 - i64::from(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, in Q4.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// A sender report with NTP time `ntp` arrived at `now`.
    pub fn sender_report(&mut self, ntp: u64, now: Instant) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// The report block at `now`; starts the next reporting interval.
    pub fn report(&mut self, now: Instant) -> Option<ReportBlock> {
        let base = self.base?;
        let expected = self.highest - base + 1;
        let lost = expected.saturating_sub(self.received);
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let (last_sr, delay) = match self.last_sr {
            Some((lsr, at)) => (lsr, dlsr(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        Some(ReportBlock {
            fraction_lost,
            total_lost: lost.min(0x7f_ffff) as u32,
            highest_seq: self.highest as u32,
            jitter: (self.jitter_q4 >> 4) as u32,
            last_sr,
            delay_since_last_sr: delay,
        })
    }
}

fn dlsr(d: Duration) -> u32 {
    (d.as_nanos() * 65_536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_info_carries_the_timestamp_forward() {
        let t0 = Instant::now();
        let mut s = SenderStats::new(90_000);
        assert_eq!(s.report(1, t0), None, "nothing sent yet");
        s.sent(1000, 1100, t0);
        s.sent(4000, 900, t0 + Duration::from_millis(33));
        // (ms after the last packet, timestamp expected)
        for (ms, ts) in [(0, 4000), (100, 13_000), (1000, 94_000)] {
            let at = t0 + Duration::from_millis(33 + ms);
            let info = s.report(7, at).unwrap();
            assert_eq!(info.rtp_timestamp, ts, "{ms} ms");
            assert_eq!((info.packets, info.octets, info.ntp), (2, 2000, 7));
        }
    }

    #[test]
    fn loss_is_counted_per_interval_and_in_total() {
        let t0 = Instant::now();
        let mut r = ReceiverStats::new(48_000);
        // 10 packets expected, 8 arrive (3 and 7 lost).
        for seq in [1u64, 2, 4, 5, 6, 8, 9, 10] {
            r.received(
                ExtSeq(seq),
                seq as u32 * 960,
                t0 + Duration::from_millis(seq * 20),
            );
        }
        let first = r.report(t0).unwrap();
        assert_eq!(
            (first.fraction_lost, first.total_lost, first.highest_seq),
            (51, 2, 10)
        );
        // Next interval: 10 more, none lost, but the total keeps the earlier two.
        for seq in 11..=20u64 {
            r.received(
                ExtSeq(seq),
                seq as u32 * 960,
                t0 + Duration::from_millis(seq * 20),
            );
        }
        let second = r.report(t0).unwrap();
        assert_eq!(
            (second.fraction_lost, second.total_lost, second.highest_seq),
            (0, 2, 20)
        );
    }

    #[test]
    fn jitter_is_zero_for_even_arrival_and_grows_with_variation() {
        let t0 = Instant::now();
        let mut even = ReceiverStats::new(48_000);
        let mut uneven = ReceiverStats::new(48_000);
        for seq in 1..=50u64 {
            let ts = seq as u32 * 960;
            even.received(ExtSeq(seq), ts, t0 + Duration::from_millis(seq * 20));
            // Every other packet 5 ms late (240 timestamp units).
            let late = if seq % 2 == 0 { 5 } else { 0 };
            uneven.received(ExtSeq(seq), ts, t0 + Duration::from_millis(seq * 20 + late));
        }
        assert_eq!(even.report(t0).unwrap().jitter, 0);
        let j = uneven.report(t0).unwrap().jitter;
        assert!((200..=240).contains(&j), "jitter {j} tends to |D| = 240");
    }

    #[test]
    fn the_last_sender_report_is_answered_with_its_delay() {
        let t0 = Instant::now();
        let mut r = ReceiverStats::new(90_000);
        r.received(ExtSeq(1), 0, t0);
        assert_eq!(r.report(t0).unwrap().last_sr, 0);
        let ntp: u64 = 0x1122_3344_5566_7788;
        r.sender_report(ntp, t0);
        let block = r.report(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sr, 0x3344_5566);
        assert_eq!(
            block.delay_since_last_sr, 32_768,
            "half a second in 1/65536 s"
        );
    }
}
