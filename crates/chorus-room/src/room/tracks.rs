//! Published tracks and subscriptions. The publishing side: `publish` (the client
//! announces a track), binding it to what the publisher's SDP carries, then `announce`,
//! mute, unpublish, and the participant's grants changing. The subscribing side: the
//! down tracks on each participant's subscriber connection and the server's offers on
//! it (`negotiate`, at most one in flight). Audio tracks are not subscribed one by one:
//! listeners hear them through their room-audio track (`mixing`).

use std::time::Instant;

use chorus_core::{
    Forwarder, KeyframeThrottle, ParticipantId, SeqUnwrapper, TimestampUnwrapper, TrackId,
};
use chorus_mixer::SourceId;
use chorus_protocol::signal::{PeerTarget, ServerMessage};
use chorus_protocol::{Grants, MediaKind, ParticipantInfo, TrackInfo, TrackSource};
use chorus_transport::{AUDIO_LEVEL_URI, OPUS_PT, VP8_PT, sending_track};
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use super::Room;
use crate::command::ParticipantKey;
use crate::peer::{DownTrack, Negotiation, UpstreamBinding};

/// Longest client-chosen track id (`cid`) we keep.
const MAX_CID_LEN: usize = 128;

pub(super) struct PublishedTrack {
    pub(super) id: TrackId,
    pub(super) owner: ParticipantKey,
    pub(super) owner_id: ParticipantId,
    pub(super) cid: String,
    pub(super) source: TrackSource,
    pub(super) muted: bool,
    /// Muted through the control API: the client cannot unmute it.
    pub(super) muted_by_server: bool,
    /// Set once the publisher's SDP carries the track; then others are told and subscribed.
    pub(super) upstream: Option<UpstreamBinding>,
    pub(super) seq: SeqUnwrapper,
    pub(super) ts: TimestampUnwrapper,
    pub(super) keyframes: KeyframeThrottle,
    pub(super) subscribers: Vec<ParticipantKey>,
}

impl PublishedTrack {
    pub(super) fn kind(&self) -> MediaKind {
        self.source.kind()
    }

    pub(super) fn info(&self) -> TrackInfo {
        TrackInfo {
            track_id: self.id.to_string(),
            participant_id: self.owner_id.to_string(),
            source: self.source,
            kind: self.kind(),
            muted: self.muted,
        }
    }
}

impl Room {
    /// The id of `owner`'s track named `track_id`, if it has one.
    pub(super) fn owned_track(&self, owner: ParticipantKey, track_id: &str) -> Option<TrackId> {
        self.tracks
            .values()
            .find(|t| t.owner == owner && t.id.as_str() == track_id)
            .map(|t| t.id.clone())
    }

    pub(super) fn publish(
        &mut self,
        key: ParticipantKey,
        cid: String,
        source: TrackSource,
        muted: bool,
    ) -> Result<(), (&'static str, String)> {
        let p = &self.participants[&key];
        if !p.grants.may_publish(source) {
            return Err((
                "permission_denied",
                format!("you may not publish {}", source.as_str()),
            ));
        }
        if cid.is_empty() || cid.len() > MAX_CID_LEN {
            return Err((
                "bad_message",
                format!("cid must be 1..={MAX_CID_LEN} bytes"),
            ));
        }
        if self
            .tracks
            .values()
            .any(|t| t.owner == key && t.source == source)
        {
            return Err((
                "source_already_published",
                format!(
                    "you already publish {}; unpublish it first",
                    source.as_str()
                ),
            ));
        }
        let id = TrackId::from_random(rand::random());
        let track = PublishedTrack {
            id: id.clone(),
            owner: key,
            owner_id: p.id.clone(),
            cid: cid.clone(),
            source,
            muted,
            muted_by_server: false,
            upstream: None,
            seq: SeqUnwrapper::default(),
            ts: TimestampUnwrapper::default(),
            keyframes: KeyframeThrottle::default(),
            subscribers: Vec::new(),
        };
        let info = track.info();
        self.tracks.insert(id, track);
        self.send_to(key, ServerMessage::PublishAccepted { cid, track: info });
        Ok(())
    }

    pub(super) fn set_muted(&mut self, id: &TrackId, muted: bool, by_server: bool) -> TrackInfo {
        let track = self.tracks.get_mut(id).expect("caller checked");
        track.muted = muted;
        if by_server {
            track.muted_by_server = muted;
        }
        let info = track.info();
        if track.kind() == MediaKind::Audio {
            let source = SourceId(track.owner.0);
            self.speakers.set_muted(source, muted);
            if let Some(m) = self.mixer.as_mut() {
                m.set_muted(source, muted);
            }
        }
        let track = &self.tracks[id];
        if track.upstream.is_some() {
            self.broadcast(ServerMessage::TrackMuted {
                participant_id: info.participant_id.clone(),
                track_id: info.track_id.clone(),
                muted,
            });
        }
        info
    }

    pub(super) fn update_permissions(
        &mut self,
        key: ParticipantKey,
        grants: Grants,
        now: Instant,
    ) -> ParticipantInfo {
        let p = self.participants.get_mut(&key).expect("caller checked");
        let could_subscribe = p.grants.can_subscribe;
        p.grants = grants.clone();
        let revoked: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| t.owner == key && !grants.may_publish(t.source))
            .map(|t| t.id.clone())
            .collect();
        for id in revoked {
            self.unpublish(&id, now);
        }
        match (could_subscribe, grants.can_subscribe) {
            (false, true) => self.subscribe_to_all(key, now),
            (true, false) => {
                let subscribed: Vec<TrackId> = self
                    .tracks
                    .values()
                    .filter(|t| t.subscribers.contains(&key))
                    .map(|t| t.id.clone())
                    .collect();
                for id in subscribed {
                    self.unsubscribe(key, &id, now);
                }
                self.update_audio(now);
            }
            _ => {}
        }
        self.send_to(key, ServerMessage::PermissionsChanged { grants });
        self.participant_info(key)
    }

    /// The publisher's SDP now carries the track: tell everyone and subscribe them.
    fn announce(&mut self, id: &TrackId, binding: UpstreamBinding, now: Instant) {
        let track = self.tracks.get_mut(id).expect("caller checked");
        track.upstream = Some(binding);
        let owner = track.owner;
        let info = track.info();
        let audio = track.kind() == MediaKind::Audio;
        self.broadcast(ServerMessage::TrackPublished { track: info });
        if audio {
            self.update_audio(now);
            return;
        }
        let subscribers: Vec<ParticipantKey> = self
            .participants
            .iter()
            .filter(|(k, p)| **k != owner && p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        for k in subscribers {
            self.subscribe(k, id, now);
        }
    }

    pub(super) fn unpublish(&mut self, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.remove(id) else {
            return;
        };
        if track.kind() == MediaKind::Audio {
            // Its listeners hear someone else, or nothing, on the same room-audio track.
            self.update_audio(now);
        }
        for k in &track.subscribers {
            if let Some(peer) = self.peer_mut(*k, PeerTarget::Subscriber)
                && let Some(dt) = peer.downtracks.remove(id)
            {
                let _ = peer.pc.remove_track(dt.sender);
                self.negotiate(*k, now);
            }
        }
        if let Some(publisher) = self.peer_mut(track.owner, PeerTarget::Publisher) {
            publisher.uptracks.retain(|_, t| t != id);
        }
        if track.upstream.is_some() {
            self.broadcast(ServerMessage::TrackUnpublished {
                participant_id: track.owner_id.to_string(),
                track_id: id.to_string(),
            });
        }
    }

    /// A track appeared in a publisher's SDP: bind it to what the client announced.
    pub(super) fn on_upstream_track(
        &mut self,
        key: ParticipantKey,
        rtc_track: String,
        receiver: rtc::rtp_transceiver::RTCRtpReceiverId,
        now: Instant,
    ) {
        let Some(peer) = self.peer_mut(key, PeerTarget::Publisher) else {
            return;
        };
        if peer.uptracks.contains_key(&rtc_track) {
            return;
        }
        let kind = peer.pc.rtp_receiver(receiver).map(|r| r.track().kind());
        let pending = |t: &&PublishedTrack| t.owner == key && t.upstream.is_none();
        // Match by the client's track id; else by kind, for clients whose msid differs.
        let id = self
            .tracks
            .values()
            .filter(pending)
            .find(|t| t.cid == rtc_track)
            .or_else(|| {
                self.tracks.values().filter(pending).find(|t| {
                    Some(match t.kind() {
                        MediaKind::Audio => RtpCodecKind::Audio,
                        MediaKind::Video => RtpCodecKind::Video,
                    }) == kind
                })
            })
            .map(|t| t.id.clone());
        let Some(id) = id else {
            tracing::debug!(room = %self.name, track = %rtc_track, "unannounced track ignored");
            return;
        };
        let peer = self.peer_mut(key, PeerTarget::Publisher).expect("checked");
        peer.uptracks.insert(rtc_track, id.clone());
        let audio_level_ext = peer.pc.rtp_receiver(receiver).and_then(|mut r| {
            r.get_parameters()
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|ext| ext.uri == AUDIO_LEVEL_URI)
                .and_then(|ext| u8::try_from(ext.id).ok())
        });
        self.announce(
            &id,
            UpstreamBinding {
                receiver,
                media_ssrc: None,
                audio_level_ext,
            },
            now,
        );
    }

    // ----- subscriptions -----

    pub(super) fn subscribe_to_all(&mut self, key: ParticipantKey, now: Instant) {
        let ids: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| t.owner != key && t.upstream.is_some() && t.kind() == MediaKind::Video)
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            self.subscribe(key, &id, now);
        }
        self.update_audio(now);
    }

    /// Subscribes to a video track (audio reaches everyone through the room audio).
    fn subscribe(&mut self, key: ParticipantKey, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        let label = track.source.as_str().to_owned();
        if self.add_downtrack(key, id, MediaKind::Video, label, now) {
            self.tracks
                .get_mut(id)
                .expect("exists")
                .subscribers
                .push(key);
        }
    }

    /// Adds a track to the participant's subscriber connection (created on first use)
    /// and renegotiates; false if it could not be added or was there already.
    pub(super) fn add_downtrack(
        &mut self,
        key: ParticipantKey,
        id: &TrackId,
        kind: MediaKind,
        label: String,
        now: Instant,
    ) -> bool {
        let Some(p) = self.participants.get(&key) else {
            return false;
        };
        if p.subscriber.is_none() {
            match self.new_peer(key, PeerTarget::Subscriber, now) {
                Ok(peer) => {
                    self.participants.get_mut(&key).expect("exists").subscriber = Some(peer)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create subscriber connection");
                    return false;
                }
            }
        }
        let peer = self
            .participants
            .get_mut(&key)
            .expect("exists")
            .subscriber
            .as_mut()
            .expect("set");
        if peer.downtracks.contains_key(id) {
            return false;
        }
        let (codec_kind, payload_type, forwarder) = match kind {
            MediaKind::Audio => (RtpCodecKind::Audio, OPUS_PT, Forwarder::audio()),
            MediaKind::Video => (RtpCodecKind::Video, VP8_PT, Forwarder::video()),
        };
        let ssrc: u32 = rand::random();
        // The stream id is the track id: that is how the client maps what arrives.
        let output = sending_track(id.to_string(), id.to_string(), label, codec_kind, ssrc);
        let sender = match peer.pc.add_track(output) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot add track to subscriber connection");
                return false;
            }
        };
        peer.downtracks.insert(
            id.clone(),
            DownTrack {
                sender,
                ssrc,
                payload_type,
                forwarder,
                negotiation: Negotiation::Pending,
            },
        );
        self.negotiate(key, now);
        true
    }

    fn unsubscribe(&mut self, key: ParticipantKey, id: &TrackId, now: Instant) {
        if let Some(t) = self.tracks.get_mut(id) {
            t.subscribers.retain(|k| *k != key);
        }
        self.remove_downtrack(key, id, now);
    }

    pub(super) fn remove_downtrack(&mut self, key: ParticipantKey, id: &TrackId, now: Instant) {
        let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) else {
            return;
        };
        if let Some(dt) = peer.downtracks.remove(id) {
            let _ = peer.pc.remove_track(dt.sender);
            self.negotiate(key, now);
        }
    }

    /// Offers on the subscriber connection, or notes that another offer is due.
    pub(super) fn negotiate(&mut self, key: ParticipantKey, now: Instant) {
        let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) else {
            return;
        };
        if peer.offer_in_flight {
            peer.needs_offer = true;
            return;
        }
        peer.needs_offer = false;
        let restart = std::mem::take(&mut peer.restart_ice);
        let options = restart.then_some(RTCOfferOptions { ice_restart: true });
        let offer = match peer.pc.create_offer(options) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create subscriber offer");
                return;
            }
        };
        if let Err(e) = peer.pc.set_local_description(now, offer) {
            tracing::warn!(error = %e, "cannot apply subscriber offer");
            return;
        }
        let sdp = peer
            .pc
            .local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        peer.offer_sent();
        tracing::trace!(%sdp, "subscriber offer");
        let conn = peer.conn;
        if peer.mark_dirty() {
            self.dirty.push(conn);
        }
        self.route_credentials(key, PeerTarget::Subscriber, now);
        self.send_to(
            key,
            ServerMessage::Offer {
                target: PeerTarget::Subscriber,
                sdp,
            },
        );
    }
}
