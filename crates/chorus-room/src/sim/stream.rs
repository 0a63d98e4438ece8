//! A simulated sender's outgoing RTP stream: its numbering and its clock, for the
//! plain publications (`media.rs`) and the simulcast layers (`simulcast.rs`) alike.

use std::time::Instant;

use bytes::Bytes;
use rtc::rtp;

/// Video frames per second.
pub const VIDEO_FPS: u32 = 30;

/// Packets of a keyframe and of any other frame of the sim's cameras (VP8, AV1), each
/// this many bytes.
pub const KEYFRAME_PACKETS: usize = 4;
pub const DELTA_PACKETS: usize = 2;
pub const VIDEO_PACKET_SIZE: usize = 1000;

/// Packets of a keyframe, or of any other frame.
pub(super) fn frame_packets(keyframe: bool) -> usize {
    if keyframe {
        KEYFRAME_PACKETS
    } else {
        DELTA_PACKETS
    }
}
/// Every talker's level: loud speech (RFC 6464, -dBov).
pub const TALK_DBOV: u8 = 20;

/// A negotiated outgoing stream: its numbering and clock.
pub(super) struct Stream {
    pub payload_type: u8,
    pub level_ext: Option<u8>,
    /// AV1: the dependency descriptor's extension id, if the answer took it.
    pub dd_ext: Option<u8>,
    seq: u16,
    pub(super) ts: u32,
    pub(super) next_at: Instant,
    pub(super) frames: usize,
}

impl Stream {
    pub fn new(payload_type: u8, level_ext: Option<u8>, ssrc: u32, now: Instant) -> Self {
        Self {
            payload_type,
            level_ext,
            dd_ext: None,
            // Near the wrap, so that every scenario crosses it.
            seq: 65_000u16.wrapping_add(ssrc as u16 % 500),
            ts: ssrc.rotate_left(7),
            next_at: now,
            frames: 0,
        }
    }

    /// The stream's next packet in the current frame.
    pub(super) fn packet(
        &mut self,
        ssrc: u32,
        marker: bool,
        level: Option<u8>,
        payload: Bytes,
    ) -> rtp::Packet {
        let mut header = rtp::header::Header {
            version: 2,
            marker,
            payload_type: self.payload_type,
            sequence_number: self.seq,
            timestamp: self.ts,
            ssrc,
            ..Default::default()
        };
        if let Some(id) = level {
            // RFC 6464: V bit (speech) and the level.
            header.extension = true;
            header.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
            header.extensions.push(rtp::header::Extension {
                id,
                payload: Bytes::copy_from_slice(&[0x80 | TALK_DBOV]),
            });
        }
        self.seq = self.seq.wrapping_add(1);
        rtp::Packet { header, payload }
    }
}
