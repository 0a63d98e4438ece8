//! One source's loudness tracking: the [`Track`] of a source (muted, last seen, and
//! its two smoothed loudnesses, the fast-attack/slow-release *gate* and the symmetric
//! *rank* average) and the per-packet smoothing weight [`alpha`]. It knows nothing of
//! other sources or of the selection; the detector owns one track per source.

use std::time::{Duration, Instant};

/// Levels are assumed to describe 20 ms of audio each (one Opus packet).
pub(super) const PACKET_DURATION: Duration = Duration::from_millis(20);

/// Weights of one packet in the gate and rank averages (see [`alpha`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Smoothing {
    pub(super) attack: f32,
    pub(super) release: f32,
    pub(super) rank: f32,
}

impl Smoothing {
    pub(super) fn new(attack: Duration, release: Duration, rank_window: Duration) -> Self {
        Self {
            attack: alpha(attack),
            release: alpha(release),
            rank: alpha(rank_window),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Track {
    muted: bool,
    last_seen: Option<Instant>,
    /// Loudness above silence in dB (0..=127), fast attack, slow release.
    gate: f32,
    /// Loudness above silence in dB (0..=127), symmetric average.
    pub(super) rank: f32,
}

/// Weight of one packet in an exponential average with time constant `tau`.
fn alpha(tau: Duration) -> f32 {
    if tau.is_zero() {
        return 1.0;
    }
    let ratio = PACKET_DURATION.as_secs_f32() / tau.as_secs_f32();
    1.0 - (-ratio).exp()
}

impl Track {
    /// A silent, unmuted source that sent nothing yet.
    pub(super) fn new() -> Self {
        Self {
            muted: false,
            last_seen: None,
            gate: 0.0,
            rank: 0.0,
        }
    }

    pub(super) fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// One packet arrived at `now`, with its level if it carried one (see
    /// [`super::SpeakerDetector::observe`]).
    pub(super) fn observe(
        &mut self,
        level: Option<u8>,
        now: Instant,
        stale_after: Duration,
        smoothing: Smoothing,
    ) {
        // After a long gap, the old loudness says nothing about the present.
        if self
            .last_seen
            .is_some_and(|seen| now.saturating_duration_since(seen) > stale_after)
        {
            self.gate = 0.0;
            self.rank = 0.0;
        }
        self.last_seen = Some(self.last_seen.map_or(now, |seen| seen.max(now)));
        if let Some(level) = level {
            let loud = 127.0 - f32::from(level.min(127));
            let a = if loud > self.gate {
                smoothing.attack
            } else {
                smoothing.release
            };
            self.gate += (loud - self.gate) * a;
            self.rank += (loud - self.rank) * smoothing.rank;
        }
    }

    /// Whether the source is talking at `now`: not muted, not stale, gate above
    /// `threshold`.
    pub(super) fn is_talking(&self, now: Instant, stale_after: Duration, threshold: f32) -> bool {
        !self.muted
            && self
                .last_seen
                .is_some_and(|seen| now.saturating_duration_since(seen) <= stale_after)
            && self.gate > threshold
    }
}
