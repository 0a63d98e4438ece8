//! What a subscriber asks of a video it receives (`track_settings`): the size it shows
//! it at, whether it is visible, a quality cap. For a simulcast or VP9 SVC track this
//! sets the most its layer forwarder sends (`selection.rs` has the rule; an SVC track's
//! layer sizes are those of its last scalability structure when one came); a track
//! without layers takes the message and changes nothing (yet).

use chorus_core::TrackId;
use chorus_protocol::MediaKind;

use super::RoomCore;
use crate::io::ParticipantKey;
use crate::selection::{ASSUMED_TOP_SIZE, LayerSelection, ViewSettings};
use crate::signal_error::SignalError;

impl RoomCore {
    pub(super) fn track_settings(
        &mut self,
        key: ParticipantKey,
        track_id: &str,
        settings: ViewSettings,
    ) -> Result<(), SignalError> {
        let not_received = || SignalError::NotSubscribed(track_id.to_owned());
        let id = TrackId::named(track_id);
        let track = self.tracks.get(&id).ok_or_else(not_received)?;
        if track.kind() != MediaKind::Video {
            return Err(not_received());
        }
        let layers = track.spatial_layers();
        let conn = self.participants.get(key).and_then(|p| p.subscriber);
        let peer = conn.and_then(|c| self.conns.get_mut(c));
        let allocated = peer.as_ref().is_some_and(|p| p.estimates_bandwidth());
        let dt = peer
            .and_then(|p| p.downtracks.get_mut(&id))
            .ok_or_else(not_received)?;
        let Some((layers, top)) = layers else {
            return Ok(());
        };
        let top = top.unwrap_or(ASSUMED_TOP_SIZE);
        let max = settings.max_layer(layers, top);
        tracing::debug!(track = %id, ?settings, ?max, "track settings");
        dt.layers
            .get_or_insert_with(|| Box::new(LayerSelection::starting(allocated)))
            .set_view(settings, layers, top);
        self.dynacast_due.track(&id);
        Ok(())
    }
}
