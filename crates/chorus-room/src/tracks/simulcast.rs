//! Simulcast in: the layers of one published video, each its own RTP stream (own SSRC,
//! numbering and keyframes), told apart by rid. Every layer's packets are queued for
//! the subscribers, each in its layer's own (unwrapped) numbering, and each subscriber's
//! layer forwarder picks its layer (`selection.rs`). The track keeps all layers' packets
//! in one history, numbered in arrival order, for NACK repair; which layers are
//! arriving now (a browser stops its top layers when short of bandwidth), and per layer
//! the throttle of keyframe requests.

use std::time::{Duration, Instant};

use chorus_core::{
    ExtSeq, ExtTimestamp, KeyframeThrottle, SeqUnwrapper, SpatialLayer, TimestampUnwrapper,
};
use chorus_protocol::control::SimulcastStats;

use super::layer_stats::LayerStats;
use crate::selection::ActiveLayers;

/// A layer of a simulcast track: its place in the offer's `a=simulcast` list, so 0 is
/// the lowest quality (the smallest picture) and the last the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LayerIndex(pub u8);

impl LayerIndex {
    /// The spatial layer it is to subscribers' forwarders; `None` past the third.
    pub fn spatial(self) -> Option<SpatialLayer> {
        SpatialLayer::new(self.0)
    }
}

/// How long a layer may go without a packet before it no longer counts as present (a
/// browser stops sending its top layers when its bandwidth estimate falls).
pub const LAYER_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Layer {
    pub rid: String,
    /// Learned from its first packet.
    pub ssrc: Option<u32>,
    pub stats: LayerStats,
    seq: SeqUnwrapper,
    ts: TimestampUnwrapper,
    /// Keyframe requests to this layer, however many subscribers wait for it.
    keyframes: KeyframeThrottle,
}

/// One packet of a layer, as subscribers' forwarders and the history take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// In the layer's own numbering.
    pub seq: ExtSeq,
    pub ts: ExtTimestamp,
    /// Its place in the track's history: all layers' packets in arrival order.
    pub index: ExtSeq,
    /// The layers arriving now, this one included.
    pub active: ActiveLayers,
    /// The highest layer arriving changed (to the one with this SSRC).
    pub switched_to: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Simulcast {
    layers: Vec<Layer>,
    /// The highest layer arriving: what a subscriber that set no limit receives.
    forwarded: Option<LayerIndex>,
    /// The next history index.
    next_index: u64,
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
                keyframes: KeyframeThrottle::default(),
            })
            .collect();
        Self {
            layers,
            forwarded: None,
            next_index: 0,
        }
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The highest layer arriving.
    pub fn forwarded(&self) -> Option<LayerIndex> {
        self.forwarded
    }

    /// The SSRC of the highest layer arriving.
    pub fn forwarded_ssrc(&self) -> Option<u32> {
        self.layer(self.forwarded?)?.ssrc
    }

    /// The SSRC to ask for a keyframe of `layer` at `now`; `None` if one was asked for
    /// a moment ago (or the layer has not arrived yet).
    pub fn keyframe_due(&mut self, layer: LayerIndex, now: Instant) -> Option<u32> {
        let l = self.layers.get_mut(usize::from(layer.0))?;
        let ssrc = l.ssrc?;
        l.keyframes.should_send(now).then_some(ssrc)
    }

    /// What the control API reports of it at `now`.
    pub fn stats(&self, track_id: String, now: Instant) -> SimulcastStats {
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| l.stats.report(l.rid.clone(), i as u8, l.ssrc, now));
        SimulcastStats {
            track_id,
            forwarded: self
                .forwarded
                .and_then(|i| self.layer(i))
                .map(|l| l.rid.clone()),
            layers: layers.collect(),
            svc: false,
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
        }
        l.stats.record(now, payload_len, ts, keyframe);
        let seq = l.seq.unwrap(seq);
        let ts = l.ts.unwrap(ts);
        let index = ExtSeq(self.next_index);
        self.next_index += 1;
        let switched_to = self.choose(now);
        Some(Received {
            seq,
            ts,
            index,
            active: self.active(now),
            switched_to,
        })
    }

    /// The layers arriving at `now`.
    fn active(&self, now: Instant) -> ActiveLayers {
        let bits = self.layers.iter().take(SpatialLayer::COUNT).enumerate();
        ActiveLayers(
            bits.filter(|(_, l)| l.stats.active(now, LAYER_TIMEOUT))
                .fold(0, |m, (i, _)| m | 1 << i),
        )
    }

    /// Notes the highest layer arriving; the SSRC of the new one, if it changed.
    fn choose(&mut self, now: Instant) -> Option<u32> {
        let best = self
            .layers
            .iter()
            .rposition(|l| l.stats.active(now, LAYER_TIMEOUT))
            .map(|i| LayerIndex(i as u8));
        if best.is_none() || best == self.forwarded {
            return None;
        }
        self.forwarded = best;
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
    fn every_layer_is_numbered_on_its_own_and_kept_in_arrival_order() {
        let t0 = Instant::now();
        let rids = ["q", "h", "f"].map(str::to_owned);
        let mut s = Simulcast::new(&rids);
        let (q, h, f) = (LayerIndex(0), LayerIndex(1), LayerIndex(2));
        let r = s.received(q, 10, 100, 0, 50, true, t0).unwrap();
        assert_eq!(
            (r.switched_to, r.index.0, r.active),
            (Some(10), 0, ActiveLayers(1))
        );
        // Numbered as a plain track would be (`SeqUnwrapper` starts a cycle up).
        assert_eq!(r.seq.0, 65_536 + 100);
        // f arrives: the highest; h after it changes nothing of that.
        let r = s.received(f, 30, 65_535, 0, 50, true, t0 + ms(1)).unwrap();
        assert_eq!((r.switched_to, r.index.0), (Some(30), 1));
        assert_eq!(r.seq.0, 65_536 + 65_535);
        let r = s.received(h, 20, 7, 0, 50, true, t0 + ms(2)).unwrap();
        assert_eq!((r.switched_to, r.index.0), (None, 2));
        assert_eq!(r.active, ActiveLayers(0b111));
        // f goes on across its wrap.
        let r = s.received(f, 30, 0, 3000, 50, false, t0 + ms(4)).unwrap();
        assert_eq!(r.seq.0, 2 * 65_536);
        assert_eq!(s.forwarded(), Some(f));
        assert_eq!(s.forwarded_ssrc(), Some(30));
        // f stops: past the timeout, h is the highest arriving.
        let later = t0 + LAYER_TIMEOUT + ms(10);
        let r = s.received(h, 20, 8, 3000, 50, false, later).unwrap();
        assert_eq!((r.switched_to, r.active), (Some(20), ActiveLayers(0b010)));
        // Keyframe requests are throttled per layer.
        assert_eq!(s.keyframe_due(f, later), Some(30));
        assert_eq!(s.keyframe_due(f, later), None);
        assert_eq!(s.keyframe_due(h, later), Some(20));
        // Unknown layers are no layers.
        assert!(
            s.received(LayerIndex(3), 40, 1, 1, 1, false, later)
                .is_none()
        );
        let counted: Vec<u64> = s.layers().iter().map(|l| l.stats.packets).collect();
        assert_eq!(counted, [1, 2, 2]);
    }
}
