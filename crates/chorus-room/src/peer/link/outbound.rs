//! Sender reports for what the server sends on a subscriber connection of Chorus's own
//! transport (RFC 3550 §6.4.1), about once a second per stream: the client learns the
//! streams' timing (NTP ↔ RTP timestamp) and the round trip from its answers.

use std::time::{Duration, Instant};

use chorus_core::SenderStats;
use chorus_transport::rtcp;

/// How often sender reports go to the subscriber.
const REPORT_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Outbound {
    /// By SSRC: a connection sends a handful of streams, and this is looked up per
    /// packet sent, where a scan beats hashing.
    streams: Vec<(u32, SenderStats)>,
    next_report: Option<Instant>,
}

impl Outbound {
    /// A packet of `ssrc` went out (`video`: a 90 kHz clock, else Opus's 48 kHz).
    pub fn sent(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        payload_len: usize,
        video: bool,
        now: Instant,
    ) {
        let i = match self.streams.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None => {
                let clock_rate = if video { 90_000 } else { 48_000 };
                self.streams.push((ssrc, SenderStats::new(clock_rate)));
                self.streams.len() - 1
            }
        };
        self.streams[i].1.sent(timestamp, payload_len, now);
        self.next_report.get_or_insert(now + REPORT_EVERY);
    }

    /// A stream the connection no longer sends.
    pub fn forget(&mut self, ssrc: u32) {
        self.streams.retain(|(s, _)| *s != ssrc);
    }

    /// Appends the sender reports due at `now` (`ntp`: the wall clock then, as NTP).
    pub fn poll_rtcp(&mut self, now: Instant, ntp: u64, out: &mut Vec<u8>) {
        if self.next_report.is_none_or(|t| t > now) {
            return;
        }
        self.next_report = Some(now + REPORT_EVERY);
        for (ssrc, stats) in &self.streams {
            if let Some(info) = stats.report(ntp, now) {
                rtcp::write_sender_report(out, *ssrc, &info, &[]);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }
}
