//! A small per-talker jitter queue: packets ordered by extended sequence number,
//! bounded in length, played out one per tick.
//!
//! There is no fixed target delay. An underrun conceals a frame and waits for the late
//! packet (the queue grows to absorb the network's jitter); an overflow drops the
//! oldest packet; a queue that has stayed deeper than needed for a second drops one
//! packet, so latency comes back down after a burst.

use std::collections::VecDeque;

/// Gaps up to this many packets are concealed one frame each; larger ones are
/// skipped over (the sender restarted or we joined late).
const MAX_CONCEALED_GAP: u64 = 2;
/// Ticks with at least two packets waiting before one is dropped to cut latency.
const DRAIN_AFTER_TICKS: u32 = 50;

/// What [`JitterQueue::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    Queued,
    /// Queued, and the oldest packet was dropped to bound latency.
    QueuedDroppedOldest,
    Duplicate,
    /// Its turn has passed.
    TooOld,
}

/// What to play at this tick.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Playout {
    Packet(Vec<u8>),
    /// The next packet in sequence is missing but later ones are here: conceal it.
    Missing,
    /// Nothing queued.
    Empty,
}

#[derive(Debug)]
pub(crate) struct JitterQueue {
    capacity: usize,
    packets: VecDeque<(u64, Vec<u8>)>,
    /// Sequence number of the packet due next, once the first one was played.
    next_seq: Option<u64>,
    /// Frames played out (concealed) while the queue was empty, since the last packet.
    covered: u64,
    deep_ticks: u32,
    /// Packets dropped because they had waited too long (drain; overflows are
    /// reported by `insert`).
    pub(crate) drained: u64,
}

impl JitterQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            packets: VecDeque::with_capacity(capacity.max(1) + 1),
            next_seq: None,
            covered: 0,
            deep_ticks: 0,
            drained: 0,
        }
    }

    pub(crate) fn insert(&mut self, seq: u64, payload: &[u8]) -> Insert {
        if self.next_seq.is_some_and(|next| seq < next) {
            return Insert::TooOld;
        }
        // Packets mostly arrive in order: search from the back.
        let pos = self
            .packets
            .iter()
            .rposition(|&(s, _)| s <= seq)
            .map_or(0, |i| i + 1);
        if pos > 0 && self.packets[pos - 1].0 == seq {
            return Insert::Duplicate;
        }
        self.packets.insert(pos, (seq, payload.to_vec()));
        if self.packets.len() > self.capacity {
            self.packets.pop_front();
            self.next_seq = self.packets.front().map(|&(s, _)| s);
            self.covered = 0;
            return Insert::QueuedDroppedOldest;
        }
        Insert::Queued
    }

    /// The frame to play at this tick.
    pub(crate) fn pop(&mut self) -> Playout {
        let out = match self.packets.front() {
            None => {
                if self.next_seq.is_some() {
                    self.covered += 1;
                }
                Playout::Empty
            }
            Some(&(seq, _)) => {
                let mut expected = self.next_seq.unwrap_or(seq);
                if seq > expected {
                    // Frames concealed while we waited already stand in for the
                    // missing packets: do not conceal them twice.
                    let skip = (seq - expected).min(self.covered);
                    self.covered -= skip;
                    expected += skip;
                }
                if seq > expected && seq - expected <= MAX_CONCEALED_GAP {
                    self.next_seq = Some(expected + 1);
                    Playout::Missing
                } else {
                    self.next_seq = Some(seq + 1);
                    self.covered = 0;
                    self.packets
                        .pop_front()
                        .map_or(Playout::Empty, |(_, p)| Playout::Packet(p))
                }
            }
        };
        self.drain();
        out
    }

    fn drain(&mut self) {
        if self.packets.len() < 2 {
            self.deep_ticks = 0;
            return;
        }
        self.deep_ticks += 1;
        if self.deep_ticks >= DRAIN_AFTER_TICKS {
            self.deep_ticks = 0;
            self.packets.pop_front();
            self.drained += 1;
            self.next_seq = self.packets.front().map(|&(s, _)| s);
            self.covered = 0;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }

    #[cfg(test)]
    fn seqs(&self) -> Vec<u64> {
        self.packets.iter().map(|&(s, _)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Op {
        Push(u64, Insert),
        /// Pop, expecting a packet with this seq, `None` for a concealed gap.
        Pop(Option<u64>),
        PopEmpty,
    }
    use Op::*;

    #[test]
    fn scenarios() {
        // (name, capacity, ops, queue left)
        let cases: Vec<(&str, usize, Vec<Op>, Vec<u64>)> = vec![
            (
                "in order",
                4,
                vec![
                    Push(10, Insert::Queued),
                    Push(11, Insert::Queued),
                    Pop(Some(10)),
                    Pop(Some(11)),
                    PopEmpty,
                ],
                vec![],
            ),
            (
                "reordered packets come out in order",
                4,
                vec![
                    Push(12, Insert::Queued),
                    Push(10, Insert::Queued),
                    Push(11, Insert::Queued),
                    Pop(Some(10)),
                    Pop(Some(11)),
                    Pop(Some(12)),
                ],
                vec![],
            ),
            (
                "duplicates are dropped",
                4,
                vec![
                    Push(10, Insert::Queued),
                    Push(10, Insert::Duplicate),
                    Pop(Some(10)),
                    Push(10, Insert::TooOld),
                ],
                vec![],
            ),
            (
                "a lost packet is concealed once, then play resumes",
                4,
                vec![
                    Push(10, Insert::Queued),
                    Pop(Some(10)),
                    Push(12, Insert::Queued),
                    Pop(None),
                    Pop(Some(12)),
                    Push(11, Insert::TooOld),
                ],
                vec![],
            ),
            (
                "an underrun waits for the late packet instead of skipping it",
                4,
                vec![
                    Push(10, Insert::Queued),
                    Pop(Some(10)),
                    PopEmpty,
                    Push(11, Insert::Queued),
                    Pop(Some(11)),
                ],
                vec![],
            ),
            (
                "a packet lost while the queue was empty is concealed once, not twice",
                4,
                vec![
                    Push(10, Insert::Queued),
                    Pop(Some(10)),
                    PopEmpty,
                    Push(12, Insert::Queued),
                    Pop(Some(12)),
                ],
                vec![],
            ),
            (
                "a large gap is skipped, not concealed frame by frame",
                4,
                vec![
                    Push(10, Insert::Queued),
                    Pop(Some(10)),
                    Push(500, Insert::Queued),
                    Pop(Some(500)),
                ],
                vec![],
            ),
            (
                "overflow drops the oldest",
                2,
                vec![
                    Push(10, Insert::Queued),
                    Push(11, Insert::Queued),
                    Push(12, Insert::QueuedDroppedOldest),
                    Pop(Some(11)),
                ],
                vec![12],
            ),
        ];
        for (name, capacity, ops, left) in cases {
            let mut q = JitterQueue::new(capacity);
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Push(seq, want) => {
                        assert_eq!(q.insert(seq, &[seq as u8]), want, "{name}: op {i}")
                    }
                    Pop(Some(seq)) => {
                        assert_eq!(q.pop(), Playout::Packet(vec![seq as u8]), "{name}: op {i}")
                    }
                    Pop(None) => assert_eq!(q.pop(), Playout::Missing, "{name}: op {i}"),
                    PopEmpty => assert_eq!(q.pop(), Playout::Empty, "{name}: op {i}"),
                }
            }
            assert_eq!(q.seqs(), left, "{name}");
        }
    }

    #[test]
    fn standing_latency_is_drained() {
        // A burst leaves three packets waiting; with one in and one out per tick the
        // queue would keep that delay forever. The drain brings it down.
        let mut q = JitterQueue::new(4);
        for seq in 0..3 {
            q.insert(seq, &[0]);
        }
        let mut max_len_late = 0;
        for tick in 0..200u64 {
            q.insert(3 + tick, &[0]);
            q.pop();
            if tick >= 150 {
                max_len_late = max_len_late.max(q.packets.len());
            }
        }
        assert_eq!(max_len_late, 1, "drained {}", q.drained);
    }
}
