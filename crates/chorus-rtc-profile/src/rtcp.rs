//! Delivery of inbound RTCP to the application, one packet at a time.
//!
//! rtc's endpoint attributes a compound RTCP packet to the track of its *first* packet's
//! SSRC, and drops the whole compound when that packet names none or names no track.
//! GStreamer (and RFC 3550 generally) starts a compound with an RR, often without report
//! blocks, and an SDES: a PLI or FIR behind them would never reach `poll_read`. So
//! [`RtcpToApplication`] splits each compound and lets every packet that names a stream of
//! the connection through on its own; the others are dropped here and counted in
//! [`RtcpCounters`]. The interceptors before it still see every compound whole: the NACK
//! responder reads each packet of a compound, so a NACK behind an RR is still answered
//! (`a_nack_inside_a_compound_is_still_answered` below).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet as ChainPacket, Registry, Slot, StreamInfo,
    TaggedPacket,
};
use rtc::rtcp;
use rtc::rtcp::header::PacketType;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::sansio::Protocol;

/// Application-most: after every interceptor, before the chain's terminus.
const RTCP_TO_APPLICATION_SLOT: usize = 13_500;

/// Why an inbound RTCP packet did not reach the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// It is about no media stream: SDES and BYE (they describe or dismiss their
    /// sender), an RR without report blocks, an APP.
    NoMediaSsrc,
    /// Its media SSRC is not a stream this connection sends or receives.
    UnknownSsrc,
}

impl DropReason {
    pub const ALL: [DropReason; 2] = [DropReason::NoMediaSsrc, DropReason::UnknownSsrc];

    /// The name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoMediaSsrc => "no_media_ssrc",
            DropReason::UnknownSsrc => "unknown_ssrc",
        }
    }
}

/// Inbound RTCP packets delivered to the application and dropped, by reason. The server
/// keeps one per peer factory, shared by every connection it builds.
#[derive(Debug, Default)]
pub struct RtcpCounters {
    delivered: AtomicU64,
    no_media_ssrc: AtomicU64,
    unknown_ssrc: AtomicU64,
}

impl RtcpCounters {
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped_counter(reason).load(Ordering::Relaxed)
    }

    fn dropped_counter(&self, reason: DropReason) -> &AtomicU64 {
        match reason {
            DropReason::NoMediaSsrc => &self.no_media_ssrc,
            DropReason::UnknownSsrc => &self.unknown_ssrc,
        }
    }

    fn count(&self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Deliver(_) => &self.delivered,
            Verdict::Drop(reason) => self.dropped_counter(reason),
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What becomes of one inbound RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// To the application, which rtc will tag with the track of this SSRC.
    Deliver(u32),
    Drop(DropReason),
}

/// Judges one packet of a compound. The SSRC it is about is its first destination SSRC,
/// because that is the one rtc's endpoint attributes it to: an RR's first report block,
/// an SR's first block or else its sender (a stream we receive), a feedback packet's
/// media SSRC.
fn classify(packet: &dyn rtcp::Packet, is_stream: impl Fn(u32) -> bool) -> Verdict {
    // Their SSRCs are their sender's own, possibly a stream we receive, yet they ask
    // nothing of it.
    let describes_sender = matches!(
        packet.header().packet_type,
        PacketType::SourceDescription | PacketType::Goodbye
    );
    match packet.destination_ssrc().first() {
        Some(&ssrc) if !describes_sender => {
            if is_stream(ssrc) {
                Verdict::Deliver(ssrc)
            } else {
                Verdict::Drop(DropReason::UnknownSsrc)
            }
        }
        _ => Verdict::Drop(DropReason::NoMediaSsrc),
    }
}

/// The packets of a compound, a FIR with several entries as one FIR per entry: each entry
/// asks its own stream for a keyframe, and rtc would attribute the whole FIR to its first
/// entry's stream only (or drop it, were that one not ours).
fn unbundle(compound: Vec<Box<dyn rtcp::Packet>>) -> Vec<Box<dyn rtcp::Packet>> {
    let multi_fir = |p: &dyn rtcp::Packet| {
        p.as_any()
            .downcast_ref::<FullIntraRequest>()
            .is_some_and(|fir| fir.fir.len() > 1)
    };
    // The usual compound has none: keep it as it is.
    if !compound.iter().any(|p| multi_fir(p.as_ref())) {
        return compound;
    }
    let mut packets = Vec::with_capacity(compound.len());
    for packet in compound {
        match packet.as_any().downcast_ref::<FullIntraRequest>() {
            Some(fir) if fir.fir.len() > 1 => {
                packets.extend(fir.fir.iter().map(|entry| {
                    Box::new(FullIntraRequest {
                        sender_ssrc: fir.sender_ssrc,
                        media_ssrc: fir.media_ssrc,
                        fir: vec![entry.clone()],
                    }) as Box<dyn rtcp::Packet>
                }));
            }
            _ => packets.push(packet),
        }
    }
    packets
}

/// Delivers each inbound RTCP packet about a stream of the connection on its own, marked
/// for delivery: the chain's terminus (`NoopInterceptor`) drops unmarked inbound RTCP.
struct RtcpToApplication {
    /// SSRCs of the streams the connection sends and receives (two sets, so that one
    /// SSRC bound both ways survives the unbinding of one of them).
    local: HashSet<u32>,
    remote: HashSet<u32>,
    counters: Arc<RtcpCounters>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl RtcpToApplication {
    fn new(counters: Arc<RtcpCounters>) -> Self {
        Self {
            local: HashSet::new(),
            remote: HashSet::new(),
            counters,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    fn is_stream(&self, ssrc: u32) -> bool {
        self.local.contains(&ssrc) || self.remote.contains(&ssrc)
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpToApplication {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut packet: TaggedPacket) -> Result<(), Self::Error> {
        let ChainPacket::Rtcp(compound) = &mut packet.message.packet else {
            self.reads.push_back(packet);
            return Ok(());
        };
        for rtcp_packet in unbundle(std::mem::take(compound)) {
            let verdict = classify(rtcp_packet.as_ref(), |ssrc| self.is_stream(ssrc));
            self.counters.count(verdict);
            if let Verdict::Deliver(_) = verdict {
                self.reads.push_back(TaggedPacket {
                    now: packet.now,
                    transport: packet.transport,
                    message: AttributedPacket::new(ChainPacket::Rtcp(vec![rtcp_packet]))
                        .with(Attribute::DeliverToApplication),
                });
            }
        }
        // What interceptors attached to the compound (a bitrate estimate) still has to
        // reach rtc: the emptied compound carries it, and the terminus lets it through.
        if !packet.message.attributes.is_empty() {
            self.reads.push_back(packet);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, packet: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(packet);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for RtcpToApplication {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.local.insert(info.ssrc);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.local.remove(&info.ssrc);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.remote.insert(info.ssrc);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.remote.remove(&info.ssrc);
    }
}

/// Adds [`RtcpToApplication`] to an interceptor registry; its counts are not read.
pub fn with_rtcp_to_application(registry: Registry) -> Registry {
    with_counted_rtcp_to_application(registry, Arc::default())
}

/// Adds [`RtcpToApplication`] to an interceptor registry, counting what it delivers
/// and drops into `counters`.
pub fn with_counted_rtcp_to_application(
    registry: Registry,
    counters: Arc<RtcpCounters>,
) -> Registry {
    registry.with(
        Slot::from(RTCP_TO_APPLICATION_SLOT),
        RtcpToApplication::new(counters),
    )
}

#[cfg(test)]
mod tests;
