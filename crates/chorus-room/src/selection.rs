//! One subscriber's share of one video in layers (simulcast, or VP9 SVC in one stream):
//! what it asked for (`track_settings`: the size it shows the video at, whether it is
//! visible, a quality cap) turned into the most its forwarder ([`LayerForwarder`] or
//! [`SvcForwarder`]) may send; the layers arriving now turned into its target;
//! and the VP8 numbering each of its sequence numbers went out with, so that a resend
//! is the same bytes (a NACK is answered from the track's one history, see repair).

use std::time::Instant;

use chorus_core::{
    Layer, LayerDecision, LayerForwarder, LayerPacket, SpatialLayer, SvcPacket, Targeted,
    TemporalLayer, VideoForwarder, Vp8Rewrite,
};
use chorus_protocol::signal::VideoQuality;

use crate::tracks::HISTORY_LEN;
use policy::Policy;

mod policy;

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

/// A packet of a track in layers as queued for its subscribers (once, for all of them).
#[derive(Debug, Clone, Copy)]
pub struct LayeredPacket {
    pub packet: LayeredKind,
    /// The spatial layers arriving now.
    pub active: ActiveLayers,
}

/// Which kind of layers, and the packet as its policy reads it.
#[derive(Debug, Clone, Copy)]
pub enum LayeredKind {
    /// Simulcast: one SSRC per spatial layer.
    Simulcast(LayerPacket),
    /// VP9 SVC: one stream, layers told by the payload descriptor.
    Svc(SvcPacket),
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

/// One subscriber's layer forwarder for one track in layers, and what it sent.
#[derive(Debug, Clone)]
pub struct LayerSelection {
    forwarder: Policy,
    visible: bool,
    /// What the subscriber asked (`track_settings`), kept to pick the max again when
    /// an SVC track's layers change (its scalability structure).
    view: Option<ViewSettings>,
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
            forwarder: Policy::Simulcast(LayerForwarder::new(Layer::BEST)),
            visible: true,
            view: None,
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

    /// As the subscriber asked (`view`) of a track in `layers` layers whose top one is
    /// `top` (see [`ViewSettings::max_layer`]).
    pub fn set_view(&mut self, view: ViewSettings, layers: usize, top: (u32, u32)) {
        self.set_max(view.max_layer(layers, top), view.visible);
        self.view = Some(view);
    }

    /// The track's layers changed (an SVC track's new scalability structure): the max
    /// is picked again from what the subscriber asked, if it asked.
    pub fn layers_changed(&mut self, layers: usize, top: (u32, u32)) {
        if let Some(view) = self.view {
            self.set_view(view, layers, top);
        }
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
        match (&mut self.forwarder, &p.packet) {
            (Policy::Simulcast(f), LayeredKind::Simulcast(packet)) => f.forward(packet, now),
            (Policy::Svc(f), LayeredKind::Svc(packet)) => f.forward(packet, now),
            _ => {
                // The first packet tells which kind of layers (a selection may be made
                // by `track_settings` or the allocation before any arrives); then once
                // more, alike.
                self.forwarder = self.forwarder.other_kind();
                self.decide(p, now)
            }
        }
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

    /// As [`LayerSelection::may_receive`], of a VP9 SVC track the publisher may send
    /// in `layers` spatial layers up to `top`: what the subscriber asked picks among
    /// all of them, whatever the stream carries now.
    pub fn may_receive_of(&self, layers: usize, top: (u32, u32)) -> Option<SpatialLayer> {
        match self.view {
            Some(view) => self.visible.then(|| view.max_layer(layers, top)),
            None => self.may_receive(),
        }
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

    /// One VP9 picture of three spatial layers, one packet each, from `seq`.
    fn svc_picture(seq: u64, keyframe: bool) -> Vec<LayeredPacket> {
        (0..3u8)
            .map(|sid| LayeredPacket {
                packet: LayeredKind::Svc(SvcPacket {
                    seq: chorus_core::ExtSeq(seq + u64::from(sid)),
                    timestamp: chorus_core::ExtTimestamp(seq * 1000),
                    marker: sid == 2,
                    keyframe: keyframe && sid == 0,
                    layers: Some(chorus_core::SvcLayers {
                        sid,
                        tid: 0,
                        switching_up: false,
                        begins_frame: true,
                        ends_frame: true,
                    }),
                }),
                active: ActiveLayers(0b111),
            })
            .collect()
    }

    /// (seq, marker) of what goes out of `packets`.
    fn sent(s: &mut LayerSelection, packets: &[LayeredPacket]) -> Vec<(u16, bool)> {
        let now = Instant::now();
        packets
            .iter()
            .filter_map(|p| match s.decide(p, now).action {
                chorus_core::LayerAction::Forward { seq, marker, .. } => Some((seq, marker)),
                chorus_core::LayerAction::Drop(_) => None,
            })
            .collect()
    }

    #[test]
    fn an_svc_track_gets_its_spatial_layers_up_to_the_max_and_the_bandwidth_cap() {
        // Made (by track_settings) before any packet: the first SVC packet makes it SVC.
        let mut s = LayerSelection::default();
        s.set_max(SpatialLayer::MID, true);
        assert_eq!(
            sent(&mut s, &svc_picture(10, true)),
            [(10, false), (11, true)],
            "up to the max, marked at its end"
        );
        s.set_bandwidth_cap(Some(SpatialLayer::LOW));
        assert_eq!(sent(&mut s, &svc_picture(13, false)), [(12, true)]);
        // Up again only at a keyframe.
        s.set_bandwidth_cap(None);
        assert_eq!(sent(&mut s, &svc_picture(16, false)), [(13, true)]);
        assert_eq!(
            sent(&mut s, &svc_picture(19, true)),
            [(14, false), (15, true)]
        );
        // Invisible: nothing.
        s.set_max(SpatialLayer::HIGH, false);
        assert!(sent(&mut s, &svc_picture(22, true)).is_empty());
    }

    #[test]
    fn the_max_is_picked_again_when_the_layers_change() {
        // A 1280×720 tile of an SVC track that starts in two layers up to 640×360 (a
        // publisher short of bandwidth), then gets its third up to 1280×720.
        let mut s = LayerSelection::default();
        let view = settings(Some(1280), Some(720), None);
        s.set_view(view, 2, (640, 360));
        assert_eq!(s.may_receive(), Some(SpatialLayer::MID));
        // Dynacast judges it against all the layers the publisher may send: it needs
        // the third, which the stream does not carry now.
        assert_eq!(s.may_receive_of(3, (1280, 720)), Some(SpatialLayer::HIGH));
        s.layers_changed(3, (1280, 720));
        assert_eq!(s.may_receive(), Some(SpatialLayer::HIGH));
        // Without settings asked, the max stays the best.
        let mut s = LayerSelection::default();
        s.layers_changed(1, (320, 180));
        assert_eq!(s.may_receive(), Some(SpatialLayer::HIGH));
        assert_eq!(s.may_receive_of(3, (1280, 720)), Some(SpatialLayer::HIGH));
        // Invisible: nothing, however many layers.
        s.set_view(
            ViewSettings {
                visible: false,
                ..view
            },
            3,
            (1280, 720),
        );
        assert_eq!(s.may_receive_of(3, (1280, 720)), None);
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
