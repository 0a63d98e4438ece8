//! What is known of one simulcast layer as it arrives: bitrate and frame rate over the
//! last second, and when its last keyframe came. Sans-I/O: time is passed in.

use std::time::{Duration, Instant};

use chorus_protocol::control::LayerStats as LayerReport;

/// The window rates are measured over, in buckets: old traffic leaves it a bucket at a
/// time, so a rate never holds on to a layer that stopped.
const BUCKET: Duration = Duration::from_millis(100);
const BUCKETS: usize = 10;
const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    bytes: u64,
    frames: u32,
}

#[derive(Debug, Clone, Default)]
pub struct LayerStats {
    buckets: [Bucket; BUCKETS],
    /// The bucket being filled, and when it started.
    head: usize,
    head_at: Option<Instant>,
    /// The newest RTP timestamp: a newer one starts a frame.
    last_ts: Option<u32>,
    pub packets: u64,
    pub bytes: u64,
    pub last_packet_at: Option<Instant>,
    pub last_keyframe_at: Option<Instant>,
}

impl LayerStats {
    /// A packet of `bytes` payload with RTP timestamp `ts` arrived at `now`.
    pub fn record(&mut self, now: Instant, bytes: usize, ts: u32, keyframe: bool) {
        self.advance(now);
        let new_frame = self
            .last_ts
            .is_none_or(|last| (ts.wrapping_sub(last) as i32) > 0);
        if new_frame {
            self.last_ts = Some(ts);
        }
        let bucket = &mut self.buckets[self.head];
        bucket.bytes += bytes as u64;
        bucket.frames += u32::from(new_frame);
        self.packets += 1;
        self.bytes += bytes as u64;
        self.last_packet_at = Some(now);
        if keyframe {
            self.last_keyframe_at = Some(now);
        }
    }

    /// Payload bits per second over the last second.
    pub fn bitrate_bps(&self, now: Instant) -> u64 {
        let bytes: u64 = self.in_window(now).map(|b| b.bytes).sum();
        bytes * 8 * 1000 / WINDOW.as_millis() as u64
    }

    /// Frames per second over the last second.
    pub fn fps(&self, now: Instant) -> u32 {
        let frames: u32 = self.in_window(now).map(|b| b.frames).sum();
        (u128::from(frames) * 1000 / WINDOW.as_millis()) as u32
    }

    /// What the control API reports of the layer named `rid`, `index` in its track's
    /// `layers`, arriving on `ssrc`, at `now`.
    pub fn report(&self, rid: String, index: u8, ssrc: Option<u32>, now: Instant) -> LayerReport {
        let age = |at: Instant| now.saturating_duration_since(at).as_millis() as u64;
        LayerReport {
            rid,
            index,
            ssrc,
            packets: self.packets,
            bytes: self.bytes,
            bitrate_bps: self.bitrate_bps(now),
            fps: self.fps(now),
            keyframe_age_ms: self.last_keyframe_at.map(age),
        }
    }

    /// Whether a packet came within `timeout` of `now`.
    pub fn active(&self, now: Instant, timeout: Duration) -> bool {
        self.last_packet_at
            .is_some_and(|at| now.saturating_duration_since(at) < timeout)
    }

    /// Moves the head to the bucket `now` falls in, emptying those it passes.
    fn advance(&mut self, now: Instant) {
        let Some(mut at) = self.head_at else {
            self.head_at = Some(now);
            return;
        };
        for _ in 0..BUCKETS {
            if now < at + BUCKET {
                self.head_at = Some(at);
                return;
            }
            at += BUCKET;
            self.head = (self.head + 1) % BUCKETS;
            self.buckets[self.head] = Bucket::default();
        }
        // Silent for the whole window: start afresh.
        self.buckets = Default::default();
        self.head_at = Some(now);
    }

    /// The buckets still inside the window at `now`, newest first.
    fn in_window(&self, now: Instant) -> impl Iterator<Item = &Bucket> {
        // Buckets the head would have moved past by `now` are out of the window.
        let passed = self.head_at.map_or(BUCKETS, |at| {
            (now.saturating_duration_since(at).as_millis() / BUCKET.as_millis()) as usize
        });
        (0..BUCKETS.saturating_sub(passed))
            .map(move |k| &self.buckets[(self.head + BUCKETS - k) % BUCKETS])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rates_are_over_the_last_second_and_fall_when_the_layer_stops() {
        let t0 = Instant::now();
        let mut s = LayerStats::default();
        // 30 fps, two packets of 500 bytes a frame: 240 kbit/s, for two seconds.
        for f in 0..60u32 {
            let at = t0 + ms(u64::from(f) * 1000 / 30);
            for _ in 0..2 {
                s.record(at, 500, f * 3000, f % 30 == 0);
            }
        }
        let end = t0 + ms(1990);
        let (bps, fps) = (s.bitrate_bps(end), s.fps(end));
        assert!((216_000..=240_000).contains(&bps), "{bps}");
        assert!((27..=30).contains(&fps), "{fps}");
        assert_eq!(s.last_keyframe_at, Some(t0 + ms(1000)));
        assert_eq!((s.packets, s.bytes), (120, 60_000));
        assert!(s.active(end, ms(100)));
        // Half a second of silence: about half the rate; a second and more: none.
        assert!(s.bitrate_bps(end + ms(500)) < 140_000);
        assert_eq!(s.bitrate_bps(end + ms(1100)), 0);
        assert_eq!(s.fps(end + ms(5000)), 0);
        assert!(!s.active(end + ms(1100), ms(1000)));
    }

    #[test]
    fn a_late_packet_of_an_older_frame_starts_no_frame() {
        let t0 = Instant::now();
        let mut s = LayerStats::default();
        for ts in [u32::MAX - 3000, 0, u32::MAX - 3000, 3000] {
            s.record(t0, 100, ts, false);
        }
        assert_eq!(s.fps(t0), 3, "across the wrap, the late one not counted");
    }
}
