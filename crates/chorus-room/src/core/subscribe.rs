//! Tracks out: the down tracks on each participant's subscriber connection (created on
//! first use) and the server's offers on it. Changes only mark the connection's
//! negotiation; the offer goes out when the input is done ([`RoomCore::send_offer`]),
//! so that everything one input changed (a join with many tracks) is one offer.
//! Audio is not subscribed track by track: listeners get their room-audio track (`audio`).

use std::time::Instant;

use chorus_core::Codec;
use chorus_core::{ConnId, Forwarder, NackMap, TrackId};
use chorus_protocol::MediaKind;
use chorus_protocol::signal::{PeerTarget, ServerMessage};
use chorus_transport::webrtc::sdp;
use rand::Rng;

use super::{RoomCore, draw_credentials};
use crate::io::{ParticipantKey, Recipients};
use crate::negotiation::TrackPhase;
use crate::peer::DownTrack;
use crate::tracks::HISTORY_LEN;

impl RoomCore {
    /// Every published video (and screen share audio), and the room audio.
    pub(super) fn subscribe_to_all(&mut self, key: ParticipantKey, now: Instant) {
        for id in self.tracks.forwarded_for(key) {
            self.subscribe(key, &id, now);
        }
        self.update_audio(now);
    }

    /// Subscribes to a track forwarded on its own (a video, screen share audio).
    pub(super) fn subscribe(&mut self, key: ParticipantKey, id: &TrackId, now: Instant) {
        if self.is_plain(key) {
            return; // audio only, from the mixer
        }
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        let codec = match (&track.upstream, track.kind()) {
            (Some(b), _) => b.codec,
            (None, MediaKind::Audio) => Codec::Opus,
            (None, MediaKind::Video) => Codec::Vp8,
        };
        if let Some(conn) = self.add_downtrack(key, id, codec, now) {
            self.tracks.add_subscriber(id, conn);
        }
    }

    /// Adds a track to the participant's subscriber connection (created on first use);
    /// the connection, unless the track could not be added or was there already.
    pub(super) fn add_downtrack(
        &mut self,
        key: ParticipantKey,
        id: &TrackId,
        codec: Codec,
        now: Instant,
    ) -> Option<ConnId> {
        let p = self.participants.get(key)?;
        let conn = match p.subscriber {
            Some(conn) => conn,
            None => match self.new_peer(key, PeerTarget::Subscriber, now) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create subscriber connection");
                    return None;
                }
            },
        };
        let ssrc: u32 = self.rng.random();
        let peer = self.conns.get_mut(conn)?;
        if peer.downtracks.contains_key(id) {
            return None;
        }
        // Video only: a lost audio packet is late by the time a resend would arrive.
        let sent = codec
            .is_video()
            .then(|| NackMap::new(HISTORY_LEN, NackMap::DEFAULT_RESEND_GAP));
        let forwarder = if codec.is_video() {
            Forwarder::video()
        } else {
            Forwarder::audio()
        };
        let payload_type = sdp::payload_type(codec);
        peer.add_track(id, codec, ssrc);
        peer.downtracks.insert(
            id.clone(),
            DownTrack {
                ssrc,
                payload_type,
                forwarder,
                phase: TrackPhase::Pending,
                sent,
                source: 0,
                codec_refused: false,
                layers: None,
                paused: false,
                bandwidth_paused: false,
                allocated: false,
            },
        );
        peer.negotiation.changed();
        self.offers_due.push(conn);
        self.dynacast_due.track(id);
        Some(conn)
    }

    pub(super) fn remove_downtrack(&mut self, conn: ConnId, id: &TrackId) {
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        if peer.downtracks.remove(id).is_some() {
            peer.remove_track(id);
            peer.negotiation.changed();
            self.offers_due.push(conn);
            self.dynacast_due.track(id);
        }
    }

    /// Offers on a subscriber connection if its negotiation says one is due now.
    pub(super) fn send_offer(&mut self, conn: ConnId, now: Instant) {
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(plan) = peer.negotiation.poll_offer() else {
            return;
        };
        let restart = plan.ice_restart.then(|| draw_credentials(&mut self.rng));
        let sdp = match peer.offer(restart, now) {
            Ok(sdp) => sdp,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make subscriber offer");
                peer.negotiation.offer_failed();
                return;
            }
        };
        let phases = peer.downtracks.values_mut().map(|dt| &mut dt.phase);
        peer.negotiation.offer_sent(phases);
        let owner = peer.owner;
        tracing::trace!(%sdp, "subscriber offer");
        self.conns.mark_dirty(conn);
        self.route_credentials(conn);
        self.send(
            Recipients::One(owner),
            ServerMessage::Offer {
                target: PeerTarget::Subscriber,
                sdp,
            },
        );
    }
}
