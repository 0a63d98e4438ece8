//! The policy a layer selection holds: simulcast or VP9 SVC, each the core's forwarder
//! of that kind, asked through the same calls.

use chorus_core::{LayerForwarder, LayerTargets, SvcForwarder, Targeted, VideoForwarder};

// Both sizes are fine: the selection is boxed whole in its down track, one per
// (subscriber, track), and a box per variant would cost a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
/// The per-(subscriber, track) policy of a video in layers.
#[derive(Debug, Clone)]
pub(super) enum Policy {
    Simulcast(LayerForwarder),
    Svc(SvcForwarder),
}

impl Policy {
    /// The other kind, aiming at the same max and target, from the next keyframe.
    pub(super) fn other_kind(&self) -> Self {
        match self {
            Policy::Simulcast(f) => {
                let mut svc = SvcForwarder::new(f.max());
                svc.set_target(f.target());
                Policy::Svc(svc)
            }
            Policy::Svc(f) => {
                let mut simulcast = LayerForwarder::new(f.max());
                simulcast.set_target(f.target());
                Policy::Simulcast(simulcast)
            }
        }
    }

    pub(super) fn insert(&mut self, count: u16) -> Option<(u16, u32)> {
        match self {
            Policy::Simulcast(f) => VideoForwarder::insert(f, count),
            Policy::Svc(f) => VideoForwarder::insert(f, count),
        }
    }
}

// Max, target and current are kept alike by both kinds.
impl Targeted for Policy {
    fn targets(&self) -> &LayerTargets {
        match self {
            Policy::Simulcast(f) => f.targets(),
            Policy::Svc(f) => f.targets(),
        }
    }

    fn targets_mut(&mut self) -> &mut LayerTargets {
        match self {
            Policy::Simulcast(f) => f.targets_mut(),
            Policy::Svc(f) => f.targets_mut(),
        }
    }
}
