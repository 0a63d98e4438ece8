//! Loss detection on the receiving side (a publisher's stream): which sequence numbers
//! are missing, and when to ask for them again (RFC 4585 generic NACK). Sans-I/O: fed
//! the extended sequence numbers that arrive, polled with the time for what to NACK.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::seq::ExtSeq;

#[derive(Debug, Clone, Copy)]
pub struct LossConfig {
    /// Wait this long after a gap is seen before the first NACK (reordering).
    pub first_after: Duration,
    /// Then ask again this often (about a round trip).
    pub retry_every: Duration,
    /// Give a packet up after this many NACKs.
    pub max_nacks: u32,
    /// Track at most this many missing packets; a larger burst is a keyframe's job.
    pub max_missing: usize,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            first_after: Duration::from_millis(10),
            retry_every: Duration::from_millis(100),
            max_nacks: 10,
            max_missing: 512,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    due: Instant,
    nacks: u32,
}

/// One stream's missing packets.
#[derive(Debug, Clone)]
pub struct LossDetector {
    config: LossConfig,
    highest: Option<ExtSeq>,
    missing: BTreeMap<u64, Missing>,
    /// Packets given up: never arrived after every NACK, or dropped from a burst.
    pub given_up: u64,
}

impl LossDetector {
    pub fn new(config: LossConfig) -> Self {
        Self {
            config,
            highest: None,
            missing: BTreeMap::new(),
            given_up: 0,
        }
    }

    /// A packet arrived (first time, or repaired).
    pub fn received(&mut self, seq: ExtSeq, now: Instant) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return;
        };
        if seq <= highest {
            self.missing.remove(&seq.0);
            return;
        }
        let due = now + self.config.first_after;
        for s in highest.0 + 1..seq.0 {
            self.missing.insert(s, Missing { due, nacks: 0 });
        }
        self.highest = Some(seq);
        while self.missing.len() > self.config.max_missing {
            self.missing.pop_first();
            self.given_up += 1;
        }
    }

    /// The sequence numbers to NACK now, in order; each is asked again after
    /// `retry_every` until it arrives or `max_nacks` is reached.
    pub fn poll_nacks(&mut self, now: Instant) -> Vec<ExtSeq> {
        let (retry, max) = (self.config.retry_every, self.config.max_nacks);
        let mut out = Vec::new();
        let mut dropped = Vec::new();
        for (seq, m) in self.missing.iter_mut() {
            if m.due > now {
                continue;
            }
            if m.nacks >= max {
                dropped.push(*seq);
                continue;
            }
            m.nacks += 1;
            m.due = now + retry;
            out.push(ExtSeq(*seq));
        }
        for seq in dropped {
            self.missing.remove(&seq);
            self.given_up += 1;
        }
        out
    }

    /// When [`Self::poll_nacks`] next has something to say.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing.values().map(|m| m.due).min()
    }

    pub fn missing(&self) -> usize {
        self.missing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Recv(u64),
        /// Poll at this ms; expect these NACKs.
        Poll(&'static [u64]),
    }

    fn run(config: LossConfig, steps: &[(u64, Step)]) -> LossDetector {
        let t0 = Instant::now();
        let mut d = LossDetector::new(config);
        for (i, (ms, step)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*ms);
            match step {
                Step::Recv(s) => d.received(ExtSeq(*s), now),
                Step::Poll(want) => {
                    let got: Vec<u64> = d.poll_nacks(now).into_iter().map(|s| s.0).collect();
                    assert_eq!(&got[..], *want, "step {i} at {ms} ms");
                }
            }
        }
        d
    }

    #[test]
    fn gaps_are_nacked_after_reordering_time_then_every_round_trip() {
        use Step::*;
        let d = run(
            LossConfig::default(),
            &[
                (0, Recv(1)),
                (1, Recv(4)),     // 2 and 3 missing
                (5, Poll(&[])),   // still within reordering time
                (6, Recv(3)),     // 3 was only late
                (11, Poll(&[2])), // first NACK
                (50, Poll(&[])),
                (111, Poll(&[2])), // again a round trip later
                (112, Recv(2)),    // repaired
                (300, Poll(&[])),
                (301, Recv(2)), // a duplicate changes nothing
            ],
        );
        assert_eq!((d.missing(), d.given_up), (0, 0));
    }

    #[test]
    fn a_packet_is_given_up_after_max_nacks_and_bursts_are_bounded() {
        use Step::*;
        let config = LossConfig {
            max_nacks: 2,
            max_missing: 3,
            ..LossConfig::default()
        };
        let d = run(
            config,
            &[
                (0, Recv(10)),
                (0, Recv(12)),
                (10, Poll(&[11])),
                (110, Poll(&[11])),
                (210, Poll(&[])), // given up
                (210, Recv(20)),  // 13..=19 missing: only the newest 3 are kept
                (220, Poll(&[17, 18, 19])),
            ],
        );
        assert_eq!(d.given_up, 1 + 4);
        assert_eq!(d.missing(), 3);
    }
}
