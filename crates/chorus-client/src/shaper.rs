//! A capped downlink inside the client, for load tests that check adaptation without a
//! network namespace per participant: what arrives on the subscriber connection goes
//! through a FIFO link of a given rate with a bounded queue, like `tc tbf` on a router
//! before the client. A datagram leaves the queue when the link has sent everything
//! before it; one that would wait longer than the queue holds is dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The cap of a client's downlink ([`crate::MediaProfile::downlink_cap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownlinkCap {
    pub rate_bps: u64,
    /// Most time a datagram may wait in the queue (`tc tbf ... latency`).
    pub queue: Duration,
}

impl DownlinkCap {
    /// `rate_bps` with a 400 ms queue, as the namespace tests shape the link.
    pub fn new(rate_bps: u64) -> Self {
        Self {
            rate_bps,
            queue: Duration::from_millis(400),
        }
    }
}

/// What the shaped link counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShaperStats {
    pub passed: u64,
    pub dropped: u64,
}

/// The link: datagrams waiting and when the link is free again.
#[derive(Debug)]
pub(crate) struct Shaper {
    cap: DownlinkCap,
    free_at: Option<Instant>,
    queue: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    pub(crate) stats: ShaperStats,
}

impl Shaper {
    pub(crate) fn new(cap: DownlinkCap) -> Self {
        Self {
            cap,
            free_at: None,
            queue: VecDeque::new(),
            stats: ShaperStats::default(),
        }
    }

    /// Takes a datagram that arrived at `now`: queued, or dropped (false) when it would
    /// wait longer than the queue holds.
    pub(crate) fn offer(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> bool {
        let start = self.free_at.map_or(now, |free| free.max(now));
        if start.saturating_duration_since(now) > self.cap.queue {
            self.stats.dropped += 1;
            return false;
        }
        let bits = datagram.len() as u64 * 8;
        let send_time = Duration::from_nanos(bits * 1_000_000_000 / self.cap.rate_bps.max(1));
        let done = start + send_time;
        self.free_at = Some(done);
        self.queue.push_back((done, from, datagram.to_vec()));
        true
    }

    /// When the next queued datagram is through the link.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _, _)| *at)
    }

    /// The next datagram through the link by `now`.
    pub(crate) fn poll_datagram(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if self.queue.front().is_some_and(|(at, _, _)| *at <= now) {
            let (_, from, datagram) = self.queue.pop_front()?;
            self.stats.passed += 1;
            return Some((from, datagram));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_rate_delays_within_the_queue_and_drops_beyond() {
        let t0 = Instant::now();
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        // 300 kbit/s, 400 ms: 1,250-byte datagrams take 33.3 ms each; 12 fit the queue.
        let mut shaper = Shaper::new(DownlinkCap::new(300_000));
        let offered = (0..20)
            .filter(|_| shaper.offer(t0, from, &[0; 1250]))
            .count();
        assert_eq!(offered, 13, "the link's first plus 12 queued");
        assert_eq!(shaper.stats.dropped, 7);
        let mut released = Vec::new();
        let mut now = t0;
        while let Some(at) = shaper.poll_timeout() {
            now = at;
            while let Some((_, d)) = shaper.poll_datagram(now) {
                released.push((now - t0, d.len()));
            }
        }
        assert_eq!(released.len(), 13);
        let last = released.last().unwrap().0;
        assert!(
            last > Duration::from_millis(430) && last < Duration::from_millis(440),
            "{last:?}"
        );
        assert_eq!(shaper.stats.passed, 13);
        // An idle link sends at once.
        assert!(shaper.offer(now + Duration::from_secs(1), from, &[0; 125]));
        assert_eq!(
            shaper.poll_timeout(),
            Some(now + Duration::from_secs(1) + Duration::from_nanos(3_333_333))
        );
    }
}
