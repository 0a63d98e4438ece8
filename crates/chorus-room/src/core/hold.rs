//! Hold: a participant on hold neither sends nor receives media. Its packets are not
//! forwarded nor mixed (`publisher_on_hold`), nothing goes to its subscriber connection
//! (`subscriber_on_hold`), its microphone is muted in the mixer and the speaker detector,
//! and no keyframe is asked of it. Its connections stay as they are: ICE consent and
//! DTLS go on, nothing is renegotiated. Unhold resumes every video from a keyframe,
//! both ways, and the room audio numbered on from where it stopped.

use std::time::Instant;

use chorus_core::{ConnId, TrackId};
use chorus_protocol::{MediaKind, ParticipantInfo, ParticipantState, TrackSource};

use super::RoomCore;
use crate::io::ParticipantKey;

impl RoomCore {
    /// Puts `key` on hold (`held`) or takes it off; nothing happens if it already is.
    pub(super) fn set_hold(&mut self, key: ParticipantKey, held: bool, now: Instant) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        if p.held == held {
            return;
        }
        p.held = held;
        let subscriber = p.subscriber;
        self.tracks.set_held(key, held);
        if let Some(peer) = subscriber.and_then(|c| self.conns.get_mut(c)) {
            peer.on_hold = held;
        }
        let mic = self
            .tracks
            .of_owner(key, |t| t.source == TrackSource::Microphone)
            .into_iter()
            .next();
        let mic_muted = mic
            .as_ref()
            .and_then(|id| self.tracks.get(id))
            .is_some_and(|t| t.muted);
        self.audio.set_muted(key, held || mic_muted);
        if held {
            tracing::info!(room = %self.name, participant = %key.0, "participant on hold");
            self.pause_layers(key, subscriber);
        } else {
            self.resume_after_hold(key, subscriber, mic, now);
        }
        self.last_n_due = true;
        self.dynacast_due.all();
        self.refresh_state(key);
    }

    /// Stops every simulcast selection to and from `key`, as last-N does: the first
    /// packet after the hold restarts it at a keyframe it asks for, numbered on.
    fn pause_layers(&mut self, key: ParticipantKey, subscriber: Option<ConnId>) {
        if let Some(peer) = subscriber.and_then(|c| self.conns.get_mut(c)) {
            for dt in peer.downtracks.values_mut() {
                if let Some(selection) = dt.layers.as_mut() {
                    selection.pause();
                }
            }
        }
        for id in self.tracks.of_owner(key, |t| t.kind() == MediaKind::Video) {
            let subscribers = self.tracks.get(&id).map(|t| t.subscribers.clone());
            for conn in subscribers.into_iter().flatten() {
                let peer = self.conns.get_mut(conn);
                let dt = peer.and_then(|p| p.downtracks.get_mut(&id));
                if let Some(selection) = dt.and_then(|dt| dt.layers.as_mut()) {
                    selection.pause();
                }
            }
        }
    }

    /// Video both ways from a keyframe; the audio numbered on, as after a mute.
    fn resume_after_hold(
        &mut self,
        key: ParticipantKey,
        subscriber: Option<ConnId>,
        mic: Option<TrackId>,
        now: Instant,
    ) {
        // What it receives: each video from a keyframe asked of its publisher.
        let mut plain = Vec::new();
        let mut layered = Vec::new();
        if let Some(peer) = subscriber.and_then(|c| self.conns.get_mut(c)) {
            for (id, dt) in peer.downtracks.iter_mut() {
                if *id == self.room_audio {
                    dt.forwarder.switch_source(false);
                } else if let Some(selection) = dt.layers.as_ref() {
                    if let Some(layer) = selection.wanted() {
                        layered.push((id.clone(), layer));
                    }
                } else if !dt.paused {
                    dt.forwarder.switch_source(true);
                    plain.push(id.clone());
                }
            }
        }
        for id in plain {
            if self
                .tracks
                .get(&id)
                .is_some_and(|t| t.kind() == MediaKind::Video)
            {
                self.request_keyframe(&id, now);
            }
        }
        for (id, layer) in layered {
            self.request_layer_keyframe(&id, layer, now);
        }
        // What it sends: its videos resume at a keyframe asked of it.
        for id in self.tracks.of_owner(key, |t| {
            t.kind() == MediaKind::Video && !t.muted && t.published()
        }) {
            self.resume_video(&id, now);
        }
        // Listeners relayed its microphone number on from the last packet they got.
        if let Some(mic) = mic.and_then(|id| self.tracks.get(&id)) {
            let room_audio = self.room_audio.clone();
            for conn in mic.subscribers.clone() {
                let peer = self.conns.get_mut(conn);
                if let Some(dt) = peer.and_then(|p| p.downtracks.get_mut(&room_audio)) {
                    dt.forwarder.switch_source(false);
                }
            }
        }
    }

    /// The participant's state as others see it: `on_hold` while held, else as its
    /// connections make it.
    pub(super) fn held_state(&self, key: ParticipantKey) -> Option<ParticipantState> {
        self.participants
            .get(key)
            .filter(|p| p.held)
            .map(|_| ParticipantState::OnHold)
    }

    /// The control API's hold: as the participant's own `hold` / `unhold`.
    pub(super) fn hold_by_server(
        &mut self,
        key: ParticipantKey,
        held: bool,
        now: Instant,
    ) -> ParticipantInfo {
        self.set_hold(key, held, now);
        self.participant_info(key).expect("caller checked")
    }
}
