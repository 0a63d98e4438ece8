//! The publisher connection's side of a simulcast camera: one m-section with an
//! encoding per rid (lowest first, as the server orders layers by the offer), and the
//! negotiated MID and rid extension ids the layers' packets are tagged with.

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};

use super::Peer;
use crate::error::ClientError;
use crate::media::SimulcastLayer;
use crate::profile::VideoCodec;

impl Peer {
    /// The codec the publisher's video is sent in.
    pub(super) fn video_rtp_codec(&self) -> RTCRtpCodec {
        match self.video_codec {
            VideoCodec::Vp8 => chorus_rtc_profile::vp8_codec().rtp_codec,
            VideoCodec::H264 => chorus_rtc_profile::h264_codec().rtp_codec,
            VideoCodec::Vp9 => chorus_rtc_profile::vp9_codec().rtp_codec,
        }
    }

    /// Adds a camera sent in `layers`, layer `i` on `ssrcs[i]`: the offer lists
    /// `a=rid:<rid> send` per layer and `a=simulcast:send q;h;f`, as a browser's
    /// `sendEncodings` do (no `a=ssrc` lines: the server learns the SSRCs from the rid
    /// extension of the first packets).
    pub(crate) fn add_simulcast_track(
        &mut self,
        stream_id: &str,
        track_id: &str,
        layers: &[SimulcastLayer; 3],
        ssrcs: [u32; 3],
    ) -> Result<RTCRtpSenderId, ClientError> {
        let codec = self.video_rtp_codec();
        let codings = layers
            .iter()
            .zip(ssrcs)
            .map(|(layer, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: layer.rid.as_str().to_owned(),
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect();
        let track = MediaStreamTrack::new(
            stream_id.to_owned(),
            track_id.to_owned(),
            "camera".to_owned(),
            RtpCodecKind::Video,
            codings,
        );
        Ok(self.pc.add_track(track)?)
    }

    /// The negotiated (MID, rid) extension ids of a sender and its m-section's mid, once
    /// answered; the rid id is `None` when the answer did not take simulcast.
    pub(crate) fn simulcast_tags(
        &mut self,
        sender: RTCRtpSenderId,
        track_id: &str,
    ) -> (Option<(u8, String)>, Option<u8>) {
        let mid = self.mid_of(track_id);
        let Some(mut rtp_sender) = self.pc.rtp_sender(sender) else {
            return (None, None);
        };
        let extensions = &rtp_sender.get_parameters().rtp_parameters.header_extensions;
        let id = |uri: &str| {
            extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
        };
        let mid_ext = id(SDES_MID_URI).zip(mid);
        (mid_ext, id(SDES_RTP_STREAM_ID_URI))
    }

    /// The mid of the local m-section whose msid names `track_id`.
    fn mid_of(&self, track_id: &str) -> Option<String> {
        let sdp = self.pc.local_description()?.sdp;
        let section = sdp.split("\nm=").find(|section| {
            section
                .lines()
                .filter_map(|l| l.strip_prefix("a=msid:"))
                .any(|msid| msid.split_whitespace().nth(1) == Some(track_id))
        })?;
        let mid = section.lines().find_map(|l| l.strip_prefix("a=mid:"))?;
        Some(mid.trim().to_owned())
    }
}
