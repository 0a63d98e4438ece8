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
    /// Nothing wrong, and a probe got through at the estimate given (and raised it
    /// there) since the last round.
    Probed,
}

/// Runs `steps` (ms, estimate kbit/s, what the link shows, expected allocation) in turn
/// from `start`, each applied to the result so far. Returns the probe asked for in each
/// step (kbit/s), and the allocator.
fn run<const N: usize>(
    videos: &[VideoDemand],
    start: [Option<Allocation>; N],
    steps: &[(u64, u64, Seen, [Allocation; N])],
) -> (Vec<Option<u64>>, Allocator) {
    let t0 = Instant::now();
    let mut a = Allocator::default();
    let (mut overuses, mut probes_delivered, mut probe_rate) = (0, 0, None);
    let mut now: Vec<Option<Allocation>> = start.to_vec();
    let mut probes = Vec::new();
    for &(t, kbps, seen, want) in steps {
        overuses += u64::from(matches!(seen, Seen::Overused));
        if matches!(seen, Seen::Probed) {
            probes_delivered += 1;
            probe_rate = Some(Bitrate::kbps(kbps));
        }
        let link = LinkState {
            estimate: Bitrate::kbps(kbps),
            lossy: matches!(seen, Seen::Lossy),
            overuse: matches!(seen, Seen::Over),
            overuses,
            probes_delivered,
            probe_rate,
        };
        let got = a.decide(link, videos, &now, t0 + Duration::from_millis(t));
        assert_eq!(got.allocations, want, "at {t} ms, {kbps} kbit/s");
        probes.push(got.probe.map(|p| p.bps() / 1000));
        now = got.allocations.into_iter().map(Some).collect();
    }
    (probes, a)
}

#[test]
fn new_videos_start_at_their_lowest_layer_and_climb_several_at_once() {
    use Priority::*;
    use Seen::{Clear, Probed};
    let videos = [video(Featured), video(Other), video(Other), video(Other)];
    let (probes, a) = run(
        &videos,
        [None; 4],
        &[
            // The start estimate (a guess): all four at their lowest (600), not paused
            // although the estimate is short, and raised no further; the speaker's next
            // step (950 in all) waits for a probe at 950 + 15 %.
            (0, 500, Clear, [l(0), l(0), l(0), l(0)]),
            // The estimator measured what got through: with the margin (869) the step
            // still does not fit, and no probe raised the estimate: no switch.
            (500, 1_000, Clear, [l(0), l(0), l(0), l(0)]),
            // A probe raised it to cover the step (not with the margin): taken.
            (1_000, 1_050, Probed, [l(1), l(0), l(0), l(0)]),
            // Then as much as fits in 2 600 (3 000 less 15 %) at once: the speaker to
            // f, one other to h.
            (1_500, 3_000, Clear, [l(2), l(1), l(0), l(0)]),
            // The next round raises again (the first other as high as it fits).
            (2_000, 4_000, Clear, [l(2), l(2), l(0), l(0)]),
            (2_500, 10_000, Clear, [l(2), l(2), l(2), l(2)]),
        ],
    );
    assert_eq!(probes, [Some(1_092), Some(1_092), None, None, None, None]);
    let counts = a.step_probes();
    assert_eq!((counts.asked, counts.succeeded, counts.failed), (1, 1, 0));
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
fn raised_only_after_a_hold_with_a_margin_or_after_a_probe() {
    use Priority::*;
    use Seen::*;
    let videos = [video(Featured), video(Other)];
    let (probes, a) = run(
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
            // Past the hold: the next step (3000 in all) does not fit: a probe is asked
            // for (3450), and nothing switches while it is awaited …
            (3_100, 2_200, Clear, [l(2), l(1)]),
            (3_500, 2_300, Clear, [l(2), l(1)]),
            // … even when one got through, but not at the step's rate.
            (4_000, 2_400, Probed, [l(2), l(1)]),
            // None did within the wait: failed, and the next waits 2 s.
            (5_100, 2_400, Clear, [l(2), l(1)]),
            (7_000, 2_400, Clear, [l(2), l(1)]),
            (7_100, 2_400, Clear, [l(2), l(1)]),
            // This one shows the room: the step.
            (7_600, 3_100, Probed, [l(2), l(2)]),
            // The link could not take it all the same: the queue grows, undone, and the
            // longer hold of a lowering that undid a raise.
            (8_100, 2_000, Over, [l(2), l(1)]),
            (14_000, 5_000, Clear, [l(2), l(1)]),
            // Then the step waits for a probe although it fits in the estimate with
            // the margin: the estimate was shown to be more than the link takes.
            (14_100, 5_000, Clear, [l(2), l(1)]),
            (14_600, 5_000, Probed, [l(2), l(2)]),
        ],
    );
    let (p, n) = (Some(3_450), None);
    assert_eq!(probes, [n, n, n, n, p, p, p, n, n, p, n, n, n, p, n]);
    let counts = a.step_probes();
    assert_eq!((counts.asked, counts.succeeded, counts.failed), (3, 2, 1));
}

/// One video at its lowest layer (150) with an estimate of 200: the next step (500 in
/// all) waits for a probe, and each failure holds the next one back longer (2 s, 4 s,
/// then at most 8 s), congestion included; no round switches until a probe shows the
/// room.
#[test]
fn failed_probes_hold_the_step_back_longer_each_time_without_a_switch() {
    use Seen::*;
    let lo = [l(0)];
    let (probes, a) = run(
        &[video(Priority::Featured)],
        [Some(l(0))],
        &[
            (0, 200, Clear, lo),
            (1_500, 200, Clear, lo),
            (2_000, 200, Clear, lo), // failed: 2 s
            (3_900, 200, Clear, lo),
            (4_000, 200, Clear, lo),
            (6_000, 200, Clear, lo), // failed: 4 s
            (9_900, 200, Clear, lo),
            (10_000, 200, Clear, lo),
            (10_500, 200, Over, lo), // congestion: failed, 8 s
            (18_400, 200, Clear, lo),
            (18_500, 200, Clear, lo),
            (19_000, 600, Probed, [l(1)]),
        ],
    );
    let (p, n) = (Some(575), None);
    assert_eq!(probes, [p, p, n, n, p, n, n, p, n, n, p, n]);
    let counts = a.step_probes();
    assert_eq!((counts.asked, counts.succeeded, counts.failed), (4, 1, 3));
}

/// A paused video without layers (one of 500) resumes only once a probe showed that
/// its rate fits: an estimate that covers it without the margin is not enough alone.
#[test]
fn a_paused_single_layer_video_resumes_only_after_a_probe() {
    use Seen::*;
    let single = VideoDemand {
        priority: Priority::Other,
        max: SpatialLayer::new(0),
        layer_bitrates: [Some(500_000), None, None],
    };
    // The other at its max: the paused one's resume is the only step.
    let mut other = video(Priority::Featured);
    other.max = SpatialLayer::new(0);
    let (probes, _) = run(
        &[other, single],
        [Some(l(0)), Some(P)],
        &[
            // 150 sent; the resume would make it 650: a probe at 747.
            (0, 400, Clear, [l(0), P]),
            (500, 700, Clear, [l(0), P]),
            (1_000, 700, Probed, [l(0), l(0)]),
        ],
    );
    assert_eq!(probes, [Some(747), Some(747), None]);
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
            // Then one step at a time, each behind a probe (the margin would allow
            // everything, but the estimate was shown wrong).
            (6_500, 10_000, Clear, [l(0), l(0), l(0)]),
            (7_000, 10_000, Probed, [l(1), l(0), l(0)]),
            (7_500, 10_000, Clear, [l(1), l(0), l(0)]),
            // That one held (a probe's hold without congestion): all that fits again.
            (8_000, 10_000, Clear, [l(2), l(2), l(2)]),
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
        probes_delivered: 0,
        probe_rate: None,
    };
    let mut a = Allocator::default();
    let top = [Some(l(2)), Some(l(2))];
    let mut small = videos.clone();
    small[0].max = SpatialLayer::new(0);
    assert_eq!(a.decide(clear, &small, &top, t0).allocations, [l(0), l(2)]);
    // Hidden: paused (not a bandwidth pause: the room tells it apart by the max).
    small[1].max = None;
    assert_eq!(a.decide(clear, &small, &top, t0).allocations, [l(0), P]);
}
