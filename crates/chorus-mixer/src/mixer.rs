//! The mixer: K talkers decoded, one common mix and K mix-minus-self encoded per 20 ms.

use std::time::{Duration, Instant};

use opus::{Application, Bitrate, Channels, Decoder, Encoder};

use crate::jitter::{Insert, JitterQueue, Playout};
use crate::speaker::{ActiveSpeaker, SpeakerConfig, SpeakerDetector};
use crate::{SourceId, audio_level};

/// Sample rate of everything the mixer decodes and encodes.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame, and the RTP timestamp step between frames.
pub const FRAME_SAMPLES: usize = 960;
const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Longest frame an Opus packet may carry (120 ms).
const MAX_PACKET_SAMPLES: usize = 5760;
/// Largest Opus packet for one frame (RFC 6716 §3.2.1).
const MAX_OPUS_PACKET: usize = 1275;
/// A tick later than this many frames skips ahead instead of catching up in a burst.
const MAX_CATCH_UP_FRAMES: u64 = 3;

/// How the mixer works.
#[derive(Debug, Clone, PartialEq)]
pub struct MixerConfig {
    /// How many talkers are mixed at most (K); overrides `speaker.max_active`.
    pub max_mixed: usize,
    /// Bitrate of every encoded stream.
    pub bitrate_bps: i32,
    /// Packets queued at most per mixed talker (a bound on added latency).
    pub jitter_frames: usize,
    /// Frames concealed with Opus packet-loss concealment before a talker whose
    /// packets stopped counts as silent.
    pub max_concealed: usize,
    /// Speaker selection.
    pub speaker: SpeakerConfig,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            max_mixed: 3,
            bitrate_bps: 32_000,
            jitter_frames: 4,
            max_concealed: 3,
            speaker: SpeakerConfig::default(),
        }
    }
}

/// Why [`Mixer::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MixerError {
    #[error("invalid mixer config: {0}")]
    InvalidConfig(&'static str),
    #[error("creating the Opus encoder failed")]
    Encoder(#[source] opus::Error),
}

/// Why a pushed packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source was never added (or was removed).
    UnknownSource,
    Duplicate,
    /// Its frame was already played or concealed.
    TooOld,
    EmptyPayload,
}

/// What [`Mixer::push`] did with a packet: a value for the caller to count or ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The source is mixed: the packet waits for its tick.
    Queued,
    /// The source is not mixed: only its level was noted.
    LevelOnly,
    Dropped(DropReason),
}

/// Counters of what went wrong or was dropped, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixerStats {
    pub unknown_source: u64,
    pub duplicates: u64,
    pub too_old: u64,
    /// Packets dropped to bound a talker's queueing delay.
    pub jitter_dropped: u64,
    /// Payloads libopus refused (treated as lost).
    pub decode_errors: u64,
    pub concealed_frames: u64,
    pub encode_errors: u64,
    /// Decoders or encoders that could not be created for a new talker.
    pub codec_create_errors: u64,
    /// Frame slots skipped because `tick` came late.
    pub skipped_frames: u64,
}

/// A mixed talker: its decoder, queue and the encoder of its mix-minus-self.
struct Talker {
    id: SourceId,
    decoder: Decoder,
    encoder: Encoder,
    queue: JitterQueue,
    /// Decoded samples not mixed yet (a packet may carry more than 20 ms).
    carry: Vec<i16>,
    /// This tick's contribution, valid when `contributes`.
    pcm: Vec<i16>,
    contributes: bool,
    /// Whether a packet was decoded since joining: concealment needs a past.
    decoded_any: bool,
    /// Consecutive concealed frames.
    concealed: usize,
    /// This tick's encoded mix-minus-self; empty if encoding failed.
    payload: Vec<u8>,
}

impl Talker {
    fn new(id: SourceId, config: &MixerConfig) -> Result<Self, opus::Error> {
        Ok(Self {
            id,
            decoder: Decoder::new(SAMPLE_RATE, Channels::Mono)?,
            encoder: new_encoder(config.bitrate_bps)?,
            queue: JitterQueue::new(config.jitter_frames),
            carry: Vec::with_capacity(MAX_PACKET_SAMPLES + FRAME_SAMPLES),
            pcm: vec![0; FRAME_SAMPLES],
            contributes: false,
            decoded_any: false,
            concealed: 0,
            payload: Vec::with_capacity(MAX_OPUS_PACKET),
        })
    }

    /// Fills `pcm` with this tick's 20 ms: decoded, concealed, or nothing (silent).
    fn produce(&mut self, scratch: &mut [i16], max_concealed: usize, stats: &mut MixerStats) {
        let drained = self.queue.drained;
        // Bounded: every turn consumes a queued packet or a sequence number, or
        // conceals (which fills `carry`), or stops.
        while self.carry.len() < FRAME_SAMPLES {
            match self.queue.pop() {
                Playout::Packet(packet) => match self.decoder.decode(&packet, scratch, false) {
                    Ok(n) => {
                        self.carry
                            .extend_from_slice(&scratch[..n.min(scratch.len())]);
                        self.decoded_any = true;
                        self.concealed = 0;
                    }
                    Err(_) => {
                        stats.decode_errors += 1;
                        self.conceal(scratch, max_concealed, stats);
                    }
                },
                Playout::Missing => {
                    self.conceal(scratch, max_concealed, stats);
                }
                Playout::Empty => {
                    if !self.conceal(scratch, max_concealed, stats) {
                        break;
                    }
                }
            }
        }
        stats.jitter_dropped += self.queue.drained - drained;
        self.contributes = self.carry.len() >= FRAME_SAMPLES;
        if self.contributes {
            self.pcm.copy_from_slice(&self.carry[..FRAME_SAMPLES]);
            self.carry.drain(..FRAME_SAMPLES);
        } else {
            self.carry.clear();
        }
    }

    /// Appends one concealed frame; false when concealment is not possible or used up.
    fn conceal(
        &mut self,
        scratch: &mut [i16],
        max_concealed: usize,
        stats: &mut MixerStats,
    ) -> bool {
        if !self.decoded_any || self.concealed >= max_concealed {
            return false;
        }
        match self
            .decoder
            .decode(&[], &mut scratch[..FRAME_SAMPLES], false)
        {
            Ok(n) => {
                self.carry
                    .extend_from_slice(&scratch[..n.min(FRAME_SAMPLES)]);
                self.concealed += 1;
                stats.concealed_frames += 1;
                n > 0
            }
            Err(_) => {
                stats.decode_errors += 1;
                false
            }
        }
    }
}

fn new_encoder(bitrate_bps: i32) -> Result<Encoder, opus::Error> {
    let mut encoder = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
    encoder.set_bitrate(Bitrate::Bits(bitrate_bps))?;
    Ok(encoder)
}

/// Encodes `pcm` into `out` (cleared on failure, so callers fall back or send nothing).
fn encode(encoder: &mut Encoder, pcm: &[i16], out: &mut Vec<u8>, stats: &mut MixerStats) {
    out.resize(MAX_OPUS_PACKET, 0);
    match encoder.encode(pcm, out) {
        Ok(n) => out.truncate(n),
        Err(_) => {
            stats.encode_errors += 1;
            out.clear();
        }
    }
}

fn clamp_i16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// One 20 ms output frame: what each listener must receive at this tick.
#[derive(Debug)]
pub struct MixedFrame<'a> {
    /// Extended RTP sequence number of the mixed stream: +1 per frame, no gaps.
    pub seq: u64,
    /// Extended RTP timestamp (48 kHz): +960 per frame slot, more after a skip.
    pub timestamp: u64,
    /// RFC 6464 level of the common mix (-dBov, 127 = silence).
    pub level: u8,
    /// The active speaker set, in the detector's stable order (longest active first),
    /// when it changed at this tick.
    pub speakers: Option<&'a [ActiveSpeaker]>,
    common: &'a [u8],
    talkers: &'a [Talker],
}

impl std::fmt::Debug for Talker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Talker")
            .field("id", &self.id)
            .field("queued", &self.queue.len())
            .field("concealed", &self.concealed)
            .finish_non_exhaustive()
    }
}

impl MixedFrame<'_> {
    /// The Opus payload `listener` must hear: its mix-minus-self if it is one of the
    /// mixed talkers, else the common mix. Empty if encoding failed (send nothing).
    pub fn payload_for(&self, listener: SourceId) -> &[u8] {
        match self.talkers.iter().find(|t| t.id == listener) {
            Some(t) if !t.payload.is_empty() => &t.payload,
            _ => self.common,
        }
    }

    /// The common mix, for listeners that are not sources.
    pub fn common(&self) -> &[u8] {
        self.common
    }
}

/// Mixes a room's audio into one stream per listener at a cost set by K, not by the
/// number of sources. Sans-I/O: time is an argument; see the crate docs.
pub struct Mixer {
    config: MixerConfig,
    detector: SpeakerDetector,
    /// The mixed talkers, in the detector's order (longest active first).
    talkers: Vec<Talker>,
    mixed: Vec<SourceId>,
    /// Whether frames are being produced: a source exists and the clock started.
    running: bool,
    /// The slot of the next frame; kept while stopped so time stays continuous.
    next_due: Option<Instant>,
    next_seq: u64,
    next_timestamp: u64,
    common_encoder: Encoder,
    common_payload: Vec<u8>,
    speakers: Option<Vec<ActiveSpeaker>>,
    sum: Vec<i32>,
    mix: Vec<i16>,
    scratch: Vec<i16>,
    stats: MixerStats,
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer")
            .field("mixed", &self.mixed)
            .field("sources", &self.detector.len())
            .field("next_due", &self.next_due)
            .field("next_seq", &self.next_seq)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Mixer {
    pub fn new(mut config: MixerConfig) -> Result<Self, MixerError> {
        if config.max_mixed == 0 {
            return Err(MixerError::InvalidConfig("max_mixed must be at least 1"));
        }
        if config.jitter_frames == 0 {
            return Err(MixerError::InvalidConfig(
                "jitter_frames must be at least 1",
            ));
        }
        // The range libopus accepts.
        if !(500..=512_000).contains(&config.bitrate_bps) {
            return Err(MixerError::InvalidConfig(
                "bitrate_bps must be within 500..=512000",
            ));
        }
        config.speaker.max_active = config.max_mixed;
        Ok(Self {
            detector: SpeakerDetector::new(config.speaker.clone()),
            talkers: Vec::with_capacity(config.max_mixed),
            mixed: Vec::with_capacity(config.max_mixed),
            running: false,
            next_due: None,
            next_seq: 0,
            next_timestamp: 0,
            common_encoder: new_encoder(config.bitrate_bps).map_err(MixerError::Encoder)?,
            common_payload: Vec::with_capacity(MAX_OPUS_PACKET),
            speakers: None,
            sum: vec![0; FRAME_SAMPLES],
            mix: vec![0; FRAME_SAMPLES],
            scratch: vec![0; MAX_PACKET_SAMPLES],
            stats: MixerStats::default(),
            config,
        })
    }

    pub fn config(&self) -> &MixerConfig {
        &self.config
    }

    /// Starts listening to `id`. Adding twice is harmless.
    pub fn add_source(&mut self, id: SourceId) {
        self.detector.add(id);
    }

    /// Forgets `id` at once (it leaves the mix now; the next frame reports the change).
    pub fn remove_source(&mut self, id: SourceId) {
        self.detector.remove(id);
        self.talkers.retain(|t| t.id != id);
        self.mixed.retain(|&s| s != id);
        if self.detector.is_empty() {
            self.running = false;
        }
    }

    /// A muted source is never selected; if mixed, it leaves at the next tick, before
    /// any of its audio is mixed again.
    pub fn set_muted(&mut self, id: SourceId, muted: bool) {
        self.detector.set_muted(id, muted);
    }

    /// One Opus packet (48 kHz, 20 ms frames expected) from a source. `seq` is the
    /// 64-bit extended RTP sequence number, `level` the RFC 6464 level in -dBov
    /// (0 loudest, 127 silence) if the packet carried one. Levels of every source
    /// feed the speaker detector; only mixed sources' packets are queued. The first
    /// packet starts the clock.
    pub fn push(
        &mut self,
        id: SourceId,
        seq: u64,
        level: Option<u8>,
        payload: &[u8],
        now: Instant,
    ) -> Pushed {
        if !self.detector.observe(id, level, now) {
            self.stats.unknown_source += 1;
            return Pushed::Dropped(DropReason::UnknownSource);
        }
        self.start(now);
        let Some(talker) = self.talkers.iter_mut().find(|t| t.id == id) else {
            return Pushed::LevelOnly;
        };
        if payload.is_empty() {
            return Pushed::Dropped(DropReason::EmptyPayload);
        }
        match talker.queue.insert(seq, payload) {
            Insert::Queued => Pushed::Queued,
            Insert::QueuedDroppedOldest => {
                self.stats.jitter_dropped += 1;
                Pushed::Queued
            }
            Insert::Duplicate => {
                self.stats.duplicates += 1;
                Pushed::Dropped(DropReason::Duplicate)
            }
            Insert::TooOld => {
                self.stats.too_old += 1;
                Pushed::Dropped(DropReason::TooOld)
            }
        }
    }

    /// When `tick` must next be called: every 20 ms while running. `None` when there
    /// are no sources, or before the first packet or tick started the clock.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.running { self.next_due } else { None }
    }

    /// Produces the frame due at `now`, if one is due. Starts the clock if no packet
    /// did. A tick late by one to three frames produces the overdue frames on the
    /// following calls; later than that, it skips ahead (the timestamp jumps, the
    /// sequence number does not) rather than send a burst.
    pub fn tick(&mut self, now: Instant) -> Option<MixedFrame<'_>> {
        self.start(now);
        let due = self.next_due.filter(|_| self.running)?;
        let late = now.checked_duration_since(due)?;
        let frame_ns = FRAME_DURATION.as_nanos();
        let late_frames = u64::try_from(late.as_nanos() / frame_ns).unwrap_or(u64::MAX);
        let (slot, skipped) = if late_frames > MAX_CATCH_UP_FRAMES {
            // Stay on the 20 ms grid: the slot is the latest one at or before `now`.
            let into_slot = Duration::from_nanos((late.as_nanos() % frame_ns) as u64);
            (now - into_slot, late_frames)
        } else {
            (due, 0)
        };
        self.stats.skipped_frames += skipped;
        let seq = self.next_seq;
        let timestamp = self
            .next_timestamp
            .wrapping_add(skipped.wrapping_mul(FRAME_SAMPLES as u64));
        self.next_seq += 1;
        self.next_timestamp = timestamp.wrapping_add(FRAME_SAMPLES as u64);
        self.next_due = Some(slot + FRAME_DURATION);

        let change = self.detector.poll_change(now);
        if let Some(change) = &change {
            self.select(change);
        }
        self.speakers = change;

        self.sum.fill(0);
        for t in &mut self.talkers {
            t.produce(
                &mut self.scratch,
                self.config.max_concealed,
                &mut self.stats,
            );
            if t.contributes {
                for (s, &x) in self.sum.iter_mut().zip(&t.pcm) {
                    *s += i32::from(x);
                }
            }
        }
        for (m, &s) in self.mix.iter_mut().zip(&self.sum) {
            *m = clamp_i16(s);
        }
        let level = audio_level(&self.mix);
        encode(
            &mut self.common_encoder,
            &self.mix,
            &mut self.common_payload,
            &mut self.stats,
        );
        for t in &mut self.talkers {
            // Mix-minus-self from the unclamped sum, so clipping of the full mix does
            // not leak into it.
            for (i, m) in self.mix.iter_mut().enumerate() {
                let own = if t.contributes {
                    i32::from(t.pcm[i])
                } else {
                    0
                };
                *m = clamp_i16(self.sum[i] - own);
            }
            encode(&mut t.encoder, &self.mix, &mut t.payload, &mut self.stats);
        }

        Some(MixedFrame {
            seq,
            timestamp,
            level,
            speakers: self.speakers.as_deref(),
            common: &self.common_payload,
            talkers: &self.talkers,
        })
    }

    /// The sources currently mixed, in the detector's order (longest active first).
    pub fn mixed(&self) -> &[SourceId] {
        &self.mixed
    }

    /// The speaker detector (loudness of any source, the active set).
    pub fn speakers(&self) -> &SpeakerDetector {
        &self.detector
    }

    pub fn stats(&self) -> MixerStats {
        self.stats
    }

    fn start(&mut self, now: Instant) {
        if !self.running && !self.detector.is_empty() {
            self.running = true;
            // After a stop the old slot stays: the next tick sees it late and skips
            // ahead, so the timestamp covers the pause.
            self.next_due.get_or_insert(now);
        }
    }

    /// Makes the mixed talkers follow the detector: keeps the decoders and encoders
    /// of those who stay, creates them for newcomers, drops the rest.
    fn select(&mut self, speakers: &[ActiveSpeaker]) {
        let mut old = std::mem::take(&mut self.talkers);
        for s in speakers {
            if let Some(i) = old.iter().position(|t| t.id == s.id) {
                self.talkers.push(old.swap_remove(i));
            } else {
                match Talker::new(s.id, &self.config) {
                    Ok(t) => self.talkers.push(t),
                    Err(_) => self.stats.codec_create_errors += 1,
                }
            }
        }
        self.mixed.clear();
        self.mixed.extend(self.talkers.iter().map(|t| t.id));
    }
}

// The room actor moves its mixer into a task.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Mixer>();
};

#[cfg(test)]
mod tests {
    use super::*;

    const T20: Duration = FRAME_DURATION;

    /// A test source: a tone of `freq` Hz at `amplitude`, encoded like a client would.
    struct ToneSource {
        id: SourceId,
        freq: f64,
        amplitude: f64,
        encoder: Encoder,
        phase: usize,
    }

    impl ToneSource {
        fn new(id: u64, freq: f64, amplitude: f64) -> Self {
            Self {
                id: SourceId(id),
                freq,
                amplitude,
                encoder: new_encoder(32_000).unwrap(),
                phase: 0,
            }
        }

        /// The next 20 ms: Opus payload and its RFC 6464 level.
        fn next_packet(&mut self) -> (Vec<u8>, u8) {
            let pcm: Vec<i16> = (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (self.phase + i) as f64 / f64::from(SAMPLE_RATE);
                    (self.amplitude * (2.0 * std::f64::consts::PI * self.freq * t).sin()) as i16
                })
                .collect();
            self.phase += FRAME_SAMPLES;
            let packet = self.encoder.encode_vec(&pcm, MAX_OPUS_PACKET).unwrap();
            (packet, audio_level(&pcm))
        }
    }

    /// Amplitude of the `freq` Hz component of `x` (Goertzel).
    fn tone_amplitude(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(SAMPLE_RATE);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f64
    }

    /// Decodes one listener's stream as a client would.
    struct Listener {
        id: SourceId,
        decoder: Decoder,
        pcm: Vec<i16>,
    }

    impl Listener {
        fn new(id: u64) -> Self {
            Self {
                id: SourceId(id),
                decoder: Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap(),
                pcm: Vec::new(),
            }
        }

        fn receive(&mut self, frame: &MixedFrame<'_>) {
            let mut out = vec![0i16; MAX_PACKET_SAMPLES];
            let n = self
                .decoder
                .decode(frame.payload_for(self.id), &mut out, false)
                .unwrap();
            assert_eq!(n, FRAME_SAMPLES);
            self.pcm.extend_from_slice(&out[..n]);
        }
    }

    fn mixer_with(ids: &[u64]) -> Mixer {
        let mut m = Mixer::new(MixerConfig::default()).unwrap();
        for &id in ids {
            m.add_source(SourceId(id));
        }
        m
    }

    #[test]
    fn mixes_the_three_loudest_and_removes_each_talker_from_its_own_mix() {
        let t0 = Instant::now();
        let mut sources = [
            ToneSource::new(1, 440.0, 6000.0),
            ToneSource::new(2, 1000.0, 6000.0),
            ToneSource::new(3, 2500.0, 6000.0),
            // Quieter by about 20 dB: the fourth, never mixed.
            ToneSource::new(4, 1600.0, 600.0),
        ];
        let mut mixer = mixer_with(&[1, 2, 3, 4]);
        // 99 only listens; 1 and 4 also talk.
        let mut listeners = [Listener::new(99), Listener::new(1), Listener::new(4)];
        let mut last_seq = None;
        for n in 0..60u64 {
            let now = t0 + T20 * n as u32;
            for s in &mut sources {
                let (packet, level) = s.next_packet();
                mixer.push(s.id, 1000 + n, Some(level), &packet, now);
            }
            let frame = mixer.tick(now).expect("a frame every 20 ms");
            assert_eq!(frame.seq, n, "seq continuous");
            assert_eq!(frame.timestamp, n * FRAME_SAMPLES as u64, "ts continuous");
            if n > 5 {
                assert!(frame.level < 20, "a loud mix, level {}", frame.level);
            }
            assert_eq!(
                frame.payload_for(SourceId(4)),
                frame.common(),
                "the unmixed source hears the common mix"
            );
            last_seq = Some(frame.seq);
            for l in &mut listeners {
                l.receive(&frame);
            }
            assert!(mixer.tick(now).is_none(), "one frame per slot");
        }
        assert_eq!(last_seq, Some(59));
        let mut mixed = mixer.mixed().to_vec();
        mixed.sort();
        assert_eq!(mixed, [SourceId(1), SourceId(2), SourceId(3)]);

        // (listener, frequency, expected present) over the last 40 frames, after the
        // selection and the codecs settled.
        let cases = [
            (99, 440.0, true),
            (99, 1000.0, true),
            (99, 2500.0, true),
            (99, 1600.0, false),
            (1, 440.0, false),
            (1, 1000.0, true),
            (1, 2500.0, true),
            (1, 1600.0, false),
            (4, 440.0, true),
            (4, 1600.0, false),
        ];
        for (id, freq, present) in cases {
            let l = listeners.iter().find(|l| l.id == SourceId(id)).unwrap();
            let a = tone_amplitude(&l.pcm[20 * FRAME_SAMPLES..], freq);
            if present {
                assert!(
                    a > 3000.0,
                    "listener {id}: {freq} Hz should be there, amplitude {a:.0}"
                );
            } else {
                assert!(
                    a < 100.0,
                    "listener {id}: {freq} Hz should be absent, amplitude {a:.0}"
                );
            }
        }
        assert_eq!(mixer.stats().decode_errors, 0);
    }

    #[test]
    fn seeded_loss_and_jitter_keep_latency_bounded() {
        // Two talkers; each packet arrives 0-35 ms after its slot, 5% never arrive.
        let t0 = Instant::now();
        let mut rng: u64 = 0x5eed;
        let mut random = move |below: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % below
        };
        let mut mixer = mixer_with(&[1, 2]);
        let mut sources = [
            ToneSource::new(1, 440.0, 6000.0),
            ToneSource::new(2, 1000.0, 6000.0),
        ];
        let mut in_flight: Vec<(Instant, SourceId, u64, Vec<u8>, u8)> = Vec::new();
        let mut listener = Listener::new(99);
        let (mut lost, mut queued_sum) = (0u64, 0usize);
        const FRAMES: u64 = 500;
        for n in 0..FRAMES {
            let slot = t0 + T20 * n as u32;
            for s in &mut sources {
                let (packet, level) = s.next_packet();
                if random(100) < 5 {
                    lost += 1;
                    continue;
                }
                let arrival = slot + Duration::from_millis(random(36));
                in_flight.push((arrival, s.id, n, packet, level));
            }
            in_flight.sort_by_key(|p| p.0);
            let due = in_flight.partition_point(|p| p.0 <= slot);
            for (at, id, seq, packet, level) in in_flight.drain(..due) {
                mixer.push(id, seq, Some(level), &packet, at);
            }
            let frame = mixer.tick(slot).expect("a frame every 20 ms");
            assert_eq!(frame.seq, n);
            listener.receive(&frame);
            if n >= FRAMES - 200 {
                queued_sum += mixer.talkers.iter().map(|t| t.queue.len()).sum::<usize>();
            }
        }
        let stats = mixer.stats();
        assert_eq!(mixer.mixed().len(), 2, "{stats:?}");
        // Each talker holds about what 35 ms of jitter needs (under a packet on
        // average); losses must not each add a frame of delay (that gave 1.5).
        let mean_queued = queued_sum as f64 / 200.0 / 2.0;
        assert!(mean_queued < 1.0, "mean queue {mean_queued:.2}, {stats:?}");
        // Every loss is concealed about once; late packets add a few more.
        assert!(
            stats.concealed_frames <= lost * 2,
            "{} concealed for {lost} lost, {stats:?}",
            stats.concealed_frames
        );
        let tail = &listener.pcm[(FRAMES as usize - 200) * FRAME_SAMPLES..];
        for freq in [440.0, 1000.0] {
            let a = tone_amplitude(tail, freq);
            assert!(a > 3000.0, "{freq} Hz amplitude {a:.0}, {stats:?}");
        }
    }

    #[test]
    fn tick_timing() {
        // (name, ticks as ms offsets from the start, expected (seq, timestamp) of each
        // produced frame in order)
        type Case = (&'static str, &'static [u64], &'static [(u64, u64)]);
        let cases: [Case; 4] = [
            (
                "on time",
                &[0, 20, 40, 60],
                &[(0, 0), (1, 960), (2, 1920), (3, 2880)],
            ),
            (
                "early ticks produce nothing",
                &[0, 5, 19, 20],
                &[(0, 0), (1, 960)],
            ),
            (
                "a little late: the overdue frames follow at once",
                &[0, 65, 65, 65, 65, 80],
                &[(0, 0), (1, 960), (2, 1920), (3, 2880), (4, 3840)],
            ),
            (
                "very late: skip ahead, seq continuous, ts covers the gap",
                &[0, 20, 230, 230, 250],
                &[(0, 0), (1, 960), (2, 11 * 960), (3, 12 * 960)],
            ),
        ];
        for (name, ticks, want) in cases {
            let t0 = Instant::now();
            let mut m = mixer_with(&[1]);
            assert_eq!(m.poll_timeout(), None, "{name}: clock not started");
            let mut got = Vec::new();
            for &ms in ticks {
                if let Some(f) = m.tick(t0 + Duration::from_millis(ms)) {
                    got.push((f.seq, f.timestamp));
                }
            }
            assert_eq!(got, want, "{name}");
            let due = m.poll_timeout().expect("running");
            let last = *ticks.last().unwrap();
            assert!(
                due > t0 + Duration::from_millis(last) - T20
                    && due <= t0 + Duration::from_millis(last) + T20,
                "{name}: next deadline within one frame"
            );
        }
    }

    #[test]
    fn silence_keeps_the_stream_going_and_no_sources_stop_it() {
        let t0 = Instant::now();
        let mut m = mixer_with(&[1, 2]);
        let mut silent = ToneSource::new(1, 440.0, 0.0);
        for n in 0..10u64 {
            let now = t0 + T20 * n as u32;
            let (packet, level) = silent.next_packet();
            assert_eq!(level, 127);
            assert_eq!(
                m.push(SourceId(1), n, Some(level), &packet, now),
                Pushed::LevelOnly
            );
            assert_eq!(m.poll_timeout(), Some(now), "due now");
            let f = m.tick(now).expect("frames while nobody talks");
            assert_eq!((f.seq, f.level), (n, 127));
            assert!(!f.common().is_empty());
        }
        assert!(m.mixed().is_empty());
        m.remove_source(SourceId(1));
        m.remove_source(SourceId(2));
        assert_eq!(m.poll_timeout(), None, "no sources, no ticks");
        assert!(m.tick(t0 + T20 * 10).is_none());

        // Back after a pause of a second: no burst, ts jumps over the pause.
        m.add_source(SourceId(3));
        let back = t0 + Duration::from_millis(1200);
        m.push(SourceId(3), 0, Some(127), &[0xF8, 0xFF, 0xFE], back);
        let f = m.tick(back).expect("running again");
        assert_eq!((f.seq, f.timestamp), (10, 60 * 960));
        assert!(m.tick(back).is_none(), "no catch-up burst");
    }

    #[test]
    fn bad_input_is_counted_never_fatal() {
        let t0 = Instant::now();
        let mut m = mixer_with(&[1]);
        let mut tone = ToneSource::new(1, 440.0, 6000.0);
        let mut now = t0;
        // Become a mixed talker with good packets first.
        for n in 0..5u64 {
            let (packet, level) = tone.next_packet();
            m.push(SourceId(1), n, Some(level), &packet, now);
            m.tick(now);
            now += T20;
        }
        assert_eq!(m.mixed(), [SourceId(1)]);
        // (name, seq, payload, expected)
        let garbage: [(&str, u64, &[u8], Pushed); 6] = [
            ("code 3 with zero frames", 5, &[0x03, 0x00], Pushed::Queued),
            ("code 3 without a count byte", 6, &[0xFF], Pushed::Queued),
            (
                "code 1 with an odd length",
                7,
                &[0x01, 0x02],
                Pushed::Queued,
            ),
            ("empty", 8, &[], Pushed::Dropped(DropReason::EmptyPayload)),
            (
                "duplicate",
                7,
                &[0x01, 0x02],
                Pushed::Dropped(DropReason::Duplicate),
            ),
            (
                "too old",
                2,
                &[0x01, 0x02],
                Pushed::Dropped(DropReason::TooOld),
            ),
        ];
        for (name, seq, payload, want) in garbage {
            assert_eq!(
                m.push(SourceId(1), seq, Some(20), payload, now),
                want,
                "{name}"
            );
        }
        assert_eq!(
            m.push(SourceId(9), 0, Some(0), &[1, 2, 3], now),
            Pushed::Dropped(DropReason::UnknownSource)
        );
        for _ in 0..5 {
            assert!(m.tick(now).is_some());
            now += T20;
        }
        let stats = m.stats();
        assert_eq!(stats.decode_errors, 3, "{stats:?}");
        assert!(
            stats.concealed_frames >= 3,
            "errors are concealed as losses: {stats:?}"
        );
        assert_eq!(
            (stats.duplicates, stats.too_old, stats.unknown_source),
            (1, 1, 1)
        );
    }

    #[test]
    fn leaving_and_muting_take_effect_before_the_next_mix() {
        let t0 = Instant::now();
        let mut m = mixer_with(&[1, 2]);
        let mut tones = [
            ToneSource::new(1, 440.0, 6000.0),
            ToneSource::new(2, 1000.0, 6000.0),
        ];
        let mut now = t0;
        let mut run = |m: &mut Mixer, frames: u64, muted_2: bool| {
            let mut last = (Vec::new(), Vec::new());
            for _ in 0..frames {
                for t in &mut tones {
                    let (packet, level) = t.next_packet();
                    m.push(
                        t.id,
                        (now - t0).as_millis() as u64 / 20,
                        Some(level),
                        &packet,
                        now,
                    );
                }
                m.set_muted(SourceId(2), muted_2);
                let f = m.tick(now).unwrap();
                last = (f.payload_for(SourceId(1)).to_vec(), f.common().to_vec());
                now += T20;
            }
            last
        };
        run(&mut m, 10, false);
        assert_eq!(m.mixed().len(), 2);
        let (for_1, common) = run(&mut m, 1, true);
        assert_eq!(m.mixed(), [SourceId(1)], "muted leaves at once");
        assert_ne!(for_1, common, "1 still gets its mix-minus-self");
        m.remove_source(SourceId(1));
        assert!(m.mixed().is_empty(), "removal is immediate");
        let (for_1, common) = run(&mut m, 1, true);
        assert_eq!(for_1, common, "a removed talker gets the common mix");
    }

    #[test]
    fn config_is_checked() {
        // (name, config change, ok)
        type Case = (&'static str, fn(&mut MixerConfig), bool);
        let cases: [Case; 5] = [
            ("default", |_| {}, true),
            ("K = 0", |c| c.max_mixed = 0, false),
            ("no jitter queue", |c| c.jitter_frames = 0, false),
            ("bitrate too low", |c| c.bitrate_bps = 100, false),
            ("K = 5 reaches the detector", |c| c.max_mixed = 5, true),
        ];
        for (name, change, ok) in cases {
            let mut config = MixerConfig::default();
            change(&mut config);
            let want_k = config.max_mixed;
            match Mixer::new(config) {
                Ok(m) => {
                    assert!(ok, "{name}");
                    assert_eq!(m.speakers().config().max_active, want_k, "{name}");
                }
                Err(e) => assert!(!ok, "{name}: {e}"),
            }
        }
    }
}
