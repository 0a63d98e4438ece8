//! What becomes of one copy, before anything is written: the header values (and VP8
//! numbering) it goes out with, or the reason it does not, and what it asks of the
//! publisher. Every copy asks a per-(subscriber, track) policy behind one trait
//! ([`VideoForwarder`], statically dispatched): a track in layers (simulcast or VP9
//! SVC) the subscriber's layer selection; any other the down track's forwarder.

use std::time::Instant;

use chorus_core::{
    LayerAction, LayerDecision, PlainPacket, SpatialLayer, VideoForwarder, Vp8Rewrite,
};

use super::Outgoing;
use crate::peer::DownTrack;
use crate::selection::{LayerSelection, LayeredPacket};
use crate::skips::Skip;

/// What a subscriber's copy asks of the publisher.
pub(super) enum Wants {
    Nothing,
    /// A keyframe of the track (its forwarder waits for one).
    Keyframe,
    /// A keyframe of this layer of the track in layers (of a VP9 SVC track: of the
    /// stream, see `request_layer_keyframe`).
    LayerKeyframe(SpatialLayer),
}

/// The header values (and VP8 numbering) one copy goes out with.
pub(super) struct Numbered {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub vp8: Option<Vp8Rewrite>,
}

/// A copy of a track in layers: as the subscriber's layer selection decides.
pub(super) fn select(
    selection: &mut LayerSelection,
    layered: &LayeredPacket,
    now: Instant,
) -> (Result<Numbered, Skip>, Wants) {
    let decision = selection.decide(layered, now);
    let wants = decision
        .keyframe_request
        .map_or(Wants::Nothing, Wants::LayerKeyframe);
    (numbered(decision), wants)
}

/// A copy of a track without layers: through the down track's forwarder.
pub(super) fn plain(
    dt: &mut DownTrack,
    packet: &Outgoing,
    now: Instant,
) -> (Result<Numbered, Skip>, Wants) {
    // Told by the packet, not when the room switched: copies of the old source may be
    // queued still, and a subscriber may have missed the first of the new one.
    if dt.source != packet.source {
        dt.source = packet.source;
        dt.forwarder.switch_source(packet.keyframes_of.is_some());
    }
    let p = PlainPacket {
        seq: packet.seq,
        timestamp: packet.ts,
        marker: packet.header.marker,
        keyframe: packet.keyframe,
    };
    let decision = dt.forwarder.forward(&p, now);
    // Not throttled here: the room asks the publisher at most once per interval.
    let wants = match decision.keyframe_request {
        Some(_) => Wants::Keyframe,
        None => Wants::Nothing,
    };
    (numbered(decision), wants)
}

/// The header values of a forwarded copy, or why it is not sent.
fn numbered(decision: LayerDecision) -> Result<Numbered, Skip> {
    match decision.action {
        LayerAction::Forward {
            seq,
            timestamp,
            marker,
            vp8,
        } => Ok(Numbered {
            seq,
            timestamp,
            marker,
            vp8,
        }),
        LayerAction::Drop(d) => Err(Skip::from(d)),
    }
}
