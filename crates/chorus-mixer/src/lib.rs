//! The audio mixer of Chorus: every listener of a room receives ONE mixed Opus stream.
//!
//! The cost does not grow with the room. The [`SpeakerDetector`] picks the top K talkers
//! (default 3) from the RFC 6464 audio levels that clients put in their RTP header
//! extensions, so nobody is decoded to be ranked. The [`Mixer`] decodes only those K,
//! sums them, and encodes K+1 streams per 20 ms frame: the common mix that every other
//! listener hears, and one mix-minus-self per mixed talker so no one hears themselves.
//!
//! Sans-I/O: no sockets, no tasks, no clock. The room core feeds packets with
//! [`Mixer::push`], calls [`Mixer::tick`] when [`Mixer::poll_timeout`] says so, and sends
//! [`MixedFrame::payload_for`] each listener.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use chorus_mixer::{Mixer, MixerConfig, SourceId};
//!
//! let mut mixer = Mixer::new(MixerConfig::default())?;
//! mixer.add_source(SourceId(1));
//! mixer.add_source(SourceId(2));
//! let now = Instant::now();
//! // An RTP packet arrived: extended seq, its RFC 6464 level, the Opus payload.
//! mixer.push(SourceId(1), 7, Some(30), &[0xf8, 0xff, 0xfe], now);
//! // The room's timer fired.
//! assert_eq!(mixer.poll_timeout(), Some(now));
//! if let Some(frame) = mixer.tick(now) {
//!     for listener in [SourceId(1), SourceId(2), SourceId(99)] {
//!         let payload: &[u8] = frame.payload_for(listener);
//!         // ... send `payload` as RTP (frame.seq, frame.timestamp, frame.level)
//!         assert!(!payload.is_empty());
//!     }
//! }
//! assert_eq!(mixer.poll_timeout(), Some(now + Duration::from_millis(20)));
//! # Ok::<(), chorus_mixer::MixerError>(())
//! ```
//!
//! Opus comes from the `opus` crate 0.3 (bindings to the system libopus through
//! `audiopus_sys`, found with `pkg-config`; Debian `libopus-dev`). It builds and links
//! as is, its `Encoder`/`Decoder` are `Send`, and its error type carries the libopus
//! code, so `audiopus` was not needed.

mod jitter;
pub mod mixer;
pub mod speaker;

/// The Opus bindings the mixer uses, for callers that encode or decode the same way.
pub use opus;

pub use mixer::{
    DropReason, FRAME_SAMPLES, MixedFrame, Mixer, MixerConfig, MixerError, MixerStats, Pushed,
    SAMPLE_RATE,
};
pub use speaker::{ActiveSpeaker, SpeakerConfig, SpeakerDetector};

/// One audio source of a room (a participant's microphone track), chosen by the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u64);

/// How a source's audio reaches the mixer and how it wants its mix-minus-self.
/// WebRTC talkers are Opus both ways (the default); a phone on plain RTP arrives as
/// 48 kHz samples (decoded and resampled by its endpoint) and, in G.711, takes its
/// mix as samples to resample and encode itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceKind {
    /// Pushed with [`Mixer::push_pcm`], 960 samples a frame; never concealed.
    pub pcm_in: bool,
    /// Its mix-minus-self is kept as samples ([`MixedFrame::pcm_for`]), not encoded.
    pub pcm_out: bool,
}

/// RFC 6464 level of `samples`: their RMS in -dBov (0 = full scale, 127 = silence),
/// the same scale clients use for the levels they send.
pub fn audio_level(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let sum_sq: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let mean_sq = sum_sq / samples.len() as f64;
    if mean_sq <= 0.0 {
        return 127;
    }
    let full_scale = 32768.0_f64 * 32768.0;
    let dbov = 10.0 * (mean_sq / full_scale).log10();
    // Round to the nearest dB, like the levels browsers send.
    (-dbov).round().clamp(0.0, 127.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_level_of_known_signals() {
        let sine = |amp: f64| -> Vec<i16> {
            (0..960)
                .map(|i| {
                    (amp * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin()) as i16
                })
                .collect()
        };
        // (name, samples, expected level in -dBov)
        let cases: [(&str, Vec<i16>, u8); 5] = [
            ("empty", vec![], 127),
            ("digital silence", vec![0; 960], 127),
            // A full-scale sine has an RMS 3 dB below full scale.
            ("full-scale sine", sine(32767.0), 3),
            ("-20 dB sine", sine(3277.0), 23),
            ("full-scale square", vec![i16::MIN; 960], 0),
        ];
        for (name, samples, want) in cases {
            assert_eq!(audio_level(&samples), want, "{name}");
        }
    }
}
