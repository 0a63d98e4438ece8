//! The three layers a per-subscriber forwarder of a video in layers keeps apart, the
//! same for simulcast ([`LayerForwarder`](crate::LayerForwarder)) and VP9 SVC
//! ([`SvcForwarder`](crate::SvcForwarder)):
//!
//! - the **max** the subscriber wants (what fits its tile);
//! - the **target** the room's allocation picks (bandwidth), capped by the max; none
//!   pauses at once;
//! - the **current** layers forwarded, which only the forwarder moves (toward the
//!   target, where its stream allows: a keyframe, a switching point).
//!
//! And the names of layers they are told in ([`Layer`]: a spatial layer with the temporal
//! layers up to one).

/// A spatial layer (a simulcast encoding, or a VP9 SVC spatial layer), 0 (lowest
/// resolution) to 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpatialLayer(u8);

impl SpatialLayer {
    pub const LOW: Self = Self(0);
    pub const MID: Self = Self(1);
    pub const HIGH: Self = Self(2);
    pub const COUNT: usize = 3;

    /// `None` above [`SpatialLayer::HIGH`].
    pub fn new(index: u8) -> Option<Self> {
        (usize::from(index) < Self::COUNT).then_some(Self(index))
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A temporal layer (VP8 or VP9 TID), 0 (base frame rate) to 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemporalLayer(pub(crate) u8);

impl TemporalLayer {
    pub const BASE: Self = Self(0);
    pub const ALL: Self = Self(2);

    /// `None` above [`TemporalLayer::ALL`].
    pub fn new(tid: u8) -> Option<Self> {
        (tid <= Self::ALL.0).then_some(Self(tid))
    }

    pub fn tid(self) -> u8 {
        self.0
    }
}

/// A spatial layer with the temporal layers up to and including `temporal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layer {
    pub spatial: SpatialLayer,
    pub temporal: TemporalLayer,
}

impl Layer {
    pub const BEST: Self = Self::new(SpatialLayer::HIGH, TemporalLayer::ALL);

    pub const fn new(spatial: SpatialLayer, temporal: TemporalLayer) -> Self {
        Self { spatial, temporal }
    }

    /// Each part capped by `max`.
    pub fn capped(self, max: Layer) -> Self {
        Self::new(
            self.spatial.min(max.spatial),
            self.temporal.min(max.temporal),
        )
    }
}

#[derive(Debug, Clone)]
pub struct LayerTargets {
    max: Layer,
    /// As set; [`LayerTargets::target`] caps it by `max`.
    target: Option<Layer>,
    current: Option<Layer>,
}

impl LayerTargets {
    /// Aiming at `max`, nothing forwarded yet.
    pub fn new(max: Layer) -> Self {
        Self {
            max,
            target: Some(max),
            current: None,
        }
    }

    pub fn max(&self) -> Layer {
        self.max
    }

    /// The layers to switch to, capped by the max; `None` when paused.
    pub fn target(&self) -> Option<Layer> {
        self.target.map(|t| t.capped(self.max))
    }

    /// The layers forwarded now (spatial, and the temporal cap in effect).
    pub fn current(&self) -> Option<Layer> {
        self.current
    }

    /// The most the subscriber wants (e.g. what fits its tile).
    pub fn set_max(&mut self, max: Layer) {
        self.max = max;
    }

    /// The layers the allocation wants now (capped by the max); `None` pauses at once.
    pub fn set_target(&mut self, target: Option<Layer>) {
        self.target = target;
        if target.is_none() {
            self.current = None;
        }
    }

    /// The forwarder moved (from a keyframe or switching point on).
    pub(crate) fn set_current(&mut self, current: Layer) {
        self.current = Some(current);
    }
}

/// A forwarder that keeps [`LayerTargets`]: their accessors, the same for every kind.
pub trait Targeted {
    fn targets(&self) -> &LayerTargets;
    fn targets_mut(&mut self) -> &mut LayerTargets;

    fn max(&self) -> Layer {
        self.targets().max()
    }

    /// See [`LayerTargets::target`].
    fn target(&self) -> Option<Layer> {
        self.targets().target()
    }

    fn current(&self) -> Option<Layer> {
        self.targets().current()
    }

    fn set_max(&mut self, max: Layer) {
        self.targets_mut().set_max(max);
    }

    /// See [`LayerTargets::set_target`].
    fn set_target(&mut self, target: Option<Layer>) {
        self.targets_mut().set_target(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_capped_by_the_max_and_none_pauses() {
        let mid = Layer::new(SpatialLayer::MID, TemporalLayer::new(1).unwrap());
        let mut t = LayerTargets::new(Layer::BEST);
        assert_eq!((t.target(), t.current()), (Some(Layer::BEST), None));
        t.set_current(Layer::BEST);
        t.set_max(mid);
        assert_eq!(t.target(), Some(mid), "capped");
        assert_eq!(t.current(), Some(Layer::BEST), "the forwarder moves it");
        t.set_target(Some(Layer::new(SpatialLayer::LOW, TemporalLayer::ALL)));
        let low = Layer::new(SpatialLayer::LOW, TemporalLayer::new(1).unwrap());
        assert_eq!(t.target(), Some(low), "each part capped");
        t.set_target(None);
        assert_eq!((t.target(), t.current()), (None, None), "paused at once");
    }
}
