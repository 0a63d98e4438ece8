use super::super::tests::video;
use super::super::{Priority, VideoDemand};
use super::*;
use chorus_core::SpatialLayer;

fn l(i: u8) -> Allocation {
    Allocation::Layer(SpatialLayer::new(i).unwrap())
}

const P: Allocation = Allocation::Paused;

/// How the link looks in one round of a table.
#[derive(Clone, Copy)]
enum Seen {
    /// Nothing wrong.
    Clear,
    /// The delay side sees overuse now.
    Over,
    /// The delay side lowered the estimate once since the last round (over by now).
    Overused,
    /// Loss over 2 %.
    Lossy,
}

/// Runs `steps` (ms, estimate kbit/s, what the link shows, expected allocation) in turn
/// from `start`, each applied to the result so far.
fn run<const N: usize>(
    videos: &[VideoDemand],
    start: [Option<Allocation>; N],
    steps: &[(u64, u64, Seen, [Allocation; N])],
) {
    let t0 = Instant::now();
    let mut a = Allocator::default();
    let mut overuses = 0;
    let mut now: Vec<Option<Allocation>> = start.to_vec();
    for &(t, kbps, seen, want) in steps {
        overuses += u64::from(matches!(seen, Seen::Overused));
        let link = LinkState {
            estimate: Bitrate::kbps(kbps),
            lossy: matches!(seen, Seen::Lossy),
            overuse: matches!(seen, Seen::Over),
            overuses,
        };
        let got = a.decide(link, videos, &now, t0 + Duration::from_millis(t));
        assert_eq!(got, want, "at {t} ms, {kbps} kbit/s");
        now = got.into_iter().map(Some).collect();
    }
}

#[test]
fn new_videos_start_at_their_lowest_layer_and_climb_several_at_once() {
    use Priority::*;
    use Seen::Clear;
    let videos = [video(Featured), video(Other), video(Other), video(Other)];
    run(
        &videos,
        [None; 4],
        &[
            // The start estimate (a guess): all four at their lowest (600), not paused
            // although the estimate is short, and raised no further.
            (0, 500, Clear, [l(0), l(0), l(0), l(0)]),
            // The estimator measured what got through: with the margin (869) nothing
            // more fits, but the estimate is well over the need and the speaker's next
            // step (+350) fits in the estimate itself: a probe.
            (500, 1_000, Clear, [l(1), l(0), l(0), l(0)]),
            // Within the probe's hold: kept, whatever the estimate says.
            (1_000, 5_000, Clear, [l(1), l(0), l(0), l(0)]),
            // After it: as much as fits in 2 600 (3 000 less 15 %) at once: the speaker
            // to f, one other to h.
            (1_500, 3_000, Clear, [l(2), l(1), l(0), l(0)]),
            // The next round raises again (the first other as high as it fits).
            (2_000, 4_000, Clear, [l(2), l(2), l(0), l(0)]),
            (2_500, 10_000, Clear, [l(2), l(2), l(2), l(2)]),
        ],
    );
    // A video at its max that is new: also its lowest first.
    let mut small = video(Other);
    small.max = SpatialLayer::new(0);
    let mut hidden = video(Other);
    hidden.max = None;
    run(
        &[small, hidden, video(Other)],
        [None; 3],
        &[(0, 100, Seen::Clear, [l(0), P, l(0)])],
    );
}

#[test]
fn a_growing_queue_lowers_layers_then_pauses_if_it_persists_and_loss_pauses_at_once() {
    use Priority::*;
    use Seen::*;
    let videos = [video(Featured), video(Other), video(Other)];
    let top = [Some(l(2)), Some(l(2)), Some(l(2))];
    run(
        &videos,
        top,
        &[
            // 4 500 needed, 400 left, the queue grows: layers lowered; the last, which
            // does not fit, keeps its lowest layer for now, and in the next round.
            (0, 400, Over, [l(0), l(0), l(0)]),
            (500, 400, Over, [l(0), l(0), l(0)]),
            // A third round in a row: what does not fit is paused.
            (1_000, 400, Over, [l(0), l(0), P]),
            // Gone: kept (the estimate covers the 300 needed), within the hold.
            (1_500, 400, Clear, [l(0), l(0), P]),
        ],
    );
    run(
        &videos,
        top,
        &[
            // An overuse between two rounds counts like one seen now.
            (0, 400, Overused, [l(0), l(0), l(0)]),
            (500, 400, Overused, [l(0), l(0), l(0)]),
            (1_000, 400, Overused, [l(0), l(0), P]),
        ],
    );
    run(
        &videos,
        top,
        &[
            // The queue grew in two rounds, not the third: nothing paused; the estimate
            // recovers: raised once the hold after the last lowering is over.
            (0, 400, Over, [l(0), l(0), l(0)]),
            (500, 400, Over, [l(0), l(0), l(0)]),
            (1_000, 1_000, Clear, [l(0), l(0), l(0)]),
            (3_400, 10_000, Clear, [l(0), l(0), l(0)]),
            (3_500, 10_000, Clear, [l(2), l(2), l(2)]),
        ],
    );
    run(
        &videos,
        top,
        &[
            // Loss: what does not fit is paused at once; too little for any lowest
            // layer, the most important keeps flowing.
            (0, 400, Lossy, [l(0), l(0), P]),
            (500, 100, Lossy, [l(0), P, P]),
        ],
    );
}

#[test]
fn raised_only_after_a_hold_with_a_margin_or_as_a_probe() {
    use Priority::*;
    use Seen::*;
    let videos = [video(Featured), video(Other)];
    run(
        &videos,
        [Some(l(2)), Some(l(2))],
        &[
            // Below the 3000 needed, with loss: lowered at once, the other first.
            (0, 2_500, Lossy, [l(2), l(1)]),
            // Plenty again, but within the hold: kept.
            (500, 6_000, Clear, [l(2), l(1)]),
            (2_900, 6_000, Clear, [l(2), l(1)]),
            // A dip that still covers the need (2000): nothing changes.
            (2_950, 2_100, Clear, [l(2), l(1)]),
            // Past the hold: less than 15 % over the need: kept (no probe either).
            (3_100, 2_200, Clear, [l(2), l(1)]),
            // 15 % over the need but short of the next layer even without the margin:
            // a probe of one step.
            (3_500, 2_300, Clear, [l(2), l(2)]),
            // Below the need without congestion (what got through, not the link):
            // kept.
            (4_000, 1_000, Clear, [l(2), l(2)]),
            // The probe was too much: the queue grows, lowered, and the longer hold
            // of a lowering that undid a raise.
            (4_500, 2_000, Over, [l(2), l(1)]),
            (10_400, 5_000, Clear, [l(2), l(1)]),
            (10_500, 5_000, Clear, [l(2), l(2)]),
        ],
    );
}

#[test]
fn a_raise_the_link_cannot_take_is_undone_and_the_next_tries_are_single_steps() {
    use Priority::*;
    use Seen::*;
    let videos = [video(Featured), video(Other), video(Other)];
    run(
        &videos,
        [Some(l(0)), Some(l(0)), Some(l(0))],
        &[
            // Room for 2 600 with the margin: four steps at once.
            (0, 3_000, Clear, [l(2), l(1), l(1)]),
            // The queue grows: back to what the link took before (not to what 2 000
            // buys), and a long hold.
            (500, 2_000, Over, [l(0), l(0), l(0)]),
            (6_400, 10_000, Clear, [l(0), l(0), l(0)]),
            // Then one step at a time (the margin would allow everything).
            (6_500, 10_000, Clear, [l(1), l(0), l(0)]),
            (7_000, 10_000, Clear, [l(1), l(0), l(0)]),
            // That one held (a probe's hold without congestion): all that fits again.
            (7_500, 10_000, Clear, [l(2), l(2), l(2)]),
        ],
    );
}

#[test]
fn asking_for_less_lowers_at_once() {
    let t0 = Instant::now();
    let videos = [video(Priority::Featured), video(Priority::Other)];
    let clear = LinkState {
        estimate: Bitrate::kbps(3_500),
        lossy: false,
        overuse: false,
        overuses: 0,
    };
    let mut a = Allocator::default();
    let top = [Some(l(2)), Some(l(2))];
    let mut small = videos.clone();
    small[0].max = SpatialLayer::new(0);
    assert_eq!(a.decide(clear, &small, &top, t0), [l(0), l(2)]);
    // Hidden: paused (not a bandwidth pause: the room tells it apart by the max).
    small[1].max = None;
    assert_eq!(a.decide(clear, &small, &top, t0), [l(0), P]);
}
