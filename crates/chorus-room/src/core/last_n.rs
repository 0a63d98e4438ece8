//! Last-N applied: the client's `set_last_n` and `set_pins`, and after every input
//! that may change whose camera someone receives (a join or leave, a camera published
//! or gone, speakers changing, a setting), [`crate::lastn::LastN`]'s decisions made
//! real: the down track paused or resumed, and its subscriber told.

use std::time::Instant;

use chorus_core::TrackId;
use chorus_protocol::TrackSource;
use chorus_protocol::signal::{MAX_LAST_N, MAX_PINS, PauseReason, ServerMessage};

use super::RoomCore;
use crate::io::{ParticipantKey, Recipients};
use crate::lastn::PauseChange;
use crate::signal_error::SignalError;

impl RoomCore {
    pub(super) fn set_last_n(&mut self, key: ParticipantKey, n: u32) -> Result<(), SignalError> {
        if n > MAX_LAST_N {
            return Err(SignalError::LastNTooLarge { max: MAX_LAST_N });
        }
        self.last_n.set_last_n(key, n);
        self.last_n_due = true;
        Ok(())
    }

    pub(super) fn set_pins(
        &mut self,
        key: ParticipantKey,
        ids: &[String],
    ) -> Result<(), SignalError> {
        if ids.len() > MAX_PINS {
            return Err(SignalError::TooManyPins { max: MAX_PINS });
        }
        let everyone = self.participants.keys();
        let pins = ids
            .iter()
            .map(|id| {
                everyone
                    .iter()
                    .copied()
                    .find(|k| {
                        self.participants
                            .get(*k)
                            .is_some_and(|p| p.id.as_str() == id)
                    })
                    .ok_or_else(|| SignalError::ParticipantNotFound(id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.last_n.set_pins(key, pins);
        self.last_n_due = true;
        Ok(())
    }

    /// Re-decides everyone's cameras if something changed, and applies it.
    pub(super) fn update_last_n(&mut self, now: Instant) {
        if !std::mem::take(&mut self.last_n_due) {
            return;
        }
        let viewers = self.participants.listeners();
        let cameras = self.tracks.published_of(TrackSource::Camera);
        for change in self.last_n.update(&viewers, &cameras) {
            self.apply_pause(change, now);
        }
    }

    fn apply_pause(&mut self, change: PauseChange, now: Instant) {
        let PauseChange {
            viewer,
            track,
            owner,
            paused,
        } = change;
        let conn = self.participants.get(viewer).and_then(|p| p.subscriber);
        let Some(dt) = conn
            .and_then(|c| self.conns.get_mut(c))
            .and_then(|peer| peer.downtracks.get_mut(&track))
        else {
            return;
        };
        dt.paused = paused;
        self.dynacast_due.track(&track);
        let plain = dt.layers.is_none();
        if paused {
            if let Some(selection) = dt.layers.as_mut() {
                selection.pause();
            }
        } else if plain {
            // Numbered on from the last packet sent, from the next keyframe.
            dt.forwarder.switch_source(true);
        }
        // A simulcast resume asks for its layer's keyframe with its next packet.
        if !paused
            && plain
            && self
                .tracks
                .get(&track)
                .is_some_and(|t| t.layers().is_empty())
        {
            self.request_keyframe(&track, now);
        }
        self.tell_pause(viewer, &track, owner, paused.then_some(PauseReason::LastN));
    }

    /// Tells `viewer` that `owner`'s video `track` is paused for it (`reason`), or
    /// resumed (`None`).
    pub(super) fn tell_pause(
        &mut self,
        viewer: ParticipantKey,
        track: &TrackId,
        owner: ParticipantKey,
        reason: Option<PauseReason>,
    ) {
        let participant_id = self
            .participants
            .get(owner)
            .map(|p| p.id.to_string())
            .unwrap_or_default();
        let track_id = track.to_string();
        let msg = match reason {
            Some(reason) => ServerMessage::VideoPaused {
                track_id,
                participant_id,
                reason,
            },
            None => ServerMessage::VideoResumed {
                track_id,
                participant_id,
            },
        };
        self.send(Recipients::One(viewer), msg);
    }
}
