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

/// Inbound RTCP packets delivered to the application and dropped, by reason. One per
/// [`crate::PeerFactory`], shared by every connection it builds.
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
mod tests {
    use bytes::Bytes;
    use rtc::interceptor::{NackResponderBuilder, RTCPFeedback};
    use rtc::rtcp::goodbye::Goodbye;
    use rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::rtcp::sender_report::SenderReport;
    use rtc::rtcp::source_description::{
        SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
    };
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
    use rtc::rtp;
    use rtc::shared::TransportContext;

    use super::*;

    /// Streams the connection sends.
    const SENT: u32 = 0x5E47_0001;
    const SENT_2: u32 = 0x5E47_0002;
    /// A stream it receives.
    const RECEIVED: u32 = 0x0EC7_0001;
    /// The remote end's own RTCP SSRC (a receive-only GStreamer's), no stream.
    const REPORTER: u32 = 0x0A11_CE00;
    /// Nothing of this connection.
    const STRANGER: u32 = 0xBAD0_BAD0;

    type Rtcp = Box<dyn rtcp::Packet>;

    fn block(ssrc: u32) -> ReceptionReport {
        ReceptionReport {
            ssrc,
            ..Default::default()
        }
    }
    fn rr(blocks: &[u32]) -> Rtcp {
        Box::new(ReceiverReport {
            ssrc: REPORTER,
            reports: blocks.iter().copied().map(block).collect(),
            ..Default::default()
        })
    }
    fn sr(sender: u32, blocks: &[u32]) -> Rtcp {
        Box::new(SenderReport {
            ssrc: sender,
            reports: blocks.iter().copied().map(block).collect(),
            ..Default::default()
        })
    }
    fn sdes(source: u32) -> Rtcp {
        Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::from_static(b"user@host"),
                }],
            }],
        })
    }
    fn bye(source: u32) -> Rtcp {
        Box::new(Goodbye {
            sources: vec![source],
            reason: Bytes::new(),
        })
    }
    fn pli(media_ssrc: u32) -> Rtcp {
        Box::new(PictureLossIndication {
            sender_ssrc: REPORTER,
            media_ssrc,
        })
    }
    fn fir(entries: &[(u32, u8)]) -> Rtcp {
        Box::new(FullIntraRequest {
            sender_ssrc: REPORTER,
            media_ssrc: 0,
            fir: entries
                .iter()
                .map(|&(ssrc, sequence_number)| FirEntry {
                    ssrc,
                    sequence_number,
                })
                .collect(),
        })
    }
    fn nack(media_ssrc: u32, seq: u16) -> Rtcp {
        Box::new(TransportLayerNack {
            sender_ssrc: REPORTER,
            media_ssrc,
            nacks: vec![NackPair {
                packet_id: seq,
                lost_packets: 0,
            }],
        })
    }
    fn remb(ssrcs: &[u32]) -> Rtcp {
        Box::new(ReceiverEstimatedMaximumBitrate {
            sender_ssrc: REPORTER,
            bitrate: 1e6,
            ssrcs: ssrcs.to_vec(),
        })
    }
    fn twcc(media_ssrc: u32) -> Rtcp {
        Box::new(TransportLayerCc {
            sender_ssrc: REPORTER,
            media_ssrc,
            ..Default::default()
        })
    }

    fn stream(ssrc: u32) -> StreamInfo {
        StreamInfo {
            ssrc,
            clock_rate: 90_000,
            mime_type: "video/VP8".to_owned(),
            payload_type: 96,
            rtcp_feedback: vec![RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: String::new(),
            }],
            ..Default::default()
        }
    }

    /// An interceptor that sends SENT and SENT_2 and receives RECEIVED.
    fn interceptor(counters: &Arc<RtcpCounters>) -> RtcpToApplication {
        let mut it = RtcpToApplication::new(counters.clone());
        it.bind_local_stream(&stream(SENT));
        it.bind_local_stream(&stream(SENT_2));
        it.bind_remote_stream(&stream(RECEIVED));
        it
    }

    fn arriving(packet: ChainPacket) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(packet),
        }
    }

    fn read_all(it: &mut impl Interceptor, packet: TaggedPacket) -> Vec<TaggedPacket> {
        it.handle_read(packet).unwrap();
        std::iter::from_fn(|| it.poll_read()).collect()
    }

    fn is_stream(ssrc: u32) -> bool {
        [SENT, SENT_2, RECEIVED].contains(&ssrc)
    }

    #[test]
    fn each_form_is_delivered_by_its_own_ssrc_or_dropped_for_a_reason() {
        use DropReason::*;
        use Verdict::*;
        let cases: [(&str, Rtcp, Verdict); 18] = [
            ("RR, no blocks", rr(&[]), Drop(NoMediaSsrc)),
            ("RR on a sent stream", rr(&[SENT, SENT_2]), Deliver(SENT)),
            ("RR, stranger 1st", rr(&[STRANGER, SENT]), Drop(UnknownSsrc)),
            // An SR without blocks still describes the stream its sender sends us.
            ("SR, no blocks", sr(RECEIVED, &[]), Deliver(RECEIVED)),
            ("SR from a stranger", sr(STRANGER, &[]), Drop(UnknownSsrc)),
            ("SR with a block", sr(RECEIVED, &[SENT]), Deliver(SENT)),
            ("SDES of the reporter", sdes(REPORTER), Drop(NoMediaSsrc)),
            ("SDES of our stream", sdes(RECEIVED), Drop(NoMediaSsrc)),
            ("BYE of a received stream", bye(RECEIVED), Drop(NoMediaSsrc)),
            ("PLI", pli(SENT), Deliver(SENT)),
            ("PLI for a stranger", pli(STRANGER), Drop(UnknownSsrc)),
            ("FIR, one entry", fir(&[(SENT_2, 3)]), Deliver(SENT_2)),
            ("FIR, stranger", fir(&[(STRANGER, 3)]), Drop(UnknownSsrc)),
            ("NACK", nack(SENT, 7), Deliver(SENT)),
            ("REMB", remb(&[SENT, SENT_2]), Deliver(SENT)),
            ("REMB without SSRCs", remb(&[]), Drop(NoMediaSsrc)),
            ("TWCC", twcc(SENT), Deliver(SENT)),
            ("TWCC for a stranger", twcc(STRANGER), Drop(UnknownSsrc)),
        ];
        for (name, packet, want) in cases {
            assert_eq!(classify(packet.as_ref(), is_stream), want, "{name}");
        }
    }

    #[test]
    fn compounds_are_split_into_the_packets_about_our_streams() {
        // (name, compound, delivered as (SSRC rtc attributes it to, packet),
        //  counted as (delivered, no_media_ssrc, unknown_ssrc))
        type Case = (&'static str, Vec<Rtcp>, Vec<(u32, Rtcp)>, (u64, u64, u64));
        let cases: Vec<Case> = vec![
            (
                "GStreamer PLI: empty RR, SDES, PLI",
                vec![rr(&[]), sdes(REPORTER), pli(SENT)],
                vec![(SENT, pli(SENT))],
                (1, 2, 0),
            ),
            (
                "GStreamer FIR: empty RR, SDES, FIR",
                vec![rr(&[]), sdes(REPORTER), fir(&[(SENT, 1)])],
                vec![(SENT, fir(&[(SENT, 1)]))],
                (1, 2, 0),
            ),
            (
                "SR, SDES, NACK, PLI",
                vec![
                    sr(RECEIVED, &[SENT]),
                    sdes(RECEIVED),
                    nack(SENT, 9),
                    pli(SENT_2),
                ],
                vec![
                    (SENT, sr(RECEIVED, &[SENT])),
                    (SENT, nack(SENT, 9)),
                    (SENT_2, pli(SENT_2)),
                ],
                (3, 1, 0),
            ),
            (
                "PLI first, then RR",
                vec![pli(SENT), rr(&[SENT])],
                vec![(SENT, pli(SENT)), (SENT, rr(&[SENT]))],
                (2, 0, 0),
            ),
            (
                "FIR for two streams: one FIR each, sequence numbers kept",
                vec![rr(&[]), fir(&[(SENT, 4), (SENT_2, 9)])],
                vec![(SENT, fir(&[(SENT, 4)])), (SENT_2, fir(&[(SENT_2, 9)]))],
                (2, 1, 0),
            ),
            (
                "FIR for a stranger, then for us",
                vec![fir(&[(STRANGER, 1), (SENT, 2)])],
                vec![(SENT, fir(&[(SENT, 2)]))],
                (1, 0, 1),
            ),
            (
                "nothing for us: empty RR, SDES, BYE, PLI for a stranger",
                vec![rr(&[]), sdes(REPORTER), bye(REPORTER), pli(STRANGER)],
                vec![],
                (0, 3, 1),
            ),
        ];
        for (name, compound, want, (delivered, no_media, unknown)) in cases {
            let counters = Arc::new(RtcpCounters::default());
            let mut it = interceptor(&counters);
            let out = read_all(&mut it, arriving(ChainPacket::Rtcp(compound)));
            assert_eq!(out.len(), want.len(), "{name}: {} delivered", out.len());
            for (got, (ssrc, packet)) in out.iter().zip(&want) {
                assert!(got.message.has(&Attribute::DeliverToApplication), "{name}");
                let ChainPacket::Rtcp(got) = &got.message.packet else {
                    panic!("{name}: not RTCP");
                };
                assert_eq!(got.len(), 1, "{name}: one packet each");
                assert!(*got[0] == **packet, "{name}: {:?} != {packet:?}", got[0]);
                assert_eq!(got[0].destination_ssrc().first(), Some(ssrc), "{name}");
            }
            let counted = (
                counters.delivered(),
                counters.dropped(DropReason::NoMediaSsrc),
                counters.dropped(DropReason::UnknownSsrc),
            );
            assert_eq!(counted, (delivered, no_media, unknown), "{name}: counts");
        }
    }

    #[test]
    fn streams_count_from_bind_until_unbind() {
        let counters = Arc::new(RtcpCounters::default());
        let mut it = RtcpToApplication::new(counters.clone());
        let pli_delivered = |it: &mut RtcpToApplication| {
            !read_all(it, arriving(ChainPacket::Rtcp(vec![pli(SENT)]))).is_empty()
        };
        // (step, a PLI is delivered after it)
        type Step = (&'static str, fn(&mut RtcpToApplication), bool);
        let steps: [Step; 5] = [
            ("before binding", |_| {}, false),
            (
                "bound local",
                |it| it.bind_local_stream(&stream(SENT)),
                true,
            ),
            (
                "also bound remote",
                |it| it.bind_remote_stream(&stream(SENT)),
                true,
            ),
            (
                "unbound local",
                |it| it.unbind_local_stream(&stream(SENT)),
                true,
            ),
            (
                "unbound remote",
                |it| it.unbind_remote_stream(&stream(SENT)),
                false,
            ),
        ];
        for (step, apply, want) in steps {
            apply(&mut it);
            assert_eq!(pli_delivered(&mut it), want, "{step}");
        }
        assert_eq!(counters.delivered(), 3);
        assert_eq!(counters.dropped(DropReason::UnknownSsrc), 2);
    }

    #[test]
    fn attributes_of_a_dropped_compound_still_travel_on() {
        let counters = Arc::new(RtcpCounters::default());
        let mut it = interceptor(&counters);
        let estimate = Attribute::TargetBitrateChanged {
            bits_per_second: 1e6,
        };
        let mut packet = arriving(ChainPacket::Rtcp(vec![rr(&[]), twcc(STRANGER)]));
        packet.message.add(estimate.clone());
        let out = read_all(&mut it, packet);
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0].message.packet, ChainPacket::Rtcp(p) if p.is_empty()));
        assert!(out[0].message.has(&estimate));
        assert!(!out[0].message.has(&Attribute::DeliverToApplication));
    }

    #[test]
    fn rtp_passes_untouched_and_uncounted() {
        let counters = Arc::new(RtcpCounters::default());
        let mut it = interceptor(&counters);
        let out = read_all(&mut it, arriving(ChainPacket::Rtp(rtp_packet(RECEIVED, 1))));
        assert!(matches!(&out[..], [p] if matches!(p.message.packet, ChainPacket::Rtp(_))));
        assert_eq!(counters.delivered(), 0);
    }

    fn rtp_packet(ssrc: u32, sequence_number: u16) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: 96,
                ssrc,
                sequence_number,
                ..Default::default()
            },
            payload: Bytes::from_static(&[0; 8]),
        }
    }

    /// The NACK responder (slot 4 000) sees the compound before it is split, and looks
    /// at every packet of it, so a NACK behind an RR and an SDES is answered.
    #[test]
    fn a_nack_inside_a_compound_is_still_answered() {
        let counters = Arc::new(RtcpCounters::default());
        let registry =
            Registry::new().with(Slot::NackResponder, NackResponderBuilder::new().build());
        let mut chain = with_counted_rtcp_to_application(registry, counters.clone()).build();
        chain.bind_local_stream(&stream(SENT));
        chain
            .handle_write(arriving(ChainPacket::Rtp(rtp_packet(SENT, 100))))
            .unwrap();
        while chain.poll_write().is_some() {}

        let compound = vec![rr(&[]), sdes(REPORTER), nack(SENT, 100)];
        let delivered = read_all(&mut chain, arriving(ChainPacket::Rtcp(compound)));
        let resent: Vec<AttributedPacket> = std::iter::from_fn(|| chain.poll_write())
            .map(|p| p.message)
            .collect();

        assert!(
            matches!(&resent[..], [p] if p.has(&Attribute::Retransmission)
                && matches!(&p.packet, ChainPacket::Rtp(r) if r.header.sequence_number == 100)),
            "{resent:?}"
        );
        let delivered: Vec<AttributedPacket> = delivered.into_iter().map(|p| p.message).collect();
        assert!(
            matches!(&delivered[..], [p] if matches!(&p.packet,
                ChainPacket::Rtcp(rtcp) if rtcp.len() == 1 && *rtcp[0] == *nack(SENT, 100))),
            "{delivered:?}"
        );
    }
}
