//! The one question every video policy answers: what becomes of this packet of a track
//! for this subscriber. Three policies answer it, each with its own view of a packet:
//!
//! - [`Forwarder`]: the stream as it comes (one layer; audio too), renumbered across
//!   source changes;
//! - [`LayerForwarder`](crate::LayerForwarder): simulcast, one SSRC per spatial layer;
//! - [`SvcForwarder`](crate::SvcForwarder): VP9 spatial and temporal layers in one
//!   stream (one SSRC).
//!
//! The answer is the same value for all three ([`LayerDecision`]), so the room turns it
//! into a copy in one place. Callers hold the concrete policy (or an enum of them), so
//! dispatch is static.

use std::time::Instant;

use crate::forward::{DropReason, Forwarder, Translation};
use crate::layers::{LayerAction, LayerDecision, LayerDrop, LayerForwarder, LayerPacket};
use crate::seq::{ExtSeq, ExtTimestamp};
use crate::targets::SpatialLayer;

/// A per-(subscriber, track) video forwarder.
pub trait VideoForwarder {
    /// What the policy needs to know of one incoming packet.
    type Packet;

    /// What to do with `packet` for this subscriber, arriving at `now`: forward under
    /// these header values, or drop for a named reason; and maybe a keyframe to ask
    /// the publisher for (already throttled where the policy throttles). A policy of
    /// one stream asks for [`SpatialLayer::LOW`]: its base layer, whose keyframe is
    /// the whole stream's.
    fn forward(&mut self, packet: &Self::Packet, now: Instant) -> LayerDecision;

    /// Room for `count` padding packets after the last sent: the first number and
    /// the timestamp for them; `None` while nothing is forwarded.
    fn insert(&mut self, count: u16) -> Option<(u16, u32)>;
}

/// A packet of a stream forwarded as it comes.
#[derive(Debug, Clone, Copy)]
pub struct PlainPacket {
    pub seq: ExtSeq,
    pub timestamp: ExtTimestamp,
    pub marker: bool,
    pub keyframe: bool,
}

impl VideoForwarder for Forwarder {
    type Packet = PlainPacket;

    // Inlined into the room's per-copy path, which called `translate` before.
    #[inline]
    fn forward(&mut self, p: &PlainPacket, _now: Instant) -> LayerDecision {
        let (action, keyframe_request) =
            match self.translate(p.seq, p.timestamp, p.marker, p.keyframe) {
                Translation::Forward {
                    seq,
                    timestamp,
                    marker,
                } => (
                    LayerAction::Forward {
                        seq,
                        timestamp,
                        marker,
                        vp8: None,
                    },
                    None,
                ),
                // The room throttles these per track.
                Translation::Drop(DropReason::AwaitingKeyframe) => (
                    LayerAction::Drop(LayerDrop::AwaitingKeyframe),
                    Some(SpatialLayer::LOW),
                ),
                Translation::Drop(DropReason::BeforeSwitch) => {
                    (LayerAction::Drop(LayerDrop::BeforeSwitch), None)
                }
            };
        LayerDecision {
            action,
            keyframe_request,
        }
    }

    #[inline]
    fn insert(&mut self, count: u16) -> Option<(u16, u32)> {
        Forwarder::insert(self, count)
    }
}

// Here rather than in `layers.rs`, which the decision types come from: that module
// then needs nothing of this one. (`svc.rs` answers through private parts of its own.)
impl VideoForwarder for LayerForwarder {
    type Packet = LayerPacket;

    fn forward(&mut self, packet: &LayerPacket, now: Instant) -> LayerDecision {
        LayerForwarder::forward(self, packet, now)
    }

    fn insert(&mut self, count: u16) -> Option<(u16, u32)> {
        LayerForwarder::insert(self, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, keyframe: bool) -> PlainPacket {
        PlainPacket {
            seq: ExtSeq(seq),
            timestamp: ExtTimestamp(seq * 3000),
            marker: true,
            keyframe,
        }
    }

    /// Each policy's answers to the same question, through the trait only.
    fn answers<F: VideoForwarder>(f: &mut F, packets: &[F::Packet]) -> Vec<LayerDecision> {
        let now = Instant::now();
        packets.iter().map(|p| f.forward(p, now)).collect()
    }

    #[test]
    fn the_plain_policy_waits_for_a_keyframe_asking_for_one_then_forwards() {
        let mut f = Forwarder::video();
        assert_eq!(f.insert(1), None, "nothing sent yet");
        let got = answers(
            &mut f,
            &[packet(7, false), packet(8, true), packet(9, false)],
        );
        let want = [
            LayerDecision {
                action: LayerAction::Drop(LayerDrop::AwaitingKeyframe),
                keyframe_request: Some(SpatialLayer::LOW),
            },
            LayerDecision {
                action: LayerAction::Forward {
                    seq: 8,
                    timestamp: 24_000,
                    marker: true,
                    vp8: None,
                },
                keyframe_request: None,
            },
            LayerDecision {
                action: LayerAction::Forward {
                    seq: 9,
                    timestamp: 27_000,
                    marker: true,
                    vp8: None,
                },
                keyframe_request: None,
            },
        ];
        assert_eq!(got, want);
        assert_eq!(VideoForwarder::insert(&mut f, 2), Some((10, 27_000)));
    }
}
