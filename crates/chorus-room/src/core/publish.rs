//! Tracks in: the client announces a track (`publish`), the publisher's SDP binds it
//! (`on_upstream_track`), then everyone is told and subscribed; mute, unpublish, and
//! the participant's grants changing.

use std::time::Instant;

use chorus_core::Codec;
use chorus_core::TrackId;
use chorus_protocol::signal::ServerMessage;
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{
    Grants, MediaKind, ParticipantInfo, ParticipantState, TrackInfo, TrackSource,
};
use rand::Rng;

use super::RoomCore;
use crate::io::{ParticipantKey, Recipients};
use crate::signal_error::SignalError;
use crate::tracks::{History, SIMULCAST_HISTORY_LEN, Simulcast, SvcUpstream, UpstreamBinding};
use chorus_room_api::RoomError;

impl RoomCore {
    pub(super) fn publish(
        &mut self,
        key: ParticipantKey,
        cid: String,
        source: TrackSource,
        muted: bool,
    ) -> Result<(), SignalError> {
        let p = self.participants.get(key).expect("caller checked");
        let max = self.max_tracks;
        if self.tracks.of_owner(key, |_| true).len() >= max as usize {
            return Err(SignalError::TooManyTracks { max });
        }
        let id = TrackId::from_random(self.rng.random());
        // A source the server muted stays muted, whichever track carries it.
        let by_server = self.sticky.is_muted(&p.identity, source);
        let mut track = self.tracks.publish(
            key,
            &p.id,
            &p.grants,
            cid.clone(),
            source,
            muted || by_server,
            id.clone(),
        )?;
        if by_server {
            track = self.tracks.set_muted(&id, true, true)?.info;
        }
        // Announced on hold: held like its owner's other tracks until the unhold.
        let held = p.held;
        self.tracks.set_held(key, held);
        self.send(
            Recipients::One(key),
            ServerMessage::PublishAccepted { cid, track },
        );
        Ok(())
    }

    /// Mutes or unmutes a track; everyone hears of it once the track is published.
    pub(super) fn set_muted(
        &mut self,
        id: &TrackId,
        muted: bool,
        by_server: bool,
        now: Instant,
    ) -> Result<TrackInfo, SignalError> {
        let was_muted = self.tracks.get(id).is_some_and(|t| t.muted);
        let change = self.tracks.set_muted(id, muted, by_server)?;
        if change.info.source == TrackSource::Microphone {
            self.audio.set_muted(change.owner, muted);
        } else if change.info.kind == MediaKind::Video && was_muted && !muted {
            self.resume_video(id, now);
        }
        if change.announce {
            self.send(
                Recipients::All,
                ServerMessage::TrackMuted {
                    participant_id: change.info.participant_id.clone(),
                    track_id: change.info.track_id.clone(),
                    muted,
                },
            );
        }
        Ok(change.info)
    }

    /// An unmuted video: each subscriber resumes at the next keyframe, which is asked
    /// for, numbered on from the last packet it got (what the mute held back was never
    /// sent: no loss for it to repair).
    pub(super) fn resume_video(&mut self, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        for &conn in &track.subscribers {
            let peer = self.conns.get_mut(conn);
            if let Some(dt) = peer.and_then(|p| p.downtracks.get_mut(id)) {
                dt.forwarder.switch_source(true);
            }
        }
        self.request_keyframe(id, now);
    }

    pub(super) fn server_mute(
        &mut self,
        identity: &str,
        track_id: &str,
        muted: bool,
        now: Instant,
    ) -> Result<TrackInfo, RoomError> {
        let key = self.participants.key_of(identity)?;
        let id = self
            .tracks
            .owned(key, track_id)
            .ok_or_else(|| RoomError::TrackNotFound(track_id.to_owned()))?;
        let info = self
            .set_muted(&id, muted, true, now)
            .map_err(|_| RoomError::TrackNotFound(track_id.to_owned()))?;
        // It sticks to the source: unpublishing and publishing again does not lift it.
        self.sticky.set_muted(identity, info.source, muted);
        Ok(info)
    }

    pub(super) fn update_permissions(
        &mut self,
        key: ParticipantKey,
        grants: Grants,
        now: Instant,
    ) -> ParticipantInfo {
        let p = self.participants.get_mut(key).expect("caller checked");
        let could_subscribe = p.grants.can_subscribe;
        p.grants = grants.clone();
        let subscriber = p.subscriber;
        // One waiting in the lobby subscribes when admitted, with the grants it has then.
        let waiting = p.state == ParticipantState::InLobby;
        for id in self.tracks.of_owner(key, |t| !grants.may_publish(t.source)) {
            self.unpublish(&id, now);
        }
        match (could_subscribe, grants.can_subscribe) {
            (false, true) if !waiting => self.subscribe_to_all(key, now),
            (true, false) => {
                if let Some(conn) = subscriber {
                    for id in self.tracks.subscribed_by(conn) {
                        self.tracks.remove_subscriber(&id, conn);
                        self.remove_downtrack(conn, &id);
                    }
                }
                self.update_audio(now);
            }
            _ => {}
        }
        self.last_n_due = true;
        self.send(
            Recipients::One(key),
            ServerMessage::PermissionsChanged { grants },
        );
        self.participant_info(key).expect("still in the room")
    }

    pub(super) fn unpublish(&mut self, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.remove(id) else {
            return;
        };
        self.last_n_due = true;
        self.dynacast.remove(id);
        if track.source == TrackSource::Microphone {
            // Its listeners hear someone else, or nothing, on the same room-audio track.
            self.update_audio(now);
        }
        for conn in &track.subscribers {
            self.remove_downtrack(*conn, id);
        }
        let publisher = self.participants.get(track.owner).and_then(|p| p.publisher);
        if let Some(peer) = publisher.and_then(|c| self.conns.get_mut(c)) {
            peer.uptracks.retain(|_, t| t != id);
        }
        if track.published() {
            let participant_id = track.owner_id.to_string();
            self.event(WebhookEvent::TrackUnpublished {
                room: self.name.clone(),
                participant_id: participant_id.clone(),
                track_id: id.to_string(),
            });
            self.send(
                Recipients::All,
                ServerMessage::TrackUnpublished {
                    participant_id,
                    track_id: id.to_string(),
                },
            );
        }
    }

    /// Tells everyone the new layers of the tracks whose layers may have changed in
    /// this input (`track_updated`), those that did change only.
    pub(super) fn tell_layers(&mut self) {
        for id in std::mem::take(&mut self.layers_due) {
            if let Some(track) = self.tracks.layers_to_tell(&id) {
                tracing::debug!(room = %self.name, track = %id, layers = ?track.layers, "layers told");
                self.send(Recipients::All, ServerMessage::TrackUpdated { track });
            }
        }
    }

    /// A track appeared in a publisher's SDP: bind it to what the client announced.
    pub(super) fn on_upstream_track(
        &mut self,
        key: ParticipantKey,
        sdp_track: String,
        codec: Codec,
        (audio_level_ext, dd_ext): (Option<u8>, Option<u8>),
        layers: Vec<String>,
        now: Instant,
    ) {
        let kind = if codec.is_video() {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        let conn = self.participants.get(key).and_then(|p| p.publisher);
        let Some(peer) = conn.and_then(|c| self.conns.get_mut(c)) else {
            return;
        };
        if peer.uptracks.contains_key(&sdp_track) {
            return;
        }
        let Some(id) = self.tracks.match_unbound(key, &sdp_track, kind) else {
            tracing::debug!(room = %self.name, track = %sdp_track, "unannounced track ignored");
            return;
        };
        peer.uptracks.insert(sdp_track, id.clone());
        let simulcast =
            (kind == MediaKind::Video && !layers.is_empty()).then(|| Simulcast::new(&layers));
        // VP9 in one stream is read for its layers (SVC), whether or not it has any; so
        // is AV1, where its dependency descriptors tell them (else it goes whole).
        let svc = match codec {
            Codec::Vp9 => Some(SvcUpstream::default()),
            Codec::Av1 => dd_ext.map(SvcUpstream::av1),
            _ => None,
        }
        .filter(|_| simulcast.is_none());
        let binding = UpstreamBinding {
            media_ssrc: None,
            audio_level_ext,
            codec,
            simulcast,
            svc,
        };
        self.announce(&id, binding, now);
    }

    /// The publisher's SDP now carries the track: tell everyone and subscribe them.
    fn announce(&mut self, id: &TrackId, binding: UpstreamBinding, now: Instant) {
        let track = self.tracks.get_mut(id).expect("caller checked");
        if binding.simulcast.is_some() {
            track.history = Some(History::new(SIMULCAST_HISTORY_LEN));
        }
        track.upstream = Some(binding);
        let (owner, info, source) = (track.owner, track.info(), track.source);
        track.told_layers.clone_from(&info.layers);
        self.event(WebhookEvent::TrackPublished {
            room: self.name.clone(),
            track: info.clone(),
        });
        self.send(
            Recipients::All,
            ServerMessage::TrackPublished { track: info },
        );
        let echo = self.echo.is_some();
        if source == TrackSource::Microphone {
            self.update_audio(now);
            if echo {
                // Its own voice comes back on its room-audio track.
                let room_audio = self.room_audio.clone();
                self.add_downtrack(owner, &room_audio, Codec::Opus, now);
            }
            return;
        }
        self.last_n_due = true;
        self.dynacast_due.all();
        for k in self.participants.listeners() {
            // In the echo room, its own video comes back to it.
            if k != owner || echo {
                self.subscribe(k, id, now);
            }
        }
    }
}
