//! A simulated camera in three simulcast layers (rids q, h, f, lowest first), offered
//! as a browser offers `sendEncodings`: one m-section, one encoding per rid, no
//! `a=ssrc` lines. Each layer is its own stream (SSRC, numbering, keyframes) of the
//! same frames, its packets a size of their own (so a receiver can tell which layer it
//! got) and tagged with the MID and rid header extensions, as the server learns the
//! layer from its first packets. Each layer numbers its pictures on its own (a 15-bit
//! VP8 picture id, starting far apart), as a browser's encoders do.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};

use super::stream::{Stream, VIDEO_FPS};
use super::{ClientId, Sim};

/// The layers: rid and payload bytes per packet.
pub const LAYERS: [(&str, usize); 3] = [("q", 300), ("h", 600), ("f", 1000)];

/// The camera track with one encoding per layer, under SSRCs `ssrc`, `ssrc + 1`, ….
pub(super) fn sending_track(stream_id: String, track_id: String, ssrc: u32) -> MediaStreamTrack {
    let codec = chorus_transport::vp8_codec().rtp_codec;
    let codings = LAYERS
        .iter()
        .zip(ssrc..)
        .map(|((rid, _), ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: (*rid).to_owned(),
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec.clone(),
            ..Default::default()
        })
        .collect();
    MediaStreamTrack::new(
        stream_id,
        track_id,
        "camera".to_owned(),
        RtpCodecKind::Video,
        codings,
    )
}

pub(super) struct Layer {
    pub rid: &'static str,
    pub ssrc: u32,
    size: usize,
    stream: Stream,
    keyframe_due: bool,
    /// The VP8 picture id of its next frame.
    picture_id: u16,
    pub keyframes_sent: u32,
    /// Sends nothing (as a browser stops its top layers when short of bandwidth).
    pub paused: bool,
}

/// What a simulcast camera sends, once the answer gave the extension ids.
pub(super) struct SimulcastSend {
    mid: (u8, Bytes),
    rid_ext: u8,
    pub layers: Vec<Layer>,
}

impl SimulcastSend {
    pub fn new(payload_type: u8, ssrc: u32, mid: (u8, String), rid_ext: u8, now: Instant) -> Self {
        let layers = LAYERS
            .iter()
            .zip(ssrc..)
            .zip([100, 9_000, 32_700])
            .map(|((&(rid, size), ssrc), picture_id)| Layer {
                rid,
                ssrc,
                size,
                stream: Stream::new(payload_type, None, ssrc, now),
                keyframe_due: true,
                picture_id,
                keyframes_sent: 0,
                paused: false,
            })
            .collect();
        Self {
            mid: (mid.0, Bytes::from(mid.1)),
            rid_ext,
            layers,
        }
    }

    /// The packets of every layer's frames due by `now`, frame by frame (q, h, f of
    /// one picture, then the next), as an encoder sends them.
    pub fn poll_packets(&mut self, now: Instant) -> Vec<rtp::Packet> {
        let mut out = Vec::new();
        let interval = Duration::from_secs(1) / VIDEO_FPS;
        loop {
            let due = self.layers.iter_mut().filter(|l| l.stream.next_at <= now);
            let Some(layer) = due.min_by_key(|l| l.stream.next_at) else {
                break;
            };
            {
                let keyframe = std::mem::take(&mut layer.keyframe_due);
                layer.stream.next_at += interval;
                layer.stream.ts = layer.stream.ts.wrapping_add(90_000 / VIDEO_FPS);
                if layer.paused {
                    // A paused layer's next frame, when it resumes, is a keyframe.
                    layer.keyframe_due = true;
                    continue;
                }
                layer.keyframes_sent += u32::from(keyframe);
                let payloads = sized_vp8_frame(keyframe, layer.size, layer.picture_id);
                layer.picture_id = (layer.picture_id + 1) & 0x7FFF;
                let last = payloads.len() - 1;
                for (i, payload) in payloads.into_iter().enumerate() {
                    let mut packet = layer.stream.packet(layer.ssrc, i == last, None, payload);
                    let h = &mut packet.header;
                    h.extension = true;
                    h.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
                    for (id, value) in [
                        (self.mid.0, self.mid.1.clone()),
                        (self.rid_ext, Bytes::from_static(layer.rid.as_bytes())),
                    ] {
                        h.extensions
                            .push(rtp::header::Extension { id, payload: value });
                    }
                    out.push(packet);
                }
            }
        }
        out
    }

    /// A keyframe request for `ssrc`: that layer's next frame is one.
    pub fn request_keyframe(&mut self, ssrc: u32) {
        for layer in self.layers.iter_mut().filter(|l| l.ssrc == ssrc) {
            layer.keyframe_due = true;
        }
    }
}

/// [`super::vp8_frame`] with packets of `size` bytes, each descriptor extended with the
/// 15-bit `picture_id`.
fn sized_vp8_frame(keyframe: bool, size: usize, picture_id: u16) -> Vec<Bytes> {
    let [hi, lo] = picture_id.to_be_bytes();
    super::vp8_frame(keyframe)
        .into_iter()
        .map(|p| {
            // X and I set; then M (15 bits) and the id; then the VP8 payload as it was.
            let mut out = vec![0x80 | p[0], 0x80, 0x80 | hi, lo];
            out.extend_from_slice(&p[1..]);
            out.truncate(size);
            Bytes::from(out)
        })
        .collect()
}

impl Sim {
    /// Joins with every grant, its publisher connection offering simulcast extensions.
    /// A room of `n` simulcast cameras whose publishers receive nothing (so that the
    /// simulation prices only what a viewer gets), last-N above `n`, media flowing for
    /// a second; and the cameras' track ids.
    pub fn with_cameras(seed: u64, n: usize) -> (Sim, Vec<String>) {
        let mut sim = Sim::with_config(seed, |c| c.last_n = 50);
        let grants = chorus_protocol::Grants {
            can_subscribe: false,
            ..chorus_protocol::Grants::default()
        };
        let tracks = (0..n)
            .map(|i| {
                let c = sim.join_simulcast_with(&format!("cam{i}"), grants.clone());
                sim.publish_simulcast(c)
            })
            .collect();
        sim.run_for(super::ms(1000));
        (sim, tracks)
    }

    pub fn join_simulcast(&mut self, identity: &str) -> ClientId {
        self.join_simulcast_with(identity, chorus_protocol::Grants::default())
    }

    /// [`Self::join_simulcast`] with these grants.
    pub fn join_simulcast_with(
        &mut self,
        identity: &str,
        grants: chorus_protocol::Grants,
    ) -> ClientId {
        let id = self.join_with(identity, grants);
        self.clients[id.0].enable_simulcast(self.now);
        id
    }

    /// Publishes a camera in three simulcast layers ([`LAYERS`]); the client must have
    /// joined with [`Self::join_simulcast`]. Returns the server's track id.
    pub fn publish_simulcast(&mut self, c: ClientId) -> String {
        let cid = self.clients[c.0].announce_simulcast();
        self.published(c, &cid)
    }

    /// Stops (or resumes) sending one simulcast layer of the client's track.
    pub fn pause_layer(&mut self, c: ClientId, track: &str, rid: &str, paused: bool) {
        let layers = self.clients[c.0]
            .publications
            .iter_mut()
            .find(|p| p.track_id == track)
            .and_then(|p| p.simulcast.as_mut())
            .expect("a simulcast track, negotiated");
        for l in layers.layers.iter_mut().filter(|l| l.rid == rid) {
            l.paused = paused;
        }
    }

    /// (rid, SSRC, keyframes sent) of each layer of the client's simulcast track.
    pub fn layers_sent(&self, c: ClientId, track: &str) -> Vec<(&'static str, u32, u32)> {
        let p = self.clients[c.0]
            .publications
            .iter()
            .find(|p| p.track_id == track);
        p.and_then(|p| p.simulcast.as_ref())
            .map_or_else(Vec::new, |s| {
                s.layers
                    .iter()
                    .map(|l| (l.rid, l.ssrc, l.keyframes_sent))
                    .collect()
            })
    }
}

/// The mid of the (one) m-section of `sdp` that sends simulcast.
pub(super) fn simulcast_mid(sdp: &str) -> Option<String> {
    let section = sdp.split("m=").find(|m| m.contains("a=simulcast:send"))?;
    let line = section.lines().find_map(|l| l.strip_prefix("a=mid:"))?;
    Some(line.trim().to_owned())
}
