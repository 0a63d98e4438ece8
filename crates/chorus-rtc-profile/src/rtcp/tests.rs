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
    let registry = Registry::new().with(Slot::NackResponder, NackResponderBuilder::new().build());
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
