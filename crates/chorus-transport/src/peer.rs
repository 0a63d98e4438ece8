//! Server-side peer connections: ICE-lite, one shared DTLS certificate, one host
//! candidate on the shared media port, and `chorus-rtc-profile`'s codecs (Opus, VP8).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chorus_rtc_profile::{
    AUDIO_LEVEL_URI, RtcpCounters, codecs, host_candidate, with_counted_rtcp_to_application,
};
use rtc::crypto::{self, RTCCryptoProvider, SignatureScheme};
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, Registry,
    SenderReportBuilder, Slot,
};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use thiserror::Error;

use crate::dtls_srtp::{DtlsError, DtlsSrtpConfig};
use crate::ice::{IceCredentials, IceLite, LivenessConfig};
use crate::webrtc::Accept;

#[derive(Debug, Error)]
pub enum PeerError {
    #[error("cannot create DTLS certificate: {0}")]
    Certificate(String),
    #[error("cannot build peer connection: {0}")]
    Build(String),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
}

/// Which implementation carries the server's side of each media connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// webrtc-rs `rtc`'s `RTCPeerConnection`: the fallback while Chorus's own settles.
    Rtc,
    /// Chorus's own: [`crate::webrtc::ServerConnection`].
    #[default]
    Chorus,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Rtc => "rtc",
            TransportKind::Chorus => "chorus",
        }
    }
}

impl std::str::FromStr for TransportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rtc" => Ok(TransportKind::Rtc),
            "chorus" => Ok(TransportKind::Chorus),
            other => Err(format!("unknown media transport {other:?} (rtc or chorus)")),
        }
    }
}

/// Which way media flows on a server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The client sends media; the server receives, asks for retransmissions, reports reception.
    Publisher,
    /// The server sends media; it answers retransmission requests and sends sender reports.
    Subscriber,
}

/// A peer connection built for the server side, with what follows its paths and
/// liveness. Its ICE credentials are known once it has a local description.
pub struct ServerPeer {
    pub pc: RTCPeerConnection,
    pub ice: IceLite,
}

/// Builds server peer connections. One certificate serves all of them: a fresh
/// ECDSA key per connection would cost a millisecond of CPU per join.
#[derive(Clone)]
pub struct PeerFactory {
    certificate: RTCCertificate,
    announce: SocketAddr,
    liveness: LivenessConfig,
    /// For checking the MESSAGE-INTEGRITY of binding requests.
    crypto: Arc<dyn RTCCryptoProvider>,
    /// Inbound RTCP delivered and dropped, over every connection built here.
    rtcp_counters: Arc<RtcpCounters>,
    transport: TransportKind,
    /// Chorus's own transport: its certificate and SRTP profiles.
    dtls: Arc<DtlsSrtpConfig>,
    /// The wall clock at one instant, read once: sender reports carry NTP time.
    clock: (Instant, SystemTime),
}

impl PeerFactory {
    /// `announce` is the address put in the host candidate (the media port).
    pub fn new(announce: SocketAddr) -> Result<Self, PeerError> {
        let provider =
            crypto::default_provider().map_err(|e| PeerError::Certificate(e.to_string()))?;
        let params = CertificateParams::new(vec!["chorus".to_owned()])
            .map_err(|e| PeerError::Certificate(e.to_string()))?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|e| PeerError::Certificate(e.to_string()))?;
        Ok(Self {
            certificate,
            announce,
            liveness: LivenessConfig::default(),
            crypto: provider.clone(),
            rtcp_counters: Arc::default(),
            transport: TransportKind::default(),
            dtls: Arc::new(DtlsSrtpConfig::generate()?),
            clock: (Instant::now(), SystemTime::now()),
        })
    }

    /// How long silence may last before a connection is disconnected, lost, unreachable.
    pub fn with_liveness(mut self, liveness: LivenessConfig) -> Self {
        self.liveness = liveness;
        self
    }

    /// Which transport the connections built here use.
    pub fn with_transport(mut self, transport: TransportKind) -> Self {
        self.transport = transport;
        self
    }

    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// What a connection of Chorus's own transport is made with, under the server's
    /// `credentials` (drawn by its owner).
    pub fn accept_params(&self, credentials: IceCredentials, session_id: u64) -> Accept<'_> {
        Accept {
            dtls: &self.dtls,
            liveness: self.liveness,
            crypto: self.crypto.clone(),
            candidate: self.announce,
            credentials,
            session_id,
            ingress: crate::IngressKey::default(),
        }
    }

    /// `at` as NTP time (RFC 3550: seconds since 1900 in 32.32 fixed point).
    pub fn ntp(&self, at: Instant) -> u64 {
        const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
        let (origin, wall) = self.clock;
        let wall = match at.checked_duration_since(origin) {
            Some(after) => wall + after,
            None => wall - origin.duration_since(at),
        };
        let unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = unix.as_secs() + NTP_UNIX_OFFSET;
        let frac = (u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    /// Paths and liveness of a connection that has none yet.
    pub fn idle_ice(&self, now: Instant) -> IceLite {
        IceLite::new(self.liveness, self.crypto.clone(), now)
    }

    pub fn announce(&self) -> SocketAddr {
        self.announce
    }

    /// What the connections built here did with inbound RTCP.
    pub fn rtcp_counters(&self) -> &Arc<RtcpCounters> {
        &self.rtcp_counters
    }

    pub fn build(&self, role: PeerRole, now: Instant) -> Result<ServerPeer, PeerError> {
        let err = |e: rtc::shared::error::Error| PeerError::Build(e.to_string());
        // No credentials of ours: rtc draws them, and draws new ones at an ICE restart.
        // Its liveness timers are off (zero): they count STUN alone and would drop a
        // client that switched paths; `IceLite` judges liveness instead. A lite agent
        // sends no keepalives.
        let off = Some(Duration::ZERO);
        let setting_engine = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_timeouts(off, off, off)
            .build();
        let mut media_engine = MediaEngine::default();
        for (params, kind) in codecs() {
            media_engine.register_codec(params, kind).map_err(err)?;
        }
        configure_simulcast_extension_headers(&mut media_engine).map_err(err)?;
        // Each interceptor costs a move of every packet through its queue: keep only
        // those for the direction this connection carries media in.
        let registry =
            with_counted_rtcp_to_application(Registry::new(), self.rtcp_counters.clone());
        let registry = match role {
            PeerRole::Publisher => {
                // The room picks whom to mix from these levels without decoding anyone.
                media_engine
                    .register_header_extension(
                        RTCRtpHeaderExtensionCapability {
                            uri: AUDIO_LEVEL_URI.to_owned(),
                        },
                        RtpCodecKind::Audio,
                        None,
                    )
                    .map_err(err)?;
                let registry = registry
                    .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
                    .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
                configure_twcc_receiver_only(registry, &mut media_engine).map_err(err)?
            }
            PeerRole::Subscriber => registry
                .with(Slot::NackResponder, NackResponderBuilder::new().build())
                .with(Slot::SenderReport, SenderReportBuilder::new().build()),
        };
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(setting_engine)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(err)?;
        pc.add_local_candidate(host_candidate(self.announce).map_err(err)?)
            .map_err(err)?;
        Ok(ServerPeer {
            pc,
            ice: IceLite::new(self.liveness, self.crypto.clone(), now),
        })
    }
}
