//! The synthetic video encoder: frame sizes, keyframes on request, and VP8, H.264 or VP9
//! payloads (VP9 in `svc`) with a send-time stamp in every packet ([`crate::latency`]).

use std::time::Instant;

use bytes::Bytes;

use super::svc::{SvcLayer, Vp9Encoder};
use crate::h264::{self, H264Frame};
use crate::latency;
use crate::profile::{MediaProfile, VideoCodec};
use crate::vp8::{VP8_MIN_PACKET, Vp8Frame, vp8_payloads};
use crate::vp9::Vp9Scalability;

pub(super) const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Frame sizes of one video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoShape {
    pub width: u16,
    pub height: u16,
    pub fps: u32,
    /// Coded bytes of a delta frame.
    pub delta_bytes: usize,
    /// Coded bytes of a keyframe.
    pub key_bytes: usize,
    /// Largest RTP payload.
    pub max_packet: usize,
}

impl VideoShape {
    /// The camera or screen share of a [`MediaProfile`]: its packet counts × packet size.
    pub fn from_profile(profile: &MediaProfile, (width, height): (u16, u16)) -> Self {
        let size = profile.video_packet_size.max(VP8_MIN_PACKET);
        Self {
            width,
            height,
            fps: profile.video_fps,
            delta_bytes: profile.video_packets_per_frame.max(1) * size,
            key_bytes: profile.video_packets_per_keyframe.max(1) * size,
            max_packet: size,
        }
    }
}

#[derive(Debug)]
enum VideoFormat {
    Vp8 { picture_id: u16, tl0_pic_idx: u8 },
    H264,
    Vp9(Vp9Encoder),
}

/// Frame sizes and numbering of a synthetic video stream.
#[derive(Debug)]
pub(super) struct VideoEncoder {
    format: VideoFormat,
    width: u16,
    height: u16,
    keyframe_due: bool,
    /// Coded bytes of a delta frame and of a keyframe.
    delta_bytes: usize,
    key_bytes: usize,
    /// Largest RTP payload.
    max_packet: usize,
}

impl VideoEncoder {
    /// A stream of `codec` and `shape` whose first frame is a keyframe.
    pub(super) fn new(codec: VideoCodec, shape: VideoShape) -> Self {
        let min_packet = match codec {
            VideoCodec::Vp8 | VideoCodec::Vp9 => VP8_MIN_PACKET,
            VideoCodec::H264 => h264::MIN_PACKET,
        };
        let format = match codec {
            VideoCodec::Vp8 => VideoFormat::Vp8 {
                picture_id: rand::random::<u16>() & 0x7fff,
                tl0_pic_idx: rand::random(),
            },
            VideoCodec::H264 => VideoFormat::H264,
            // One spatial and one temporal layer (L1T1).
            VideoCodec::Vp9 => VideoFormat::Vp9(Vp9Encoder::new(
                Vp9Scalability::single((shape.width, shape.height)),
                vec![shape.key_bytes],
                vec![shape.delta_bytes],
                shape.max_packet,
            )),
        };
        VideoEncoder {
            format,
            width: shape.width,
            height: shape.height,
            keyframe_due: true,
            delta_bytes: shape.delta_bytes,
            key_bytes: shape.key_bytes,
            max_packet: shape.max_packet.max(min_packet),
        }
    }

    /// A VP9 camera sending `layers` (lowest first) in one stream as `L3T3_KEY`, whose
    /// first picture is a keyframe.
    pub(super) fn vp9_svc(layers: &[SvcLayer], fps: u32) -> Self {
        let top = layers.last().map_or((0, 0), |l| (l.width, l.height));
        VideoEncoder {
            format: VideoFormat::Vp9(Vp9Encoder::svc(layers, fps)),
            width: top.0,
            height: top.1,
            keyframe_due: true,
            // The layers' sizes are the VP9 encoder's.
            delta_bytes: 0,
            key_bytes: 0,
            max_packet: 0,
        }
    }

    /// Makes the next frame a keyframe.
    pub(super) fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }

    /// Of a VP9 SVC camera: sends its lowest `count` spatial layers from the next
    /// picture on, a keyframe when that changes what it sends. Nothing for others.
    pub(super) fn send_spatial_layers(&mut self, count: usize) {
        if let VideoFormat::Vp9(encoder) = &mut self.format
            && encoder.send_layers(count)
        {
            self.keyframe_due = true;
        }
    }

    /// The payloads of the next frame, stamped with `now`, and whether it is a keyframe.
    pub(super) fn encode(&mut self, now: Instant) -> (Vec<Bytes>, bool) {
        let keyframe = std::mem::take(&mut self.keyframe_due);
        let bytes = if keyframe {
            self.key_bytes
        } else {
            self.delta_bytes
        };
        let stamp = latency::stamp(now);
        let payloads = match &mut self.format {
            VideoFormat::Vp8 {
                picture_id,
                tl0_pic_idx,
            } => {
                let frame = Vp8Frame {
                    picture_id: *picture_id,
                    tl0_pic_idx: *tl0_pic_idx,
                    keyframe,
                    width: self.width,
                    height: self.height,
                };
                *picture_id = (*picture_id + 1) & 0x7fff;
                *tl0_pic_idx = tl0_pic_idx.wrapping_add(1);
                // Equal packets, as many as the largest payload requires.
                let count = bytes.div_ceil(self.max_packet).max(1);
                let size = bytes.div_ceil(count).max(VP8_MIN_PACKET);
                vp8_payloads(&frame, count, size, Some(&stamp))
            }
            VideoFormat::Vp9(encoder) => encoder.encode(keyframe, &stamp),
            VideoFormat::H264 => {
                let frame = H264Frame {
                    keyframe,
                    width: self.width,
                    height: self.height,
                };
                h264::h264_frame_payloads(&frame, bytes, self.max_packet, Some(&stamp))
            }
        };
        (payloads, keyframe)
    }
}
