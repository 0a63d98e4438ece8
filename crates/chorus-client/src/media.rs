//! Synthetic media: RTP packets that look like a real encoder's output to an SFU.
//!
//! Sans-I/O: a [`MediaSource`] is told the time and returns the packets of the frames
//! due by then.
//!
//! - Audio is real Opus (see [`crate::talk`]): talk spurts and silences or a tone,
//!   encoded once per process and replayed by every client from its own offset, each
//!   frame with the RFC 6464 level of its signal; or the 3-byte silence frame.
//! - Video is VP8 (full RFC 7741 payload descriptor: 15-bit PictureID, TL0PICIDX, TID) or
//!   H.264 (RFC 6184, see [`crate::h264`]), a keyframe first and after every
//!   [`MediaSource::request_keyframe`]. Every video packet ends with a send-time stamp
//!   ([`crate::latency`]) for the receiver's latency histogram.
//! - [`SimulcastSource`] sends three such video streams (rid q/h/f) at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::peer::Keepalive;
use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtp;
use tracing::warn;

use crate::h264::{self, H264Frame};
use crate::latency::{self, STAMP_LEN};
use crate::talk::{self, AudioContent, OpusFrame, SILENT_DBOV};

/// One 20 ms CELT-only fullband Opus frame that decodes to silence (TOC 0xF8).
pub const OPUS_SILENCE_FRAME: [u8; 3] = [0xF8, 0xFF, 0xFE];

const OPUS_FRAME: Duration = Duration::from_millis(20);
const OPUS_SAMPLES_PER_FRAME: u32 = 960;
const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Behind by more than this (task stalled, muted), frames are skipped, not burst out.
const MAX_LAG: Duration = Duration::from_millis(200);
/// Size of the payload descriptor written by [`vp8_descriptor`].
const VP8_DESCRIPTOR_LEN: usize = 6;
/// Frame tag and keyframe start code + size, in the first packet of a VP8 frame.
const VP8_FRAME_HEADER_LEN: usize = 10;
/// Smallest VP8 packet: descriptor, frame header, and the stamp after them.
const VP8_MIN_PACKET: usize = VP8_DESCRIPTOR_LEN + VP8_FRAME_HEADER_LEN + STAMP_LEN;

/// The video payload format a source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    #[default]
    Vp8,
    /// RFC 6184, packetization-mode 1, baseline profile (`42e01f`).
    H264,
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
    /// What the microphone sends.
    pub audio: AudioContent,
    /// Decode received audio with Opus and count what it holds
    /// ([`crate::InboundTrackStats::decoded`]). About 20 µs per 20 ms frame and track.
    pub decode_audio: bool,
    /// How the connections are kept alive once ICE is up.
    pub keepalive: Keepalive,
}

impl Default for MediaProfile {
    fn default() -> Self {
        Self {
            video_fps: 15,
            video_packets_per_frame: 2,
            video_packets_per_keyframe: 6,
            video_packet_size: 1000,
            video_codec: VideoCodec::Vp8,
            audio: AudioContent::default(),
            decode_audio: true,
            keepalive: Keepalive::default(),
        }
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

/// The packets of one frame, in sending order.
#[derive(Debug)]
pub struct Frame {
    pub packets: Vec<rtp::Packet>,
    pub keyframe: bool,
}

/// What the microphone replays.
#[derive(Debug)]
enum AudioSource {
    /// A shared encoded loop and the next frame of it this client sends.
    Clip {
        frames: Arc<[OpusFrame]>,
        next: usize,
    },
    /// The silence frame with this level.
    Fixed { level_dbov: u8 },
}

impl AudioSource {
    fn new(content: AudioContent) -> Self {
        let clip = match content {
            AudioContent::Talk(pattern) => talk::talk_loop(pattern),
            AudioContent::Tone { hz } => talk::tone_loop(hz),
            AudioContent::Silence => {
                return AudioSource::Fixed {
                    level_dbov: SILENT_DBOV,
                };
            }
            AudioContent::Labelled(level) => {
                return AudioSource::Fixed {
                    level_dbov: level.min(SILENT_DBOV),
                };
            }
        };
        match clip {
            // Each client starts somewhere else in the loop, so talkers do not align.
            Ok(frames) if !frames.is_empty() => AudioSource::Clip {
                next: rand::random_range(0..frames.len()),
                frames,
            },
            Ok(_) => AudioSource::Fixed {
                level_dbov: SILENT_DBOV,
            },
            Err(err) => {
                warn!(%err, "cannot encode synthetic audio; sending silence");
                AudioSource::Fixed {
                    level_dbov: SILENT_DBOV,
                }
            }
        }
    }

    /// Payload, level and V bit of the next frame.
    fn next_frame(&mut self) -> (Bytes, u8, bool) {
        match self {
            AudioSource::Clip { frames, next } => {
                let frame = &frames[*next % frames.len()];
                *next = (*next + 1) % frames.len();
                (frame.payload.clone(), frame.level_dbov, frame.voice)
            }
            AudioSource::Fixed { level_dbov } => (
                Bytes::from_static(&OPUS_SILENCE_FRAME),
                *level_dbov,
                *level_dbov < SILENT_DBOV,
            ),
        }
    }
}

#[derive(Debug)]
enum VideoFormat {
    Vp8 { picture_id: u16, tl0_pic_idx: u8 },
    H264,
}

/// Frame sizes and numbering of a synthetic video stream.
#[derive(Debug)]
struct VideoEncoder {
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
    /// The payloads of the next frame, stamped with `now`, and whether it is a keyframe.
    fn encode(&mut self, now: Instant) -> (Vec<Bytes>, bool) {
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

/// A synthetic encoder plus packetizer for one outgoing RTP stream.
#[derive(Debug)]
pub struct MediaSource {
    params: StreamParams,
    sequence_number: u16,
    timestamp: u32,
    frame_interval: Duration,
    clock_step: u32,
    next_frame_at: Instant,
    codec: Codec,
    /// RFC 8852 RtpStreamId extension (id, rid) of a simulcast layer.
    rid: Option<(u8, &'static str)>,
}

#[derive(Debug)]
enum Codec {
    Audio(AudioSource),
    Video(VideoEncoder),
}

impl MediaSource {
    /// The microphone: [`MediaProfile::audio`] every 20 ms.
    pub fn opus(params: StreamParams, profile: &MediaProfile, now: Instant) -> Self {
        Self::new(
            params,
            OPUS_FRAME,
            OPUS_SAMPLES_PER_FRAME,
            now,
            Codec::Audio(AudioSource::new(profile.audio)),
        )
    }

    /// A VP8 camera of the profile's frame rate and sizes.
    pub fn vp8(
        params: StreamParams,
        profile: &MediaProfile,
        size: (u16, u16),
        now: Instant,
    ) -> Self {
        Self::video(
            params,
            VideoCodec::Vp8,
            VideoShape::from_profile(profile, size),
            now,
        )
    }

    /// A video stream of `codec` and `shape`.
    pub fn video(params: StreamParams, codec: VideoCodec, shape: VideoShape, now: Instant) -> Self {
        let fps = shape.fps.clamp(1, 120);
        let min_packet = match codec {
            VideoCodec::Vp8 => VP8_MIN_PACKET,
            VideoCodec::H264 => h264::MIN_PACKET,
        };
        let format = match codec {
            VideoCodec::Vp8 => VideoFormat::Vp8 {
                picture_id: rand::random::<u16>() & 0x7fff,
                tl0_pic_idx: rand::random(),
            },
            VideoCodec::H264 => VideoFormat::H264,
        };
        // Fix the stamps' epoch before the first one is taken.
        latency::epoch();
        Self::new(
            params,
            Duration::from_secs(1) / fps,
            VIDEO_CLOCK_RATE / fps,
            now,
            Codec::Video(VideoEncoder {
                format,
                width: shape.width,
                height: shape.height,
                keyframe_due: true,
                delta_bytes: shape.delta_bytes,
                key_bytes: shape.key_bytes,
                max_packet: shape.max_packet.max(min_packet),
            }),
        )
    }

    fn new(
        params: StreamParams,
        frame_interval: Duration,
        clock_step: u32,
        now: Instant,
        codec: Codec,
    ) -> Self {
        Self {
            params,
            sequence_number: rand::random(),
            timestamp: rand::random(),
            frame_interval,
            clock_step,
            next_frame_at: now,
            codec,
            rid: None,
        }
    }

    /// When the next frame is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_frame_at
    }

    /// The next frame if one is due at `now`; call until `None`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        if now < self.next_frame_at {
            return None;
        }
        let lag = now - self.next_frame_at;
        if lag > MAX_LAG {
            let skipped = (lag.as_nanos() / self.frame_interval.as_nanos().max(1)) as u32;
            self.next_frame_at += self.frame_interval * skipped;
            self.timestamp = self
                .timestamp
                .wrapping_add(self.clock_step.wrapping_mul(skipped));
        }
        self.next_frame_at += self.frame_interval;
        let frame = self.build_frame(now);
        self.timestamp = self.timestamp.wrapping_add(self.clock_step);
        Some(frame)
    }

    /// Skip frames due by `now` without producing them (a muted track keeps its clock).
    pub fn skip_until(&mut self, now: Instant) {
        while self.next_frame_at <= now {
            self.next_frame_at += self.frame_interval;
            self.timestamp = self.timestamp.wrapping_add(self.clock_step);
        }
    }

    /// Make the next video frame a keyframe (PLI/FIR received, unmute). No-op for audio.
    pub fn request_keyframe(&mut self) {
        if let Codec::Video(encoder) = &mut self.codec {
            encoder.keyframe_due = true;
        }
    }

    /// Sends `content` from the next frame on. No-op for video.
    pub fn set_audio(&mut self, content: AudioContent) {
        if let Codec::Audio(source) = &mut self.codec {
            *source = AudioSource::new(content);
        }
    }

    /// The silence frame labelled with `dbov` (127: silent) from now on.
    pub fn set_audio_level(&mut self, dbov: u8) {
        self.set_audio(AudioContent::from_level(dbov));
    }

    /// Tags every packet with an RFC 8852 RtpStreamId header extension.
    pub(crate) fn set_rid(&mut self, ext_id: u8, rid: &'static str) {
        self.rid = Some((ext_id, rid));
    }

    fn header(&mut self, marker: bool) -> rtp::Header {
        let mut header = rtp::Header {
            version: 2,
            marker,
            payload_type: self.params.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.timestamp,
            ssrc: self.params.ssrc,
            ..Default::default()
        };
        if let Some((id, rid)) = self.rid {
            add_extension(&mut header, id, Bytes::from_static(rid.as_bytes()));
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        header
    }

    fn build_frame(&mut self, now: Instant) -> Frame {
        let (payloads, keyframe) = match &mut self.codec {
            Codec::Audio(source) => {
                let (payload, level, voice) = source.next_frame();
                let mut header = self.header(false);
                if let Some(id) = self.params.audio_level_ext {
                    // RFC 6464: the V bit says the frame is speech, the level how loud.
                    let byte = if voice { 0x80 } else { 0 } | level.min(SILENT_DBOV);
                    add_extension(&mut header, id, Bytes::copy_from_slice(&[byte]));
                }
                return Frame {
                    packets: vec![rtp::Packet { header, payload }],
                    keyframe: false,
                };
            }
            Codec::Video(encoder) => encoder.encode(now),
        };
        let last = payloads.len().saturating_sub(1);
        let packets = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| rtp::Packet {
                header: self.header(i == last),
                payload,
            })
            .collect();
        Frame { packets, keyframe }
    }
}

fn add_extension(header: &mut rtp::Header, id: u8, payload: Bytes) {
    header.extension = true;
    header.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
    header
        .extensions
        .push(rtp::header::Extension { id, payload });
}

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
/// keyframes) of one picture sequence, each packet tagged with its rid. The server does
/// not negotiate simulcast yet; this is the sending side, ready for it.
#[derive(Debug)]
pub struct SimulcastSource {
    layers: Vec<(SimulcastLayer, MediaSource)>,
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
        Self { layers }
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
        self.layers.iter_mut().find_map(|(layer, source)| {
            source.poll_frame(now).map(|frame| LayerFrame {
                rid: layer.rid,
                frame,
            })
        })
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

/// What a VP8 frame's headers say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Frame {
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
    pub keyframe: bool,
    pub width: u16,
    pub height: u16,
}

/// RFC 7741 payload descriptor: X, I (15-bit PictureID), L (TL0PICIDX), T (TID 0, Y).
fn vp8_descriptor(frame: &Vp8Frame, start: bool) -> [u8; VP8_DESCRIPTOR_LEN] {
    let pid = frame.picture_id & 0x7fff;
    [
        0x80 | if start { 0x10 } else { 0 },
        0x80 | 0x40 | 0x20,
        0x80 | (pid >> 8) as u8,
        pid as u8,
        frame.tl0_pic_idx,
        0x20,
    ]
}

/// The RTP payloads of one VP8 frame split into `count` packets of `packet_size` bytes.
/// The first carries the VP8 frame tag (and for a keyframe the start code and size).
pub fn vp8_frame_payloads(frame: &Vp8Frame, count: usize, packet_size: usize) -> Vec<Bytes> {
    vp8_payloads(frame, count, packet_size, None)
}

/// [`vp8_frame_payloads`] with `stamp` over the last bytes of every packet that has
/// room for it after the headers.
fn vp8_payloads(
    frame: &Vp8Frame,
    count: usize,
    packet_size: usize,
    stamp: Option<&[u8; STAMP_LEN]>,
) -> Vec<Bytes> {
    (0..count.max(1))
        .map(|i| {
            let mut payload = BytesMut::with_capacity(packet_size);
            payload.put_slice(&vp8_descriptor(frame, i == 0));
            if i == 0 {
                // RFC 6386 §9.1 frame tag: P (0 = key), version 0, show_frame, first_part_size.
                let first_part_size: u32 = 16;
                let tag = u32::from(!frame.keyframe) | (1 << 4) | (first_part_size << 5);
                payload.put_slice(&tag.to_le_bytes()[..3]);
                if frame.keyframe {
                    payload.put_slice(&[0x9d, 0x01, 0x2a]);
                    payload.put_u16_le(frame.width & 0x3fff);
                    payload.put_u16_le(frame.height & 0x3fff);
                }
            }
            let filler = packet_size.saturating_sub(payload.len());
            match stamp {
                Some(stamp) if filler >= STAMP_LEN => {
                    payload.put_bytes(0x55, filler - STAMP_LEN);
                    payload.put_slice(stamp);
                }
                _ => payload.put_bytes(0x55, filler),
            }
            payload.freeze()
        })
        .collect()
}

/// Parses an RTP payload's VP8 descriptor. `Some(frame)` for the first packet of a frame
/// (S=1, PID=0) with the picture id and whether it starts a keyframe; `None` otherwise
/// or when the payload is malformed.
pub fn parse_vp8_frame_start(payload: &[u8]) -> Option<Vp8Frame> {
    let first = *payload.first()?;
    let mut at = 1;
    let (mut picture_id, mut tl0_pic_idx) = (0, 0);
    if first & 0x80 != 0 {
        let ext = *payload.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            let hi = *payload.get(at)?;
            if hi & 0x80 != 0 {
                picture_id = (u16::from(hi & 0x7f) << 8) | u16::from(*payload.get(at + 1)?);
                at += 2;
            } else {
                picture_id = u16::from(hi);
                at += 1;
            }
        }
        if ext & 0x40 != 0 {
            tl0_pic_idx = *payload.get(at)?;
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    if !start {
        return None;
    }
    let tag = payload.get(at..at + 3)?;
    let keyframe = tag[0] & 0x01 == 0;
    let (width, height) = match (keyframe, payload.get(at + 3..at + 10)) {
        (true, Some([0x9d, 0x01, 0x2a, w0, w1, h0, h1])) => (
            u16::from_le_bytes([*w0, *w1]) & 0x3fff,
            u16::from_le_bytes([*h0, *h1]) & 0x3fff,
        ),
        _ => (0, 0),
    };
    Some(Vp8Frame {
        picture_id,
        tl0_pic_idx,
        keyframe,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> StreamParams {
        StreamParams {
            ssrc: 7,
            payload_type: 96,
            audio_level_ext: Some(3),
        }
    }

    #[test]
    fn vp8_payloads_round_trip_through_the_parser() {
        let cases = [
            // (picture_id, keyframe, packets)
            (0u16, true, 6usize),
            (0x7fff, false, 2),
            (127, false, 1),
            (128, true, 3),
        ];
        for (picture_id, keyframe, count) in cases {
            let frame = Vp8Frame {
                picture_id,
                tl0_pic_idx: 9,
                keyframe,
                width: 640,
                height: 360,
            };
            let payloads = vp8_frame_payloads(&frame, count, 500);
            assert_eq!(payloads.len(), count);
            assert!(payloads.iter().all(|p| p.len() == 500));
            let parsed = parse_vp8_frame_start(&payloads[0]).expect("first packet starts a frame");
            let expected_size = if keyframe { (640, 360) } else { (0, 0) };
            assert_eq!(
                parsed,
                Vp8Frame {
                    width: expected_size.0,
                    height: expected_size.1,
                    ..frame
                },
                "case {picture_id} {keyframe}"
            );
            for later in &payloads[1..] {
                assert_eq!(parse_vp8_frame_start(later), None);
            }
        }
    }

    #[test]
    fn vp8_parser_survives_garbage() {
        let inputs: [&[u8]; 6] = [
            &[],
            &[0x80],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x81],
            &[0x10],
            &[0x10, 0x00, 0x00],
        ];
        for input in inputs {
            // Truncated descriptors are rejected; a bare S bit with a tag is a frame start.
            let _ = parse_vp8_frame_start(input);
        }
        assert_eq!(parse_vp8_frame_start(&[0x90, 0x80]), None);
        assert!(parse_vp8_frame_start(&[0x10, 0x00, 0x00, 0x00]).is_some_and(|f| f.keyframe));
    }

    #[test]
    fn video_starts_with_a_keyframe_and_marks_the_last_packet() {
        let profile = MediaProfile::default();
        let t0 = Instant::now();
        let mut source = MediaSource::vp8(params(), &profile, (640, 360), t0);
        let first = source.poll_frame(t0).expect("first frame is due at once");
        assert!(first.keyframe);
        assert_eq!(first.packets.len(), profile.video_packets_per_keyframe);
        let markers: Vec<bool> = first.packets.iter().map(|p| p.header.marker).collect();
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert_eq!(markers.last(), Some(&true));
        assert!(source.poll_frame(t0).is_none());

        let t1 = source.poll_timeout();
        let second = source.poll_frame(t1).expect("second frame");
        assert!(!second.keyframe);
        assert_eq!(second.packets.len(), profile.video_packets_per_frame);
        let seq0 = first.packets[0].header.sequence_number;
        assert_eq!(
            second.packets[0].header.sequence_number,
            seq0.wrapping_add(profile.video_packets_per_keyframe as u16)
        );
        assert_eq!(
            second.packets[0].header.timestamp,
            first.packets[0].header.timestamp.wrapping_add(90_000 / 15)
        );

        source.request_keyframe();
        let third = source.poll_frame(source.poll_timeout()).expect("third");
        assert!(third.keyframe);
    }

    #[test]
    fn a_stalled_source_skips_instead_of_bursting() {
        let t0 = Instant::now();
        let mut source = MediaSource::opus(params(), &MediaProfile::default(), t0);
        let first = source.poll_frame(t0).expect("first");
        let ts0 = first.packets[0].header.timestamp;
        let late = t0 + Duration::from_secs(1);
        let mut frames = 0;
        let mut last_ts = ts0;
        while let Some(frame) = source.poll_frame(late) {
            frames += 1;
            last_ts = frame.packets[0].header.timestamp;
        }
        assert!(frames <= 12, "burst of {frames} frames");
        // The RTP clock still says one second passed.
        assert_eq!(last_ts.wrapping_sub(ts0), 48_000);
    }

    #[test]
    fn audio_carries_the_level_extension() {
        let t0 = Instant::now();
        let cases = [
            // (content, expected extension byte when it is fixed, silence frame payload)
            (AudioContent::Silence, Some(127u8), true),
            (AudioContent::Labelled(30), Some(0x80 | 30), true),
            (AudioContent::Labelled(127), Some(127), true),
            (AudioContent::Tone { hz: 440 }, Some(0x80 | 15), false),
        ];
        for (audio, expected, silence_payload) in cases {
            let profile = MediaProfile {
                audio,
                ..MediaProfile::default()
            };
            let mut source = MediaSource::opus(params(), &profile, t0);
            let frame = source.poll_frame(t0).expect("frame");
            let packet = &frame.packets[0];
            let level = packet.header.get_extension(3).expect("level extension");
            assert_eq!(level.first().copied(), expected, "{audio:?}");
            assert_eq!(packet.payload[..] == OPUS_SILENCE_FRAME, silence_payload);
        }
    }

    #[test]
    fn talk_replays_the_shared_loop_with_its_levels() {
        let t0 = Instant::now();
        let mut source = MediaSource::opus(params(), &MediaProfile::default(), t0);
        let frames = talk::talk_loop(talk::TalkPattern::default()).unwrap();
        let mut now = t0;
        let mut sent = Vec::new();
        for _ in 0..frames.len() {
            let frame = source.poll_frame(now).expect("frame");
            sent.push(frame.packets.into_iter().next().unwrap());
            now = source.poll_timeout();
        }
        // Some offset into the loop, then every frame of it in order, wrapping around.
        let n = frames.len();
        let start = (0..n)
            .find(|&i| (0..n).all(|k| frames[(i + k) % n].payload == sent[k].payload))
            .expect("the sent frames are the loop");
        for (k, packet) in sent.iter().enumerate() {
            let frame = &frames[(start + k) % n];
            let byte = packet.header.get_extension(3).unwrap()[0];
            assert_eq!(byte & 0x7f, frame.level_dbov);
            assert_eq!(byte & 0x80 != 0, frame.voice);
        }
        assert!(
            sent.iter()
                .any(|p| p.header.get_extension(3).unwrap()[0] & 0x80 != 0)
        );
        source.set_audio_level(127);
        let frame = source.poll_frame(now).expect("frame");
        assert_eq!(
            frame.packets[0].header.get_extension(3).as_deref(),
            Some(&[127][..])
        );
    }

    #[test]
    fn every_video_packet_carries_its_send_time() {
        let t0 = Instant::now();
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let shape = VideoShape::from_profile(&MediaProfile::default(), (640, 360));
            let mut source = MediaSource::video(params(), codec, shape, t0);
            let key = source.poll_frame(t0).expect("keyframe");
            let later = source.poll_timeout() + Duration::from_millis(3);
            let delta = source.poll_frame(later).expect("delta");
            for (frame, at) in [(key, t0), (delta, later)] {
                for packet in &frame.packets {
                    let stamped = crate::latency::read_stamp(&packet.payload);
                    // H.264 parameter sets (the STAP-A) carry no filler to stamp.
                    let parameter_sets = codec == VideoCodec::H264
                        && h264::parse_h264_payload(&packet.payload)
                            .is_some_and(|p| p.nal_type == h264::NAL_SPS);
                    let expected = (!parameter_sets).then(|| {
                        crate::latency::epoch()
                            + Duration::from_micros(
                                at.duration_since(crate::latency::epoch()).as_micros() as u64,
                            )
                    });
                    assert_eq!(stamped, expected, "{codec:?}");
                }
            }
        }
    }

    #[test]
    fn h264_source_starts_with_parameter_sets_and_an_idr() {
        let t0 = Instant::now();
        let shape = VideoShape::from_profile(&MediaProfile::default(), (640, 360));
        let mut source = MediaSource::video(params(), VideoCodec::H264, shape, t0);
        let key = source.poll_frame(t0).expect("keyframe");
        assert!(key.keyframe);
        let first = h264::parse_h264_payload(&key.packets[0].payload).unwrap();
        assert_eq!((first.nal_type, first.keyframe), (h264::NAL_SPS, true));
        assert_eq!(key.packets.iter().filter(|p| p.header.marker).count(), 1);
        assert!(key.packets.last().unwrap().header.marker);
        let delta = source.poll_frame(source.poll_timeout()).expect("delta");
        assert!(!delta.keyframe);
        for packet in &delta.packets {
            let parsed = h264::parse_h264_payload(&packet.payload).unwrap();
            assert_eq!((parsed.nal_type, parsed.keyframe), (h264::NAL_SLICE, false));
            assert!(packet.payload.len() <= 1000);
        }
    }

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
