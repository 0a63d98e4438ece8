//! The WebRTC profile a Chorus server and its clients share, on the sans-I/O `rtc` core:
//! the codecs and their payload types (Opus, VP8, VP9, H.264, AV1), the audio level header extension, the
//! tracks both ends send, the interceptor that delivers every inbound RTCP packet about a
//! stream to the application ([`with_rtcp_to_application`]), and the ICE pieces a client
//! needs ([`ice`]). No sockets, no tasks: the server's UDP plane is `chorus-transport`.

mod codec;
pub mod ice;
mod rtcp;

pub use codec::{
    AUDIO_LEVEL_URI, AV1_FMTP, AV1_PT, H264_FMTP, H264_PT, OPUS_PT, VP8_PT, VP9_FMTP, VP9_PT,
    av1_codec, codecs, h264_codec, opus_codec, sending_track, sending_track_with_codec, vp8_codec,
    vp9_codec,
};
pub use ice::{IceCredentials, host_candidate};
pub use rtcp::{
    DropReason, RtcpCounters, with_counted_rtcp_to_application, with_rtcp_to_application,
};
