//! What simulated publishers send: VP8 frames at 30 fps (a keyframe first and on
//! request), and real Opus 20 ms frames carrying an RFC 6464 audio level.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_protocol::{MediaKind, TrackSource};
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;

use super::simulcast::SimulcastSend;
use super::stream::{Stream, VIDEO_FPS, VIDEO_PACKET_SIZE, frame_packets};

const AUDIO_FRAME: Duration = Duration::from_millis(20);
const OPUS_SAMPLES: usize = 960;
/// Frames in the encoded tone loop all talkers replay.
const OPUS_LOOP_FRAMES: usize = 25;

/// One of a client's tracks on its publisher connection.
pub(super) struct Publication {
    /// The server's id (the msid stream id).
    pub track_id: String,
    /// Ours (the msid track id).
    pub cid: String,
    pub source: TrackSource,
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    /// Set once the answer says how to send.
    pub stream: Option<Stream>,
    /// The next video frame is a keyframe.
    pub keyframe_due: bool,
    pub keyframes_sent: u32,
    /// A camera in simulcast layers: they send, not `stream` (see `simulcast.rs`).
    pub simulcast: Option<SimulcastSend>,
    /// A camera in VP9 SVC layers, one stream (see `svc.rs`).
    pub svc: bool,
    /// A camera in AV1 (see `av1.rs`).
    pub av1: bool,
}

impl Publication {
    /// The packets of every frame due by `now`.
    pub fn poll_packets(&mut self, now: Instant) -> Vec<rtp::Packet> {
        if let Some(layers) = self.simulcast.as_mut() {
            return layers.poll_packets(now);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while stream.next_at <= now {
            let mut keyframe = false;
            let (payloads, clock, interval, level) = match self.source.kind() {
                MediaKind::Audio => {
                    let frames = opus_loop();
                    let payload = frames[stream.frames % frames.len()].clone();
                    (vec![payload], 960, AUDIO_FRAME, stream.level_ext)
                }
                MediaKind::Video => {
                    // An SVC camera's third layer starts at a keyframe (see `svc.rs`).
                    keyframe = std::mem::take(&mut self.keyframe_due)
                        || stream.frames == 0
                        || (self.svc && stream.frames == super::svc::SVC_FULL_AT);
                    self.keyframes_sent += u32::from(keyframe);
                    let interval = Duration::from_secs(1) / VIDEO_FPS;
                    let frame = if self.svc && self.av1 {
                        super::av1::svc_picture(keyframe)
                    } else if self.svc {
                        super::svc::vp9_picture(keyframe, stream.frames)
                    } else if self.av1 {
                        super::av1::av1_frame(keyframe)
                    } else {
                        vp8_frame(keyframe)
                    };
                    (frame, 90_000 / VIDEO_FPS, interval, None)
                }
            };
            let last = payloads.len() - 1;
            for (i, payload) in payloads.into_iter().enumerate() {
                let mut packet = stream.packet(self.ssrc, i == last, level, payload);
                if let Some(id) = stream.dd_ext.filter(|_| self.av1) {
                    let dd = if self.svc {
                        super::av1::svc_descriptor(keyframe, stream.frames, i)
                    } else {
                        super::av1::dependency_descriptor(keyframe, stream.frames, i, last)
                    };
                    super::av1::add_extension(&mut packet, id, dd);
                }
                out.push(packet);
            }
            stream.ts = stream.ts.wrapping_add(clock);
            stream.next_at += interval;
            stream.frames += 1;
        }
        out
    }

    /// One video packet more, whatever the frame clock says: a delta frame of one
    /// packet, numbered on from the stream (a new sequence number and timestamp every
    /// call). `None` for audio, and until the stream is negotiated or has sent its
    /// first (key)frame.
    pub fn extra_video_packet(&mut self) -> Option<rtp::Packet> {
        let stream = self.stream.as_mut()?;
        if self.source.kind() != MediaKind::Video || stream.frames == 0 {
            return None;
        }
        let mut frame = if self.av1 {
            super::av1::av1_frame(false)
        } else {
            vp8_frame(false)
        };
        let payload = frame.swap_remove(0);
        let packet = stream.packet(self.ssrc, true, None, payload);
        stream.ts = stream.ts.wrapping_add(90_000 / VIDEO_FPS);
        stream.frames += 1;
        Some(packet)
    }
}

/// The payloads of one VP8 frame (RFC 7741): the first starts partition 0 and says
/// whether the frame is a keyframe (`chorus_core::codec::vp8_is_keyframe` agrees).
pub fn vp8_frame(keyframe: bool) -> Vec<Bytes> {
    let count = frame_packets(keyframe);
    (0..count)
        .map(|i| {
            let mut p = vec![0x5a; VIDEO_PACKET_SIZE];
            p[0] = if i == 0 { 0x10 } else { 0x00 };
            p[1] = if keyframe { 0x00 } else { 0x01 };
            Bytes::from(p)
        })
        .collect()
}

/// Real Opus 20 ms frames of a 440 Hz tone, encoded once and replayed by every talker.
pub fn opus_loop() -> &'static [Bytes] {
    static LOOP: OnceLock<Vec<Bytes>> = OnceLock::new();
    LOOP.get_or_init(|| {
        let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
            .expect("opus encoder");
        let mut out = [0u8; 1500];
        (0..OPUS_LOOP_FRAMES)
            .map(|f| {
                let pcm: Vec<i16> = (0..OPUS_SAMPLES)
                    .map(|i| {
                        let t = (f * OPUS_SAMPLES + i) as f32 / 48_000.0;
                        (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect();
                let n = encoder.encode(&pcm, &mut out).expect("opus encode");
                Bytes::copy_from_slice(&out[..n])
            })
            .collect()
    })
}
