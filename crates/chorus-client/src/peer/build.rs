//! How a client connection is made: its codecs, header extensions, interceptors, ICE
//! timers, SRTP profiles and DTLS role, from the [`MediaProfile`].

use std::time::{Duration, Instant};

use chorus_protocol::signal::PeerTarget;
use chorus_rtc_profile::{AUDIO_LEVEL_URI, h264_codec};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
    register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};

use crate::error::ClientError;
use crate::profile::{Keepalive, MediaProfile, VideoCodec};

/// Opus and the one video format the synthetic source sends (publisher; a server that
/// does not take it leaves the video without a codec) or VP8 and H.264 (subscriber), the
/// RFC 6464 audio level extension (and for a simulcast publisher the MID and rid ones), the default interceptors (NACK, RTCP reports, TWCC
/// feedback), `chorus_rtc_profile::with_rtcp_to_application`, and the SRTP protection
/// profiles and answering DTLS role of `profile`.
pub(super) fn build_peer_connection(
    now: Instant,
    target: PeerTarget,
    profile: &MediaProfile,
) -> Result<RTCPeerConnection, ClientError> {
    let video_codec = profile.video_codec;
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(chorus_rtc_profile::opus_codec(), RtpCodecKind::Audio)?;
    let sends_h264 = target == PeerTarget::Publisher && video_codec == VideoCodec::H264;
    if !sends_h264 {
        media_engine.register_codec(chorus_rtc_profile::vp8_codec(), RtpCodecKind::Video)?;
    }
    if sends_h264 || target == PeerTarget::Subscriber {
        media_engine.register_codec(h264_codec(), RtpCodecKind::Video)?;
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
    let registry = if profile.transport_cc {
        register_default_interceptors(registry, &mut media_engine)?
    } else {
        // The defaults but transport-wide CC: no extension to answer, no feedback.
        configure_simulcast_extension_headers(&mut media_engine)?;
        configure_rtcp_reports(configure_nack(registry, &mut media_engine))
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
