//! The mixer: K talkers decoded, one common mix and K mix-minus-self encoded per 20 ms.
//!
//! [`Mixer`] is the coordinator: it owns the sources (through the speaker detector),
//! the clock and the per-tick mixing. What one talker owns is in `talker`, the Opus
//! format and encode helpers in `codec`, what a tick produces in `frame`, and the
//! configuration, errors and counters in `config`.

use std::time::{Duration, Instant};

use opus::Encoder;

mod codec;
mod config;
mod frame;
mod talker;

pub use codec::{FRAME_SAMPLES, SAMPLE_RATE};
pub use config::{DropReason, MixerConfig, MixerError, MixerStats, Pushed};
pub use frame::MixedFrame;

use crate::jitter::Insert;
use crate::speaker::{ActiveSpeaker, SpeakerDetector};
use crate::{SourceId, SourceKind, audio_level};
use codec::{MAX_OPUS_PACKET, MAX_PACKET_SAMPLES, clamp_i16, encode, new_encoder};
use talker::Talker;

const FRAME_DURATION: Duration = Duration::from_millis(20);
/// A tick later than this many frames skips ahead instead of catching up in a burst.
const MAX_CATCH_UP_FRAMES: u64 = 3;

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
    /// The common mix as samples, for listeners that take samples.
    common_pcm: Vec<i16>,
    /// Sources that are not Opus both ways.
    kinds: Vec<(SourceId, SourceKind)>,
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
            common_pcm: vec![0; FRAME_SAMPLES],
            kinds: Vec::new(),
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
    /// A source that is not Opus both ways (see [`SourceKind`]).
    pub fn add_source_as(&mut self, id: SourceId, kind: SourceKind) {
        self.kinds.retain(|(k, _)| *k != id);
        if kind != SourceKind::default() {
            self.kinds.push((id, kind));
        }
        self.detector.add(id);
    }

    fn kind_of(&self, id: SourceId) -> SourceKind {
        self.kinds
            .iter()
            .find(|(k, _)| *k == id)
            .map_or_else(SourceKind::default, |(_, kind)| *kind)
    }

    /// 20 ms of a [`SourceKind::pcm_in`] source (960 samples at 48 kHz), numbered by
    /// `seq`; its level is measured here.
    pub fn push_pcm(&mut self, id: SourceId, seq: u64, pcm: &[i16], now: Instant) -> Pushed {
        if !self.kind_of(id).pcm_in {
            self.stats.unknown_source += 1;
            return Pushed::Dropped(DropReason::UnknownSource);
        }
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.push(id, seq, Some(audio_level(pcm)), &bytes, now)
    }

    pub fn remove_source(&mut self, id: SourceId) {
        self.kinds.retain(|(k, _)| *k != id);
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
        self.common_pcm.copy_from_slice(&self.mix);
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
            if t.pcm_out {
                // Its endpoint resamples and encodes it (G.711): no Opus here.
                t.minus.clear();
                t.minus.extend_from_slice(&self.mix);
                t.payload.clear();
            } else {
                encode(&mut t.encoder, &self.mix, &mut t.payload, &mut self.stats);
            }
        }

        Some(MixedFrame {
            seq,
            timestamp,
            level,
            speakers: self.speakers.as_deref(),
            common: &self.common_payload,
            common_pcm: &self.common_pcm,
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
                let kind = self.kind_of(s.id);
                match Talker::new(s.id, kind, &self.config) {
                    Ok(t) => self.talkers.push(t),
                    Err(_) => self.stats.codec_create_errors += 1,
                }
            }
        }
        self.mixed.clear();
        self.mixed.extend(self.talkers.iter().map(|t| t.id));
    }
}

// The room core, with its mixer, moves into its driver's task.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Mixer>();
};

#[cfg(test)]
mod tests;
