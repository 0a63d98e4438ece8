//! The packetizer and clock of one outgoing RTP stream: [`MediaSource`] paces the
//! frames of its audio or video source, numbers and timestamps their packets, and
//! skips what a stall left behind instead of bursting it out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp;

use super::audio::{AudioSource, OPUS_FRAME, OPUS_SAMPLES_PER_FRAME};
use super::svc::SvcLayer;
use super::video::{VIDEO_CLOCK_RATE, VideoEncoder, VideoShape};
use crate::latency;
use crate::profile::{MediaProfile, StreamParams, VideoCodec};
use crate::talk::{AudioContent, SILENT_DBOV};

/// Behind by more than this (task stalled, muted), frames are skipped, not burst out.
const MAX_LAG: Duration = Duration::from_millis(200);

/// The packets of one frame, in sending order.
#[derive(Debug)]
pub struct Frame {
    pub packets: Vec<rtp::Packet>,
    pub keyframe: bool,
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
    /// SDES header extensions (id, value) every packet carries: a simulcast layer's
    /// MID and RFC 8852 rid, by which the server places it.
    sdes: Vec<(u8, Bytes)>,
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
        Self::with_encoder(params, shape.fps, VideoEncoder::new(codec, shape), now)
    }

    /// A VP9 camera sending `layers` (lowest first, e.g. [`super::SVC_LAYERS`]) in one
    /// stream, as Chromium's `scalabilityMode: 'L3T3_KEY'`: each frame is a picture of
    /// every spatial layer, temporal layers 0-2-1-2.
    pub fn vp9_svc(params: StreamParams, layers: &[SvcLayer], fps: u32, now: Instant) -> Self {
        Self::with_encoder(params, fps, VideoEncoder::vp9_svc(layers, fps), now)
    }

    fn with_encoder(params: StreamParams, fps: u32, encoder: VideoEncoder, now: Instant) -> Self {
        let fps = fps.clamp(1, 120);
        // Fix the stamps' epoch before the first one is taken.
        latency::epoch();
        Self::new(
            params,
            Duration::from_secs(1) / fps,
            VIDEO_CLOCK_RATE / fps,
            now,
            Codec::Video(encoder),
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
            sdes: Vec::new(),
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
            encoder.request_keyframe();
        }
    }

    /// Sends `content` from the next frame on. No-op for video.
    /// Of a VP9 SVC camera: sends its lowest `count` spatial layers (dynacast's hint).
    pub fn send_spatial_layers(&mut self, count: usize) {
        if let Codec::Video(encoder) = &mut self.codec {
            encoder.send_spatial_layers(count);
        }
    }

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
        self.sdes.push((ext_id, Bytes::from_static(rid.as_bytes())));
    }

    /// Tags every packet with the MID header extension of its m-section.
    pub(crate) fn set_mid(&mut self, ext_id: u8, mid: Bytes) {
        self.sdes.push((ext_id, mid));
    }

    pub fn ssrc(&self) -> u32 {
        self.params.ssrc
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
        for (id, value) in &self.sdes {
            add_extension(&mut header, *id, value.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264;
    use crate::media::audio::OPUS_SILENCE_FRAME;
    use crate::talk;

    fn params() -> StreamParams {
        StreamParams {
            ssrc: 7,
            payload_type: 96,
            audio_level_ext: Some(3),
        }
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
        for codec in [VideoCodec::Vp8, VideoCodec::H264, VideoCodec::Vp9] {
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
}
