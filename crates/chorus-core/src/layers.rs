//! Which simulcast layer one subscriber receives of one video track, and the rewriting
//! that makes the layers it receives over time one continuous stream.
//!
//! A publisher sends up to three encodings of the same video (spatial layers, each its
//! own SSRC), each possibly with temporal layers (VP8 TID). For every packet of every
//! layer the room asks the subscriber's [`LayerForwarder`] what to do, and gets a
//! [`LayerDecision`]: forward with these header and VP8 values, or drop for a named
//! reason, plus possibly a keyframe request for the publisher.
//!
//! Three layers are kept apart ([`LayerTargets`]): the **max** the subscriber wants
//! (its screen), the **target** the room's allocation picks (bandwidth), capped by the
//! max, and the **current** one being forwarded. The forwarder switches current to target only on
//! a keyframe of the target layer, and keeps forwarding the current layer until then.

#[cfg(test)]
mod tests;
mod vp8_numbering;

use std::time::{Duration, Instant};

use crate::forward::{DropReason, Forwarder, Translation};
use crate::gaps::{GapCloser, Unmapped};
use crate::keyframe::KeyframeThrottle;
use crate::seq::{ExtSeq, ExtTimestamp};
use crate::targets::{Layer, LayerTargets, SpatialLayer, Targeted, TemporalLayer};
use crate::vp8::{Vp8Descriptor, Vp8Rewrite};
use vp8_numbering::Vp8Numbering;

/// What the forwarder needs of one incoming packet of the track.
#[derive(Debug, Clone, Copy)]
pub struct LayerPacket {
    /// Which encoding (SSRC) it arrived on.
    pub layer: SpatialLayer,
    /// Extended by that layer's own unwrapper.
    pub seq: ExtSeq,
    pub timestamp: ExtTimestamp,
    pub marker: bool,
    /// First packet of a keyframe.
    pub keyframe: bool,
    /// VP8 only; without it there are no temporal layers and nothing to renumber.
    pub vp8: Option<Vp8Descriptor>,
}

/// The decision for one packet and one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerDecision {
    pub action: LayerAction,
    /// Ask the publisher for a keyframe of this layer (already throttled).
    pub keyframe_request: Option<SpatialLayer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAction {
    /// Send with these header values, and these VP8 fields written into the payload
    /// ([`Vp8Rewrite::apply`]).
    Forward {
        seq: u16,
        timestamp: u32,
        marker: bool,
        vp8: Option<Vp8Rewrite>,
    },
    Drop(LayerDrop),
}

/// Why a packet is not sent to this subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerDrop {
    /// The subscriber receives no layer now.
    Paused,
    /// Another spatial layer than the one forwarded (or switched to).
    NotCurrentLayer,
    /// A packet of the target layer, which starts only at its keyframe.
    AwaitingKeyframe,
    /// Above the temporal layer cap; its sequence number leaves no hole.
    TemporalLayerAbove,
    /// Of the current layer, but older than the keyframe it started at.
    BeforeSwitch,
    /// Its sequence number or picture id was closed when an earlier copy, or another
    /// packet of its frame, was dropped: sending it now would duplicate a number.
    DroppedBefore,
    /// Older than what the forwarder remembers of the dropped numbers.
    TooOld,
    /// SVC: of a spatial layer above those forwarded; its sequence number leaves no hole.
    SpatialLayerAbove,
    /// SVC: no readable VP9 payload descriptor, so no layer to judge it by.
    Unreadable,
}

/// RTP clock rate of video (VP8, H.264): ticks per second.
const VIDEO_CLOCK: u64 = 90_000;

/// One subscriber's view of one simulcast video track. Sans-I/O: time is an argument.
#[derive(Debug, Clone)]
pub struct LayerForwarder {
    /// Max, target and current: what is forwarded now is its spatial layer, and the
    /// temporal cap in effect.
    targets: LayerTargets,
    /// Sequence and timestamp offsets across switches.
    forwarder: Forwarder,
    /// Closes the current layer's sequence numbers over temporal-layer drops.
    seqs: GapCloser,
    vp8: Vp8Numbering,
    keyframe_requests: [KeyframeThrottle; SpatialLayer::COUNT],
    last_sent_at: Option<Instant>,
}

impl LayerForwarder {
    /// Aims at `max`; nothing goes out until the first keyframe of the target layer.
    pub fn new(max: Layer) -> Self {
        Self::with_keyframe_interval(max, KeyframeThrottle::DEFAULT_INTERVAL)
    }

    /// As [`LayerForwarder::new`], with at most one keyframe request per layer per `interval`.
    pub fn with_keyframe_interval(max: Layer, interval: Duration) -> Self {
        Self {
            targets: LayerTargets::new(max),
            forwarder: Forwarder::video(),
            seqs: GapCloser::default(),
            vp8: Vp8Numbering::new(),
            keyframe_requests: std::array::from_fn(|_| KeyframeThrottle::new(interval)),
            last_sent_at: None,
        }
    }

    /// Room for `count` padding packets after the last sent (see [`Forwarder::insert`]),
    /// only while a layer is forwarded: the first number and the timestamp for them.
    pub fn insert(&mut self, count: u16) -> Option<(u16, u32)> {
        self.current()?;
        self.forwarder.insert(count)
    }

    /// What to do with `packet` for this subscriber, arriving at `now`.
    pub fn forward(&mut self, packet: &LayerPacket, now: Instant) -> LayerDecision {
        let action = self.decide(packet, now);
        LayerDecision {
            action,
            keyframe_request: self.keyframe_request(now),
        }
    }

    fn decide(&mut self, p: &LayerPacket, now: Instant) -> LayerAction {
        let Some(target) = self.target() else {
            return LayerAction::Drop(LayerDrop::Paused);
        };
        let switching = self.current().map(|c| c.spatial) != Some(target.spatial);
        if switching && p.layer == target.spatial && p.keyframe {
            self.switch_to(target, now);
        }
        let current = match self.current() {
            Some(c) if c.spatial == p.layer => c,
            _ if p.layer == target.spatial => {
                return LayerAction::Drop(LayerDrop::AwaitingKeyframe);
            }
            _ => return LayerAction::Drop(LayerDrop::NotCurrentLayer),
        };
        let cap = self.temporal_cap(current, target, p);
        if let Some(d) = p.vp8.filter(|d| d.tid() > cap.0) {
            // Close the slots so the subscriber sees no loss (unless a later packet
            // already went out: see gaps.rs).
            self.seqs.drop(p.seq.0);
            self.vp8.drop(&d);
            return LayerAction::Drop(LayerDrop::TemporalLayerAbove);
        }
        self.rewrite(p, now)
    }

    /// Starts forwarding `target` at the keyframe that is the next packet.
    fn switch_to(&mut self, target: Layer, now: Instant) {
        let elapsed = self
            .last_sent_at
            .map_or(0, |t| ticks(now.saturating_duration_since(t)));
        self.forwarder.switch_layer(elapsed);
        self.seqs.reset();
        self.vp8.switch();
        self.targets.set_current(target);
    }

    /// The temporal cap for this packet of the current layer. It goes down at the start
    /// of any frame, and up only where the higher layer can be decoded from: a frame
    /// with the layer-sync (Y) bit, or a keyframe.
    fn temporal_cap(&mut self, current: Layer, target: Layer, p: &LayerPacket) -> TemporalLayer {
        let Some(d) = p.vp8.filter(Vp8Descriptor::starts_frame) else {
            return current.temporal;
        };
        let mut cap = current.temporal;
        if target.temporal < cap || p.keyframe {
            cap = target.temporal;
        } else if let Some(t) = d
            .temporal
            .filter(|t| t.layer_sync && t.tid > cap.0 && t.tid <= target.temporal.0)
        {
            cap = TemporalLayer(t.tid);
        }
        self.targets.set_current(Layer::new(current.spatial, cap));
        cap
    }

    fn rewrite(&mut self, p: &LayerPacket, now: Instant) -> LayerAction {
        let vp8 = match p.vp8.map(|d| self.vp8.forward(&d)).transpose() {
            Ok(v) => v,
            Err(e) => return LayerAction::Drop(unmapped(e)),
        };
        let seq = match self.seqs.keep(p.seq.0) {
            Ok(s) => ExtSeq(s),
            Err(e) => return LayerAction::Drop(unmapped(e)),
        };
        match self
            .forwarder
            .translate(seq, p.timestamp, p.marker, p.keyframe)
        {
            Translation::Forward {
                seq,
                timestamp,
                marker,
            } => {
                self.last_sent_at = Some(now);
                LayerAction::Forward {
                    seq,
                    timestamp,
                    marker,
                    vp8,
                }
            }
            Translation::Drop(DropReason::BeforeSwitch) => {
                LayerAction::Drop(LayerDrop::BeforeSwitch)
            }
            Translation::Drop(DropReason::AwaitingKeyframe) => {
                LayerAction::Drop(LayerDrop::AwaitingKeyframe)
            }
        }
    }

    /// While the current layer is not the target, ask for the target's keyframe (also
    /// when switching down: the lower layer's next keyframe may be seconds away).
    fn keyframe_request(&mut self, now: Instant) -> Option<SpatialLayer> {
        let target = self.target()?.spatial;
        if self.current().map(|c| c.spatial) == Some(target) {
            return None;
        }
        self.keyframe_requests[target.index()]
            .should_send(now)
            .then_some(target)
    }
}

impl Targeted for LayerForwarder {
    fn targets(&self) -> &LayerTargets {
        &self.targets
    }

    fn targets_mut(&mut self) -> &mut LayerTargets {
        &mut self.targets
    }
}

fn unmapped(e: Unmapped) -> LayerDrop {
    match e {
        Unmapped::Dropped => LayerDrop::DroppedBefore,
        Unmapped::TooOld => LayerDrop::TooOld,
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_micros() * u128::from(VIDEO_CLOCK) / 1_000_000) as u64
}
