//! Real Opus audio for the synthetic microphone: talk spurts of a voiced-like signal
//! separated by silences, encoded once per process and shared by every client.
//!
//! A voiced sound is a sum of harmonics of a slowly varying pitch under a syllable-rate
//! amplitude envelope, which Opus encodes much as it encodes speech (SILK/hybrid, 20–40
//! kbit/s). Each 20 ms frame carries the RFC 6464 level of the PCM it was encoded from,
//! so a level-based talker selection sees what a decoder would hear. Encoding costs
//! ~90 µs per frame; a loop is encoded at most once per process and replayed by every
//! client from its own offset, so 350 talkers cost no encoder time at all.

use std::collections::HashMap;
use std::f32::consts::TAU;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

/// Samples per second of everything here (Opus's native rate).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// RFC 6464 level of digital silence (-127 dBov or quieter).
pub const SILENT_DBOV: u8 = 127;
/// Talk loop length. Long enough that 3 talkers from random offsets rarely align.
const TALK_LOOP_FRAMES: usize = 30 * 50;
/// One second of tone: an integer number of periods for an integer frequency, so the
/// loop is seamless.
const TONE_LOOP_FRAMES: usize = 50;
/// Tone amplitude: RMS -15 dBov, a loud but unclipped talker.
const TONE_AMPLITUDE: f32 = 0.25;
/// Largest Opus packet (RFC 6716 §3.4).
const MAX_OPUS_PACKET: usize = 1275;
/// What the synthetic microphone asks of the encoder, like a WebRTC voice call.
const OPUS_BITRATE: i32 = 32_000;

/// How a synthetic participant talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TalkPattern {
    /// Turns of 1–4 s separated by 0.5–3 s pauses.
    #[default]
    Conversational,
    /// A presenter: turns of 3–8 s with short breaths of 0.2–0.6 s.
    Monologue,
    /// Interjections of 0.5–1.5 s separated by 5–15 s of silence.
    Occasional,
}

impl TalkPattern {
    pub const ALL: [TalkPattern; 3] = [
        TalkPattern::Conversational,
        TalkPattern::Monologue,
        TalkPattern::Occasional,
    ];

    /// (talk spurt range, pause range) in seconds.
    fn ranges(self) -> ((f32, f32), (f32, f32)) {
        match self {
            TalkPattern::Conversational => ((1.0, 4.0), (0.5, 3.0)),
            TalkPattern::Monologue => ((3.0, 8.0), (0.2, 0.6)),
            TalkPattern::Occasional => ((0.5, 1.5), (5.0, 15.0)),
        }
    }

    fn seed(self) -> u64 {
        match self {
            TalkPattern::Conversational => 0x5eed_0001,
            TalkPattern::Monologue => 0x5eed_0002,
            TalkPattern::Occasional => 0x5eed_0003,
        }
    }
}

/// What the synthetic microphone sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioContent {
    /// Real Opus talk following the pattern, level from the signal.
    Talk(TalkPattern),
    /// A continuous real-Opus tone at this frequency, -15 dBov: a talker a test can find
    /// in a mix with [`tone_energy`].
    Tone { hz: u16 },
    /// The 3-byte Opus silence frame with level 127 and the V bit clear.
    Silence,
    /// The 3-byte silence frame labelled with this level (V bit set below 127): claims
    /// to talk without carrying sound, for tests of level-only decisions.
    Labelled(u8),
}

impl Default for AudioContent {
    fn default() -> Self {
        AudioContent::Talk(TalkPattern::default())
    }
}

impl AudioContent {
    /// What `set_audio_level(dbov)` means: silence at 127, a labelled silence frame below.
    pub fn from_level(dbov: u8) -> Self {
        if dbov >= SILENT_DBOV {
            AudioContent::Silence
        } else {
            AudioContent::Labelled(dbov)
        }
    }
}

/// One encoded 20 ms frame and what its header extension says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusFrame {
    pub payload: Bytes,
    /// RFC 6464 level in -dBov of the PCM this frame was encoded from.
    pub level_dbov: u8,
    /// RFC 6464 V bit: the frame belongs to a talk spurt.
    pub voice: bool,
}

/// Why a loop could not be encoded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EncodeError {
    #[error("opus encoder: {0}")]
    Opus(String),
}

impl From<opus::Error> for EncodeError {
    fn from(err: opus::Error) -> Self {
        EncodeError::Opus(err.to_string())
    }
}

/// The shared encoded loop of a pattern, made on first use: about 0.1 s of CPU in a
/// release build (1 s in debug), during which other callers wait for it. A load
/// generator calls it before starting its clients.
pub fn talk_loop(pattern: TalkPattern) -> Result<Arc<[OpusFrame]>, EncodeError> {
    type Loop = OnceLock<Result<Arc<[OpusFrame]>, EncodeError>>;
    static LOOPS: [Loop; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = &LOOPS[TalkPattern::ALL
        .iter()
        .position(|p| *p == pattern)
        .unwrap_or(0)];
    slot.get_or_init(|| {
        let (pcm, voice) = talk_pcm(pattern, TALK_LOOP_FRAMES);
        encode(&pcm, &voice)
    })
    .clone()
}

/// The shared encoded one-second loop of a tone; encoded on first use per frequency.
pub fn tone_loop(hz: u16) -> Result<Arc<[OpusFrame]>, EncodeError> {
    static TONES: OnceLock<Mutex<HashMap<u16, Arc<[OpusFrame]>>>> = OnceLock::new();
    let tones = TONES.get_or_init(Default::default);
    if let Some(frames) = lock(tones).get(&hz) {
        return Ok(frames.clone());
    }
    let samples = TONE_LOOP_FRAMES * FRAME_SAMPLES;
    let step = TAU * f32::from(hz) / SAMPLE_RATE as f32;
    let pcm: Vec<i16> = (0..samples)
        .map(|n| to_i16(TONE_AMPLITUDE * (step * n as f32).sin()))
        .collect();
    let frames = encode(&pcm, &[true; TONE_LOOP_FRAMES])?;
    Ok(lock(tones).entry(hz).or_insert(frames).clone())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// RFC 6464 level of a frame of PCM: -20·log10(rms / 32768) rounded, clamped to 0..=127.
pub fn level_dbov(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return SILENT_DBOV;
    }
    let energy: f64 = pcm.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / pcm.len() as f64;
    let rms = energy.sqrt() / 32768.0;
    if rms <= 0.0 {
        return SILENT_DBOV;
    }
    (-20.0 * rms.log10()).round().clamp(0.0, 127.0) as u8
}

/// Squared amplitude of the `freq_hz` component of `pcm`, relative to full scale (a
/// full-scale sine at that frequency gives ≈ 1.0, a -6 dB one ≈ 0.25), by the Goertzel
/// algorithm. For tests that look for a talker's tone in what they received; use a
/// window of many periods (20 ms and up) for a sharp answer.
pub fn tone_energy(pcm: &[i16], freq_hz: f32, sample_rate: u32) -> f32 {
    if pcm.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let coeff = 2.0 * (TAU * freq_hz / sample_rate as f32).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for sample in pcm {
        let s0 = f32::from(*sample) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // |X(f)| = A·N/2 for a sine of amplitude A.
    let half = pcm.len() as f32 / 2.0;
    power.max(0.0) / (half * half)
}

/// Encodes whole frames of mono 48 kHz PCM; `voice[i]` is the V bit of frame i.
fn encode(pcm: &[i16], voice: &[bool]) -> Result<Arc<[OpusFrame]>, EncodeError> {
    let mut encoder =
        opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
    encoder.set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE))?;
    let mut out = [0u8; MAX_OPUS_PACKET];
    pcm.chunks_exact(FRAME_SAMPLES)
        .zip(voice)
        .map(|(frame, voice)| {
            let len = encoder.encode(frame, &mut out)?;
            Ok(OpusFrame {
                payload: Bytes::copy_from_slice(&out[..len]),
                level_dbov: level_dbov(frame),
                voice: *voice,
            })
        })
        .collect()
}

fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0) as i16
}

/// Deterministic generator (splitmix64): the same loop in every run and process.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, (lo, hi): (f32, f32)) -> f32 {
        lo + (hi - lo) * (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// PCM of a talk loop of `frames` frames and, per frame, whether it is in a spurt.
/// The loop starts and ends in silence so that wrapping around is seamless.
fn talk_pcm(pattern: TalkPattern, frames: usize) -> (Vec<i16>, Vec<bool>) {
    let total = frames * FRAME_SAMPLES;
    let rate = SAMPLE_RATE as f32;
    let mut pcm = vec![0i16; total];
    let mut voice = vec![false; frames];
    let mut rng = Rng(pattern.seed());
    let (talk, pause) = pattern.ranges();
    // Leading pause: at most the pattern's shortest pause, so a loop is not mostly silence.
    let mut at = (rate * pause.0.min(0.3)) as usize;
    let tail = (rate * 0.3) as usize;
    loop {
        let len = (rate * rng.range(talk)) as usize;
        if at + len + tail > total {
            break;
        }
        speak(&mut pcm[at..at + len], &mut rng);
        for flag in &mut voice[at / FRAME_SAMPLES..(at + len).div_ceil(FRAME_SAMPLES)] {
            *flag = true;
        }
        at += len + (rate * rng.range(pause)) as usize;
    }
    (pcm, voice)
}

/// Writes one talk spurt: harmonics of a gliding pitch under a syllable envelope.
fn speak(out: &mut [i16], rng: &mut Rng) {
    let rate = SAMPLE_RATE as f32;
    let base_pitch = rng.range((100.0, 220.0));
    // Per-spurt loudness: -6 dB to 0 dB around a -14 dBFS peak.
    let gain = 0.2 * 10f32.powf(rng.range((-6.0, 0.0)) / 20.0);
    let syllable_hz = rng.range((3.0, 5.5));
    let ramp = 0.04 * rate;
    let len = out.len() as f32;
    let mut phase = 0.0f32;
    for (n, sample) in out.iter_mut().enumerate() {
        let t = n as f32 / rate;
        // Intonation: a slow wobble and a fall over the spurt, as in a sentence.
        let pitch =
            base_pitch * (1.0 + 0.08 * (TAU * 0.7 * t).sin()) * (1.0 - 0.15 * n as f32 / len);
        phase = (phase + TAU * pitch / rate) % TAU;
        let harmonics = ((3800.0 / pitch) as usize).max(1);
        // sin(kφ) by the recurrence sin(kφ) = 2cos(φ)·sin((k-1)φ) − sin((k-2)φ): one sin
        // and one cos per sample instead of one sin per harmonic.
        let (sin1, two_cos) = (phase.sin(), 2.0 * phase.cos());
        let (mut previous, mut current) = (0.0f32, sin1);
        let mut voiced = 0.0;
        for k in 1..=harmonics {
            voiced += current / k as f32;
            (previous, current) = (current, two_cos * current - previous);
        }
        let syllables = 0.35 + 0.65 * (std::f32::consts::PI * syllable_hz * t).sin().powi(2);
        let edges = (n as f32 / ramp).min((len - n as f32) / ramp).min(1.0);
        // The harmonic sum of 1/k peaks near 1.9; scale it back to about ±1.
        *sample = to_i16(gain * syllables * edges * voiced / 1.9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(frames: &[OpusFrame]) -> Vec<Vec<i16>> {
        let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap();
        frames
            .iter()
            .map(|f| {
                let mut pcm = vec![0i16; FRAME_SAMPLES * 6];
                let n = decoder.decode(&f.payload, &mut pcm, false).unwrap();
                pcm.truncate(n);
                pcm
            })
            .collect()
    }

    #[test]
    fn level_follows_rms() {
        let cases: [(&[i16], u8); 5] = [
            (&[], 127),
            (&[0; 960], 127),
            (&[32767, -32767], 0),
            // RMS 3277 is -20 dBov.
            (&[3277, -3277, 3277, -3277], 20),
            // One LSB of noise is -90 dBov.
            (&[1, -1], 90),
        ];
        for (pcm, expected) in cases {
            assert_eq!(level_dbov(pcm), expected, "{pcm:?}");
        }
    }

    #[test]
    fn goertzel_finds_the_tone_and_only_it() {
        let sine = |hz: f32, amplitude: f32| -> Vec<i16> {
            (0..4800)
                .map(|n| to_i16(amplitude * (TAU * hz * n as f32 / 48_000.0).sin()))
                .collect()
        };
        let cases = [
            // (tone, amplitude, probe, expected energy)
            (440.0, 0.5, 440.0, 0.25),
            (440.0, 1.0, 440.0, 1.0),
            (440.0, 0.5, 1000.0, 0.0),
            (1000.0, 0.1, 1000.0, 0.01),
        ];
        for (hz, amplitude, probe, expected) in cases {
            let energy = tone_energy(&sine(hz, amplitude), probe, 48_000);
            assert!(
                (energy - expected).abs() < 0.01,
                "{hz} Hz × {amplitude} at {probe} Hz: {energy}"
            );
        }
        assert_eq!(tone_energy(&[], 440.0, 48_000), 0.0);
    }

    #[test]
    fn talk_loops_alternate_spurts_and_silence_with_matching_levels() {
        for pattern in TalkPattern::ALL {
            let frames = talk_loop(pattern).unwrap();
            assert_eq!(frames.len(), TALK_LOOP_FRAMES);
            let talking = frames.iter().filter(|f| f.voice).count();
            let share = talking as f32 / frames.len() as f32;
            let (lo, hi) = match pattern {
                TalkPattern::Conversational => (0.3, 0.85),
                TalkPattern::Monologue => (0.8, 0.99),
                TalkPattern::Occasional => (0.02, 0.3),
            };
            assert!(share > lo && share < hi, "{pattern:?}: {share}");
            assert!(!frames[0].voice && !frames[frames.len() - 1].voice);
            // Every spurt boundary is a voice change; there is more than one spurt.
            let changes = frames
                .windows(2)
                .filter(|w| w[0].voice != w[1].voice)
                .count();
            assert!(changes >= 2, "{pattern:?}: {changes} changes");
            let mut quiet_for = 0;
            for (i, (frame, pcm)) in frames.iter().zip(decode_all(&frames)).enumerate() {
                quiet_for = if frame.voice { 0 } else { quiet_for + 1 };
                // Inside a spurt (not its ramps) the level is that of speech.
                let inside = frame.voice && frames[i - 1].voice && frames[i + 1].voice;
                if inside {
                    assert!(frame.level_dbov < 60, "talk at {}", frame.level_dbov);
                    // What a decoder hears is within a few dB of the label.
                    let heard = level_dbov(&pcm);
                    if frame.level_dbov < 40 {
                        assert!(
                            heard.abs_diff(frame.level_dbov) <= 6,
                            "{pattern:?}: labelled {} heard {heard}",
                            frame.level_dbov
                        );
                    }
                } else if !frame.voice {
                    assert_eq!(frame.level_dbov, SILENT_DBOV);
                    // The codec's delay carries a spurt's tail into the next frame.
                    if quiet_for > 1 {
                        assert!(level_dbov(&pcm) > 60, "silence decodes to sound");
                    }
                }
            }
        }
    }

    #[test]
    fn loops_are_encoded_once_and_shared() {
        let a = talk_loop(TalkPattern::Conversational).unwrap();
        let b = talk_loop(TalkPattern::Conversational).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let t = tone_loop(440).unwrap();
        assert!(Arc::ptr_eq(&t, &tone_loop(440).unwrap()));
        assert!(!Arc::ptr_eq(&t, &tone_loop(880).unwrap()));
    }

    #[test]
    fn a_tone_loop_decodes_to_its_tone() {
        let frames = tone_loop(600).unwrap();
        assert!(
            frames
                .iter()
                .all(|f| f.voice && f.level_dbov.abs_diff(15) <= 1)
        );
        let pcm: Vec<i16> = decode_all(&frames).concat();
        // Skip the decoder's start-up; the tone is at -12 dB amplitude (0.25² ≈ 0.06).
        let settled = &pcm[pcm.len() / 2..];
        assert!(tone_energy(settled, 600.0, SAMPLE_RATE) > 0.04);
        assert!(tone_energy(settled, 1300.0, SAMPLE_RATE) < 0.001);
    }

    #[test]
    fn levels_from_set_audio_level() {
        assert_eq!(AudioContent::from_level(127), AudioContent::Silence);
        assert_eq!(AudioContent::from_level(200), AudioContent::Silence);
        assert_eq!(AudioContent::from_level(30), AudioContent::Labelled(30));
    }
}
