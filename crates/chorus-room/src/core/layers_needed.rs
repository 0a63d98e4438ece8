//! Dynacast applied: after an input that may change which layers anyone needs (a
//! subscription, `track_settings`, a last-N pause, an SVC stream announcing more
//! layers), each such track's need (simulcast, VP9 SVC) is recomputed over its
//! subscribers, and what [`crate::dynacast::Dynacast`]
//! decides to turn on or off goes to the publisher as `publisher_layers`.
//!
//! Only the tracks an input touched are recomputed: a `track_settings` is one
//! subscriber's view of one track, and recomputing every track over all 350
//! subscribers for each of them took half the room's thread while a large room's
//! receivers sized their tiles.

use std::time::Instant;

use chorus_core::{SpatialLayer, TrackId};
use chorus_protocol::signal::{PublisherLayer, ServerMessage};

use super::RoomCore;
use crate::io::Recipients;

/// Which tracks' needs an input may have changed: recomputed when it is done.
#[derive(Debug, Default)]
pub(crate) struct DynacastDue {
    all: bool,
    tracks: Vec<TrackId>,
}

impl DynacastDue {
    /// Something that touches every track (a subscriber on hold, a new camera).
    pub(crate) fn all(&mut self) {
        self.all = true;
        self.tracks.clear();
    }

    /// A change to one track's subscribers or to one subscriber's view of it.
    pub(crate) fn track(&mut self, id: &TrackId) {
        if !self.all && !self.tracks.contains(id) {
            self.tracks.push(id.clone());
        }
    }

    fn is_empty(&self) -> bool {
        !self.all && self.tracks.is_empty()
    }
}

impl RoomCore {
    /// Recomputes the needs of the tracks something changed, and tells publishers what
    /// changed (also when only time passed: a layer's delay ran out).
    pub(super) fn update_dynacast(&mut self, now: Instant) {
        let due = std::mem::take(&mut self.dynacast_due);
        if !due.is_empty() {
            let tracks = if due.all {
                self.tracks.publisher_layers()
            } else {
                due.tracks
                    .into_iter()
                    .filter_map(|id| {
                        let layers = self.tracks.get(&id)?.publisher_layers()?;
                        Some((id, layers))
                    })
                    .collect()
            };
            for (id, (layers, svc_top)) in tracks {
                let top = self.highest_needed(&id, layers, svc_top);
                self.dynacast.set_needed(&id, layers, top, now);
            }
        } else if self.dynacast_wake.is_none_or(|t| now < t) {
            return;
        }
        for change in self.dynacast.poll(now) {
            let Some(track) = self.tracks.get(&change.track) else {
                continue;
            };
            let layers = track
                .publisher_layer_names()
                .into_iter()
                .zip(&change.active)
                .map(|(rid, &active)| PublisherLayer { rid, active })
                .collect();
            tracing::debug!(track = %change.track, active = ?change.active, "dynacast");
            let owner = track.owner;
            self.send(
                Recipients::One(owner),
                ServerMessage::PublisherLayers {
                    track_id: change.track.to_string(),
                    layers,
                },
            );
        }
        self.dynacast_wake = self.dynacast.next_timeout();
    }

    /// The highest layer of a track of `layers` any of its subscribers may be sent now;
    /// of a VP9 SVC track whose top layer is `svc_top`, as each subscriber's view picks
    /// among all `layers` (those the stream carries now may be fewer: the publisher
    /// applied what it was told, and must hear when more are needed again); of an AV1
    /// one in layers, the base layer at most (the only one forwarded).
    fn highest_needed(
        &self,
        id: &TrackId,
        layers: usize,
        svc_top: Option<(u32, u32)>,
    ) -> Option<SpatialLayer> {
        let track = self.tracks.get(id)?;
        let base_only = track
            .upstream
            .as_ref()
            .and_then(|b| b.svc.as_ref())
            .is_some_and(|svc| svc.base_only());
        let top = if base_only {
            SpatialLayer::LOW
        } else {
            SpatialLayer::new(layers.clamp(1, SpatialLayer::COUNT) as u8 - 1)?
        };
        track
            .subscribers
            .iter()
            .filter_map(|&conn| self.conns.get(conn)?.downtracks.get(id))
            .filter_map(|dt| match (&dt.layers, dt.paused) {
                (_, true) => None,
                // No settings yet: the best there is.
                (None, false) => Some(top),
                (Some(selection), false) => match svc_top {
                    Some(top) => selection.may_receive_of(layers, top),
                    None => selection.may_receive(),
                },
            })
            .map(|l| l.min(top))
            .max()
    }
}
