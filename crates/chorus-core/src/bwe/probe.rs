//! Probing: a short cluster of packets sent at a target rate above the estimate,
//! numbered through the estimator like any packet but tagged with the cluster. While
//! the sender sends less than the link could take, the acknowledged rate (and so the
//! estimate, capped at 1.5 × it) cannot show the room for more; a cluster that gets
//! through at its rate shows it at once (draft-ietf-rmcat-gcc-02 leaves probing to the
//! sender; this is libwebrtc's way).
//!
//! The cluster's result is what got through: the smaller of its send rate (bytes over
//! the send span, the last packet sent left out) and its receive rate (bytes over the
//! arrival span, the first packet to arrive left out), valid only when enough of it
//! arrived ([`MIN_RECEIVED_SHARE`], [`MIN_PACKETS`]); when it arrived clearly slower
//! than sent, the link limited it, and the result is a little below what arrived. A cluster not fully reported
//! within [`CLUSTER_TIMEOUT`] gives nothing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Bitrate;

/// One probe cluster's number, as the sender tags its packets with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeId(pub u32);

/// A cluster's result needs at least this many packets arrived …
pub const MIN_PACKETS: u32 = 5;
/// … and at least this share of those sent.
pub const MIN_RECEIVED_SHARE: f64 = 0.8;
/// A cluster still not fully reported this long after its first packet gives nothing.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(2);
/// Received below this share of the send rate, a cluster met the link's limit …
const LINK_LIMITED: f64 = 0.9;
/// … and the result is this share of what arrived.
const BELOW_LIMIT: f64 = 0.95;
/// Clusters followed at once (older ones are given up).
const MAX_CLUSTERS: usize = 4;

/// How one cluster ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeOutcome {
    /// Enough arrived: the rate that got through.
    Delivered(Bitrate),
    /// Too little arrived, or its feedback never came.
    Failed,
}

#[derive(Debug, Clone)]
struct Cluster {
    id: ProbeId,
    started: Instant,
    sent: u32,
    /// All its packets are sent: it concludes once all are reported.
    closed: bool,
    reported: u32,
    /// Per packet arrived: (sent at, arrived on the subscriber's clock, size).
    arrived: Vec<(Instant, Duration, u32)>,
}

impl Cluster {
    fn outcome(&self) -> ProbeOutcome {
        let received = self.arrived.len() as u32;
        if received < MIN_PACKETS || f64::from(received) < f64::from(self.sent) * MIN_RECEIVED_SHARE
        {
            return ProbeOutcome::Failed;
        }
        let bytes: u64 = self.arrived.iter().map(|a| u64::from(a.2)).sum();
        let last_sent = self.arrived.iter().max_by_key(|a| a.0).expect("enough");
        let first_sent = self.arrived.iter().map(|a| a.0).min().expect("enough");
        let first_arrived = self.arrived.iter().min_by_key(|a| a.1).expect("enough");
        let last_arrived = self.arrived.iter().map(|a| a.1).max().expect("enough");
        let send_span = last_sent.0.saturating_duration_since(first_sent);
        let recv_span = last_arrived.saturating_sub(first_arrived.1);
        let rate = |bytes: u64, span: Duration| bytes as f64 * 8.0 / span.as_secs_f64();
        if send_span.is_zero() {
            return ProbeOutcome::Failed; // not paced: says nothing of a rate
        }
        let send = rate(bytes - u64::from(last_sent.2), send_span);
        // Arrivals in one instant (a link far faster than the probe): what was sent got
        // through.
        let receive = if recv_span.is_zero() {
            send
        } else {
            rate(bytes - u64::from(first_arrived.2), recv_span)
        };
        // Arriving clearly slower than sent: the link limits it, and its rate is the
        // most it takes; aim a little below, as libwebrtc does.
        let rate = if receive < LINK_LIMITED * send {
            receive * BELOW_LIMIT
        } else {
            send.min(receive)
        };
        ProbeOutcome::Delivered(Bitrate(rate as u64))
    }
}

/// The clusters sent and not yet concluded, for one connection.
#[derive(Debug, Clone, Default)]
pub struct Prober {
    next_id: u32,
    clusters: VecDeque<Cluster>,
    /// Concluded since last taken, oldest first.
    outcomes: Vec<(ProbeId, ProbeOutcome)>,
}

impl Prober {
    /// A new cluster starting at `now`: tag its packets with the id.
    pub fn start(&mut self, now: Instant) -> ProbeId {
        let id = ProbeId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        if self.clusters.len() >= MAX_CLUSTERS
            && let Some(old) = self.clusters.pop_front()
        {
            self.outcomes.push((old.id, ProbeOutcome::Failed));
        }
        self.clusters.push_back(Cluster {
            id,
            started: now,
            sent: 0,
            closed: false,
            reported: 0,
            arrived: Vec::new(),
        });
        id
    }

    /// One packet of cluster `id` went out (unknown or concluded clusters: ignored).
    pub fn on_sent(&mut self, id: ProbeId) -> bool {
        match self.clusters.iter_mut().find(|c| c.id == id) {
            Some(c) => {
                c.sent += 1;
                true
            }
            None => false,
        }
    }

    /// Cluster `id` has all its packets sent.
    pub fn close(&mut self, id: ProbeId) {
        if let Some(c) = self.clusters.iter_mut().find(|c| c.id == id) {
            c.closed = true;
        }
    }

    /// The feedback on one packet of cluster `id`: sent at `sent`, arrived (or not).
    pub fn on_result(&mut self, id: ProbeId, sent: Instant, arrival: Option<Duration>, size: u32) {
        let Some(c) = self.clusters.iter_mut().find(|c| c.id == id) else {
            return;
        };
        c.reported += 1;
        if let Some(arrived) = arrival {
            c.arrived.push((sent, arrived, size));
        }
    }

    /// Concludes the clusters fully reported, or timed out, at `now`; returns what
    /// concluded since the last call.
    pub fn conclude(&mut self, now: Instant) -> Vec<(ProbeId, ProbeOutcome)> {
        let mut outcomes = std::mem::take(&mut self.outcomes);
        self.clusters.retain(|c| {
            let reported = c.closed && c.reported >= c.sent;
            let late = now.saturating_duration_since(c.started) >= CLUSTER_TIMEOUT;
            if reported || late {
                outcomes.push((c.id, c.outcome()));
            }
            !(reported || late)
        });
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A prober with a closed cluster of ten packets sent, started at `t0`.
    fn ten_sent(t0: Instant) -> (Prober, ProbeId) {
        let mut p = Prober::default();
        let id = p.start(t0);
        for _ in 0..10 {
            p.on_sent(id);
        }
        p.close(id);
        (p, id)
    }

    /// A cluster of ten 250-byte packets paced 2 ms apart (1 Mbit/s), arriving
    /// `arrival_gap` apart, with those in `lost` missing.
    fn cluster(arrival_gap: Duration, lost: &[u32]) -> ProbeOutcome {
        let t0 = Instant::now();
        let (mut p, id) = ten_sent(t0);
        for i in 0..10u32 {
            let arrival = (!lost.contains(&i)).then(|| Duration::from_secs(5) + arrival_gap * i);
            p.on_result(id, t0 + 2 * MS * i, arrival, 250);
        }
        let got = p.conclude(t0 + Duration::from_millis(100));
        assert_eq!(got.len(), 1);
        got[0].1
    }

    #[test]
    fn a_cluster_gives_what_got_through() {
        // (arrival gap, lost, result in kbit/s or None)
        let cases: [(Duration, &[u32], Option<u64>); 5] = [
            // At its pace: the target (9 packets' bytes over 18 ms either way).
            (2 * MS, &[], Some(1_000)),
            // Through a queue draining at half the rate: a little below what arrived.
            (4 * MS, &[], Some(475)),
            // All at once (a fast link): the send rate.
            (Duration::ZERO, &[], Some(1_000)),
            // One lost of ten: still enough (eight packets' bytes over 18 ms).
            (2 * MS, &[3], Some(888)),
            // Three lost of ten: below 80 %, no result.
            (2 * MS, &[1, 4, 7], None),
        ];
        for (gap, lost, want) in cases {
            let got = match cluster(gap, lost) {
                ProbeOutcome::Delivered(rate) => Some(rate.bps() / 1000),
                ProbeOutcome::Failed => None,
            };
            assert_eq!(got, want, "gap {gap:?} lost {lost:?}");
        }
    }

    #[test]
    fn a_cluster_without_feedback_fails_late() {
        let t0 = Instant::now();
        let (mut p, id) = ten_sent(t0);
        p.on_result(id, t0, Some(Duration::ZERO), 250);
        assert!(p.conclude(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            p.conclude(t0 + CLUSTER_TIMEOUT),
            vec![(id, ProbeOutcome::Failed)]
        );
    }
}
