//! Spending one subscriber's bandwidth estimate across the videos it receives, as a
//! value: per video the highest simulcast layer that fits, by priority (screen share,
//! then the dominant speaker and pinned participants, then the others).
//!
//! When the estimate falls, every video is lowered to its lowest layer before any is
//! paused, and the least important are paused first: a weak link loses detail, then
//! the videos that matter least, rather than freezing everything; and [`Allocator`]
//! never pauses the most important shown video for bandwidth.
//!
//! The room (`core/bandwidth.rs`) runs this every [`ALLOCATION_INTERVAL`] for each
//! subscriber with an estimate, through [`Allocator`] (its start, climb and hysteresis,
//! and the probe a step up waits for, `allocation/allocator.rs`), and applies the
//! result as a cap on each `LayerSelection`'s max and a pause of the down track, and
//! sends the probe it asks for.

use std::time::Duration;

use chorus_core::SpatialLayer;
use chorus_core::bwe::Bitrate;

mod allocator;

pub use allocator::{
    Allocator, Decision, FAILED_PROBE_HOLD, FAILED_RAISE_HOLD, LinkState, MAX_PROBE_HOLD,
    PAUSE_AFTER_ROUNDS, PROBE_HOLD, PROBE_WAIT, RAISE_HOLD, RAISE_MARGIN_PERCENT, StepProbeCounts,
};

/// How often the room re-spends each subscriber's estimate.
pub const ALLOCATION_INTERVAL: Duration = Duration::from_millis(500);

/// How much a video matters to this subscriber; the most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    ScreenShare,
    /// The dominant speaker, or a participant the subscriber pinned.
    Featured,
    Other,
}

/// One video the subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoDemand {
    pub priority: Priority,
    /// The most it asked for (`track_settings`); `None`: it does not show the video.
    pub max: Option<SpatialLayer>,
    /// What each layer costs now (bits per second, from the track's layer stats),
    /// lowest first; `None` for a layer not arriving.
    pub layer_bitrates: [Option<u64>; SpatialLayer::COUNT],
}

/// What one video gets.
/// Ordered: `Paused` is below every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Allocation {
    /// Not shown, nothing arriving, or no room left for it.
    Paused,
    Layer(SpatialLayer),
}

impl Allocation {
    fn cost(self, video: &VideoDemand) -> u64 {
        match self {
            Allocation::Layer(l) => video.layer_bitrates[l.index()].unwrap_or(0),
            Allocation::Paused => 0,
        }
    }

    /// What it may get of `video` at most: its max, or paused if not shown.
    fn ceiling(video: &VideoDemand) -> Allocation {
        video.max.map_or(Allocation::Paused, Allocation::Layer)
    }

    /// Where a video new to the subscriber starts: its lowest arriving layer (or its
    /// max while none arrives: that costs nothing yet), paused if not shown.
    fn start(video: &VideoDemand) -> Allocation {
        step_up(video, Allocation::Paused).unwrap_or_else(|| Allocation::ceiling(video))
    }
}

/// What `allocations` of `videos` cost together.
fn cost(allocations: &[Allocation], videos: &[VideoDemand]) -> u64 {
    allocations.iter().zip(videos).map(|(a, v)| a.cost(v)).sum()
}

/// The indices of `videos`, the most important first (stable within one priority).
fn by_priority(videos: &[VideoDemand]) -> impl Iterator<Item = usize> {
    let mut order: Vec<usize> = (0..videos.len()).collect();
    order.sort_by_key(|&i| videos[i].priority);
    order.into_iter()
}

/// The next arriving layer above `from` within the video's max.
fn step_up(video: &VideoDemand, from: Allocation) -> Option<Allocation> {
    let above = match from {
        Allocation::Paused => 0,
        Allocation::Layer(l) => l.index() + 1,
    };
    let i = layers_up_to_max(video).find(|&i| i >= above)?;
    SpatialLayer::new(i as u8).map(Allocation::Layer)
}

/// Per video of `videos` (in the same order), what it gets of `estimate`. Within one
/// priority the caller's order decides (e.g. by speaking order).
pub fn allocate(estimate: Bitrate, videos: &[VideoDemand]) -> Vec<Allocation> {
    allocate_from(&vec![Allocation::Paused; videos.len()], estimate, videos)
}

/// [`allocate`] on top of `floor` (what each video has already, within its max): what
/// `budget` buys beyond it, spent in the same order. `floor` itself when it costs more
/// than `budget`.
pub fn allocate_from(
    floor: &[Allocation],
    budget: Bitrate,
    videos: &[VideoDemand],
) -> Vec<Allocation> {
    let Some(mut budget) = budget.bps().checked_sub(cost(floor, videos)) else {
        return floor.to_vec();
    };
    let mut chosen: Vec<Option<usize>> = floor
        .iter()
        .map(|a| match a {
            Allocation::Layer(l) => Some(l.index()),
            Allocation::Paused => None,
        })
        .collect();
    let order: Vec<usize> = by_priority(videos).collect();
    // First every shown video its lowest arriving layer, most important first: what
    // does not fit then is paused, and it is the least important.
    for &i in &order {
        if chosen[i].is_some() {
            continue;
        }
        let Some(lowest) = layers_up_to_max(&videos[i]).next() else {
            continue;
        };
        let cost = videos[i].layer_bitrates[lowest].unwrap_or(0);
        if cost <= budget {
            budget -= cost;
            chosen[i] = Some(lowest);
        }
    }
    // Then each, most important first, as high as its max and the rest allow.
    for &i in &order {
        let Some(mut current) = chosen[i] else {
            continue;
        };
        let cost = |layer: usize| videos[i].layer_bitrates[layer].unwrap_or(0);
        let from = current;
        for layer in layers_up_to_max(&videos[i]).filter(|&l| l > from) {
            let (held, wanted) = (cost(current), cost(layer));
            if wanted <= budget + held {
                budget = budget + held - wanted;
                current = layer;
            }
        }
        chosen[i] = Some(current);
    }
    chosen
        .into_iter()
        .map(|c| match c.and_then(|i| SpatialLayer::new(i as u8)) {
            Some(layer) => Allocation::Layer(layer),
            None => Allocation::Paused,
        })
        .collect()
}

/// The indices of the layers arriving at or below the video's max, lowest first.
fn layers_up_to_max(video: &VideoDemand) -> impl Iterator<Item = usize> + '_ {
    let max = video.max.map_or(0, |m| m.index() + 1);
    (0..max).filter(|&i| video.layer_bitrates[i].is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: u64 = 150_000;
    const H: u64 = 500_000;
    const F: u64 = 1_500_000;

    /// A video of three layers at [`Q`], [`H`] and [`F`], asking for the top one (also
    /// for the allocator's tests, `allocation/allocator/tests.rs`).
    pub(crate) fn video(priority: Priority) -> VideoDemand {
        VideoDemand {
            priority,
            max: SpatialLayer::new(2),
            layer_bitrates: [Some(Q), Some(H), Some(F)],
        }
    }

    fn layers(got: &[Allocation]) -> Vec<Option<usize>> {
        got.iter()
            .map(|a| match a {
                Allocation::Layer(l) => Some(l.index()),
                Allocation::Paused => None,
            })
            .collect()
    }

    #[test]
    fn the_estimate_is_spent_by_priority_lowering_before_pausing() {
        use Priority::*;
        // A screen share, the speaker, two others (given in this order).
        let videos = [
            video(Other),
            video(Featured),
            video(ScreenShare),
            video(Other),
        ];
        // (estimate kbit/s, layer per video: other, speaker, screen, other)
        let cases: [(u64, [Option<usize>; 4]); 7] = [
            // Everything at the top.
            (6_500, [Some(2), Some(2), Some(2), Some(2)]),
            // Screen and speaker at the top, the others as high as the rest allows.
            (3_850, [Some(1), Some(2), Some(2), Some(0)]),
            // Less: the speaker comes down before anyone is paused.
            (2_550, [Some(0), Some(1), Some(2), Some(0)]),
            // Everyone at the lowest layer but the screen share.
            (1_950, [Some(0), Some(0), Some(2), Some(0)]),
            (600, [Some(0), Some(0), Some(0), Some(0)]),
            // Not all four lowest layers fit: the last of the others is paused first.
            (450, [Some(0), Some(0), Some(0), None]),
            (100, [None, None, None, None]),
        ];
        for (kbps, want) in cases {
            let got = allocate(Bitrate::kbps(kbps), &videos);
            assert_eq!(layers(&got), want, "{kbps} kbit/s");
        }
    }

    #[test]
    fn what_the_subscriber_asked_and_what_arrives_bound_it() {
        let mut capped = video(Priority::Featured);
        capped.max = SpatialLayer::new(1);
        let mut hidden = video(Priority::ScreenShare);
        hidden.max = None;
        let mut top_missing = video(Priority::Other);
        top_missing.layer_bitrates[2] = None;
        let mut only_top = video(Priority::Other);
        only_top.layer_bitrates = [None, None, Some(F)];
        let got = allocate(
            Bitrate::kbps(20_000),
            &[capped, hidden, top_missing, only_top],
        );
        assert_eq!(layers(&got), [Some(1), None, Some(1), Some(2)]);
    }
}
