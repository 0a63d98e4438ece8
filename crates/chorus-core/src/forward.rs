//! Per-subscriber rewriting of a forwarded stream, as decisions (values) that the
//! caller applies to the packet.
//!
//! Each subscriber sees one continuous stream per track even when the source
//! changes (a publisher reconnects, or later a simulcast layer switch): the
//! forwarder keeps an offset so that output sequence numbers continue from the
//! last one sent, with gaps from loss preserved.

use crate::seq::{ExtSeq, ExtTimestamp};

/// What to do with one packet for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Send with these header values.
    Forward {
        seq: u16,
        timestamp: u32,
        marker: bool,
    },
    /// Do not send; the reason is named, not an error.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Older than the switch point of the current source.
    BeforeSwitch,
    /// Waiting for a keyframe before starting or switching.
    AwaitingKeyframe,
}

/// Rewrites (extended) sequence numbers and timestamps of one forwarded track for one subscriber.
#[derive(Debug, Clone)]
pub struct Forwarder {
    state: Option<Offsets>,
    /// Highest output values sent, so that a new source continues after them.
    last_out: Option<(u64, u64)>,
    /// Set by [`Forwarder::switch_source`] or [`Forwarder::switch_layer`]: the next
    /// packet starts a new mapping, its timestamp placed as this says.
    resync: Option<Join>,
    /// Video must start on a keyframe; audio need not.
    needs_keyframe: bool,
    /// How far the first timestamp of a new source lands after the last one sent.
    switch_gap: u64,
}

#[derive(Debug, Clone, Copy)]
struct Offsets {
    seq: u64,
    ts: u64,
    /// First input sequence of the current source: anything older is dropped.
    first_in: u64,
    /// The last padding inserted ([`Forwarder::insert`]): the input sequence of the
    /// highest packet sent before it, and the sequence offset before it. A packet
    /// reordered from before the padding keeps the old offset, so it does not take a
    /// number the padding took.
    padded_after: Option<(u64, u64)>,
}

/// Where the first timestamp of a new source lands.
#[derive(Debug, Clone, Copy)]
enum Join {
    /// One frame after the last sent (unrelated clocks).
    FixedGap,
    /// Another simulcast layer of the same source; `elapsed` is the wall-clock time
    /// since the last packet sent, in RTP ticks.
    Layer { elapsed: u64 },
}

/// Simulcast layers are one capture, and libwebrtc stamps a frame with the same RTP
/// timestamp on every layer, so the mapping can usually stay as it is across a switch.
/// We keep it only if the gap it gives agrees with the wall clock within this much
/// (500 ms at 90 kHz): a publisher whose layers use unrelated offsets gets the wall-clock
/// gap instead, so the output never jumps or runs backwards.
const LAYER_CLOCK_TOLERANCE: u64 = 45_000;

/// Output timestamps of a new source start one frame after the last sent:
/// 1/30 s at 90 kHz for video, 20 ms at 48 kHz for Opus.
const VIDEO_SWITCH_GAP: u64 = 3000;
const AUDIO_SWITCH_GAP: u64 = 960;

impl Forwarder {
    /// A forwarder for video: nothing goes out before the first keyframe.
    pub fn video() -> Self {
        Self {
            state: None,
            last_out: None,
            resync: None,
            needs_keyframe: true,
            switch_gap: VIDEO_SWITCH_GAP,
        }
    }

    /// A forwarder for audio: every packet goes out.
    pub fn audio() -> Self {
        Self {
            needs_keyframe: false,
            switch_gap: AUDIO_SWITCH_GAP,
            ..Self::video()
        }
    }

    /// The next packet comes from a different stream; map it to continue the output.
    pub fn switch_source(&mut self, is_video: bool) {
        self.resync = Some(Join::FixedGap);
        self.needs_keyframe = is_video;
    }

    /// The next packet is a keyframe of another simulcast layer of the same video
    /// (or the same layer after a pause); `elapsed` is the time since the last packet
    /// sent, in RTP ticks. Sequence numbers continue after the last sent; the timestamp
    /// mapping is kept if the layers share the clock (see [`LAYER_CLOCK_TOLERANCE`]).
    pub fn switch_layer(&mut self, elapsed: u64) {
        self.resync = Some(Join::Layer { elapsed });
        self.needs_keyframe = true;
    }

    /// Something went out: [`Forwarder::insert`] has a number to go on from.
    pub fn has_sent(&self) -> bool {
        self.last_out.is_some() && self.state.is_some()
    }

    /// Makes room for `count` packets of the sender's own (padding) right after the
    /// last one sent: returns the first of their sequence numbers and the timestamp
    /// they carry (the last one sent); every packet forwarded after them is numbered
    /// `count` higher, so the subscriber sees one unbroken sequence. `None` before
    /// anything went out.
    pub fn insert(&mut self, count: u16) -> Option<(u16, u32)> {
        let (seq, ts) = self.last_out?;
        let offsets = self.state.as_mut()?;
        // Only the last insertion is remembered: a packet from before the one ahead
        // of it (a second or more late) is dropped as too old.
        if let Some((earlier, _)) = offsets.padded_after {
            offsets.first_in = offsets.first_in.max(earlier + 1);
        }
        offsets.padded_after = Some((seq.wrapping_sub(offsets.seq), offsets.seq));
        offsets.seq = offsets.seq.wrapping_add(u64::from(count));
        self.last_out = Some((seq + u64::from(count), ts));
        Some(((seq + 1) as u16, ts as u32))
    }

    pub fn translate(
        &mut self,
        seq: ExtSeq,
        ts: ExtTimestamp,
        marker: bool,
        keyframe: bool,
    ) -> Translation {
        if self.needs_keyframe {
            if !keyframe {
                return Translation::Drop(DropReason::AwaitingKeyframe);
            }
            self.needs_keyframe = false;
        }
        if self.resync.is_some() || self.state.is_none() {
            let join = self.resync.take().unwrap_or(Join::FixedGap);
            let (seq_off, ts_off) = match self.last_out {
                // Continue right after the last packet sent.
                Some((s, t)) => (
                    (s + 1).wrapping_sub(seq.0),
                    (t + self.timestamp_gap(join, ts, t)).wrapping_sub(ts.0),
                ),
                None => (0, 0),
            };
            self.state = Some(Offsets {
                seq: seq_off,
                ts: ts_off,
                first_in: seq.0,
                padded_after: None,
            });
        }
        let o = self.state.expect("set above");
        if seq.0 < o.first_in {
            return Translation::Drop(DropReason::BeforeSwitch);
        }
        let seq_offset = match o.padded_after {
            Some((last_before, offset)) if seq.0 <= last_before => offset,
            _ => o.seq,
        };
        let out_seq = seq.0.wrapping_add(seq_offset);
        let out_ts = ts.0.wrapping_add(o.ts);
        match &mut self.last_out {
            Some((s, t)) => {
                *s = (*s).max(out_seq);
                *t = (*t).max(out_ts);
            }
            None => self.last_out = Some((out_seq, out_ts)),
        }
        Translation::Forward {
            seq: out_seq as u16,
            timestamp: out_ts as u32,
            marker,
        }
    }

    /// How far after the last timestamp sent (`last`) a new source's first one (`ts`) goes.
    fn timestamp_gap(&self, join: Join, ts: ExtTimestamp, last: u64) -> u64 {
        let Join::Layer { elapsed } = join else {
            return self.switch_gap;
        };
        // Compared on the wire (32 bits): each layer's timestamps are extended on their
        // own, so their extended values may differ by whole cycles.
        let kept = self
            .state
            .map(|o| (ts.0.wrapping_add(o.ts) as u32).wrapping_sub(last as u32) as i32);
        let gap = match kept {
            Some(k) if k >= 0 && (k as u64).abs_diff(elapsed) <= LAYER_CLOCK_TOLERANCE => k as u64,
            _ => elapsed,
        };
        // A new frame, never the same timestamp as the last one sent.
        gap.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(f: &mut Forwarder, seq: u64, ts: u64, key: bool) -> Translation {
        f.translate(ExtSeq(seq), ExtTimestamp(ts), false, key)
    }

    fn out(seq: u16, timestamp: u32) -> Translation {
        Translation::Forward {
            seq,
            timestamp,
            marker: false,
        }
    }

    #[test]
    fn audio_passes_through_unchanged() {
        let mut f = Forwarder::audio();
        let cases = [
            (100, 960, out(100, 960)),
            (101, 1920, out(101, 1920)),
            (103, 3840, out(103, 3840)),
        ];
        for (seq, ts, want) in cases {
            assert_eq!(fwd(&mut f, seq, ts, false), want);
        }
    }

    #[test]
    fn video_waits_for_keyframe() {
        let mut f = Forwarder::video();
        let cases = [
            (
                10,
                0,
                false,
                Translation::Drop(DropReason::AwaitingKeyframe),
            ),
            (
                11,
                0,
                false,
                Translation::Drop(DropReason::AwaitingKeyframe),
            ),
            (12, 3000, true, out(12, 3000)),
            (13, 3000, false, out(13, 3000)),
        ];
        for (seq, ts, key, want) in cases {
            assert_eq!(fwd(&mut f, seq, ts, key), want, "seq {seq}");
        }
    }

    #[test]
    fn switch_continues_output_without_gap() {
        let mut f = Forwarder::audio();
        assert_eq!(fwd(&mut f, 500, 10_000, false), out(500, 10_000));
        assert_eq!(fwd(&mut f, 501, 10_960, false), out(501, 10_960));
        f.switch_source(false);
        // The new source has unrelated numbers; the output continues at 502, one
        // 20 ms frame later, as if nothing had been lost.
        assert_eq!(fwd(&mut f, 9000, 777, false), out(502, 10_960 + 960));
        assert_eq!(fwd(&mut f, 9001, 1737, false), out(503, 10_960 + 1920));
        // A late packet from before the switch point is dropped.
        assert_eq!(
            fwd(&mut f, 8999, 0, false),
            Translation::Drop(DropReason::BeforeSwitch)
        );
    }

    #[test]
    fn inserted_packets_shift_what_follows() {
        let mut f = Forwarder::video();
        assert_eq!(f.insert(3), None, "nothing sent yet");
        assert_eq!(fwd(&mut f, 10, 3000, true), out(10, 3000));
        assert_eq!(fwd(&mut f, 12, 6000, false), out(12, 6000));
        // Three of its own after 12, on the last timestamp: 13, 14, 15.
        assert_eq!(f.insert(3), Some((13, 6000)));
        // The next forwarded ones follow them, a gap from loss kept.
        assert_eq!(fwd(&mut f, 13, 9000, false), out(16, 9000));
        assert_eq!(fwd(&mut f, 15, 9000, false), out(18, 9000));
        // 11, reordered from before the padding, keeps its number, not a padding's.
        assert_eq!(fwd(&mut f, 11, 3000, false), out(11, 3000));
        // After a second insertion (19), one from between the two still fits...
        assert_eq!(f.insert(1), Some((19, 9000)));
        assert_eq!(fwd(&mut f, 14, 9000, false), out(17, 9000));
        // ...and one from before the first is too old.
        assert_eq!(
            fwd(&mut f, 12, 6000, false),
            Translation::Drop(DropReason::BeforeSwitch)
        );
        assert_eq!(fwd(&mut f, 16, 9000, false), out(20, 9000));
        // A switch continues after the highest, inserted ones included.
        assert_eq!(f.insert(1), Some((21, 9000)));
        f.switch_source(true);
        assert_eq!(
            fwd(&mut f, 500, 0, true),
            out(22, 9000 + VIDEO_SWITCH_GAP as u32)
        );
    }

    #[test]
    fn output_wraps_on_the_wire() {
        let mut f = Forwarder::audio();
        assert_eq!(
            fwd(&mut f, 65_535, u32::MAX as u64, false),
            out(65_535, u32::MAX)
        );
        assert_eq!(fwd(&mut f, 65_536, u32::MAX as u64 + 1, false), out(0, 0));
    }

    #[test]
    fn layer_switch_keeps_a_shared_clock_else_follows_the_wall_clock() {
        // (new layer's first seq and extended ts, elapsed ticks, expected output)
        let cases = [
            (
                7000,
                99_000,
                2970,
                out(102, 99_000),
                "shared clock: mapping kept",
            ),
            (
                7000,
                5_000_000,
                2970,
                out(102, 95_970),
                "unrelated clock: wall clock",
            ),
            (
                7000,
                93_000,
                100,
                out(102, 93_001),
                "same frame time: one tick later",
            ),
            (
                7000,
                90_000,
                2970,
                out(102, 95_970),
                "kept would go backwards",
            ),
            (
                7000,
                (1 << 32) + 99_000,
                5940,
                out(102, 99_000),
                "another extension cycle, same wire clock",
            ),
        ];
        for (seq, ts, elapsed, want, what) in cases {
            let mut f = Forwarder::video();
            assert_eq!(fwd(&mut f, 100, 90_000, true), out(100, 90_000));
            assert_eq!(fwd(&mut f, 101, 93_000, false), out(101, 93_000));
            f.switch_layer(elapsed);
            assert_eq!(
                fwd(&mut f, seq, ts, false),
                Translation::Drop(DropReason::AwaitingKeyframe),
                "{what}"
            );
            assert_eq!(fwd(&mut f, seq, ts, true), want, "{what}");
        }
    }
}
