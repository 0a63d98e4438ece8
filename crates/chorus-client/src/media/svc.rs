//! The synthetic VP9 encoder: pictures of one or three spatial layers in one stream
//! (one SSRC), numbered as libwebrtc numbers `L3T3_KEY` (or L1T1 for a single layer),
//! each layer frame sized like a real encoder's output at its layer's rate. The payload
//! format is [`crate::vp9`]'s.

use bytes::Bytes;

use crate::latency::STAMP_LEN;
use crate::vp9::{Vp9LayerFrame, Vp9Scalability, vp9_layer_payloads};

/// One spatial layer of a VP9 SVC camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvcLayer {
    pub width: u16,
    pub height: u16,
    /// Average bitrate of the layer's RTP payloads between keyframes, all its temporal
    /// layers together.
    pub bitrate_bps: u32,
}

/// What Chromium sends of a 720p camera in `L3T3_KEY` at a good estimate: 180p / 360p /
/// 720p spatial layers at about 150 / 450 / 1200 kbit/s (an SVC layer predicted from its
/// own past costs a little less than the simulcast stream of that size).
pub const SVC_LAYERS: [SvcLayer; 3] = [
    SvcLayer {
        width: 320,
        height: 180,
        bitrate_bps: 150_000,
    },
    SvcLayer {
        width: 640,
        height: 360,
        bitrate_bps: 450_000,
    },
    SvcLayer {
        width: 1280,
        height: 720,
        bitrate_bps: 1_200_000,
    },
];

/// A keyframe's layer frame is this many delta layer frames' worth of bytes, as for
/// the simulcast layers.
const SVC_KEYFRAME_RATIO: usize = 4;
/// Largest RTP payload (1200-byte packets, like libwebrtc).
const SVC_MAX_PACKET: usize = 1200;
/// Size of a picture of each TID, relative to the mean over the 0-2-1-2 pattern (which
/// they average to 1: (1.6 + 0.7 + 1.0 + 0.7) / 4): the frames others refer to are
/// coded with more bits.
const T3_WEIGHTS: [f64; 3] = [1.6, 1.0, 0.7];

/// The picture numbering and layer frame sizes of one VP9 stream.
#[derive(Debug)]
pub(super) struct Vp9Encoder {
    /// Every spatial layer the camera can send.
    ss: Vp9Scalability,
    /// How many of them it sends (dynacast's hint), lowest first.
    sending: usize,
    /// Per spatial layer, lowest first: mean payload bytes of a delta layer frame.
    delta_bytes: Vec<usize>,
    /// Per spatial layer: payload bytes of a keyframe's layer frame.
    key_bytes: Vec<usize>,
    max_packet: usize,
    picture_id: u16,
    tl0_pic_idx: u8,
    /// Where the next picture is in `ss.group`.
    position: usize,
}

impl Vp9Encoder {
    /// `L3T3_KEY`: `layers` (lowest first) at `fps`, temporal layers 0-2-1-2.
    pub(super) fn svc(layers: &[SvcLayer], fps: u32) -> Self {
        let fps = fps.clamp(1, 120);
        let delta_bytes: Vec<usize> = layers
            .iter()
            .map(|l| (l.bitrate_bps / 8 / fps) as usize)
            .collect();
        let ss = Vp9Scalability {
            sizes: layers.iter().map(|l| (l.width, l.height)).collect(),
            group: Vp9Scalability::T3.to_vec(),
        };
        Self::new(
            ss,
            delta_bytes.iter().map(|b| b * SVC_KEYFRAME_RATIO).collect(),
            delta_bytes,
            SVC_MAX_PACKET,
        )
    }

    /// The spatial layers `ss` lists, their keyframe and mean delta layer frame sizes
    /// (bytes, lowest first), in packets of at most `max_packet`.
    pub(super) fn new(
        ss: Vp9Scalability,
        key_bytes: Vec<usize>,
        delta_bytes: Vec<usize>,
        max_packet: usize,
    ) -> Self {
        Self {
            sending: ss.sizes.len(),
            ss,
            delta_bytes,
            key_bytes,
            max_packet,
            picture_id: rand::random::<u16>() & 0x7fff,
            tl0_pic_idx: rand::random(),
            position: 0,
        }
    }

    /// Sends the lowest `count` spatial layers from now on (at least one, at most all),
    /// as a browser does once told `L{count}T3_KEY` with the input scaled down: the
    /// stream restarts with a keyframe whose SS lists just those. True when that
    /// changed what it sends (the caller makes the next picture a keyframe).
    pub(super) fn send_layers(&mut self, count: usize) -> bool {
        let count = count.clamp(1, self.ss.sizes.len());
        std::mem::replace(&mut self.sending, count) != count
    }

    /// The payloads of the next picture, the frame of every spatial layer it sends in
    /// turn, lowest first (the caller sets the RTP marker on the last); a keyframe
    /// restarts the temporal pattern and carries the SS in its first packet.
    pub(super) fn encode(&mut self, keyframe: bool, stamp: &[u8; STAMP_LEN]) -> Vec<Bytes> {
        if keyframe {
            self.position = 0;
        }
        let entry = self.ss.group[self.position % self.ss.group.len()];
        self.position = (self.position + 1) % self.ss.group.len();
        if entry.tid == 0 {
            self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
        }
        let weight = if self.ss.group.len() == 1 {
            1.0
        } else {
            T3_WEIGHTS[usize::from(entry.tid).min(2)]
        };
        let top = self.sending - 1;
        // A keyframe's SS lists the layers sent.
        let ss = keyframe.then(|| Vp9Scalability {
            sizes: self.ss.sizes[..self.sending].to_vec(),
            group: self.ss.group.clone(),
        });
        let mut payloads = Vec::new();
        for sid in 0..=top {
            let frame = Vp9LayerFrame {
                picture_id: self.picture_id,
                tl0_pic_idx: self.tl0_pic_idx,
                sid: sid as u8,
                tid: if keyframe { 0 } else { entry.tid },
                switching_up: !keyframe && entry.switching_up,
                keyframe,
                top: sid == top,
            };
            let bytes = if keyframe {
                self.key_bytes[sid]
            } else {
                (self.delta_bytes[sid] as f64 * weight).round() as usize
            };
            let ss = ss.as_ref().filter(|_| sid == 0);
            payloads.extend(vp9_layer_payloads(
                &frame,
                ss,
                bytes,
                self.max_packet,
                Some(stamp),
            ));
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        payloads
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use chorus_core::vp9::Vp9Descriptor;

    use super::*;
    use crate::media::MediaSource;
    use crate::profile::StreamParams;

    /// Ten seconds of an L3T3_KEY camera at 15 fps, a PLI after five: each spatial layer
    /// at its rate, the pattern 0-2-1-2, two keyframes, the marker on each picture's end.
    #[test]
    fn an_svc_camera_sends_its_layers_at_their_rates_and_keys_on_request() {
        let t0 = Instant::now();
        let params = StreamParams {
            ssrc: 5,
            payload_type: 98,
            audio_level_ext: None,
        };
        let fps = 15;
        let mut source = MediaSource::vp9_svc(params, &SVC_LAYERS, fps, t0);
        let (seconds, mut now, mut requested) = (10, t0, false);
        let end = t0 + Duration::from_secs(seconds) - Duration::from_millis(1);
        let (mut bytes, mut keyframes, mut tids) = ([0u64; 3], 0, Vec::new());
        while now < end {
            while let Some(frame) = source.poll_frame(now) {
                keyframes += u64::from(frame.keyframe);
                let ts = frame.packets[0].header.timestamp;
                let last = frame.packets.len() - 1;
                for (i, packet) in frame.packets.iter().enumerate() {
                    assert_eq!(packet.header.ssrc, 5);
                    assert_eq!(packet.header.timestamp, ts, "one timestamp per picture");
                    assert_eq!(packet.header.marker, i == last);
                    assert!(packet.payload.len() <= SVC_MAX_PACKET);
                    let d = Vp9Descriptor::parse(&packet.payload).unwrap();
                    assert_eq!(i == 0, d.starts_picture());
                    assert_eq!(i == 0 && frame.keyframe, d.starts_keyframe());
                    bytes[usize::from(d.sid())] += packet.payload.len() as u64;
                    if i == 0 {
                        tids.push(d.tid());
                    }
                }
            }
            if !requested && now >= t0 + Duration::from_secs(5) {
                source.request_keyframe();
                requested = true;
            }
            now = source.poll_timeout();
        }
        assert_eq!(tids.len() as u64, seconds * u64::from(fps));
        assert_eq!(keyframes, 2);
        assert_eq!(tids[..6], [0, 2, 1, 2, 0, 2]);
        for (layer, sent) in SVC_LAYERS.iter().zip(bytes) {
            // Each keyframe adds 3 delta frames' worth.
            let rate = sent as f64 * 8.0 / seconds as f64;
            let target = f64::from(layer.bitrate_bps);
            let extra = 3.0 * keyframes as f64 / (seconds as f64 * f64::from(fps));
            assert!(
                rate >= target * 0.97 && rate <= target * (1.05 + extra),
                "{}x{}: {rate} bit/s for {target}",
                layer.width,
                layer.height
            );
        }
    }

    /// Dynacast's hint: told to send fewer spatial layers the camera restarts with a
    /// keyframe of just those (its SS lists them), and all again when told so; told
    /// what it already sends, it goes on without a keyframe.
    #[test]
    fn an_svc_camera_sends_the_spatial_layers_it_is_told() {
        let t0 = Instant::now();
        let params = StreamParams {
            ssrc: 5,
            payload_type: 98,
            audio_level_ext: None,
        };
        let mut source = MediaSource::vp9_svc(params, &SVC_LAYERS, 15, t0);
        let mut now = t0;
        // The next picture: whether it is a keyframe, the layers it carries, and the
        // layers its SS lists (0 without one).
        let mut next = |source: &mut MediaSource| {
            let frame = loop {
                if let Some(frame) = source.poll_frame(now) {
                    break frame;
                }
                now = source.poll_timeout();
            };
            let mut sids = Vec::new();
            let mut listed = 0;
            for packet in &frame.packets {
                let d = Vp9Descriptor::parse(&packet.payload).unwrap();
                if !sids.contains(&d.sid()) {
                    sids.push(d.sid());
                }
                if let Some(ss) = &d.structure {
                    listed = ss.spatial_layers;
                    assert_eq!(ss.resolution(0), Some((320, 180)));
                }
            }
            (frame.keyframe, sids, listed)
        };
        assert_eq!(next(&mut source), (true, vec![0, 1, 2], 3), "the first");
        assert_eq!(next(&mut source), (false, vec![0, 1, 2], 0));
        // (layers told, the next picture)
        let cases = [
            (1, (true, vec![0u8], 1u8)),
            (1, (false, vec![0], 0)),
            (2, (true, vec![0, 1], 2)),
            (9, (true, vec![0, 1, 2], 3)),
            (3, (false, vec![0, 1, 2], 0)),
            (0, (true, vec![0], 1)),
        ];
        for (told, want) in cases {
            source.send_spatial_layers(told);
            assert_eq!(next(&mut source), want, "told {told}");
        }
    }
}
