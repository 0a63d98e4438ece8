//! A simulcast camera: three video streams (rid q/h/f) of one picture sequence, each a
//! [`MediaSource`] with its own SSRC, rate and keyframes.

use std::time::Instant;

use super::source::{Frame, MediaSource};
use super::video::VideoShape;
use crate::profile::{StreamParams, VideoCodec};

/// A simulcast layer's RFC 8851 rid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rid {
    /// Quarter resolution.
    Q,
    /// Half resolution.
    H,
    /// Full resolution.
    F,
}

impl Rid {
    pub fn as_str(self) -> &'static str {
        match self {
            Rid::Q => "q",
            Rid::H => "h",
            Rid::F => "f",
        }
    }
}

/// One layer of a simulcast camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulcastLayer {
    pub rid: Rid,
    pub width: u16,
    pub height: u16,
    /// Average bitrate of the layer's RTP payloads between keyframes.
    pub bitrate_bps: u32,
}

/// What a browser sends for a 720p camera: 180p / 360p / 720p at 150 / 500 / 1500 kbit/s.
pub const SIMULCAST_LAYERS: [SimulcastLayer; 3] = [
    SimulcastLayer {
        rid: Rid::Q,
        width: 320,
        height: 180,
        bitrate_bps: 150_000,
    },
    SimulcastLayer {
        rid: Rid::H,
        width: 640,
        height: 360,
        bitrate_bps: 500_000,
    },
    SimulcastLayer {
        rid: Rid::F,
        width: 1280,
        height: 720,
        bitrate_bps: 1_500_000,
    },
];

/// A keyframe is this many delta frames' worth of bytes, as with a real encoder at
/// moderate motion.
const SIMULCAST_KEYFRAME_RATIO: usize = 4;
/// Largest simulcast RTP payload (1200-byte packets, like libwebrtc).
const SIMULCAST_MAX_PACKET: usize = 1200;

/// Where a simulcast camera is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulcastParams {
    pub payload_type: u8,
    /// One SSRC per layer, in the order of the layers.
    pub ssrcs: [u32; 3],
    /// Negotiated id of the RtpStreamId header extension; `None` sends no rid.
    pub rid_ext: Option<u8>,
}

/// The frame of one layer.
#[derive(Debug)]
pub struct LayerFrame {
    pub rid: Rid,
    pub frame: Frame,
}

/// A simulcast camera: three independent streams (own SSRC, sequence numbers and
/// keyframes) of one picture sequence, each packet tagged with its rid (and MID, once
/// [`SimulcastSource::set_mid`] named it). The engine sends it for a camera when
/// `MediaProfile::simulcast` is set.
#[derive(Debug)]
pub struct SimulcastSource {
    layers: Vec<(SimulcastLayer, MediaSource)>,
    /// Per layer: sent (`false`: stopped, as `encodings[i].active = false` stops a
    /// browser's encoder; dynacast).
    active: Vec<bool>,
}

impl SimulcastSource {
    pub fn new(
        params: SimulcastParams,
        codec: VideoCodec,
        layers: [SimulcastLayer; 3],
        fps: u32,
        now: Instant,
    ) -> Self {
        let fps = fps.clamp(1, 120);
        let layers = layers
            .into_iter()
            .zip(params.ssrcs)
            .map(|(layer, ssrc)| {
                let delta_bytes = (layer.bitrate_bps / 8 / fps) as usize;
                let shape = VideoShape {
                    width: layer.width,
                    height: layer.height,
                    fps,
                    delta_bytes,
                    key_bytes: delta_bytes * SIMULCAST_KEYFRAME_RATIO,
                    max_packet: SIMULCAST_MAX_PACKET,
                };
                let stream = StreamParams {
                    ssrc,
                    payload_type: params.payload_type,
                    audio_level_ext: None,
                };
                let mut source = MediaSource::video(stream, codec, shape, now);
                if let Some(id) = params.rid_ext {
                    source.set_rid(id, layer.rid.as_str());
                }
                (layer, source)
            })
            .collect();
        Self {
            layers,
            active: vec![true; 3],
        }
    }

    /// When the next frame of any layer is due.
    pub fn poll_timeout(&self) -> Instant {
        self.layers
            .iter()
            .map(|(_, source)| source.poll_timeout())
            .min()
            .unwrap_or_else(Instant::now)
    }

    /// The next due frame of any layer; call until `None`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<LayerFrame> {
        let active = &self.active;
        self.layers
            .iter_mut()
            .zip(active)
            .find_map(|((layer, source), &on)| {
                if !on {
                    // Its clock runs on, so it restarts in step with the others.
                    source.skip_until(now);
                    return None;
                }
                source.poll_frame(now).map(|frame| LayerFrame {
                    rid: layer.rid,
                    frame,
                })
            })
    }

    /// Starts or stops sending a layer (`publisher_layers`); a layer started again
    /// begins with a keyframe, as a browser's encoder does.
    pub fn set_active(&mut self, rid: &str, on: bool) {
        for ((layer, source), active) in self.layers.iter_mut().zip(&mut self.active) {
            if layer.rid.as_str() == rid && *active != on {
                *active = on;
                if on {
                    source.request_keyframe();
                }
            }
        }
    }

    /// Whether the layer is sent (not stopped by [`SimulcastSource::set_active`]).
    pub fn is_active(&self, rid: Rid) -> bool {
        self.layers
            .iter()
            .zip(&self.active)
            .any(|((layer, _), on)| layer.rid == rid && *on)
    }

    /// Tags every layer's packets with the MID of their m-section too, so the server
    /// places them whatever other sections offer the same rids.
    pub fn set_mid(&mut self, ext_id: u8, mid: &str) {
        let mid = bytes::Bytes::copy_from_slice(mid.as_bytes());
        for (_, source) in &mut self.layers {
            source.set_mid(ext_id, mid.clone());
        }
    }

    /// The layer sent on `ssrc`.
    pub fn layer_of(&self, ssrc: u32) -> Option<Rid> {
        self.layers
            .iter()
            .find(|(_, source)| source.ssrc() == ssrc)
            .map(|(layer, _)| layer.rid)
    }

    /// Makes the next frame of the layer a keyframe (a PLI for its SSRC).
    pub fn request_keyframe(&mut self, rid: Rid) {
        for (layer, source) in &mut self.layers {
            if layer.rid == rid {
                source.request_keyframe();
            }
        }
    }

    pub fn skip_until(&mut self, now: Instant) {
        for (_, source) in &mut self.layers {
            source.skip_until(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn simulcast_layers_send_at_their_rates_and_key_on_request() {
        let t0 = Instant::now();
        let params = SimulcastParams {
            payload_type: 96,
            ssrcs: [11, 12, 13],
            rid_ext: Some(4),
        };
        for (codec, fps) in [
            (VideoCodec::Vp8, 30),
            (VideoCodec::H264, 15),
            (VideoCodec::Vp8, 15),
        ] {
            let mut source = SimulcastSource::new(params, codec, SIMULCAST_LAYERS, fps, t0);
            let seconds = 10;
            // Just short of the first frame of second 11 (intervals are rounded to ns).
            let end = t0 + Duration::from_secs(seconds) - Duration::from_millis(1);
            let mut bytes = [0u64; 3];
            let mut frames = [0u64; 3];
            let mut keyframes = [0u64; 3];
            let mut now = t0;
            let mut requested = false;
            while now < end {
                while let Some(LayerFrame { rid, frame }) = source.poll_frame(now) {
                    let i = SIMULCAST_LAYERS.iter().position(|l| l.rid == rid).unwrap();
                    frames[i] += 1;
                    keyframes[i] += u64::from(frame.keyframe);
                    for packet in &frame.packets {
                        assert_eq!(packet.header.ssrc, params.ssrcs[i]);
                        assert_eq!(
                            packet.header.get_extension(4).as_deref(),
                            Some(rid.as_str().as_bytes())
                        );
                        assert!(packet.payload.len() <= SIMULCAST_MAX_PACKET);
                        bytes[i] += packet.payload.len() as u64;
                    }
                }
                if !requested && now >= t0 + Duration::from_secs(5) {
                    source.request_keyframe(Rid::H);
                    requested = true;
                }
                now = source.poll_timeout();
            }
            for (i, layer) in SIMULCAST_LAYERS.iter().enumerate() {
                assert_eq!(
                    frames[i],
                    seconds * u64::from(fps),
                    "{codec:?} {:?}",
                    layer.rid
                );
                let expected_keys = if layer.rid == Rid::H { 2 } else { 1 };
                assert_eq!(keyframes[i], expected_keys, "{:?}", layer.rid);
                // Each keyframe adds 3 delta frames' worth: allow that plus packet headers.
                let rate = bytes[i] as f64 * 8.0 / seconds as f64;
                let target = f64::from(layer.bitrate_bps);
                let extra = 3.0 * expected_keys as f64 / (seconds as f64 * f64::from(fps));
                assert!(
                    rate >= target * 0.97 && rate <= target * (1.05 + extra),
                    "{codec:?} {:?} at {fps} fps: {rate} bit/s for {target}",
                    layer.rid
                );
            }
        }
    }
}
