//! What the server keeps of each stream a publisher sends, for the RTCP it owes the
//! publisher: the losses to NACK (video: RFC 4585, timed by `LossDetector`) and the
//! reception reports (RFC 3550, about once a second), so the browser's own sender
//! statistics and loss-based rate control keep working; and the transport-wide
//! congestion feedback (`TwccRecorder`) its delay-based estimate needs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_core::{LossConfig, LossDetector, ReceiverStats, SeqUnwrapper};
use chorus_transport::rtcp::twcc::TwccRecorder;
use chorus_transport::rtcp::{self, SourceReport};

/// How often reception reports go to the publisher.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The SSRC the server's reports and NACKs come from (it sends nothing on this connection).
pub const SERVER_SSRC: u32 = 1;

struct Stream {
    seq: SeqUnwrapper,
    /// Video only: audio is not repaired (Opus conceals a lost packet better than a late one).
    loss: Option<LossDetector>,
    stats: ReceiverStats,
}

#[derive(Default)]
pub struct Inbound {
    streams: HashMap<u32, Stream>,
    next_report: Option<Instant>,
    /// Once the client numbers its packets transport-wide.
    twcc: Option<TwccRecorder>,
}

impl Inbound {
    /// A packet of `ssrc` arrived.
    pub fn received(&mut self, ssrc: u32, seq: u16, timestamp: u32, video: bool, now: Instant) {
        let stream = self.streams.entry(ssrc).or_insert_with(|| Stream {
            seq: SeqUnwrapper::default(),
            loss: video.then(|| LossDetector::new(LossConfig::default())),
            stats: ReceiverStats::new(if video { 90_000 } else { 48_000 }),
        });
        let seq = stream.seq.unwrap(seq);
        if let Some(loss) = stream.loss.as_mut() {
            loss.received(seq, now);
        }
        stream.stats.received(seq, timestamp, now);
        self.next_report.get_or_insert(now + REPORT_EVERY);
    }

    /// A packet of `ssrc` that reached the socket `at` carried transport-wide sequence
    /// number `seq`.
    pub fn numbered(&mut self, ssrc: u32, seq: u16, at: Instant) {
        self.twcc
            .get_or_insert_with(|| TwccRecorder::new(SERVER_SSRC))
            .received(seq, ssrc, at);
    }

    /// A sender report of `ssrc` with NTP time `ntp` arrived.
    pub fn sender_report(&mut self, ssrc: u32, ntp: u64, now: Instant) {
        if let Some(stream) = self.streams.get_mut(&ssrc) {
            stream.stats.sender_report(ntp, now);
        }
    }

    /// Appends the RTCP due at `now`: NACKs, transport-wide feedback, and a receiver
    /// report when one is due.
    pub fn poll_rtcp(&mut self, now: Instant, out: &mut Vec<u8>) {
        if let Some(twcc) = self.twcc.as_mut() {
            twcc.poll_feedback(now, out);
        }
        if self.next_report.is_some_and(|t| t <= now) {
            self.next_report = Some(now + REPORT_EVERY);
            let mut blocks: Vec<_> = self
                .streams
                .iter_mut()
                .filter_map(|(ssrc, s)| {
                    let block = s.stats.report(now)?;
                    Some(SourceReport { ssrc: *ssrc, block })
                })
                .collect();
            blocks.sort_by_key(|b| b.ssrc);
            rtcp::write_receiver_report(out, SERVER_SSRC, &blocks);
        }
        let mut lost = Vec::new();
        for (ssrc, stream) in &mut self.streams {
            let Some(loss) = stream.loss.as_mut() else {
                continue;
            };
            lost.clear();
            lost.extend(loss.poll_nacks(now).into_iter().map(|s| s.0 as u16));
            if !lost.is_empty() {
                rtcp::write_nack(out, SERVER_SSRC, *ssrc, &lost);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let losses = self
            .streams
            .values()
            .filter_map(|s| s.loss.as_ref()?.poll_timeout());
        let twcc = self.twcc.as_ref().and_then(TwccRecorder::poll_timeout);
        losses.chain(self.next_report).chain(twcc).min()
    }
}
