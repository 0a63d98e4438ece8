//! What becomes of one copy, before anything is written: the header values (and VP8
//! numbering) it goes out with, or the reason it does not, and what it asks of the
//! publisher. A simulcast copy asks the subscriber's layer selection; any other copy
//! the down track's forwarder.

use std::time::Instant;

use chorus_core::forward::DropReason;
use chorus_core::{LayerAction, SpatialLayer, Translation, Vp8Rewrite};

use super::Outgoing;
use crate::peer::DownTrack;
use crate::selection::{LayerSelection, LayeredPacket};
use crate::skips::Skip;

/// What a subscriber's copy asks of the publisher.
pub(super) enum Wants {
    Nothing,
    /// A keyframe of the track (its forwarder waits for one).
    Keyframe,
    /// A keyframe of this layer of the simulcast track.
    LayerKeyframe(SpatialLayer),
}

/// The header values (and VP8 numbering) one copy goes out with.
pub(super) struct Numbered {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub vp8: Option<Vp8Rewrite>,
}

/// A simulcast copy: as the subscriber's layer forwarder decides.
pub(super) fn select(
    selection: &mut LayerSelection,
    layered: &LayeredPacket,
    now: Instant,
) -> (Result<Numbered, Skip>, Wants) {
    let decision = selection.decide(layered, now);
    let wants = decision
        .keyframe_request
        .map_or(Wants::Nothing, Wants::LayerKeyframe);
    let numbered = match decision.action {
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
    };
    (numbered, wants)
}

/// A copy of a track without layers: through the down track's forwarder.
pub(super) fn plain(dt: &mut DownTrack, packet: &Outgoing) -> (Result<Numbered, Skip>, Wants) {
    // Told by the packet, not when the room switched: copies of the old source may be
    // queued still, and a subscriber may have missed the first of the new one.
    if dt.source != packet.source {
        dt.source = packet.source;
        dt.forwarder.switch_source(packet.keyframes_of.is_some());
    }
    match dt
        .forwarder
        .translate(packet.seq, packet.ts, packet.header.marker, packet.keyframe)
    {
        Translation::Forward {
            seq,
            timestamp,
            marker,
        } => (
            Ok(Numbered {
                seq,
                timestamp,
                marker,
                vp8: None,
            }),
            Wants::Nothing,
        ),
        Translation::Drop(DropReason::AwaitingKeyframe) => {
            (Err(Skip::AwaitingKeyframe), Wants::Keyframe)
        }
        Translation::Drop(DropReason::BeforeSwitch) => (Err(Skip::BeforeSwitch), Wants::Nothing),
    }
}
