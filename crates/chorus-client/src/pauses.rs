//! How long the server told the client each video was paused: from `video_paused` to
//! `video_resumed`, whatever the reason (last-N, bandwidth). A load test leaves those
//! spans out of a loss figure: a paused video is not sent, by design.

use std::time::{Duration, Instant};

/// The told pauses of one received video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToldPauses {
    /// Since when the video is paused, while it is.
    pub since: Option<Instant>,
    /// Time in pauses that ended.
    pub ended: Duration,
    /// `video_paused` messages that paused it (a repeated one while paused is not counted).
    pub pauses: u64,
}

impl ToldPauses {
    pub(crate) fn pause(&mut self, now: Instant) {
        if self.since.is_none() {
            self.since = Some(now);
            self.pauses += 1;
        }
    }

    pub(crate) fn resume(&mut self, now: Instant) {
        if let Some(since) = self.since.take() {
            self.ended += now.saturating_duration_since(since);
        }
    }

    /// Time paused, in all, up to `at`.
    pub fn paused_until(&self, at: Instant) -> Duration {
        self.ended
            + self
                .since
                .map_or(Duration::ZERO, |s| at.saturating_duration_since(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_time_sums_the_told_spans() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut told = ToldPauses::default();
        // (message at, paused: Some(true) paused, Some(false) resumed; then the time
        // paused up to `check`)
        let steps = [
            (0, Some(false), 1, 0), // resumed without a pause: nothing
            (1, Some(true), 3, 2),
            (2, Some(true), 3, 2), // repeated: the pause began at 1 s
            (4, Some(false), 8, 3),
            (10, Some(true), 12, 5),
            (10, None, 10, 3),
        ];
        for (at, paused, check, expected) in steps {
            match paused {
                Some(true) => told.pause(t0 + s(at)),
                Some(false) => told.resume(t0 + s(at)),
                None => {}
            }
            assert_eq!(told.paused_until(t0 + s(check)), s(expected), "at {at} s");
        }
        assert_eq!(told.pauses, 2);
    }
}
