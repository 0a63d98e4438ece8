//! The codecs Chorus negotiates, their payload types and header extensions, and the
//! tracks both ends send with them.

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
/// RFC 6464 client-to-mixer audio levels: the server picks whom to mix from them.
pub use rtc::sdp::extmap::AUDIO_LEVEL_URI;

/// Payload types the server offers. Answers from clients keep them.
pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 96;
pub const H264_PT: u8 = 102;
pub const VP9_PT: u8 = 98;
/// Chromium's own AV1 payload type (free among the ones above).
pub const AV1_PT: u8 = 45;

/// The one AV1 Chorus takes and offers: the main profile (8- and 10-bit 4:2:0, what
/// browsers decode), level 3.1 (`level-idx=5`), main tier, as Chromium offers it.
pub const AV1_FMTP: &str = "level-idx=5;profile=0;tier=0";

/// The one VP9 Chorus takes and offers: profile 0 (8-bit 4:2:0), with or without
/// spatial and temporal layers in one stream.
pub const VP9_FMTP: &str = "profile-id=0";

/// The one H.264 Chorus takes and offers: constrained baseline (what every browser
/// decodes) in packetization mode 1 (FU-A and STAP-A), level 3.1 either way.
pub const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

/// Opus as Chorus negotiates it.
pub fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: OPUS_PT,
    }
}

/// VP8 as Chorus negotiates it, with keyframe requests.
pub fn vp8_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![
                feedback("ccm", "fir"),
                feedback("nack", "pli"),
                feedback("nack", ""),
            ],
        },
        payload_type: VP8_PT,
    }
}

/// H.264 as Chorus negotiates it ([`H264_FMTP`]), with keyframe requests.
pub fn h264_codec() -> RTCRtpCodecParameters {
    let mut codec = vp8_codec();
    codec.rtp_codec.mime_type = MIME_TYPE_H264.to_owned();
    codec.rtp_codec.sdp_fmtp_line = H264_FMTP.to_owned();
    codec.payload_type = H264_PT;
    codec
}

/// VP9 profile 0 as Chorus negotiates it ([`VP9_FMTP`]), with keyframe requests.
pub fn vp9_codec() -> RTCRtpCodecParameters {
    let mut codec = vp8_codec();
    codec.rtp_codec.mime_type = MIME_TYPE_VP9.to_owned();
    codec.rtp_codec.sdp_fmtp_line = VP9_FMTP.to_owned();
    codec.payload_type = VP9_PT;
    codec
}

/// AV1 main profile as Chorus negotiates it ([`AV1_FMTP`]), with keyframe requests.
pub fn av1_codec() -> RTCRtpCodecParameters {
    let mut codec = vp8_codec();
    codec.rtp_codec.mime_type = MIME_TYPE_AV1.to_owned();
    codec.rtp_codec.sdp_fmtp_line = AV1_FMTP.to_owned();
    codec.payload_type = AV1_PT;
    codec
}

/// The codecs Chorus forwards: one audio, one video, so every subscriber can take every track.
pub fn codecs() -> [(RTCRtpCodecParameters, RtpCodecKind); 2] {
    [
        (opus_codec(), RtpCodecKind::Audio),
        (vp8_codec(), RtpCodecKind::Video),
    ]
}

/// A track to send on one SSRC with the codec of its kind; `stream_id` and
/// `track_id` become the msid of its m-line.
pub fn sending_track(
    stream_id: String,
    track_id: String,
    label: String,
    kind: RtpCodecKind,
    ssrc: u32,
) -> MediaStreamTrack {
    let codec = match kind {
        RtpCodecKind::Audio => opus_codec(),
        _ => vp8_codec(),
    }
    .rtp_codec;
    sending_track_with_codec(stream_id, track_id, label, kind, ssrc, codec)
}

/// [`sending_track`] with a codec of the caller's choice (e.g. a client sending H.264).
pub fn sending_track_with_codec(
    stream_id: String,
    track_id: String,
    label: String,
    kind: RtpCodecKind,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        stream_id,
        track_id,
        label,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}
