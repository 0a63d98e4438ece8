//! Sender reports for what the server sends on a subscriber connection of Chorus's own
//! transport (RFC 3550 §6.4.1), about once a second per stream: the client learns the
//! streams' timing (NTP ↔ RTP timestamp) and the round trip from its answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_core::SenderStats;
use chorus_transport::rtcp;

/// How often sender reports go to the subscriber.
const REPORT_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Outbound {
    streams: HashMap<u32, SenderStats>,
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
        let clock_rate = if video { 90_000 } else { 48_000 };
        self.streams
            .entry(ssrc)
            .or_insert_with(|| SenderStats::new(clock_rate))
            .sent(timestamp, payload_len, now);
        self.next_report.get_or_insert(now + REPORT_EVERY);
    }

    /// A stream the connection no longer sends.
    pub fn forget(&mut self, ssrc: u32) {
        self.streams.remove(&ssrc);
    }

    /// Appends the sender reports due at `now` (`ntp`: the wall clock then, as NTP).
    pub fn poll_rtcp(&mut self, now: Instant, ntp: u64, out: &mut Vec<u8>) {
        if self.next_report.is_none_or(|t| t > now) {
            return;
        }
        self.next_report = Some(now + REPORT_EVERY);
        let mut ssrcs: Vec<u32> = self.streams.keys().copied().collect();
        ssrcs.sort_unstable();
        for ssrc in ssrcs {
            if let Some(info) = self.streams[&ssrc].report(ntp, now) {
                rtcp::write_sender_report(out, ssrc, &info, &[]);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }
}
