//! The step up that waits for a probe: asked for when the next step does not fit in
//! the estimate, taken once a probe cluster got through at the rate the step needs
//! (which raises the estimate to it), given up when none has within [`PROBE_WAIT`] or
//! the link shows congestion meanwhile. What it decides is a [`Verdict`]; the
//! allocator acts on it.

use std::time::{Duration, Instant};

use chorus_core::bwe::Bitrate;

use super::super::Allocation;
use super::{LinkState, RAISE_MARGIN_PERCENT};

/// A step waits this long for a probe to show the link carries it: the room sends a
/// cluster at once and another a second later (at most one a second), and each one's
/// feedback is back within a round trip.
pub const PROBE_WAIT: Duration = Duration::from_secs(2);
/// After a failed probe, the next one waits this long, doubled with each failure in a
/// row …
pub const FAILED_PROBE_HOLD: Duration = Duration::from_secs(2);
/// … up to this: a capped link is probed now and then, so that a lifted cap is found.
pub const MAX_PROBE_HOLD: Duration = Duration::from_secs(8);

/// What came of the probes asked for steps up, for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepProbeCounts {
    /// Steps that waited for a probe.
    pub asked: u64,
    /// Steps taken once a probe got through at the rate they need.
    pub succeeded: u64,
    /// Steps held back: no probe got through at that rate in time, or congestion.
    pub failed: u64,
}

/// What the allocator does about the next step this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A probe showed the link carries it: take it.
    Step,
    /// Wait for a probe at this rate (keep asking: the room sends at most one a
    /// second).
    Probe(Bitrate),
    /// Held back after a failed probe.
    Wait,
}

#[derive(Debug, Clone)]
struct Pending {
    /// The allocation the step leads to.
    step: Vec<Allocation>,
    asked: Instant,
    /// `LinkState::probes_delivered` when asked: a later one is this step's probe.
    delivered_at_ask: u64,
}

#[derive(Debug, Clone, Default)]
pub(super) struct StepProbing {
    pending: Option<Pending>,
    /// Failed in a row.
    failures: u32,
    /// No probe is asked before this.
    not_before: Option<Instant>,
    counts: StepProbeCounts,
}

impl StepProbing {
    pub fn counts(&self) -> StepProbeCounts {
        self.counts
    }

    /// The next step leads to `step`, costing `need` in all, on `link`.
    pub fn on_round(
        &mut self,
        step: &[Allocation],
        need: u64,
        link: LinkState,
        now: Instant,
    ) -> Verdict {
        let target = Bitrate(need * (100 + RAISE_MARGIN_PERCENT) / 100);
        match &self.pending {
            // Another step now (the videos or what they ask changed): asked anew.
            Some(p) if p.step != step => self.pending = None,
            Some(p) => {
                let shown = link.probe_rate.is_some_and(|r| r.bps() >= need);
                if link.probes_delivered > p.delivered_at_ask && shown {
                    self.succeeded();
                    return Verdict::Step;
                }
                if now >= p.asked + PROBE_WAIT {
                    self.fail(now);
                    return Verdict::Wait;
                }
                return Verdict::Probe(target);
            }
            None => {}
        }
        if self.not_before.is_some_and(|t| now < t) {
            return Verdict::Wait;
        }
        self.counts.asked += 1;
        self.pending = Some(Pending {
            step: step.to_vec(),
            asked: now,
            delivered_at_ask: link.probes_delivered,
        });
        Verdict::Probe(target)
    }

    /// The allocation rose without waiting (the step came to fit in the estimate): a
    /// step waiting for a probe succeeded if a probe got through since (and raised the
    /// estimate to fit it).
    pub fn raised(&mut self, probes_delivered: u64) {
        match self.pending.take() {
            Some(p) if probes_delivered > p.delivered_at_ask => self.succeeded(),
            _ => self.failures = 0,
        }
    }

    /// The link shows congestion: a step waiting for a probe fails.
    pub fn congested(&mut self, now: Instant) {
        if self.pending.is_some() {
            self.fail(now);
        }
    }

    /// Nothing more to step up to.
    pub fn none_wanted(&mut self) {
        self.pending = None;
    }

    fn succeeded(&mut self) {
        self.pending = None;
        self.failures = 0;
        self.not_before = None;
        self.counts.succeeded += 1;
    }

    fn fail(&mut self, now: Instant) {
        self.pending = None;
        self.counts.failed += 1;
        let hold = FAILED_PROBE_HOLD
            .saturating_mul(1 << self.failures.min(8))
            .min(MAX_PROBE_HOLD);
        self.failures = self.failures.saturating_add(1);
        self.not_before = Some(now + hold);
    }
}
