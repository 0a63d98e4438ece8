//! Which received video frames a decoder could show, without decoding pixels: a frame
//! counts when every packet from its first to its marker arrived (retransmissions
//! included) and so did every frame back to a keyframe, since a delta frame needs the
//! one before it. What a test reads as "the video keeps decoding".

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::seq_set::SeqSet;

/// How long the next frame may wait for a missing packet, while later ones are
/// complete, before the receiver asks for a keyframe (browsers ask after a similar
/// wait), and how often it asks again while still stuck.
const STALL_BEFORE_KEYFRAME_REQUEST: Duration = Duration::from_millis(500);

/// The frames of one received video track.
#[derive(Debug, Clone, Default)]
pub struct VideoFrames {
    /// Frames complete, with every frame back to a keyframe complete too.
    pub decoded: u64,
    /// Frames given up because a later keyframe arrived whole before they did.
    pub skipped: u64,
    /// When the last frame was counted as decoded.
    pub last_decoded_at: Option<Instant>,
    /// Extended sequence number of the first packet of the next frame to decode;
    /// `None` before the first keyframe.
    next: Option<u64>,
    /// Packets with the marker bit (the last of a frame), from `next` on.
    markers: BTreeSet<u64>,
    /// First packets of keyframes, from `next` on.
    keyframe_starts: BTreeSet<u64>,
    /// Since when the next frame waits for a packet while a later one is complete.
    stalled_since: Option<Instant>,
    /// When this track last asked for a keyframe because it was stuck.
    asked_at: Option<Instant>,
}

impl VideoFrames {
    /// Counts the packet `seq` (already in `received`); true when the receiver should
    /// ask for a keyframe now (stuck for [`STALL_BEFORE_KEYFRAME_REQUEST`], asked at
    /// most that often).
    pub(crate) fn on_packet(
        &mut self,
        now: Instant,
        seq: u64,
        marker: bool,
        keyframe_start: bool,
        received: &SeqSet,
    ) -> bool {
        if self.next.is_some_and(|next| seq < next) {
            return false;
        }
        if marker {
            self.markers.insert(seq);
        }
        if keyframe_start {
            self.keyframe_starts.insert(seq);
        }
        while let Some(next) = self.next.or_else(|| self.keyframe_starts.first().copied()) {
            self.next = Some(next);
            if let Some(end) = self.complete_frame(next, received) {
                self.decoded += 1;
                self.last_decoded_at = Some(now);
                self.next = Some(end + 1);
                continue;
            }
            let whole_keyframe = self
                .keyframe_starts
                .range(next + 1..)
                .copied()
                .find(|&start| self.complete_frame(start, received).is_some());
            let Some(start) = whole_keyframe else {
                break;
            };
            self.skipped += self.markers.range(next..start).count().max(1) as u64;
            self.next = Some(start);
        }
        if let Some(next) = self.next {
            self.markers = self.markers.split_off(&next);
            self.keyframe_starts = self.keyframe_starts.split_off(&next);
        }
        // Stuck: a frame after the next one is complete, the next one is not.
        let stuck = self.next.is_some_and(|next| {
            self.markers
                .range(next..)
                .nth(1)
                .is_some_and(|&end| received.contains(end))
        });
        if !stuck {
            self.stalled_since = None;
            return false;
        }
        let since = *self.stalled_since.get_or_insert(now);
        let due = |at: Instant| now.saturating_duration_since(at) >= STALL_BEFORE_KEYFRAME_REQUEST;
        if due(since) && self.asked_at.is_none_or(due) {
            self.asked_at = Some(now);
            return true;
        }
        false
    }

    /// The marker of the frame starting at `start` if all its packets arrived.
    fn complete_frame(&self, start: u64, received: &SeqSet) -> Option<u64> {
        let end = *self.markers.range(start..).next()?;
        (received.count_between(start.saturating_sub(1), end) == end - start + 1).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sequence number, marker, first packet of a keyframe.
    type Packet = (u64, bool, bool);

    /// Frames of `n` packets each from seq 100; frame 0 is a keyframe.
    fn frame(i: u64, n: u64) -> Vec<Packet> {
        (0..n)
            .map(|p| (100 + i * n + p, p == n - 1, i == 0 && p == 0))
            .collect()
    }

    #[test]
    fn counts_complete_frames_in_any_order_and_waits_for_holes() {
        let t0 = Instant::now();
        let cases: [(&str, Vec<Packet>, u64, u64); 5] = [
            ("in order", (0..4).flat_map(|i| frame(i, 3)).collect(), 4, 0),
            (
                "reordered within and across frames",
                [frame(1, 3), frame(0, 3), frame(2, 3)].concat(),
                3,
                0,
            ),
            (
                "a hole stops everything after it",
                (0..4)
                    .flat_map(|i| frame(i, 3))
                    .filter(|p| p.0 != 104)
                    .collect(),
                1,
                0,
            ),
            (
                "the hole filled late (a retransmission)",
                (0..4)
                    .flat_map(|i| frame(i, 3))
                    .filter(|p| p.0 != 104)
                    .chain([(104, false, false)])
                    .collect(),
                4,
                0,
            ),
            (
                "nothing before the first keyframe",
                (1..4).flat_map(|i| frame(i, 3)).collect(),
                0,
                0,
            ),
        ];
        for (name, packets, decoded, skipped) in cases {
            let mut frames = VideoFrames::default();
            let mut received = SeqSet::default();
            for (seq, marker, key) in packets {
                received.insert(seq);
                frames.on_packet(t0, seq, marker, key, &received);
            }
            assert_eq!(
                (frames.decoded, frames.skipped),
                (decoded, skipped),
                "{name}"
            );
        }
    }

    #[test]
    fn a_whole_keyframe_skips_a_lost_packet_and_a_stall_asks_for_one() {
        let t0 = Instant::now();
        let mut frames = VideoFrames::default();
        let mut received = SeqSet::default();
        let mut asked = Vec::new();
        // Frame 0 key; 104 (frame 1) lost for good; frames 2-3 complete, 100 ms apart.
        for (i, (seq, marker, key)) in (0..4).flat_map(|i| frame(i, 3)).enumerate() {
            if seq == 104 {
                continue;
            }
            let now = t0 + Duration::from_millis(100 * i as u64);
            received.insert(seq);
            if frames.on_packet(now, seq, marker, key, &received) {
                asked.push(i);
            }
        }
        assert_eq!(frames.decoded, 1);
        // Stuck from packet 8 (frame 2 complete) on; 500 ms later it asks, once.
        for (step, seq) in (200..210).enumerate() {
            let now = t0 + Duration::from_millis(800 + 100 * step as u64);
            received.insert(seq);
            if frames.on_packet(now, seq, false, false, &received) {
                asked.push(100 + step);
            }
        }
        assert_eq!(asked, [105], "asked once the stall reached 500 ms");
        // A new keyframe (seq 300-302) arrives whole: frames 1-3 are given up.
        for seq in 300..303 {
            received.insert(seq);
            frames.on_packet(
                t0 + Duration::from_secs(2),
                seq,
                seq == 302,
                seq == 300,
                &received,
            );
        }
        assert_eq!((frames.decoded, frames.skipped), (2, 3));
    }
}
