//! What a client sends and how: the media profile, the video codec, the keepalive, and
//! the negotiated labels of one outgoing stream.
//!
//! The common vocabulary of the peer connections ([`crate::peer`]) and the synthetic
//! media sources ([`crate::media`]); it imports neither.

use std::time::Duration;

use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;

use crate::shaper::DownlinkCap;
use crate::talk::AudioContent;

/// The video payload format a source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    #[default]
    Vp8,
    /// RFC 6184, packetization-mode 1, baseline profile (`42e01f`).
    H264,
    /// RFC 9628, profile 0, one spatial and temporal layer per stream (L1T1); a camera in
    /// three of each with [`MediaProfile::svc`].
    Vp9,
}

/// Shape of the synthetic media a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaProfile {
    /// Video frames per second (camera and screen share).
    pub video_fps: u32,
    /// RTP packets per delta frame.
    pub video_packets_per_frame: usize,
    /// RTP packets per keyframe.
    pub video_packets_per_keyframe: usize,
    /// RTP payload bytes per video packet.
    pub video_packet_size: usize,
    pub video_codec: VideoCodec,
    /// Cameras are sent in three simulcast layers (rids q/h/f, 180p/360p/720p,
    /// [`crate::media::SIMULCAST_LAYERS`]), as a browser's `sendEncodings`; the
    /// publisher connection then offers the MID and rid header extensions.
    pub simulcast: bool,
    /// Cameras are sent in VP9 with three spatial and three temporal layers in one
    /// stream (one SSRC), as Chromium's `scalabilityMode: 'L3T3_KEY'`: 180p/360p/720p at
    /// about 150/450/1200 kbit/s ([`crate::media::SVC_LAYERS`]). The publisher connection
    /// then offers VP9 for every video, whatever `video_codec` says (see
    /// [`MediaProfile::sent_video_codec`]); it takes precedence over `simulcast`.
    pub svc: bool,
    /// The subscriber connection answers the server's transport-wide congestion control
    /// extension and sends its feedback (as browsers do). Off, the server has no
    /// bandwidth estimate for this client and allocates nothing to it: for load tests whose
    /// clients share one CPU, where feedback delays measure that CPU, not a link.
    pub transport_cc: bool,
    /// What the microphone sends.
    pub audio: AudioContent,
    /// Decode received audio with Opus and count what it holds
    /// ([`crate::InboundTrackStats::decoded`]). About 20 µs per 20 ms frame and track.
    pub decode_audio: bool,
    /// How the connections are kept alive once ICE is up.
    pub keepalive: Keepalive,
    /// The SRTP protection profiles both connections offer in DTLS, most preferred
    /// first. Empty is rtc's default: AEAD_AES_128_GCM, AEAD_AES_256_GCM,
    /// AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32.
    pub srtp_profiles: Vec<SrtpProtectionProfile>,
    /// Answer the server's offers (subscriber connection) with `a=setup:active`, as
    /// browsers and GStreamer's `webrtcbin` do: this client is then the DTLS client
    /// and the server the DTLS server. Off, rtc answers an ICE-lite offerer with
    /// `a=setup:passive` and the server is the DTLS client on both connections.
    pub answer_setup_active: bool,
    /// Once the data channels are open ([`crate::Client::open_data`]), send this many
    /// data messages a second to the room (`{"data": {"seq": n}}`), counted in
    /// [`crate::ClientStats::data_sent`]; messages received are then only counted
    /// ([`crate::ClientStats::data_received`]), not queued for [`crate::Client::next_data`].
    pub synthetic_data: Option<SyntheticData>,
    /// Caps what the subscriber connection receives, inside the client: a FIFO link of
    /// this rate and queue ([`crate::shaper`]), for load tests of adaptation without a
    /// network namespace per participant. `None`: what arrives is taken at once.
    pub downlink_cap: Option<DownlinkCap>,
}

impl MediaProfile {
    /// The codec the publisher connection offers and sends video in: VP9 for
    /// [`MediaProfile::svc`], else `video_codec`.
    pub fn sent_video_codec(&self) -> VideoCodec {
        if self.svc {
            VideoCodec::Vp9
        } else {
            self.video_codec
        }
    }
}

/// Data messages a client sends by itself, for load tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticData {
    pub per_second: u32,
    pub mode: chorus_protocol::data::DataMode,
}

impl Default for MediaProfile {
    fn default() -> Self {
        Self {
            video_fps: 15,
            video_packets_per_frame: 2,
            video_packets_per_keyframe: 6,
            video_packet_size: 1000,
            video_codec: VideoCodec::Vp8,
            simulcast: false,
            svc: false,
            transport_cc: true,
            audio: AudioContent::default(),
            decode_audio: true,
            keepalive: Keepalive::default(),
            srtp_profiles: Vec::new(),
            answer_setup_active: false,
            synthetic_data: None,
            downlink_cap: None,
        }
    }
}

/// How a client keeps its connections alive once ICE is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// Consent checks (authenticated binding requests) at this interval, as browsers
    /// do: Chromium about every 2.5 s, Firefox every 4–6 s.
    Consent(Duration),
    /// Binding indications at this interval and no binding request after ICE is up,
    /// as libnice (GStreamer's `webrtcbin`) does by default.
    Indications(Duration),
}

impl Default for Keepalive {
    fn default() -> Self {
        Self::Consent(Duration::from_secs(2))
    }
}

/// Where a synthetic stream is sent and how it is labelled on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamParams {
    pub ssrc: u32,
    pub payload_type: u8,
    /// Negotiated id of the ssrc-audio-level header extension (audio only).
    pub audio_level_ext: Option<u8>,
}
