//! Simulcast in: the layers of one published video, each its own RTP stream (own SSRC,
//! numbering and keyframes), told apart by rid. Until subscribers pick their own layer,
//! ONE layer goes to all of them, the highest present; the others are received, counted
//! per layer and dropped. The forwarded layer is numbered into the track's one sequence
//! (what the history, NACK repair and forwarders see), and a switch of layer continues
//! that sequence past where the last layer left it.

use std::time::{Duration, Instant};

use chorus_core::{ExtSeq, ExtTimestamp, SeqUnwrapper, TimestampUnwrapper};
use chorus_protocol::control::{LayerStats as LayerReport, SimulcastStats};

use super::layer_stats::LayerStats;

/// A layer of a simulcast track: its place in the offer's `a=simulcast` list, so 0 is
/// the lowest quality (the smallest picture) and the last the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerIndex(pub u8);

/// How long a layer may go without a packet before it no longer counts as present (a
/// browser stops sending its top layers when its bandwidth estimate falls).
pub const LAYER_TIMEOUT: Duration = Duration::from_secs(1);

/// How far past the last number given out a newly forwarded layer's numbering starts:
/// more than any reordering, so no packet of the new layer takes a number (and its
/// history entry) that one of the old layer had.
const SWITCH_SEQ_GAP: u64 = 1024;

#[derive(Debug, Clone)]
pub struct Layer {
    pub rid: String,
    /// Learned from its first packet.
    pub ssrc: Option<u32>,
    pub stats: LayerStats,
    seq: SeqUnwrapper,
    ts: TimestampUnwrapper,
    /// Added to the layer's own extended numbers to place them in the track's sequence;
    /// set anew each time the layer starts being forwarded.
    seq_base: Option<u64>,
}

/// What became of one packet of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The forwarded layer's packet, in the track's numbering; `None`: not forwarded.
    pub forward: Option<(ExtSeq, ExtTimestamp)>,
    /// The forwarded layer changed (to the one with this SSRC): subscribers switch to it
    /// at its next keyframe, which is asked for.
    pub switched_to: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Simulcast {
    layers: Vec<Layer>,
    forwarded: Option<LayerIndex>,
    /// The highest number given out in the track's sequence.
    highest: Option<u64>,
    /// Goes up at every switch of layer (see `Outgoing::source`).
    epoch: u32,
}

impl Simulcast {
    /// The layers of these rids, lowest quality first.
    pub fn new(rids: &[String]) -> Self {
        let layers = rids
            .iter()
            .map(|rid| Layer {
                rid: rid.clone(),
                ssrc: None,
                stats: LayerStats::default(),
                seq: SeqUnwrapper::default(),
                ts: TimestampUnwrapper::default(),
                seq_base: None,
            })
            .collect();
        Self {
            layers,
            forwarded: None,
            highest: None,
            epoch: 0,
        }
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn forwarded(&self) -> Option<LayerIndex> {
        self.forwarded
    }

    /// How many times the forwarded layer changed.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The SSRC of the forwarded layer: where keyframe requests go.
    pub fn forwarded_ssrc(&self) -> Option<u32> {
        self.layer(self.forwarded?)?.ssrc
    }

    /// What the control API reports of it at `now`.
    pub fn stats(&self, track_id: String, now: Instant) -> SimulcastStats {
        let layers = self.layers.iter().enumerate().map(|(i, l)| {
            let age = |at: Instant| now.saturating_duration_since(at).as_millis() as u64;
            LayerReport {
                rid: l.rid.clone(),
                index: i as u8,
                ssrc: l.ssrc,
                packets: l.stats.packets,
                bytes: l.stats.bytes,
                bitrate_bps: l.stats.bitrate_bps(now),
                fps: l.stats.fps(now),
                keyframe_age_ms: l.stats.last_keyframe_at.map(age),
            }
        });
        SimulcastStats {
            track_id,
            forwarded: self
                .forwarded
                .and_then(|i| self.layer(i))
                .map(|l| l.rid.clone()),
            layers: layers.collect(),
        }
    }

    fn layer(&self, i: LayerIndex) -> Option<&Layer> {
        self.layers.get(usize::from(i.0))
    }

    /// A packet of `layer` arrived; `None` if the track has no such layer.
    #[allow(clippy::too_many_arguments)]
    pub fn received(
        &mut self,
        layer: LayerIndex,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload_len: usize,
        keyframe: bool,
        now: Instant,
    ) -> Option<Received> {
        let l = self.layers.get_mut(usize::from(layer.0))?;
        if l.ssrc != Some(ssrc) {
            // A new stream for the layer (first packet, or the client restarted it).
            l.ssrc = Some(ssrc);
            l.seq = SeqUnwrapper::default();
            l.ts = TimestampUnwrapper::default();
            l.seq_base = None;
        }
        l.stats.record(now, payload_len, ts, keyframe);
        let own_seq = l.seq.unwrap(seq).0;
        let own_ts = l.ts.unwrap(ts);
        let switched_to = self.choose(now);
        if self.forwarded != Some(layer) {
            return Some(Received {
                forward: None,
                switched_to,
            });
        }
        let l = &mut self.layers[usize::from(layer.0)];
        let next = self.highest.map_or(own_seq, |h| h + SWITCH_SEQ_GAP);
        let base = *l.seq_base.get_or_insert(next.wrapping_sub(own_seq));
        let track_seq = own_seq.wrapping_add(base);
        self.highest = Some(self.highest.map_or(track_seq, |h| h.max(track_seq)));
        Some(Received {
            forward: Some((ExtSeq(track_seq), own_ts)),
            switched_to,
        })
    }

    /// Forwards the highest layer present; the SSRC of the layer it switched to, if it did.
    fn choose(&mut self, now: Instant) -> Option<u32> {
        let best = self
            .layers
            .iter()
            .rposition(|l| l.stats.active(now, LAYER_TIMEOUT))
            .map(|i| LayerIndex(i as u8));
        if best.is_none() || best == self.forwarded {
            return None;
        }
        if let Some(old) = self.forwarded {
            // Numbered afresh when it is forwarded again.
            self.layers[usize::from(old.0)].seq_base = None;
        }
        self.forwarded = best;
        self.epoch += 1;
        self.forwarded_ssrc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_highest_present_layer_is_forwarded_in_one_rising_sequence() {
        let t0 = Instant::now();
        let rids = ["q", "h", "f"].map(str::to_owned);
        let mut s = Simulcast::new(&rids);
        let (q, h, f) = (LayerIndex(0), LayerIndex(1), LayerIndex(2));
        // q first: forwarded, as the only one.
        let r = s.received(q, 10, 100, 0, 50, true, t0).unwrap();
        assert_eq!(r.switched_to, Some(10));
        // Numbered as a plain track would be (`SeqUnwrapper` starts a cycle up).
        assert_eq!(r.forward.map(|(s, _)| s.0), Some(65_536 + 100));
        // f arrives: the highest, it takes over; h after it is not forwarded.
        let r = s.received(f, 30, 65_535, 0, 50, true, t0 + ms(1)).unwrap();
        assert_eq!(r.switched_to, Some(30));
        let first_f = r.forward.unwrap().0.0;
        assert_eq!(first_f, 65_536 + 100 + SWITCH_SEQ_GAP);
        let r = s.received(h, 20, 7, 0, 50, true, t0 + ms(2)).unwrap();
        assert_eq!((r.forward, r.switched_to), (None, None));
        let r = s.received(q, 10, 101, 0, 50, false, t0 + ms(3)).unwrap();
        assert_eq!((r.forward, r.switched_to), (None, None));
        // f goes on across its wrap, one by one.
        let r = s.received(f, 30, 0, 3000, 50, false, t0 + ms(4)).unwrap();
        assert_eq!(r.forward.unwrap().0.0, first_f + 1);
        assert_eq!(s.forwarded(), Some(f));
        assert_eq!(s.forwarded_ssrc(), Some(30));
        // f stops: past the timeout, the next packet of h moves the track down to h,
        // numbered on past f.
        let later = t0 + LAYER_TIMEOUT + ms(10);
        let r = s.received(h, 20, 8, 3000, 50, false, later).unwrap();
        assert_eq!(r.switched_to, Some(20));
        assert_eq!(r.forward.unwrap().0.0, first_f + 1 + SWITCH_SEQ_GAP);
        // Unknown layers are no layers.
        assert!(
            s.received(LayerIndex(3), 40, 1, 1, 1, false, later)
                .is_none()
        );
        let counted: Vec<u64> = s.layers().iter().map(|l| l.stats.packets).collect();
        assert_eq!(counted, [2, 2, 2]);
    }
}
