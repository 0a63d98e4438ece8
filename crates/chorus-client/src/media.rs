//! Synthetic media: RTP packets that look like a real encoder's output to an SFU.
//!
//! Sans-I/O: a [`MediaSource`] is told the time and returns the packets of the frames
//! due by then. Audio is a 20 ms Opus silence frame with an RFC 6464 audio level;
//! video is VP8 with a full RFC 7741 payload descriptor (15-bit PictureID, TL0PICIDX,
//! TID), a keyframe first and after every [`MediaSource::request_keyframe`].

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtp;

/// One 20 ms CELT-only fullband Opus frame that decodes to silence (TOC 0xF8).
pub const OPUS_SILENCE_FRAME: [u8; 3] = [0xF8, 0xFF, 0xFE];

const OPUS_FRAME: Duration = Duration::from_millis(20);
const OPUS_SAMPLES_PER_FRAME: u32 = 960;
const VP8_CLOCK_RATE: u32 = 90_000;
/// Behind by more than this (task stalled, muted), frames are skipped, not burst out.
const MAX_LAG: Duration = Duration::from_millis(200);
/// Size of the payload descriptor written by [`vp8_descriptor`].
const VP8_DESCRIPTOR_LEN: usize = 6;

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
    /// RFC 6464 level of the microphone, in -dBov (0 loudest, 127 silence).
    pub audio_level_dbov: u8,
}

impl Default for MediaProfile {
    fn default() -> Self {
        Self {
            video_fps: 15,
            video_packets_per_frame: 2,
            video_packets_per_keyframe: 6,
            video_packet_size: 1000,
            audio_level_dbov: 30,
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

#[derive(Debug)]
enum Codec {
    Opus { level_dbov: u8 },
    Vp8(Vp8Encoder),
}

/// Picture numbering and packet counts of the synthetic VP8 stream.
#[derive(Debug)]
struct Vp8Encoder {
    width: u16,
    height: u16,
    picture_id: u16,
    tl0_pic_idx: u8,
    keyframe_due: bool,
    packets_per_frame: usize,
    packets_per_keyframe: usize,
    packet_size: usize,
}

impl Vp8Encoder {
    /// The payloads of the next frame and whether it is a keyframe.
    fn encode(&mut self) -> (Vec<Bytes>, bool) {
        let keyframe = std::mem::take(&mut self.keyframe_due);
        let count = if keyframe {
            self.packets_per_keyframe
        } else {
            self.packets_per_frame
        };
        let frame = Vp8Frame {
            picture_id: self.picture_id,
            tl0_pic_idx: self.tl0_pic_idx,
            keyframe,
            width: self.width,
            height: self.height,
        };
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
        (
            vp8_frame_payloads(&frame, count, self.packet_size),
            keyframe,
        )
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
}

impl MediaSource {
    pub fn opus(params: StreamParams, profile: &MediaProfile, now: Instant) -> Self {
        Self::new(
            params,
            OPUS_FRAME,
            OPUS_SAMPLES_PER_FRAME,
            now,
            Codec::Opus {
                level_dbov: profile.audio_level_dbov.min(127),
            },
        )
    }

    pub fn vp8(
        params: StreamParams,
        profile: &MediaProfile,
        (width, height): (u16, u16),
        now: Instant,
    ) -> Self {
        let fps = profile.video_fps.clamp(1, 120);
        Self::new(
            params,
            Duration::from_secs(1) / fps,
            VP8_CLOCK_RATE / fps,
            now,
            Codec::Vp8(Vp8Encoder {
                width,
                height,
                picture_id: rand::random::<u16>() & 0x7fff,
                tl0_pic_idx: rand::random(),
                keyframe_due: true,
                packets_per_frame: profile.video_packets_per_frame.max(1),
                packets_per_keyframe: profile.video_packets_per_keyframe.max(1),
                packet_size: profile.video_packet_size.max(VP8_DESCRIPTOR_LEN + 10),
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
        let frame = self.build_frame();
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
        if let Codec::Vp8(encoder) = &mut self.codec {
            encoder.keyframe_due = true;
        }
    }

    pub fn set_audio_level(&mut self, dbov: u8) {
        if let Codec::Opus { level_dbov } = &mut self.codec {
            *level_dbov = dbov.min(127);
        }
    }

    fn header(&mut self, marker: bool) -> rtp::Header {
        let header = rtp::Header {
            version: 2,
            marker,
            payload_type: self.params.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.timestamp,
            ssrc: self.params.ssrc,
            ..Default::default()
        };
        self.sequence_number = self.sequence_number.wrapping_add(1);
        header
    }

    fn build_frame(&mut self) -> Frame {
        let (payloads, keyframe) = match &mut self.codec {
            Codec::Opus { level_dbov } => {
                let level = *level_dbov;
                let mut header = self.header(false);
                if let Some(id) = self.params.audio_level_ext {
                    // RFC 6464: the V bit is set while the level says someone is talking.
                    let voice = if level < 127 { 0x80 } else { 0 };
                    header.extension = true;
                    header.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
                    header.extensions = vec![rtp::header::Extension {
                        id,
                        payload: Bytes::copy_from_slice(&[voice | level]),
                    }];
                }
                let payload = Bytes::from_static(&OPUS_SILENCE_FRAME);
                return Frame {
                    packets: vec![rtp::Packet { header, payload }],
                    keyframe: false,
                };
            }
            Codec::Vp8(encoder) => encoder.encode(),
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
            payload.put_bytes(0x55, filler);
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
        let mut source = MediaSource::opus(params(), &MediaProfile::default(), t0);
        let frame = source.poll_frame(t0).expect("frame");
        let header = &frame.packets[0].header;
        assert_eq!(header.get_extension(3).as_deref(), Some(&[0x80 | 30][..]));
        assert_eq!(&frame.packets[0].payload[..], &OPUS_SILENCE_FRAME);
        source.set_audio_level(127);
        let frame = source.poll_frame(source.poll_timeout()).expect("frame");
        assert_eq!(
            frame.packets[0].header.get_extension(3).as_deref(),
            Some(&[127][..])
        );
    }
}
