//! One subscriber's share of one simulcast video: what it asked for (`track_settings`:
//! the size it shows the video at, whether it is visible, a quality cap) turned into the
//! most its [`LayerForwarder`] may send; the layers arriving now turned into its target;
//! and the VP8 numbering each of its sequence numbers went out with, so that a resend
//! is the same bytes (a NACK is answered from the track's one history, see repair).

use std::time::Instant;

use chorus_core::{
    Layer, LayerDecision, LayerForwarder, LayerPacket, SpatialLayer, TemporalLayer, Vp8Rewrite,
};
use chorus_protocol::signal::VideoQuality;

use crate::tracks::HISTORY_LEN;

/// The top layer's size assumed while the track's resolution is unknown: a 720p camera.
pub const ASSUMED_TOP_SIZE: (u32, u32) = (1280, 720);

/// Which layers of a track are arriving now: bit `i` for layer `i`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActiveLayers(pub u8);

impl ActiveLayers {
    pub fn contains(self, l: SpatialLayer) -> bool {
        self.0 & (1 << l.index()) != 0
    }

    /// The highest layer arriving at or below `max`.
    pub fn best_up_to(self, max: SpatialLayer) -> Option<SpatialLayer> {
        (0..=max.index() as u8)
            .rev()
            .filter_map(SpatialLayer::new)
            .find(|&l| self.contains(l))
    }
}

/// A packet of a simulcast track as queued for its subscribers (once, for all of them).
#[derive(Debug, Clone, Copy)]
pub struct LayeredPacket {
    pub packet: LayerPacket,
    pub active: ActiveLayers,
}

/// What a subscriber asked for of one video (`track_settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSettings {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub visible: bool,
    pub max_quality: Option<VideoQuality>,
}

impl Default for ViewSettings {
    /// Nothing asked: the best there is.
    fn default() -> Self {
        Self {
            width: None,
            height: None,
            visible: true,
            max_quality: None,
        }
    }
}

impl ViewSettings {
    /// The most to send of a track in `layers` layers whose top layer is `top` (width,
    /// height): the smallest layer whose expected size covers the shown size, layer `i`
    /// of `n` expected at `top / 2^(n-1-i)` each side (so ¼, ½, 1 of three), sides
    /// compared longer with longer (a portrait tile of a landscape video needs the same
    /// pixels turned); then capped by `max_quality` (low: layer 0, medium: 1, high: 2)
    /// and by the layers there are. No size means no limit; one side alone is compared
    /// with the same side of the layer.
    pub fn max_layer(&self, layers: usize, top: (u32, u32)) -> SpatialLayer {
        let n = layers.clamp(1, SpatialLayer::COUNT);
        let fits = (0..n).find(|&i| {
            let shift = (n - 1 - i) as u32;
            let got = (top.0 >> shift, top.1 >> shift);
            match (self.width, self.height) {
                (None, None) => false,
                (Some(w), Some(h)) => {
                    let (want, got) = (oriented(w, h), oriented(got.0, got.1));
                    got.0 >= want.0 && got.1 >= want.1
                }
                (w, h) => got.0 >= w.unwrap_or(0) && got.1 >= h.unwrap_or(0),
            }
        });
        let mut index = fits.unwrap_or(n - 1);
        if let Some(q) = self.max_quality {
            index = index.min(q as usize);
        }
        SpatialLayer::new(index as u8).expect("capped by COUNT")
    }
}

/// (longer side, shorter side)
fn oriented(a: u32, b: u32) -> (u32, u32) {
    (a.max(b), a.min(b))
}

/// One subscriber's layer forwarder for one simulcast track, and what it sent.
#[derive(Debug, Clone)]
pub struct LayerSelection {
    forwarder: LayerForwarder,
    visible: bool,
    /// At most this layer, from the bandwidth allocation (below what was asked).
    bandwidth_cap: Option<SpatialLayer>,
    /// The VP8 numbering sent under each sequence number (slot `seq % len`), to resend
    /// the same bytes.
    sent: Box<[Option<SentVp8>]>,
}

/// A sequence number sent, and the VP8 numbering written under it (if any).
type SentVp8 = (u16, Option<Vp8Rewrite>);

impl Default for LayerSelection {
    fn default() -> Self {
        Self {
            forwarder: LayerForwarder::new(Layer::BEST),
            visible: true,
            bandwidth_cap: None,
            sent: vec![None; HISTORY_LEN].into_boxed_slice(),
        }
    }
}

impl LayerSelection {
    /// A new one; for a subscriber whose bandwidth is allocated (`allocated`), capped
    /// at the lowest layer until the allocation decides, since that is where a video
    /// new to it starts (`allocation::Allocator`): not the top layer for a moment first.
    pub fn starting(allocated: bool) -> Self {
        Self {
            bandwidth_cap: allocated.then_some(SpatialLayer::LOW),
            ..Self::default()
        }
    }

    /// At most `max` from now on; invisible pauses at once (and a keyframe restarts it).
    pub fn set_max(&mut self, max: SpatialLayer, visible: bool) {
        self.forwarder.set_max(Layer::new(max, TemporalLayer::ALL));
        if !visible {
            self.forwarder.set_target(None);
        }
        self.visible = visible;
    }

    /// What to do with one packet for this subscriber. The target is the best layer
    /// arriving within its max (or the max itself while none is: it waits for it).
    pub fn decide(&mut self, p: &LayeredPacket, now: Instant) -> LayerDecision {
        if self.visible {
            let mut max = self.forwarder.max().spatial;
            if let Some(cap) = self.bandwidth_cap {
                max = max.min(cap);
            }
            let spatial = p.active.best_up_to(max).unwrap_or(max);
            self.forwarder
                .set_target(Some(Layer::new(spatial, TemporalLayer::ALL)));
        }
        self.forwarder.forward(&p.packet, now)
    }

    /// At most `cap` (the bandwidth allocation), whatever the max; `None`: the max.
    /// Takes effect at the next packet (a switch up waits for a keyframe).
    pub fn set_bandwidth_cap(&mut self, cap: Option<SpatialLayer>) {
        self.bandwidth_cap = cap;
    }

    pub fn bandwidth_cap(&self) -> Option<SpatialLayer> {
        self.bandwidth_cap
    }

    /// Stops at once (last-N); the next [`LayerSelection::decide`] restarts it at a
    /// keyframe, which its forwarder then asks for.
    pub fn pause(&mut self) {
        self.forwarder.set_target(None);
    }

    /// The highest layer it may be sent (dynacast): its max, or none while invisible.
    pub fn may_receive(&self) -> Option<SpatialLayer> {
        self.visible.then(|| self.forwarder.max().spatial)
    }

    /// The layer it receives, or else the one it waits for; `None` when paused.
    pub fn wanted(&self) -> Option<SpatialLayer> {
        let current = self.forwarder.current().map(|l| l.spatial);
        current.or_else(|| self.forwarder.target().map(|l| l.spatial))
    }

    /// A layer is being forwarded now.
    pub fn forwarding(&self) -> bool {
        self.forwarder.current().is_some()
    }

    /// Room for `count` padding packets (a bandwidth probe) while a layer is
    /// forwarded: the first sequence number and the timestamp for them.
    pub fn insert_padding(&mut self, count: u16) -> Option<(u16, u32)> {
        self.forwarder.insert(count)
    }

    /// Notes the VP8 numbering sent as `seq`.
    pub fn record(&mut self, seq: u16, vp8: Option<Vp8Rewrite>) {
        let i = usize::from(seq) % self.sent.len();
        self.sent[i] = Some((seq, vp8));
    }

    /// The VP8 numbering sent as `seq`, if remembered (`Some(None)`: none to write).
    pub fn sent_as(&self, seq: u16) -> Option<Option<Vp8Rewrite>> {
        match self.sent[usize::from(seq) % self.sent.len()] {
            Some((s, vp8)) if s == seq => Some(vp8),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VideoQuality::{High, Low, Medium};

    fn settings(w: Option<u32>, h: Option<u32>, q: Option<VideoQuality>) -> ViewSettings {
        ViewSettings {
            width: w,
            height: h,
            visible: true,
            max_quality: q,
        }
    }

    #[test]
    fn the_smallest_layer_that_covers_the_shown_size_capped_by_quality() {
        // (width, height, max quality, layers) → layer; top 1280×720, so three layers
        // are expected at 320×180, 640×360, 1280×720.
        type Row = (Option<u32>, Option<u32>, Option<VideoQuality>, usize, u8);
        let table: &[Row] = &[
            (None, None, None, 3, 2),
            (Some(320), Some(180), None, 3, 0),
            (Some(100), Some(100), None, 3, 0),
            (Some(321), Some(180), None, 3, 1),
            (Some(640), Some(360), None, 3, 1),
            (Some(641), Some(360), None, 3, 2),
            (Some(1920), Some(1080), None, 3, 2),
            // Portrait tile: longer side with longer side.
            (Some(180), Some(320), None, 3, 0),
            (Some(360), Some(400), None, 3, 1),
            // One side only.
            (Some(600), None, None, 3, 1),
            (None, Some(200), None, 3, 1),
            // Quality caps.
            (None, None, Some(Low), 3, 0),
            (None, None, Some(Medium), 3, 1),
            (None, None, Some(High), 3, 2),
            (Some(1280), Some(720), Some(Medium), 3, 1),
            (Some(320), Some(180), Some(High), 3, 0),
            // Two layers: 640×360 and 1280×720.
            (Some(320), Some(180), None, 2, 0),
            (Some(700), Some(400), None, 2, 1),
            (None, None, Some(High), 2, 1),
            // One layer: always it.
            (Some(100), Some(100), None, 1, 0),
        ];
        for &(w, h, q, layers, want) in table {
            let got = settings(w, h, q).max_layer(layers, ASSUMED_TOP_SIZE);
            assert_eq!(
                got.index(),
                usize::from(want),
                "{w:?}×{h:?} {q:?} of {layers}"
            );
        }
    }

    #[test]
    fn the_target_is_the_best_arriving_layer_within_the_max() {
        let all = ActiveLayers(0b111);
        assert_eq!(all.best_up_to(SpatialLayer::MID), Some(SpatialLayer::MID));
        let no_mid = ActiveLayers(0b101);
        assert_eq!(
            no_mid.best_up_to(SpatialLayer::MID),
            Some(SpatialLayer::LOW)
        );
        assert_eq!(ActiveLayers(0b100).best_up_to(SpatialLayer::MID), None);
    }

    #[test]
    fn what_was_sent_under_a_number_is_remembered_until_overwritten() {
        let mut s = LayerSelection::default();
        let rewrite = Vp8Rewrite {
            picture_id: Some(7),
            ..Default::default()
        };
        s.record(5, Some(rewrite));
        s.record(6, None);
        assert_eq!(s.sent_as(5), Some(Some(rewrite)));
        assert_eq!(s.sent_as(6), Some(None));
        assert_eq!(s.sent_as(7), None);
        s.record(5 + HISTORY_LEN as u16, None);
        assert_eq!(s.sent_as(5), None, "its slot was reused");
    }
}
