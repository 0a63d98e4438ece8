//! RTP from a publisher and RTCP from either side, as Chorus itself reads them once
//! SRTP is off: the packet header (by `rtc`), which track and simulcast layer it is on
//! (MID and rid extensions), the transport-wide sequence number, the VP8 payload
//! descriptor, the layer forwarder and receive statistics it drives, the VP9 payload
//! descriptor and the SVC forwarder it drives, the AV1 dependency descriptor; RTCP compounds
//! taken apart into feedback, and NACKs answered from a packet history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_core::codec::vp8_is_keyframe;
use chorus_core::{
    DependencyDescriptorReader, ExtSeq, NackMap, PacketHistory, ReceiverStats, Sent, SeqUnwrapper,
    SvcForwarder, SvcLayers, SvcPacket, Targeted, TimestampUnwrapper, VideoForwarder,
    Vp8Descriptor, Vp9Descriptor,
};
use chorus_core::{Layer, LayerAction, LayerForwarder, LayerPacket, SpatialLayer, TemporalLayer};
use chorus_room::rtp_streams::{UpSection, UpStream, stream_of};
use chorus_transport::rtcp::twcc::{TwccRecorder, read_extension};
use chorus_transport::rtcp::{Feedback, RtcpTotals, parse_compound};
use rtc::rtp::Packet;
use rtc::shared::marshal::Unmarshal;

use crate::frames;

/// Header extension ids, as the seeds' publisher negotiated them.
pub const MID_EXT: u8 = 4;
pub const RID_EXT: u8 = 10;
pub const TWCC_EXT: u8 = 3;
pub const AUDIO_LEVEL_EXT: u8 = 1;
/// The AV1 dependency descriptor (two-byte header extensions when it carries a structure).
pub const DD_EXT: u8 = 12;

fn sections() -> HashMap<String, UpSection> {
    let stream = |track: &str, video| UpStream {
        sdp_track: track.into(),
        video,
        layer: None,
    };
    HashMap::from([
        (
            "0".to_owned(),
            UpSection {
                stream: stream("mic", false),
                rids: Vec::new(),
                rid_ext: None,
            },
        ),
        (
            "1".to_owned(),
            UpSection {
                stream: stream("cam", true),
                rids: ["q", "h", "f"].map(str::to_owned).to_vec(),
                rid_ext: Some(RID_EXT),
            },
        ),
    ])
}

/// Frames are RTP packets of one publisher (a plain audio section, mid 0, and a
/// simulcast video section, mid 1), 20 ms apart, forwarded to one subscriber whose
/// target layer a packet's length picks now and then.
pub fn rtp(data: &[u8]) {
    let start = Instant::now();
    let by_mid = sections();
    let mut by_ssrc = HashMap::new();
    let mut subscriber = LayerForwarder::new(Layer::BEST);
    // The same packets read as VP9 SVC (one stream) by a subscriber of its own.
    let mut svc_subscriber = SvcForwarder::new(Layer::BEST);
    // And placed by their AV1 dependency descriptors, by another.
    let mut av1_subscriber = SvcForwarder::new(Layer::BEST);
    let mut seqs: [SeqUnwrapper; 3] = Default::default();
    let mut timestamps: [TimestampUnwrapper; 3] = Default::default();
    let mut stats = ReceiverStats::new(90_000);
    let mut twcc = TwccRecorder::new(1);
    let mut feedback = Vec::new();
    // The dependency descriptors of the stream (one reader: the structure of the last
    // keyframe is remembered across packets).
    let mut dd = DependencyDescriptorReader::default();
    for (i, frame) in frames(data).enumerate() {
        let now = start + Duration::from_millis(20 * i as u64);
        let mut raw = Bytes::copy_from_slice(frame);
        let Ok(packet) = Packet::unmarshal(&mut raw) else {
            continue;
        };
        let h = &packet.header;
        if let Some(seq) = h.get_extension(TWCC_EXT).and_then(|v| read_extension(&v)) {
            twcc.received(seq, h.ssrc, now);
        }
        let _level = h
            .get_extension(AUDIO_LEVEL_EXT)
            .and_then(|v| v.first().map(|b| b & 0x7f));
        // The extension when there is one; else the payload, read as a descriptor too.
        let dd_data = h
            .get_extension(DD_EXT)
            .unwrap_or_else(|| packet.payload.clone());
        let mut av1 = None;
        if let Ok(f) = dd.read(&dd_data) {
            let s = dd.structure().expect("a frame read has a structure");
            av1 = Some((SvcLayers::of_dd(&f, s), f.starts_keyframe()));
            assert!(f.spatial_id < s.spatial_layers(), "its template is in it");
            let all = u64::MAX >> (64 - s.decode_targets);
            let active = f.active_decode_targets.map_or(0, u64::from);
            assert!(active <= all, "one bit per decode target");
        }
        let Some(up) = stream_of(&mut by_ssrc, &by_mid, Some(MID_EXT), h) else {
            continue;
        };
        if !up.video {
            continue;
        }
        let layer = usize::from(up.layer.map_or(0, |l| l.0)).min(2);
        let seq = seqs[layer].unwrap(h.sequence_number);
        stats.received(seq, h.timestamp, now);
        if frame.len() % 7 == 0 {
            let spatial = SpatialLayer::new((frame.len() / 7 % 4) as u8);
            let temporal = TemporalLayer::new((frame.len() % 4) as u8);
            let target = spatial
                .zip(temporal)
                .map(|(spatial, temporal)| Layer { spatial, temporal });
            subscriber.set_target(target);
            svc_subscriber.set_target(target);
            av1_subscriber.set_target(target);
        }
        let vp9 = Vp9Descriptor::parse(&packet.payload);
        if let Some(d) = vp9 {
            assert!(d.len <= packet.payload.len(), "the descriptor is inside");
            if let Some(ss) = d.structure {
                let _ = ss.resolution(d.sid());
            }
        }
        let svc = SvcPacket {
            seq,
            timestamp: timestamps[layer].unwrap(h.timestamp),
            marker: h.marker,
            keyframe: vp9.is_some_and(|d| d.starts_keyframe()),
            layers: vp9.as_ref().map(SvcLayers::of),
        };
        let _ = svc_subscriber.forward(&svc, now);
        let av1 = SvcPacket {
            keyframe: av1.is_some_and(|(_, key)| key),
            layers: av1.map(|(layers, _)| layers),
            ..svc
        };
        let _ = av1_subscriber.forward(&av1, now);
        let vp8 = Vp8Descriptor::parse(&packet.payload);
        let lp = LayerPacket {
            layer: SpatialLayer::new(layer as u8).expect("0..=2"),
            seq,
            timestamp: svc.timestamp,
            marker: h.marker,
            keyframe: vp8_is_keyframe(&packet.payload),
            vp8,
        };
        let decision = subscriber.forward(&lp, now);
        if let LayerAction::Forward {
            vp8: Some(rewrite), ..
        } = decision.action
        {
            let mut payload = packet.payload.to_vec();
            assert!(
                rewrite.apply(&mut payload).is_ok(),
                "a descriptor that parsed takes its rewrite"
            );
        }
        let _ = stats.report(now);
        feedback.clear();
        twcc.poll_feedback(now, &mut feedback);
    }
}

/// Frames are RTCP compounds from a client, 10 ms apart; the NACKs among them are
/// answered from a subscriber's history of 64 packets.
pub fn rtcp(data: &[u8]) {
    let start = Instant::now();
    let totals = RtcpTotals::default();
    let mut history = PacketHistory::new(64);
    let mut nacks = NackMap::new(64, Duration::from_millis(30));
    let mut stats = ReceiverStats::new(90_000);
    for seq in 0..64u16 {
        history.insert(ExtSeq(u64::from(seq) + 1000), seq);
        let sent = Sent {
            source: ExtSeq(u64::from(seq) + 1000),
            timestamp: u32::from(seq) * 3000,
            marker: seq % 4 == 0,
        };
        nacks.record(seq.wrapping_add(500), sent);
    }
    let mut out = Vec::new();
    for (i, frame) in frames(data).enumerate() {
        let now = start + Duration::from_millis(10 * i as u64);
        out.clear();
        let parsed = parse_compound(frame, &mut out);
        totals.count(&parsed);
        for fb in out.drain(..) {
            match fb {
                Feedback::Nack { lost, .. } => {
                    for seq in lost {
                        let _ = nacks.repair(seq, &history, now);
                    }
                }
                Feedback::SenderReport { ntp, .. } => stats.sender_report(ntp, now),
                _ => {}
            }
        }
    }
}
