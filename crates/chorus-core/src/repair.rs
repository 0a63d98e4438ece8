//! Loss repair on the sending side: ONE packet history per published track, shared by
//! every subscriber, and per subscriber a small map from the sequence numbers it was
//! sent to what they carried. A NACK from a subscriber is answered by rebuilding exactly
//! the packet it was sent the first time (same source packet, same header values):
//! never different bytes under one SSRC and sequence number, which with AES-GCM would
//! reuse a nonce. Memory grows with tracks, not with tracks × subscribers.

use std::time::{Duration, Instant};

use crate::seq::ExtSeq;

/// The last packets of one published track, by extended sequence number.
#[derive(Debug, Clone)]
pub struct PacketHistory<P> {
    slots: Vec<Option<(ExtSeq, P)>>,
}

impl<P> PacketHistory<P> {
    /// Keeps the last `capacity` sequence numbers (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        Self {
            slots: (0..capacity).map(|_| None).collect(),
        }
    }

    fn slot(&self, seq: ExtSeq) -> usize {
        (seq.0 as usize) & (self.slots.len() - 1)
    }

    /// Stores a packet; it replaces whatever was `capacity` sequence numbers older.
    pub fn insert(&mut self, seq: ExtSeq, packet: P) {
        let i = self.slot(seq);
        self.slots[i] = Some((seq, packet));
    }

    /// The packet kept whose extended number ends in the 32 bits `low`, with that number:
    /// a subscriber's map keeps only the low bits (the history is far shorter than 2³²).
    pub fn find_low32(&self, low: u32) -> Option<(ExtSeq, &P)> {
        match &self.slots[(low as usize) & (self.slots.len() - 1)] {
            Some((s, p)) if s.0 as u32 == low => Some((*s, p)),
            _ => None,
        }
    }

    /// The packet sent as `seq`, if it is still kept.
    pub fn get(&self, seq: ExtSeq) -> Option<&P> {
        match &self.slots[self.slot(seq)] {
            Some((s, p)) if *s == seq => Some(p),
            _ => None,
        }
    }
}

/// What one subscriber was sent under one of its sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The source packet (in the published track's numbering).
    pub source: ExtSeq,
    pub timestamp: u32,
    pub marker: bool,
}

/// How a NACKed sequence number is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Send again exactly what was sent: this source packet with these header values.
    Resend { seq: u16, sent: Sent },
    /// Resent a moment ago: another copy now would likely cross the first.
    TooSoon,
    /// Never sent under that number, or forgotten since.
    Unknown,
    /// The subscriber's map knows it, the track's history no longer has the packet.
    Expired,
}

/// One slot, laid out in 16 bytes (a `Sent` and an `Option<Instant>` took 40): the source
/// packet by the low 32 bits of its number (the history finds the rest), the resend time
/// in milliseconds after the map's first resend (wrapping: only gaps of well under 49
/// days are ever compared).
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    source: u32,
    resent_ms: u32,
    timestamp: u32,
    seq: u16,
    flags: u8,
}

const RECORDED: u8 = 1;
const MARKER: u8 = 2;
const RESENT: u8 = 4;

/// One subscriber's sent sequence numbers → what they carried, for the last `capacity`.
#[derive(Debug, Clone)]
pub struct NackMap {
    slots: Vec<Entry>,
    /// Least time between two copies of one packet.
    resend_gap: Duration,
    /// What resend times count from: the first one (the room's clock only goes forward).
    epoch: Option<Instant>,
}

impl NackMap {
    pub const DEFAULT_RESEND_GAP: Duration = Duration::from_millis(100);

    pub fn new(capacity: usize, resend_gap: Duration) -> Self {
        let capacity = capacity.clamp(1, 1 << 15).next_power_of_two();
        Self {
            slots: vec![Entry::default(); capacity],
            resend_gap,
            epoch: None,
        }
    }

    fn slot(&self, seq: u16) -> usize {
        usize::from(seq) & (self.slots.len() - 1)
    }

    /// Notes what went out as `seq`.
    pub fn record(&mut self, seq: u16, sent: Sent) {
        let i = self.slot(seq);
        self.slots[i] = Entry {
            source: sent.source.0 as u32,
            resent_ms: 0,
            timestamp: sent.timestamp,
            seq,
            flags: RECORDED | if sent.marker { MARKER } else { 0 },
        };
    }

    /// How to answer a NACK of `seq` at `now`, given the track's history.
    pub fn repair<P>(&mut self, seq: u16, history: &PacketHistory<P>, now: Instant) -> Repair {
        let gap = self.resend_gap.as_millis();
        let i = self.slot(seq);
        let entry = &mut self.slots[i];
        if entry.flags & RECORDED == 0 || entry.seq != seq {
            return Repair::Unknown;
        }
        let Some((source, _)) = history.find_low32(entry.source) else {
            return Repair::Expired;
        };
        let epoch = *self.epoch.get_or_insert(now);
        let now_ms = now.saturating_duration_since(epoch).as_millis() as u32;
        if entry.flags & RESENT != 0 && u128::from(now_ms.wrapping_sub(entry.resent_ms)) < gap {
            return Repair::TooSoon;
        }
        entry.flags |= RESENT;
        entry.resent_ms = now_ms;
        Repair::Resend {
            seq,
            sent: Sent {
                source,
                timestamp: entry.timestamp,
                marker: entry.flags & MARKER != 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(source: u64) -> Sent {
        Sent {
            source: ExtSeq(source),
            timestamp: source as u32 * 3000,
            marker: source.is_multiple_of(4),
        }
    }

    #[test]
    fn the_history_keeps_the_last_packets_by_extended_number() {
        let mut h = PacketHistory::new(3); // rounds up to 4
        for s in 10..16u64 {
            h.insert(ExtSeq(s), s * 100);
        }
        // (asked, kept?)
        let cases = [
            (11, None),
            (12, Some(1200)),
            (15, Some(1500)),
            (16, None),
            (65_548, None),
        ];
        for (seq, want) in cases {
            assert_eq!(h.get(ExtSeq(seq)).copied(), want, "seq {seq}");
        }
    }

    #[test]
    fn a_map_finds_source_numbers_past_32_bits() {
        let far = ExtSeq((3 << 32) | 7);
        let mut history = PacketHistory::new(8);
        history.insert(far, ());
        assert_eq!(history.find_low32(7), Some((far, &())));
        assert_eq!(history.find_low32(15), None, "same slot, other number");
        let mut map = NackMap::new(8, Duration::from_millis(100));
        let first = Sent {
            source: far,
            timestamp: 9,
            marker: true,
        };
        map.record(3, first);
        let now = Instant::now();
        let want = Repair::Resend {
            seq: 3,
            sent: first,
        };
        assert_eq!(map.repair(3, &history, now), want);
    }

    #[test]
    fn a_slot_takes_16_bytes() {
        // 512 of them per video track per subscriber.
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn a_nack_is_answered_with_what_was_sent_once_per_gap() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut history = PacketHistory::new(8);
        for s in 100..108u64 {
            history.insert(ExtSeq(s), ());
        }
        let mut map = NackMap::new(16, Duration::from_millis(100));
        // The subscriber's numbering wraps while the source's does not.
        map.record(65_535, sent(100));
        map.record(0, sent(101));
        map.record(1, sent(90)); // a source packet the history has dropped
        // (nacked seq, at ms, answer)
        let cases = [
            (
                65_535,
                0,
                Repair::Resend {
                    seq: 65_535,
                    sent: sent(100),
                },
            ),
            (65_535, 50, Repair::TooSoon),
            (
                0,
                50,
                Repair::Resend {
                    seq: 0,
                    sent: sent(101),
                },
            ),
            (
                65_535,
                100,
                Repair::Resend {
                    seq: 65_535,
                    sent: sent(100),
                },
            ),
            (1, 100, Repair::Expired),
            (2, 100, Repair::Unknown),
            // 16 slots: seq 16 shares slot 0 but is not what was sent as 0.
            (16, 100, Repair::Unknown),
        ];
        for (i, (seq, at, want)) in cases.into_iter().enumerate() {
            assert_eq!(map.repair(seq, &history, ms(at)), want, "case {i}");
        }
        // A newer packet in the same slot replaces the old entry.
        map.record(16, sent(106));
        assert_eq!(map.repair(0, &history, ms(500)), Repair::Unknown);
        assert_eq!(
            map.repair(16, &history, ms(500)),
            Repair::Resend {
                seq: 16,
                sent: sent(106)
            }
        );
    }
}
