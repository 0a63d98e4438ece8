//! Video loss with the told pauses left out: a second figure beside the plain one.
//!
//! The server stops sending a video to a receiver it tells so (`video_paused`, for
//! last-N or bandwidth, until `video_resumed`). The plain figure counts a pair that got
//! no new number in the window as losing everything its publisher sent, paused or not
//! ([`crate::measure::pair_count`]); this one leaves out the packets sent while the
//! receiver had been told the video was paused. A pair whose receiver saw new numbers
//! needs nothing left out: the server numbers only what it sends, so a pause leaves no
//! gap. For a pair that saw none, the publisher's packets are spread evenly over the
//! window (a camera sends at a steady rate) and the told-paused share of it goes.

use std::time::{Duration, Instant};

use chorus_client::ClientStats;

use crate::measure::PairCount;

/// How long, between the snapshots `r0` (taken at `t0`) and `r1` (at `t1`), the
/// receiver had been told `track` was paused.
pub(crate) fn paused_in(
    track: &str,
    (r0, t0): (&ClientStats, Instant),
    (r1, t1): (&ClientStats, Instant),
) -> Duration {
    let until = |r: &ClientStats, t| r.told_paused.get(track).map(|p| p.paused_until(t));
    let end = until(r1, t1).unwrap_or_default();
    end.saturating_sub(until(r0, t0).unwrap_or_default())
}

/// Of `count.sent`, the packets sent while the receiver was not told the video was
/// paused, `paused` of a `window`.
pub(crate) fn expected_outside(count: &PairCount, paused: Duration, window: Duration) -> u64 {
    if !count.from_publisher || paused.is_zero() {
        return count.sent;
    }
    let told = paused.as_secs_f64() / window.as_secs_f64().max(f64::MIN_POSITIVE);
    (count.sent as f64 * (1.0 - told.min(1.0))).round() as u64
}

/// Video packets expected and received outside told pauses, summed over pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OutsidePauses {
    pub(crate) expected: u64,
    pub(crate) received: u64,
}

impl OutsidePauses {
    pub(crate) fn add(&mut self, count: &PairCount, paused: Duration, window: Duration) {
        self.expected += expected_outside(count, paused, window);
        self.received += count.got;
    }

    /// `1 - received / expected`, 0 when nothing was expected.
    pub(crate) fn loss(&self) -> f64 {
        crate::measure::loss(self.expected, self.received)
    }
}

#[cfg(test)]
mod tests {
    use chorus_client::{MediaKind, ToldPauses};

    use super::*;
    use crate::measure::pair_count;
    use crate::measure::tests::{publisher, receiver};

    fn told(since: Option<Instant>, ended: Duration) -> ToldPauses {
        ToldPauses {
            since,
            ended,
            pauses: 1,
        }
    }

    #[test]
    fn told_pauses_leave_out_what_the_publisher_sent_meanwhile() {
        let cam = "cam";
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let t1 = t0 + s(10);
        let (o0, o1) = (publisher(cam, 1000), publisher(cam, 1100));
        let stalled = receiver(cam, MediaKind::Video, &[1, 2, 3]);
        let flowing = receiver(cam, MediaKind::Video, &[1, 2, 3, 4, 6]);
        let with = |r: &ClientStats, pauses: ToldPauses| {
            let mut r = r.clone();
            r.told_paused.insert(cam.to_owned(), pauses);
            r
        };
        // (case, receiver at t0, at t1, expected outside pauses, received)
        let cases = [
            ("never told", stalled.clone(), stalled.clone(), 100, 0),
            (
                "told paused before the window, still",
                with(&stalled, told(Some(t0 - s(5)), s(0))),
                with(&stalled, told(Some(t0 - s(5)), s(0))),
                0,
                0,
            ),
            (
                "paused 3 s into the window",
                stalled.clone(),
                with(&stalled, told(Some(t0 + s(3)), s(0))),
                30,
                0,
            ),
            (
                "paused before, resumed 4 s in, nothing came",
                with(&stalled, told(Some(t0 - s(1)), s(0))),
                with(&stalled, told(None, s(5))),
                60,
                0,
            ),
            (
                "numbers seen: a pause is no gap",
                stalled.clone(),
                with(&flowing, told(Some(t0 + s(3)), s(0))),
                3,
                2,
            ),
        ];
        for (case, r0, r1, expected, received) in cases {
            let count = pair_count(cam, Some((&o0, &o1)), (&r0, &r1));
            let paused = paused_in(cam, (&r0, t0), (&r1, t1));
            let mut sum = OutsidePauses::default();
            sum.add(&count, paused, t1 - t0);
            assert_eq!((sum.expected, sum.received), (expected, received), "{case}");
        }
    }
}
