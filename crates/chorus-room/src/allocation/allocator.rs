//! One subscriber's allocation over time: where a new video starts, how fast the
//! allocation climbs, and when it comes down.
//!
//! The estimate of a sender that sends less than it may is capped at 1.5 × what got
//! through: it shows room only for a little more than what is sent. Each round that is
//! not held, the allocation rises at once by as much as fits in the estimate less a
//! margin, several videos at once by priority (about a third more each round). When
//! the next step up does not fit, the allocator does not switch: it asks for a
//! bandwidth probe ([`Decision::probe`]: padding at the rate the videos would take
//! after the step, with the margin) and takes the step only once a probe cluster got
//! through at the step's rate (what the estimate may rise to), within [`PROBE_WAIT`]
//! (see [`probe_step`]). None that does (or congestion meanwhile) holds the next one
//! back, [`FAILED_PROBE_HOLD`] doubled with each failure in a row up to
//! [`MAX_PROBE_HOLD`]; none of it is a visible switch. A raise the link cannot take all
//! the same shows as congestion and is undone by the next round (back to what the link
//! took before), which then holds [`FAILED_RAISE_HOLD`] and makes the next steps one at
//! a time, each behind a probe.

use std::time::{Duration, Instant};

use chorus_core::bwe::Bitrate;

use super::{Allocation, VideoDemand, allocate, allocate_from, by_priority, cost, step_up};

mod probe_step;

pub use probe_step::{FAILED_PROBE_HOLD, MAX_PROBE_HOLD, PROBE_WAIT, StepProbeCounts};
use probe_step::{StepProbing, Verdict};

/// Raising needs this much more than the higher layers cost (in percent over 100).
pub const RAISE_MARGIN_PERCENT: u64 = 15;
/// After a lowering, nothing is raised for this long.
pub const RAISE_HOLD: Duration = Duration::from_secs(3);
/// After a lowering that undid a raise (within [`PROBE_HOLD`] and a round of it: the
/// link could not take it), this long instead: on a link that is full, a raise it
/// cannot take is a switch up and one down (two keyframes), so they are spaced out.
pub const FAILED_RAISE_HOLD: Duration = Duration::from_secs(6);
/// A raise that no congestion undid for this long (and a round) held: time enough for
/// the feedback of what it sent to show a growing queue or loss.
pub const PROBE_HOLD: Duration = Duration::from_secs(1);
/// A growing queue seen in this many rounds in a row (a second or more, without loss)
/// before videos are paused for it; until then only layers are lowered. One overuse
/// (a delay spike) can span two rounds: the estimator lowers once per round trip.
pub const PAUSE_AFTER_ROUNDS: u32 = 3;

/// What the subscriber's estimator says, as the allocator needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    pub estimate: Bitrate,
    /// Loss the loss controller acts on (over `LOW_LOSS`).
    pub lossy: bool,
    /// The delay side sees the queue growing now.
    pub overuse: bool,
    /// How many times the delay side lowered the estimate for overuse so far (one
    /// between two rounds is congestion even if the verdict is over by now).
    pub overuses: u64,
    /// How many bandwidth probe clusters got through so far (one after a step asked
    /// for a probe is that step's probe) …
    pub probes_delivered: u64,
    /// … and what the last one got through.
    pub probe_rate: Option<Bitrate>,
}

/// What one round decided, as values for the room to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Per video (in the order given), what it gets now.
    pub allocations: Vec<Allocation>,
    /// The next step up waits for a probe: send one at this rate (what the videos
    /// would take after the step, with the margin).
    pub probe: Option<Bitrate>,
}

impl Decision {
    fn now(allocations: Vec<Allocation>) -> Self {
        Self {
            allocations,
            probe: None,
        }
    }
}

/// One subscriber's allocation over time, with hysteresis so that a noisy estimate
/// does not make layers flap (each switch up costs a keyframe):
/// - a video new to the subscriber starts at its lowest layer, not at its max: a
///   subscriber joining a room of many videos would otherwise be sent every top layer
///   and then have most of them paused (each resume a keyframe request); the lowest
///   layers are what a tile view asks for anyway, and sending them measures the link
///   (the estimator takes what got through as a floor) so the climb starts from there;
/// - lower only when the estimate is below what the current allocation costs and the
///   link shows congestion (loss, or a growing queue): the estimate of a sender that
///   just sends more is capped at 1.5 × what got through, which says nothing about the
///   link; then to what [`allocate`] gives, never above the current. A growing queue
///   without loss lowers layers at once but pauses videos only when seen
///   [`PAUSE_AFTER_ROUNDS`] rounds in a row (a delay spike is not a reason to pause);
///   loss pauses at once;
/// - raise only when nothing was lowered for [`RAISE_HOLD`]: at once by what fits in
///   the estimate less [`RAISE_MARGIN_PERCENT`], and a step that does not fit only
///   after a probe showed the link carries it (see the module's text);
/// - a raise the link could not take (congestion within [`PROBE_HOLD`] and a round of
///   it) is undone, back to what the link took before, and the next raise waits
///   [`FAILED_RAISE_HOLD`] and is one step behind a probe, until one holds.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    /// Nothing is raised before this.
    hold_until: Option<Instant>,
    /// The last raise whose outcome is not known yet, and what the allocation was
    /// before it.
    raise: Option<(Instant, Vec<Allocation>)>,
    /// The last raise was undone: until one holds, a raise is one step, behind a probe
    /// even if it fits in the estimate (which was shown wrong).
    cautious: bool,
    /// Rounds in a row that saw congestion.
    congested_rounds: u32,
    /// `LinkState::overuses` at the last round.
    overuses_seen: u64,
    /// The step up waiting for a probe, and what came of the last ones.
    probing: StepProbing,
}

impl Allocator {
    /// The new allocation of `videos` given the `current` one (same order; `None`: a
    /// video new to this subscriber).
    pub fn decide(
        &mut self,
        link: LinkState,
        videos: &[VideoDemand],
        current: &[Option<Allocation>],
        now: Instant,
    ) -> Decision {
        let overused = link.overuse || link.overuses > self.overuses_seen;
        self.overuses_seen = link.overuses;
        let congested = link.lossy || overused;
        if congested {
            self.probing.congested(now);
        }
        self.congested_rounds = if congested {
            self.congested_rounds.saturating_add(1)
        } else {
            0
        };
        // A raise that no congestion undid for a probe's hold and a round held.
        if self
            .raise
            .as_ref()
            .is_some_and(|(t, _)| now > *t + PROBE_HOLD + super::ALLOCATION_INTERVAL)
        {
            self.raise = None;
            self.cautious = false;
        }
        let estimate = link.estimate.bps();
        // What it has now, within what it asks for now; a new video at its start.
        let held: Vec<Allocation> = videos
            .iter()
            .zip(current)
            .map(|(v, c)| match c {
                Some(c) => (*c).min(Allocation::ceiling(v)),
                None => Allocation::start(v),
            })
            .collect();
        let need = cost(&held, videos);
        if estimate < need && congested {
            let pausing = link.lossy || self.congested_rounds >= PAUSE_AFTER_ROUNDS;
            let Some((_, before)) = self.raise.take() else {
                self.hold(now, RAISE_HOLD);
                return Decision::now(lower(&held, link.estimate, videos, pausing));
            };
            // The link could not take the last raise: back to what it had before (it
            // took that), and the next tries one step at a time, spaced out.
            self.hold(now, FAILED_RAISE_HOLD);
            self.cautious = true;
            if before.len() == held.len() {
                let undone: Vec<Allocation> =
                    held.iter().zip(&before).map(|(&h, &b)| h.min(b)).collect();
                if undone != held {
                    return Decision::now(undone);
                }
            }
            return Decision::now(lower(&held, link.estimate, videos, pausing));
        }
        if self.hold_until.is_some_and(|t| now < t) {
            return Decision::now(held);
        }
        // The last raise held for a probe's hold, and nothing shows congestion now.
        if !congested
            && self
                .raise
                .as_ref()
                .is_some_and(|(t, _)| now >= *t + PROBE_HOLD)
        {
            self.raise = None;
            self.cautious = false;
        }
        let spendable = estimate * 100 / (100 + RAISE_MARGIN_PERCENT);
        let raised = allocate_from(&held, Bitrate(spendable), videos);
        if raised != held && !self.cautious {
            self.probing.raised(link.probes_delivered);
            self.raise = Some((now, held));
            return Decision::now(raised);
        }
        if congested {
            return Decision::now(held);
        }
        // The next step does not fit with the margin (or the last raise failed, and
        // steps go one at a time): it waits for a probe.
        let Some((i, next)) =
            by_priority(videos).find_map(|i| Some((i, step_up(&videos[i], held[i])?)))
        else {
            self.probing.none_wanted();
            return Decision::now(held);
        };
        let mut step = held.clone();
        step[i] = next;
        let step_need = cost(&step, videos);
        // After a raise that fitted in the estimate and was undone, a step waits for a
        // probe even if it fits: the estimate was shown to be above what the link takes.
        match self.probing.on_round(&step, step_need, link, now) {
            Verdict::Step => {
                if self.cautious {
                    self.hold(now, PROBE_HOLD);
                }
                self.raise = Some((now, held));
                Decision::now(step)
            }
            Verdict::Probe(rate) => Decision {
                allocations: held,
                probe: Some(rate),
            },
            Verdict::Wait => Decision::now(held),
        }
    }

    /// What came of the probes asked for steps up so far.
    pub fn step_probes(&self) -> StepProbeCounts {
        self.probing.counts()
    }

    /// Nothing is raised for `hold` from `now` (or longer, if held so already).
    fn hold(&mut self, now: Instant, hold: Duration) {
        self.hold_until = self.hold_until.max(Some(now + hold));
    }
}

/// `held` lowered to what `estimate` buys ([`allocate`]), never above what it has.
/// Without `pausing`, a video that has a layer keeps at least its lowest one; with it,
/// the most important shown video still does, so that the subscriber sees something
/// and its feedback still measures the link (an estimate without packets never
/// recovers).
fn lower(
    held: &[Allocation],
    estimate: Bitrate,
    videos: &[VideoDemand],
    pausing: bool,
) -> Vec<Allocation> {
    let fit = allocate(estimate, videos);
    let mut lowered: Vec<Allocation> = held.iter().zip(fit).map(|(&h, f)| h.min(f)).collect();
    let keeps_lowest = |i: usize| -> Option<Allocation> {
        if held[i] == Allocation::Paused {
            return None;
        }
        Some(step_up(&videos[i], Allocation::Paused).map_or(held[i], |l| l.min(held[i])))
    };
    if !pausing {
        for (i, l) in lowered.iter_mut().enumerate() {
            if *l == Allocation::Paused
                && let Some(lowest) = keeps_lowest(i)
            {
                *l = lowest;
            }
        }
    } else if lowered.iter().all(|&a| a == Allocation::Paused)
        && let Some((i, lowest)) = by_priority(videos).find_map(|i| Some((i, keeps_lowest(i)?)))
    {
        lowered[i] = lowest;
    }
    lowered
}

#[cfg(test)]
mod tests;
