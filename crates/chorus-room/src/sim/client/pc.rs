//! One of a simulated client's two peer connections, built as `chorus-client` builds
//! its own: fed the server's datagrams and its timeouts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chorus_transport::AUDIO_LEVEL_URI;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::sim::net::SERVER;

/// One of a client's two connections.
pub(crate) struct Pc {
    pub pc: RTCPeerConnection,
    pub addr: SocketAddr,
    pub connected: bool,
}

impl Pc {
    /// Opus and VP8, the RFC 6464 audio level extension, the default interceptors (NACK,
    /// reports, TWCC), RTCP to the application, consent checks every 2 s and no ICE
    /// timers of its own: as `chorus-client` builds its connections.
    pub(super) fn new(addr: SocketAddr, now: Instant) -> Self {
        Self::with(addr, now, false)
    }

    /// [`Self::new`], and with `simulcast` the MID, rid and repaired-rid extensions for
    /// video, as a browser offers them.
    pub(crate) fn with(addr: SocketAddr, now: Instant, simulcast: bool) -> Self {
        Self::with_video(addr, now, simulcast, None)
    }

    /// A publisher connection that offers VP9 only (a camera in SVC layers).
    pub(crate) fn vp9(addr: SocketAddr, now: Instant) -> Self {
        Self::with_video(addr, now, false, Some(chorus_transport::vp9_codec()))
    }

    /// A publisher connection that offers AV1 only (`av1.rs`).
    pub(crate) fn av1(addr: SocketAddr, now: Instant) -> Self {
        Self::with_video(addr, now, false, Some(chorus_transport::av1_codec()))
    }

    /// Video in VP8, then VP9, then AV1 (a subscriber takes any), or in `only` alone.
    fn with_video(
        addr: SocketAddr,
        now: Instant,
        simulcast: bool,
        only: Option<RTCRtpCodecParameters>,
    ) -> Self {
        let mut media = MediaEngine::default();
        if simulcast {
            configure_simulcast_extension_headers(&mut media).expect("simulcast extensions");
        }
        media
            .register_codec(chorus_transport::opus_codec(), RtpCodecKind::Audio)
            .expect("opus");
        // An AV1 publisher offers the dependency descriptor too (`av1.rs` sends it).
        let av1 = only
            .as_ref()
            .is_some_and(|c| c.payload_type == chorus_transport::AV1_PT);
        let video = only.map_or_else(
            || {
                vec![
                    chorus_transport::vp8_codec(),
                    chorus_transport::vp9_codec(),
                    chorus_transport::av1_codec(),
                ]
            },
            |codec| vec![codec],
        );
        for codec in video {
            media
                .register_codec(codec, RtpCodecKind::Video)
                .expect("video codec");
        }
        media
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .expect("audio level");
        if av1 {
            let dd = RTCRtpHeaderExtensionCapability {
                uri: chorus_transport::webrtc::sdp::DD_URI.to_owned(),
            };
            media
                .register_header_extension(dd, RtpCodecKind::Video, None)
                .expect("dependency descriptor");
        }
        let registry = chorus_transport::with_rtcp_to_application(Registry::new());
        let registry = register_default_interceptors(registry, &mut media).expect("interceptors");
        let off = Some(Duration::ZERO);
        let settings = SettingEngineBuilder::new()
            .with_ice_timeouts(off, off, Some(Duration::from_secs(2)))
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .expect("client peer connection");
        pc.add_local_candidate(chorus_transport::host_candidate(addr).expect("candidate"))
            .expect("host candidate");
        Self {
            pc,
            addr,
            connected: false,
        }
    }

    /// Feeds a datagram from the server.
    pub fn receive(&mut self, data: BytesMut, now: Instant) {
        let _ = self.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.addr,
                peer_addr: SERVER,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: data,
        });
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|at| at <= now) {
            let _ = self.pc.handle_timeout(now);
        }
    }

    pub(super) fn sdp(&self) -> String {
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .expect("local description just set")
    }
}
