//! Active speaker detection from RFC 6464 audio levels, without decoding anything.
//!
//! Each level is turned into a loudness above silence (`127 - level`, in dB) and
//! smoothed twice per source:
//! - a *gate* with fast attack and slow release says whether the source is talking:
//!   a new talker takes a free slot within a packet or two (its first word is not
//!   clipped), and a pause must last about half a second before it drops out;
//! - a *rank* average over a few hundred ms decides who replaces whom when all slots
//!   are taken.
//!
//! Hysteresis keeps the set from flapping: a challenger replaces the quietest selected
//! talker only after being louder by `switch_margin_db` for `switch_hold`.
//!
//! **Order.** The selected talkers are kept in the order they entered the set, the
//! earliest first; talkers who enter at the same poll are ordered loudest first (by
//! rank, ties by id). A newcomer, a challenger who displaced someone, and a talker who
//! comes back after dropping out are all added at the end; one who leaves takes nothing
//! with it (the others keep their order). Loudness never reorders talkers who stay, so
//! the order changes only when the set does, and [`SpeakerDetector::poll_change`]
//! reports exactly the changes of the set: two people talking at about the same level,
//! syllable by syllable louder and quieter, are reported once, not every time one
//! overtakes the other.
//!
//! One source's loudness tracking lives in `track`; this module selects and orders
//! the active speakers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::SourceId;

mod track;

use track::{Smoothing, Track};

/// How speakers are chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerConfig {
    /// How many speakers are selected at most (K).
    pub max_active: usize,
    /// Levels at or above this (-dBov) count as silence.
    pub silence_level: u8,
    /// Time constant of the gate's rise.
    pub attack: Duration,
    /// Time constant of the gate's fall: about how long a pause lasts before a talker
    /// drops out.
    pub release: Duration,
    /// Time constant of the average that ranks talkers.
    pub rank_window: Duration,
    /// A source that sent no packet for this long is silent (DTX, muted, gone).
    pub stale_after: Duration,
    /// How much louder (dB) a challenger must be to displace or overtake someone.
    pub switch_margin_db: f32,
    /// How long a challenger must stay louder by the margin to displace someone.
    pub switch_hold: Duration,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            max_active: 3,
            silence_level: 100,
            attack: Duration::from_millis(40),
            release: Duration::from_millis(400),
            rank_window: Duration::from_millis(300),
            stale_after: Duration::from_millis(500),
            switch_margin_db: 6.0,
            switch_hold: Duration::from_millis(300),
        }
    }
}

/// One entry of the active speaker set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActiveSpeaker {
    pub id: SourceId,
    /// Smoothed loudness, 0 (silence) to 1 (full scale).
    pub loudness: f32,
}

/// A source being considered to replace the quietest selected speaker.
#[derive(Debug, Clone, Copy)]
struct Challenge {
    id: SourceId,
    since: Instant,
}

/// Chooses the top K talkers of a room with hysteresis, in the order they became active
/// (see the module docs).
#[derive(Debug)]
pub struct SpeakerDetector {
    config: SpeakerConfig,
    smoothing: Smoothing,
    /// Gate loudness above which a source is talking.
    talk_threshold: f32,
    tracks: HashMap<SourceId, Track>,
    selected: Vec<SourceId>,
    reported: Vec<SourceId>,
    challenge: Option<Challenge>,
    /// Reused between polls so a poll does not allocate.
    candidates: Vec<(SourceId, f32)>,
}

impl SpeakerDetector {
    pub fn new(config: SpeakerConfig) -> Self {
        Self {
            smoothing: Smoothing::new(config.attack, config.release, config.rank_window),
            talk_threshold: 127.0 - f32::from(config.silence_level.min(127)),
            tracks: HashMap::new(),
            selected: Vec::with_capacity(config.max_active),
            reported: Vec::with_capacity(config.max_active),
            challenge: None,
            candidates: Vec::new(),
            config,
        }
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// How many sources are tracked.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Starts tracking `id` (silent until its first level). Adding twice is harmless.
    pub fn add(&mut self, id: SourceId) {
        self.tracks.entry(id).or_insert_with(Track::new);
    }

    /// Forgets `id`; if it was selected, the next poll reports the change.
    pub fn remove(&mut self, id: SourceId) {
        self.tracks.remove(&id);
        self.selected.retain(|&s| s != id);
        if self.challenge.is_some_and(|c| c.id == id) {
            self.challenge = None;
        }
    }

    /// A muted source is never selected; a selected one leaves at the next poll.
    pub fn set_muted(&mut self, id: SourceId, muted: bool) {
        if let Some(t) = self.tracks.get_mut(&id) {
            t.set_muted(muted);
        }
    }

    /// One packet of `id` arrived at `now`, with its RFC 6464 level if it carried one
    /// (-dBov, 0 loudest, 127 silence; values above 127 are read as 127). A packet
    /// without a level keeps the source alive but does not change its loudness.
    /// Returns false when `id` is not tracked.
    pub fn observe(&mut self, id: SourceId, level: Option<u8>, now: Instant) -> bool {
        let Some(t) = self.tracks.get_mut(&id) else {
            return false;
        };
        t.observe(level, now, self.config.stale_after, self.smoothing);
        true
    }

    /// The selected speakers as of the last poll, in the order they became active
    /// (earliest first).
    pub fn active(&self) -> &[SourceId] {
        &self.selected
    }

    /// Smoothed loudness of `id`, 0 to 1.
    pub fn loudness(&self, id: SourceId) -> Option<f32> {
        self.tracks.get(&id).map(|t| t.rank / 127.0)
    }

    /// Re-evaluates the selection at `now`. Returns the new ordered set (in the order
    /// the speakers became active, each with its loudness now) when the set differs
    /// from the one last returned, so the caller can announce it; `None` when it did
    /// not change. Loudness alone changing is no change.
    pub fn poll_change(&mut self, now: Instant) -> Option<Vec<ActiveSpeaker>> {
        self.update(now);
        if self.selected == self.reported {
            return None;
        }
        self.reported.clone_from(&self.selected);
        Some(
            self.selected
                .iter()
                .map(|&id| ActiveSpeaker {
                    id,
                    loudness: self.loudness(id).unwrap_or(0.0),
                })
                .collect(),
        )
    }

    fn is_talking(&self, t: &Track, now: Instant) -> bool {
        t.is_talking(now, self.config.stale_after, self.talk_threshold)
    }

    fn rank_of(&self, id: SourceId) -> f32 {
        self.tracks.get(&id).map_or(0.0, |t| t.rank)
    }

    fn update(&mut self, now: Instant) {
        // Silent, stale and muted talkers leave at once: their slot is wasted.
        let mut selected = std::mem::take(&mut self.selected);
        selected.retain(|id| self.tracks.get(id).is_some_and(|t| self.is_talking(t, now)));

        // Talkers not selected, loudest first; ties by id so the result is deterministic.
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(
            self.tracks
                .iter()
                .filter(|(id, t)| !selected.contains(id) && self.is_talking(t, now))
                .map(|(&id, t)| (id, t.rank)),
        );
        // Only the loudest `free + 1` matter (the last one may challenge): pick them
        // in O(n), so a poll stays cheap with hundreds of noisy microphones.
        let free = self.config.max_active.saturating_sub(selected.len());
        let louder =
            |a: &(SourceId, f32), b: &(SourceId, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let need = free + 1;
        if candidates.len() > need {
            candidates.select_nth_unstable_by(need - 1, louder);
            candidates.truncate(need);
        }
        candidates.sort_unstable_by(louder);

        // Free slots are taken without a contest, loudest first, behind those already in.
        let taken = free.min(candidates.len());
        selected.extend(candidates.drain(..taken).map(|(id, _)| id));

        // All slots full: the loudest challenger must beat the quietest talker by the
        // margin for the whole hold time. It then leaves and the challenger joins at the
        // end, like any newcomer.
        let margin = self.config.switch_margin_db;
        let mut challenge = None;
        let victim = selected
            .iter()
            .enumerate()
            .map(|(i, &id)| (i, self.rank_of(id)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let contest = match (candidates.first(), victim) {
            (Some(&(challenger, loud)), Some((index, rank))) if loud > rank + margin => {
                Some((challenger, index))
            }
            _ => None,
        };
        if let Some((challenger, victim_index)) = contest {
            let since = match self.challenge {
                Some(c) if c.id == challenger => c.since,
                _ => now,
            };
            if now.saturating_duration_since(since) >= self.config.switch_hold {
                selected.remove(victim_index);
                selected.push(challenger);
            } else {
                challenge = Some(Challenge {
                    id: challenger,
                    since,
                });
            }
        }
        self.challenge = challenge;

        // No reordering by loudness: who stays keeps its place (see the module docs).
        self.selected = selected;
        self.candidates = candidates;
    }
}

#[cfg(test)]
mod tests;
