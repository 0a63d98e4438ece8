//! Dynacast applied: after an input that may change which simulcast layers anyone
//! needs (a subscription, `track_settings`, a last-N pause), each simulcast track's
//! need is recomputed over its subscribers, and what [`crate::dynacast::Dynacast`]
//! decides to turn on or off goes to the publisher as `publisher_layers`.

use std::time::Instant;

use chorus_core::SpatialLayer;
use chorus_protocol::signal::{PublisherLayer, ServerMessage};

use super::RoomCore;
use crate::io::Recipients;

impl RoomCore {
    /// Recomputes the needs if something changed, and tells publishers what changed
    /// (also when only time passed: a layer's delay ran out).
    pub(super) fn update_dynacast(&mut self, now: Instant) {
        let due = std::mem::take(&mut self.dynacast_due);
        if due {
            for (id, layers) in self.tracks.simulcast_layers() {
                let top = self.highest_needed(&id, layers);
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
                .layers()
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

    /// The highest layer of a track of `layers` any of its subscribers may be sent now.
    fn highest_needed(&self, id: &chorus_core::TrackId, layers: usize) -> Option<SpatialLayer> {
        let track = self.tracks.get(id)?;
        let top = SpatialLayer::new(layers.clamp(1, SpatialLayer::COUNT) as u8 - 1)?;
        track
            .subscribers
            .iter()
            .filter_map(|&conn| self.conns.get(conn)?.downtracks.get(id))
            .filter_map(|dt| match (&dt.layers, dt.paused) {
                (_, true) => None,
                // No settings yet: the best there is.
                (None, false) => Some(top),
                (Some(selection), false) => selection.may_receive(),
            })
            .map(|l| l.min(top))
            .max()
    }
}
