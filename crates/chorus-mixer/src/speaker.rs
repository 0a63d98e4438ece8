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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::SourceId;

/// Levels are assumed to describe 20 ms of audio each (one Opus packet).
const PACKET_DURATION: Duration = Duration::from_millis(20);

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

#[derive(Debug, Clone)]
struct Track {
    muted: bool,
    last_seen: Option<Instant>,
    /// Loudness above silence in dB (0..=127), fast attack, slow release.
    gate: f32,
    /// Loudness above silence in dB (0..=127), symmetric average.
    rank: f32,
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
    alpha_attack: f32,
    alpha_release: f32,
    alpha_rank: f32,
    /// Gate loudness above which a source is talking.
    talk_threshold: f32,
    tracks: HashMap<SourceId, Track>,
    selected: Vec<SourceId>,
    reported: Vec<SourceId>,
    challenge: Option<Challenge>,
    /// Reused between polls so a poll does not allocate.
    candidates: Vec<(SourceId, f32)>,
}

/// Weight of one packet in an exponential average with time constant `tau`.
fn alpha(tau: Duration) -> f32 {
    if tau.is_zero() {
        return 1.0;
    }
    let ratio = PACKET_DURATION.as_secs_f32() / tau.as_secs_f32();
    1.0 - (-ratio).exp()
}

impl SpeakerDetector {
    pub fn new(config: SpeakerConfig) -> Self {
        Self {
            alpha_attack: alpha(config.attack),
            alpha_release: alpha(config.release),
            alpha_rank: alpha(config.rank_window),
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
        self.tracks.entry(id).or_insert(Track {
            muted: false,
            last_seen: None,
            gate: 0.0,
            rank: 0.0,
        });
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
            t.muted = muted;
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
        // After a long gap, the old loudness says nothing about the present.
        if t.last_seen
            .is_some_and(|seen| now.saturating_duration_since(seen) > self.config.stale_after)
        {
            t.gate = 0.0;
            t.rank = 0.0;
        }
        t.last_seen = Some(t.last_seen.map_or(now, |seen| seen.max(now)));
        if let Some(level) = level {
            let loud = 127.0 - f32::from(level.min(127));
            let a = if loud > t.gate {
                self.alpha_attack
            } else {
                self.alpha_release
            };
            t.gate += (loud - t.gate) * a;
            t.rank += (loud - t.rank) * self.alpha_rank;
        }
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
        !t.muted
            && t.last_seen
                .is_some_and(|seen| now.saturating_duration_since(seen) <= self.config.stale_after)
            && t.gate > self.talk_threshold
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
mod tests {
    use super::*;

    /// A stretch of time during which each listed source sends one packet per 20 ms
    /// with the given level (`None`: sends nothing); unlisted sources send nothing.
    struct Phase {
        ms: u64,
        levels: &'static [(u64, Option<u8>)],
        muted: &'static [u64],
    }

    const fn phase(ms: u64, levels: &'static [(u64, Option<u8>)]) -> Phase {
        Phase {
            ms,
            levels,
            muted: &[],
        }
    }

    struct Outcome {
        /// The final selection, in the order the speakers became active.
        active: Vec<u64>,
        /// How many changes were reported.
        changes: usize,
        /// Every reported selection, in order.
        reports: Vec<Vec<u64>>,
        /// Every source selected at some point.
        ever: std::collections::BTreeSet<u64>,
    }

    /// Runs the phases on a simulated clock, polling every 20 ms.
    fn run(phases: &[Phase]) -> Outcome {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        for id in 1..=6 {
            d.add(SourceId(id));
        }
        let mut now = t0;
        let mut changes = 0;
        let mut reports: Vec<Vec<u64>> = Vec::new();
        let mut ever = std::collections::BTreeSet::new();
        for p in phases {
            for id in 1..=6 {
                d.set_muted(SourceId(id), p.muted.contains(&id));
            }
            for _ in 0..p.ms / 20 {
                for &(id, level) in p.levels {
                    if let Some(level) = level {
                        d.observe(SourceId(id), Some(level), now);
                    }
                }
                if let Some(set) = d.poll_change(now) {
                    changes += 1;
                    ever.extend(set.iter().map(|s| s.id.0));
                    let ids: Vec<u64> = set.iter().map(|s| s.id.0).collect();
                    // A report is a change of the set, never the same set reordered.
                    if let Some(last) = reports.last() {
                        let mut a = last.clone();
                        let mut b = ids.clone();
                        a.sort_unstable();
                        b.sort_unstable();
                        assert_ne!(a, b, "the same set re-reported: {last:?} then {ids:?}");
                    }
                    reports.push(ids);
                }
                now += PACKET_DURATION;
            }
        }
        Outcome {
            active: d.active().iter().map(|s| s.0).collect(),
            changes,
            reports,
            ever,
        }
    }

    #[test]
    fn selection_scenarios() {
        // (name, phases, expected final selection in order, never selected)
        type Case = (&'static str, Vec<Phase>, Vec<u64>, &'static [u64]);
        let cases: Vec<Case> = vec![
            (
                "the loudest three of five; starting together, loudest first",
                vec![phase(
                    1000,
                    &[
                        (1, Some(50)),
                        (2, Some(20)),
                        (3, Some(40)),
                        (4, Some(30)),
                        (5, Some(60)),
                    ],
                )],
                vec![2, 4, 3],
                &[1, 5],
            ),
            (
                "the loudest three of six, whatever their ids; loudest first",
                vec![phase(
                    1000,
                    &[
                        (1, Some(40)),
                        (2, Some(35)),
                        (3, Some(30)),
                        (4, Some(25)),
                        (5, Some(20)),
                        (6, Some(15)),
                    ],
                )],
                vec![6, 5, 4],
                &[1, 2, 3],
            ),
            (
                "a briefly louder challenger does not displace",
                vec![
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                    ),
                    phase(
                        160,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(5))],
                    ),
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                    ),
                ],
                vec![1, 2, 3],
                &[4],
            ),
            (
                "a sustained challenger displaces the quietest",
                vec![
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                    ),
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(5))],
                    ),
                ],
                // It joins at the end, however loud.
                vec![1, 2, 4],
                &[],
            ),
            (
                "a challenger less than the margin louder never displaces",
                vec![
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                    ),
                    phase(
                        2000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(46))],
                    ),
                ],
                vec![1, 2, 3],
                &[4],
            ),
            (
                "silence drops a talker out and frees its slot",
                vec![
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(30)), (4, Some(60))],
                    ),
                    phase(
                        1000,
                        &[(1, Some(127)), (2, Some(30)), (3, Some(30)), (4, Some(60))],
                    ),
                ],
                vec![2, 3, 4],
                &[],
            ),
            (
                "a short pause between words keeps the slot",
                vec![
                    phase(1000, &[(1, Some(30)), (2, Some(40))]),
                    phase(200, &[(1, Some(127)), (2, Some(40))]),
                ],
                // The slot and the place stay.
                vec![1, 2],
                &[],
            ),
            (
                "no packets for a while drops a talker out",
                vec![
                    phase(1000, &[(1, Some(30)), (2, Some(40))]),
                    phase(600, &[(1, None), (2, Some(40))]),
                ],
                vec![2],
                &[],
            ),
            (
                "levels at the silence threshold are not talking",
                vec![phase(
                    1000,
                    &[(1, Some(100)), (2, Some(110)), (3, Some(99))],
                )],
                vec![3],
                &[1, 2],
            ),
            (
                "muted is never selected, however loud",
                vec![Phase {
                    ms: 1000,
                    levels: &[(1, Some(0)), (2, Some(30)), (3, Some(30)), (4, Some(30))],
                    muted: &[1],
                }],
                vec![2, 3, 4],
                &[1],
            ),
            (
                "muting a selected talker drops it out",
                vec![
                    phase(1000, &[(1, Some(10)), (2, Some(30))]),
                    Phase {
                        ms: 40,
                        levels: &[(1, Some(10)), (2, Some(30))],
                        muted: &[1],
                    },
                ],
                vec![2],
                &[],
            ),
        ];
        for (name, phases, want, never) in cases {
            let out = run(&phases);
            assert_eq!(out.active, want, "{name}");
            for id in never {
                assert!(!out.ever.contains(id), "{name}: {id} was selected");
            }
        }
    }

    /// Phases in which sources 1 and 2 talk at the same average level, taking turns
    /// to be 30 dB louder every 200 ms (syllables): the smoothed loudness of each
    /// overtakes the other's by more than the switch margin five times a second.
    fn alternating_syllables(seconds: u64) -> Vec<Phase> {
        let mut phases = Vec::new();
        for _ in 0..seconds * 5 / 2 {
            phases.push(phase(200, &[(1, Some(15)), (2, Some(45))]));
            phases.push(phase(200, &[(1, Some(45)), (2, Some(15))]));
        }
        phases
    }

    #[test]
    fn reported_only_when_the_set_changes_in_the_order_of_becoming_active() {
        // (name, phases, every report in turn)
        type Case = (&'static str, Vec<Phase>, Vec<Vec<u64>>);
        let cases: Vec<Case> = vec![
            (
                "near-equal talkers alternating syllables: once, the first to talk first",
                [phase(200, &[(1, Some(30))])]
                    .into_iter()
                    .chain(alternating_syllables(6))
                    .collect(),
                vec![vec![1], vec![1, 2]],
            ),
            (
                "near-equal talkers starting together: once, the louder at the start first",
                alternating_syllables(6),
                vec![vec![1, 2]],
            ),
            (
                "a later talker who is much louder keeps its place",
                vec![
                    phase(400, &[(1, Some(40))]),
                    phase(3000, &[(1, Some(40)), (2, Some(10))]),
                ],
                vec![vec![1], vec![1, 2]],
            ),
            (
                "the one who stops leaves, the others keep their order, a returner goes last",
                vec![
                    phase(300, &[(1, Some(30))]),
                    phase(300, &[(1, Some(30)), (2, Some(30))]),
                    phase(300, &[(1, Some(30)), (2, Some(30)), (3, Some(30))]),
                    phase(1000, &[(1, Some(30)), (2, Some(127)), (3, Some(30))]),
                    phase(600, &[(1, Some(30)), (2, Some(30)), (3, Some(30))]),
                ],
                vec![
                    vec![1],
                    vec![1, 2],
                    vec![1, 2, 3],
                    vec![1, 3],
                    vec![1, 3, 2],
                ],
            ),
            (
                "a challenger who displaces the quietest joins at the end",
                vec![
                    phase(
                        1000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(60))],
                    ),
                    phase(
                        2000,
                        &[(1, Some(30)), (2, Some(30)), (3, Some(50)), (4, Some(5))],
                    ),
                ],
                vec![vec![1, 2, 3], vec![1, 2, 4]],
            ),
            (
                "everyone falls silent: one empty report",
                vec![
                    phase(500, &[(1, Some(30)), (2, Some(30))]),
                    phase(1500, &[(1, Some(127)), (2, Some(127))]),
                ],
                vec![vec![1, 2], vec![]],
            ),
        ];
        for (name, phases, want) in cases {
            let out = run(&phases);
            assert_eq!(out.reports, want, "{name}");
            assert_eq!(out.changes, want.len(), "{name}");
        }
    }

    #[test]
    fn order_does_not_flap_between_similar_talkers() {
        // Source 2 wobbles 2 dB around source 1 every 40 ms: one report, no flapping.
        let mut phases = vec![phase(500, &[(1, Some(30)), (2, Some(30))])];
        for _ in 0..25 {
            phases.push(phase(40, &[(1, Some(30)), (2, Some(28))]));
            phases.push(phase(40, &[(1, Some(30)), (2, Some(32))]));
        }
        let out = run(&phases);
        assert_eq!(out.active, vec![1, 2]);
        assert_eq!(out.changes, 1);
    }

    #[test]
    fn changes_are_reported_once_with_loudness() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        d.add(SourceId(7));
        assert_eq!(d.poll_change(t0), None, "nobody talks: no change");
        assert!(!d.observe(SourceId(8), Some(10), t0), "unknown source");
        let mut now = t0;
        let mut reports = Vec::new();
        for _ in 0..150 {
            d.observe(SourceId(7), Some(27), now);
            if let Some(r) = d.poll_change(now) {
                reports.push(r);
            }
            now += PACKET_DURATION;
        }
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].len(), 1);
        assert_eq!(reports[0][0].id, SourceId(7));
        // Rank converges on 127 - 27 = 100 dB above silence.
        let loudness = d.loudness(SourceId(7)).unwrap();
        assert!((loudness - 100.0 / 127.0).abs() < 0.02, "{loudness}");

        d.remove(SourceId(7));
        assert_eq!(d.poll_change(now), Some(vec![]), "removal is a change");
        assert_eq!(d.poll_change(now), None);
    }
}
