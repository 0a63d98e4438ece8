//! How a client connection is made: its codecs, header extensions, interceptors, ICE
//! timers, SRTP profiles and DTLS role, from the [`MediaProfile`].

use std::time::{Duration, Instant};

use chorus_protocol::signal::PeerTarget;
use chorus_rtc_profile::{AUDIO_LEVEL_URI, h264_codec, vp9_codec};
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Registry, Slot};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_NACK,
};

use crate::error::ClientError;
use crate::profile::{Keepalive, MediaProfile, VideoCodec};

/// Opus and the one video format the synthetic source sends (publisher; a server that
/// does not take it leaves the video without a codec) or VP8, H.264 and VP9 (subscriber), the
/// RFC 6464 audio level extension (and for a simulcast publisher the MID and rid ones), the default interceptors (NACK giving up as a browser does, RTCP reports, TWCC
/// feedback), `chorus_rtc_profile::with_rtcp_to_application`, and the SRTP protection
/// profiles and answering DTLS role of `profile`.
pub(super) fn build_peer_connection(
    now: Instant,
    target: PeerTarget,
    profile: &MediaProfile,
) -> Result<RTCPeerConnection, ClientError> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(chorus_rtc_profile::opus_codec(), RtpCodecKind::Audio)?;
    let video_codecs = match target {
        PeerTarget::Publisher => vec![profile.sent_video_codec()],
        PeerTarget::Subscriber => vec![VideoCodec::Vp8, VideoCodec::H264, VideoCodec::Vp9],
    };
    for codec in video_codecs {
        let codec = match codec {
            VideoCodec::Vp8 => chorus_rtc_profile::vp8_codec(),
            VideoCodec::H264 => h264_codec(),
            VideoCodec::Vp9 => vp9_codec(),
        };
        media_engine.register_codec(codec, RtpCodecKind::Video)?;
    }
    media_engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    if target == PeerTarget::Publisher && profile.simulcast {
        // MID and rid (and repaired rid), as a browser offers them for simulcast: the
        // server tells the layers apart by them.
        configure_simulcast_extension_headers(&mut media_engine)?;
    }
    let registry = chorus_rtc_profile::with_rtcp_to_application(Registry::new());
    // `rtc`'s defaults, with a browser's NACK generator; transport-wide CC feedback only
    // if the profile has it (else no extension to answer, no feedback).
    configure_simulcast_extension_headers(&mut media_engine)?;
    let registry = configure_rtcp_reports(configure_nack(registry, &mut media_engine));
    let registry = if profile.transport_cc {
        configure_twcc_receiver_only(registry, &mut media_engine)?
    } else {
        registry
    };
    // The server judges liveness; this client's own ICE timers are off, so that a
    // sparse keepalive does not make it give up on its side. The connection's agent
    // sends consent checks only in `Keepalive::Consent`.
    let off = Some(Duration::ZERO);
    let consent = match profile.keepalive {
        Keepalive::Consent(every) => Some(every),
        Keepalive::Indications(_) => off,
    };
    let mut setting_engine = SettingEngineBuilder::new()
        .with_ice_timeouts(off, off, consent)
        .with_srtp_protection_profiles(profile.srtp_profiles.clone());
    if profile.answer_setup_active {
        setting_engine = setting_engine.with_answering_dtls_role(RTCDtlsRole::Client);
    }
    let setting_engine = setting_engine.build();
    Ok(RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting_engine)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(now)?)
}

/// How many times a receiver asks for one lost packet: libwebrtc's `kMaxNackRetries`.
/// `rtc`'s generator asks without end while the packet is in its 512-packet log, every
/// 100 ms (about 30 times at a camera's rate), so that under overload 350 simulated
/// receivers sent NACK storms no browser sends.
pub(crate) const MAX_NACKS_PER_PACKET: u16 = 10;

/// NACK and PLI feedback for video, the NACK responder for what this client sends, and
/// a NACK generator that gives up on a packet as a browser does.
fn configure_nack(registry: Registry, media_engine: &mut MediaEngine) -> Registry {
    for parameter in ["", "pli"] {
        media_engine.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_NACK.to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let generator = NackGeneratorBuilder::new().with_max_nacks_per_packet(MAX_NACKS_PER_PACKET);
    registry
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(Slot::NackGenerator, generator.build())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rtc::interceptor::{
        AttributedPacket, Interceptor, Packet, RTCPFeedback, StreamInfo, TaggedPacket,
    };
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    use rtc::sansio::Protocol;
    use rtc::shared::TransportContext;

    use super::*;

    fn rtp(now: Instant, ssrc: u32, seq: u16) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    ssrc,
                    sequence_number: seq,
                    payload_type: 96,
                    ..Default::default()
                },
                payload: vec![0; 100].into(),
            })),
        }
    }

    #[test]
    fn a_lost_packet_is_asked_for_as_often_as_a_browser_asks_then_given_up() {
        let mut chain = configure_nack(Registry::new(), &mut MediaEngine::default()).build();
        let ssrc = 7;
        chain.bind_remote_stream(&StreamInfo {
            ssrc,
            clock_rate: 90_000,
            mime_type: "video/VP8".into(),
            payload_type: 96,
            rtcp_feedback: vec![RTCPFeedback {
                typ: "nack".into(),
                parameter: String::new(),
            }],
            ..Default::default()
        });
        let t0 = Instant::now();
        // 3 never comes; the stream goes on, so it stays in the receive log throughout.
        let mut nacked = 0;
        for step in 0..50u16 {
            let now = t0 + Duration::from_millis(100 * u64::from(step));
            for seq in [2 * step, 2 * step + 1].into_iter().filter(|&s| s != 3) {
                chain.handle_read(rtp(now, ssrc, seq)).unwrap();
            }
            while chain.poll_read().is_some() {}
            chain.handle_timeout(now).unwrap();
            while let Some(out) = chain.poll_write() {
                if let Packet::Rtcp(packets) = &out.message.packet {
                    nacked += packets
                        .iter()
                        .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                        .filter(|n| n.nacks.iter().any(|pair| pair.packet_list().contains(&3)))
                        .count();
                }
            }
        }
        assert_eq!(nacked, usize::from(MAX_NACKS_PER_PACKET));
    }
}
