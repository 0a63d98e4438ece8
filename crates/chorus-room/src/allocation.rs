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
//! subscriber with an estimate, through [`Allocator`] (hysteresis), and applies the
//! result as a cap on each `LayerSelection`'s max and a pause of the down track.

use std::time::{Duration, Instant};

use chorus_core::SpatialLayer;
use chorus_core::bwe::Bitrate;

/// How often the room re-spends each subscriber's estimate.
pub const ALLOCATION_INTERVAL: Duration = Duration::from_millis(500);
/// Raising needs this much more than the higher layers cost (in percent over 100)...
pub const RAISE_MARGIN_PERCENT: u64 = 15;
/// ...and that nothing was lowered for this long.
pub const RAISE_HOLD: Duration = Duration::from_secs(3);

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
}

/// One subscriber's allocation over time, with hysteresis so that a noisy estimate
/// does not make layers flap (each switch up costs a keyframe):
/// - lower only when the estimate is below what the current allocation costs and the
///   link shows congestion (loss, or a growing queue): the estimate of a sender that
///   just sends more (a video resumed, a layer switched up) is capped at 1.5 × what got
///   through, which says nothing about the link; then to what [`allocate`] gives,
///   never above the current;
/// - raise only when nothing was lowered for [`RAISE_HOLD`], and only to what fits in
///   the estimate less [`RAISE_MARGIN_PERCENT`] (so the higher layers cost at least
///   that margin less than the estimate).
///
/// A video seen for the first time starts at its max (uncapped), like before any
/// estimate: the first shortfall lowers it.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    lowered_at: Option<Instant>,
}

impl Allocator {
    /// The new allocation of `videos` given the `current` one (same order; `None`: a
    /// video new to this subscriber).
    pub fn decide(
        &mut self,
        estimate: Bitrate,
        congested: bool,
        videos: &[VideoDemand],
        current: &[Option<Allocation>],
        now: Instant,
    ) -> Vec<Allocation> {
        // What it has now, within what it asks for now.
        let held: Vec<Allocation> = videos
            .iter()
            .zip(current)
            .map(|(v, c)| {
                let ceiling = Allocation::ceiling(v);
                c.map_or(ceiling, |c| c.min(ceiling))
            })
            .collect();
        let need: u64 = held.iter().zip(videos).map(|(a, v)| a.cost(v)).sum();
        if estimate.bps() < need && congested {
            self.lowered_at = Some(now);
            let fit = allocate(estimate, videos);
            let mut lowered: Vec<Allocation> =
                held.iter().zip(fit).map(|(&h, f)| h.min(f)).collect();
            // Nothing left flowing: the most important shown video keeps its lowest
            // layer, so that the subscriber still sees something and its feedback
            // still measures the link (an estimate without packets never recovers).
            if lowered.iter().all(|&a| a == Allocation::Paused)
                && let Some(i) = by_priority(videos).find(|&i| held[i] != Allocation::Paused)
                && let Some(lowest) = step_up(&videos[i], Allocation::Paused)
            {
                lowered[i] = lowest;
            }
            return lowered;
        }
        if self.lowered_at.is_some_and(|t| now < t + RAISE_HOLD) {
            return held;
        }
        let spendable = estimate.bps() * 100 / (100 + RAISE_MARGIN_PERCENT);
        let up = allocate(Bitrate(spendable), videos);
        let raised: Vec<Allocation> = held.iter().zip(up).map(|(&h, u)| h.max(u)).collect();
        let cost: u64 = raised.iter().zip(videos).map(|(a, v)| a.cost(v)).sum();
        if cost <= spendable && raised != held {
            return raised;
        }
        // A probe: the estimate of a sender that sends less than it may is capped at
        // 1.5 × what got through, so it would never show room for the next layer
        // unless more is sent. With the margin to spare over what is sent now, one
        // video goes one step up, the most important first; if the link cannot take
        // it, the estimate falls below the need and the next round lowers it again
        // (at most one try per RAISE_HOLD).
        let mut probed = held.clone();
        if !congested
            && need * (100 + RAISE_MARGIN_PERCENT) <= estimate.bps() * 100
            && let Some((i, next)) =
                by_priority(videos).find_map(|i| Some((i, step_up(&videos[i], held[i])?)))
        {
            probed[i] = next;
            // The next probe waits a hold, like after a lowering.
            self.lowered_at = Some(now);
        }
        probed
    }
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
    let mut order: Vec<usize> = (0..videos.len()).collect();
    order.sort_by_key(|&i| videos[i].priority); // stable: the caller's order within one
    let mut budget = estimate.bps();
    let mut chosen: Vec<Option<usize>> = vec![None; videos.len()];
    // First every shown video its lowest arriving layer, most important first: what
    // does not fit then is paused, and it is the least important.
    for &i in &order {
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
        let lowest = current;
        for layer in layers_up_to_max(&videos[i]).filter(|&l| l > lowest) {
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

    fn video(priority: Priority) -> VideoDemand {
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

    #[test]
    fn lowered_at_once_raised_only_after_a_hold_and_with_a_margin() {
        use Allocation::Layer;
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s);
        let videos = [video(Priority::Featured), video(Priority::Other)];
        let l = |i| Layer(SpatialLayer::new(i).unwrap());
        let mut a = Allocator::default();
        // New videos start at their max; enough estimate keeps them there.
        let top = a.decide(Bitrate::kbps(3_000), true, &videos, &[None, None], at(0));
        assert_eq!(top, [l(2), l(2)]);
        let cur = |v: &[Allocation]| v.iter().copied().map(Some).collect::<Vec<_>>();
        // (ms, estimate kbit/s, congested, want): steps applied in turn to the result so far.
        let steps: &[(u64, u64, bool, [Allocation; 2])] = &[
            // Below the 3000 needed: lowered at once, the other first.
            (500, 2_500, true, [l(2), l(1)]),
            // Plenty again, but within the hold: kept.
            (1_000, 6_000, false, [l(2), l(1)]),
            (3_400, 6_000, false, [l(2), l(1)]),
            // A small dip that still covers the need (2000): nothing changes, and the
            // hold does not restart.
            (3_450, 2_100, false, [l(2), l(1)]),
            // Past the hold: within 15 % of the need: kept.
            (3_600, 2_200, false, [l(2), l(1)]),
            // 15 % over the need, not enough for the next layer (3000 + 15 %): a probe,
            // one step up.
            (4_000, 2_300, false, [l(2), l(2)]),
            // Below the need: lowered at once, and a new hold.
            (4_500, 1_000, true, [l(1), l(1)]),
            // Plenty after the hold: straight to what fits with the margin.
            (7_500, 3_500, false, [l(2), l(2)]),
            // Too little for any lowest layer: the most important keeps flowing.
            (8_000, 100, true, [l(0), Allocation::Paused]),
        ];
        // (estimate, congested): low without congestion is only what got through.
        let mut b = Allocator::default();
        let low = b.decide(Bitrate::kbps(1_000), false, &videos, &cur(&top), at(0));
        assert_eq!(low, top, "not congested: kept");
        let low = b.decide(Bitrate::kbps(1_000), true, &videos, &cur(&top), at(0));
        assert_eq!(low, [l(1), l(1)], "congested: lowered");
        let mut now = top.clone();
        for &(t, kbps, congested, want) in steps {
            now = a.decide(Bitrate::kbps(kbps), congested, &videos, &cur(&now), at(t));
            assert_eq!(now, want, "at {t} ms, {kbps} kbit/s");
        }
        // Asking for less lowers at once, without touching the hold.
        let mut small = videos.clone();
        small[0].max = SpatialLayer::new(0);
        let got = a.decide(Bitrate::kbps(3_500), false, &small, &cur(&top), at(11_100));
        assert_eq!(got, [l(0), l(2)]);
        // Hidden: paused.
        small[1].max = None;
        let got = a.decide(Bitrate::kbps(3_500), false, &small, &cur(&got), at(11_200));
        assert_eq!(got, [l(0), Allocation::Paused]);
    }
}
