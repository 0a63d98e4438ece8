//! The room actor: one task owns everything about one room.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_core::codec::vp8_is_keyframe;
use chorus_core::forward::DropReason;
use chorus_core::{
    ConnId, ExtSeq, ExtTimestamp, Forwarder, KeyframeThrottle, ParticipantId, SeqUnwrapper,
    TimestampUnwrapper, TrackId, Translation,
};
use chorus_protocol::control::RoomInfo;
use chorus_protocol::signal::{
    ActiveSpeaker, ClientMessage, PeerTarget, ROOM_AUDIO_TRACK, ServerMessage,
};
use chorus_protocol::{
    Grants, LeaveReason, MediaKind, ParticipantInfo, ParticipantState, TrackInfo, TrackSource,
};
use chorus_transport::{
    AUDIO_LEVEL_URI, Datagram, IceEvent, LinkState, MediaPlane, OPUS_PT, PeerFactory, PeerRole,
    Route, VP8_PT, sending_track,
};
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audio::{AudioFeed, AudioRoutes, FeedChange};
use crate::command::{ParticipantKey, RoomCommand};
use crate::peer::{DownTrack, Negotiation, Peer, PeerOutput, UpstreamBinding};
use crate::{JoinError, JoinRequest, RoomError, Session, SessionHandle};
use chorus_mixer::{Mixer, MixerConfig, SourceId, SpeakerConfig, SpeakerDetector};

/// Frames queued for one client before it counts as stuck and is dropped.
const EVENTS_PER_PARTICIPANT: usize = 512;
/// Datagrams taken from the inbox per wake-up.
const INBOX_BATCH: usize = 64;
/// Longest a media datagram may wait in the inbox before it is dropped unprocessed.
const MAX_MEDIA_QUEUEING: Duration = Duration::from_millis(200);
/// Least time between two warnings of an overloaded room.
const OVERLOAD_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Counts media dropped because the room fell behind, and says so now and then.
#[derive(Debug, Default)]
struct Overload {
    stale: u64,
    reported_at: Option<Instant>,
}

impl Overload {
    fn stale(&mut self, now: Instant, room: &str) {
        self.stale += 1;
        if self
            .reported_at
            .is_none_or(|t| now.saturating_duration_since(t) >= OVERLOAD_REPORT_EVERY)
        {
            self.reported_at = Some(now);
            tracing::warn!(
                room,
                dropped_total = self.stale,
                "room overloaded: media waited over {} ms and was dropped",
                MAX_MEDIA_QUEUEING.as_millis()
            );
        }
    }
}

/// What usually keeps a media connection from coming up, for `media_unreachable`.
const UNREACHABLE_HINT: &str = "no ICE connectivity check and DTLS handshake completed: a \
    firewall may block UDP to the server's media port, or the network needs a TURN relay";

/// How often the speaker detector is asked whether the active speakers changed.
const SPEAKER_POLL: Duration = Duration::from_millis(100);
/// Longest client-chosen track id (`cid`) we keep.
const MAX_CID_LEN: usize = 128;

/// Connection ids are unique across rooms: routes of all rooms share one table.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub(crate) struct RoomParams {
    pub name: String,
    pub max_participants: u32,
    pub empty_timeout: Duration,
    pub media: MediaPlane,
    pub peers: PeerFactory,
    pub commands: mpsc::Sender<RoomCommand>,
}

struct Participant {
    id: ParticipantId,
    identity: String,
    name: String,
    grants: Grants,
    state: ParticipantState,
    joined_at_ms: u64,
    events: mpsc::Sender<ServerMessage>,
    publisher: Option<Peer>,
    subscriber: Option<Peer>,
}

struct PublishedTrack {
    id: TrackId,
    owner: ParticipantKey,
    owner_id: ParticipantId,
    cid: String,
    source: TrackSource,
    muted: bool,
    /// Muted through the control API: the client cannot unmute it.
    muted_by_server: bool,
    /// Set once the publisher's SDP carries the track; then others are told and subscribed.
    upstream: Option<UpstreamBinding>,
    seq: SeqUnwrapper,
    ts: TimestampUnwrapper,
    keyframes: KeyframeThrottle,
    subscribers: Vec<ParticipantKey>,
}

impl Participant {
    fn peer_mut(&mut self, target: PeerTarget) -> Option<&mut Peer> {
        match target {
            PeerTarget::Publisher => self.publisher.as_mut(),
            PeerTarget::Subscriber => self.subscriber.as_mut(),
        }
    }
}

impl PublishedTrack {
    fn kind(&self) -> MediaKind {
        self.source.kind()
    }

    fn info(&self) -> TrackInfo {
        TrackInfo {
            track_id: self.id.to_string(),
            participant_id: self.owner_id.to_string(),
            source: self.source,
            kind: self.kind(),
            muted: self.muted,
        }
    }
}

pub(crate) struct Room {
    name: String,
    max_participants: u32,
    created_at_ms: u64,
    empty_timeout: Duration,
    media: MediaPlane,
    peers: PeerFactory,
    commands: mpsc::WeakSender<RoomCommand>,
    inbox: mpsc::Sender<Datagram>,
    /// STUN and DTLS of this room's connections: served before media.
    control: mpsc::Sender<Datagram>,
    participants: HashMap<ParticipantKey, Participant>,
    identities: HashMap<String, ParticipantKey>,
    tracks: HashMap<TrackId, PublishedTrack>,
    conns: HashMap<ConnId, (ParticipantKey, PeerTarget)>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    /// Connections with output to send at the end of this turn.
    dirty: Vec<ConnId>,
    /// Buffers for what a connection produced, kept between packets.
    scratch: PeerOutput,
    next_key: u64,
    empty_since: Option<Instant>,
    /// Participants to remove at the end of this turn (e.g. their event queue overflowed).
    doomed: Vec<(ParticipantKey, LeaveReason)>,
    closing: bool,
    /// Who hears what on their room-audio track.
    audio: AudioRoutes,
    overload: Overload,
    /// Participants whose microphone is published, as the mixer and detector know them.
    audio_sources: Vec<ParticipantKey>,
    /// Created with the first microphone; `None` after `mixer_failed`.
    mixer: Option<Mixer>,
    mixer_failed: bool,
    /// Drives `active_speakers` in every room, mixed or not.
    speakers: SpeakerDetector,
    next_speaker_poll: Option<Instant>,
    /// The id of every listener's room-audio track ([`ROOM_AUDIO_TRACK`]).
    room_audio: TrackId,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Room {
    /// Runs the room until it is deleted, stays empty too long, or the server shuts down.
    pub(crate) async fn run(
        params: RoomParams,
        mut commands: mpsc::Receiver<RoomCommand>,
        shutdown: CancellationToken,
    ) {
        let (inbox, mut inbox_rx) = mpsc::channel(4096);
        let (control, mut control_rx) = mpsc::channel(1024);
        let mut room = Room {
            name: params.name,
            max_participants: params.max_participants,
            created_at_ms: unix_ms(),
            empty_timeout: params.empty_timeout,
            media: params.media,
            peers: params.peers,
            commands: params.commands.downgrade(),
            inbox,
            control,
            participants: HashMap::new(),
            identities: HashMap::new(),
            tracks: HashMap::new(),
            conns: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            scratch: PeerOutput::default(),
            next_key: 1,
            empty_since: Some(Instant::now()),
            doomed: Vec::new(),
            closing: false,
            audio: AudioRoutes::default(),
            overload: Overload::default(),
            audio_sources: Vec::new(),
            mixer: None,
            mixer_failed: false,
            speakers: SpeakerDetector::new(SpeakerConfig::default()),
            next_speaker_poll: None,
            room_audio: TrackId::named(ROOM_AUDIO_TRACK),
        };
        drop(params.commands);
        tracing::info!(room = %room.name, "room open");
        let mut batch = Vec::with_capacity(INBOX_BATCH);
        let mut control_batch = Vec::with_capacity(INBOX_BATCH);
        while !room.closing {
            let deadline = room.next_deadline();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    room.close_all(LeaveReason::ServerShutdown, Instant::now());
                    break;
                }
                cmd = commands.recv() => match cmd {
                    Some(cmd) => room.handle_command(cmd, Instant::now()),
                    None => break,
                },
                // Handshakes and keepalives first: under overload media waits (and
                // drops at the inbox), connections stay up.
                n = control_rx.recv_many(&mut control_batch, INBOX_BATCH) => {
                    if n == 0 { break; }
                    let now = Instant::now();
                    for dg in control_batch.drain(..) {
                        room.handle_datagram(dg, now);
                    }
                }
                n = inbox_rx.recv_many(&mut batch, INBOX_BATCH) => {
                    if n == 0 { break; }
                    let now = Instant::now();
                    for dg in batch.drain(..) {
                        // Media that waited this long is worth less than the time to
                        // forward it: drop it and catch up (NACK and PLI repair).
                        if now.saturating_duration_since(dg.at) > MAX_MEDIA_QUEUEING {
                            room.overload.stale(now, &room.name);
                            continue;
                        }
                        room.handle_datagram(dg, now);
                    }
                }
                _ = sleep_until(deadline) => {}
            }
            // Every turn, not only when the sleep wins: under a steady stream of
            // packets the inbox is always ready, and timers (ICE, DTLS, RTCP, the
            // mixer) must not starve behind it.
            let now = Instant::now();
            room.handle_timers(now);
            room.finish_turn(now);
        }
        tracing::info!(room = %room.name, "room closed");
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let empty = self.empty_since.map(|t| t + self.empty_timeout);
        let mix = self
            .mixer
            .as_ref()
            .filter(|_| self.audio.mixing())
            .and_then(Mixer::poll_timeout);
        [timer, empty, mix, self.next_speaker_poll]
            .into_iter()
            .flatten()
            .min()
    }

    /// End of every turn: removals, outgoing packets, timers, the empty-room clock.
    fn finish_turn(&mut self, now: Instant) {
        while let Some((key, reason)) = self.doomed.pop() {
            self.remove_participant(key, reason, now);
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        // Everything the turn produced leaves in one batch: GSO runs per destination.
        let mut egress = self.media.egress();
        for conn in dirty.drain(..) {
            let Some(&(key, target)) = self.conns.get(&conn) else {
                continue;
            };
            let Some(peer) = peer_of(&mut self.participants, key, target) else {
                continue;
            };
            if let Some(next) = peer.flush(&mut egress)
                && peer.scheduled != Some(next)
            {
                peer.scheduled = Some(next);
                self.timers.push(Reverse((next, conn)));
            }
        }
        egress.send();
        self.dirty = dirty;
        if self.participants.is_empty() {
            let since = *self.empty_since.get_or_insert(now);
            if now.duration_since(since) >= self.empty_timeout {
                tracing::info!(room = %self.name, "closing empty room");
                self.closing = true;
            }
        } else {
            self.empty_since = None;
        }
    }

    // ----- commands -----

    fn handle_command(&mut self, cmd: RoomCommand, now: Instant) {
        match cmd {
            RoomCommand::Join { req, reply } => {
                let _ = reply.send(self.join(req, now));
            }
            RoomCommand::Signal { participant, msg } => self.handle_signal(participant, msg, now),
            RoomCommand::Close {
                participant,
                reason,
            } => self.remove_participant(participant, reason, now),
            RoomCommand::Info { reply } => {
                let _ = reply.send(self.info());
            }
            RoomCommand::Participants { reply } => {
                let list = self
                    .participants
                    .keys()
                    .map(|k| self.participant_info(*k))
                    .collect();
                let _ = reply.send(list);
            }
            RoomCommand::Participant { identity, reply } => {
                let _ = reply.send(self.key_of(&identity).map(|k| self.participant_info(k)));
            }
            RoomCommand::Remove { identity, reply } => {
                let result = self.key_of(&identity).map(|k| {
                    self.remove_participant(k, LeaveReason::RemovedByServer, now);
                });
                let _ = reply.send(result);
            }
            RoomCommand::MuteTrack {
                identity,
                track_id,
                muted,
                reply,
            } => {
                let result = self.key_of(&identity).and_then(|k| {
                    let id = self
                        .owned_track(k, &track_id)
                        .ok_or_else(|| RoomError::TrackNotFound(track_id.clone()))?;
                    Ok(self.set_muted(&id, muted, true))
                });
                let _ = reply.send(result);
            }
            RoomCommand::UpdatePermissions {
                identity,
                grants,
                reply,
            } => {
                let result = self
                    .key_of(&identity)
                    .map(|k| self.update_permissions(k, grants, now));
                let _ = reply.send(result);
            }
            RoomCommand::Delete { reply } => {
                self.close_all(LeaveReason::RoomDeleted, now);
                self.closing = true;
                let _ = reply.send(());
            }
            #[cfg(feature = "fault-injection")]
            RoomCommand::Panic => panic!("fault injection: room {} panics on request", self.name),
        }
    }

    fn key_of(&self, identity: &str) -> Result<ParticipantKey, RoomError> {
        self.identities
            .get(identity)
            .copied()
            .ok_or_else(|| RoomError::ParticipantNotFound(identity.to_owned()))
    }

    fn owned_track(&self, owner: ParticipantKey, track_id: &str) -> Option<TrackId> {
        self.tracks
            .values()
            .find(|t| t.owner == owner && t.id.as_str() == track_id)
            .map(|t| t.id.clone())
    }

    fn info(&self) -> RoomInfo {
        RoomInfo {
            name: self.name.clone(),
            max_participants: self.max_participants,
            num_participants: self.participants.len() as u32,
            num_tracks: self
                .tracks
                .values()
                .filter(|t| t.upstream.is_some())
                .count() as u32,
            created_at_ms: self.created_at_ms,
        }
    }

    fn participant_info(&self, key: ParticipantKey) -> ParticipantInfo {
        let p = &self.participants[&key];
        let mut tracks: Vec<TrackInfo> = self
            .tracks
            .values()
            .filter(|t| t.owner == key && t.upstream.is_some())
            .map(PublishedTrack::info)
            .collect();
        tracks.sort_by(|a, b| a.track_id.cmp(&b.track_id));
        ParticipantInfo {
            participant_id: p.id.to_string(),
            identity: p.identity.clone(),
            name: p.name.clone(),
            state: p.state,
            grants: p.grants.clone(),
            tracks,
            joined_at_ms: p.joined_at_ms,
        }
    }

    fn join(&mut self, req: JoinRequest, now: Instant) -> Result<Session, JoinError> {
        if self.closing {
            return Err(JoinError::RoomClosed);
        }
        if let Some(old) = self.identities.get(&req.identity).copied() {
            self.remove_participant(old, LeaveReason::DuplicateIdentity, now);
        }
        if self.participants.len() as u32 >= self.max_participants {
            return Err(JoinError::RoomFull(self.max_participants));
        }
        let commands = self.commands.upgrade().ok_or(JoinError::RoomClosed)?;
        let key = ParticipantKey(self.next_key);
        self.next_key += 1;
        let id = ParticipantId::from_random(rand::random());
        let (events, events_rx) = mpsc::channel(EVENTS_PER_PARTICIPANT);
        let can_subscribe = req.grants.can_subscribe;
        self.participants.insert(
            key,
            Participant {
                id: id.clone(),
                identity: req.identity.clone(),
                name: req.name,
                grants: req.grants,
                state: ParticipantState::Connecting,
                joined_at_ms: unix_ms(),
                events,
                publisher: None,
                subscriber: None,
            },
        );
        self.identities.insert(req.identity, key);
        let me = self.participant_info(key);
        let others: Vec<ParticipantInfo> = self
            .participants
            .keys()
            .filter(|k| **k != key)
            .map(|k| self.participant_info(*k))
            .collect();
        self.send_to(
            key,
            ServerMessage::Joined {
                room: self.name.clone(),
                participant: me.clone(),
                participants: others,
            },
        );
        self.broadcast_except(key, ServerMessage::ParticipantJoined { participant: me });
        if can_subscribe {
            self.subscribe_to_all(key, now);
        }
        tracing::info!(room = %self.name, participant = %id, "participant joined");
        Ok(Session {
            events: events_rx,
            handle: SessionHandle {
                participant: key,
                participant_id: id.to_string(),
                room: commands,
            },
        })
    }

    fn handle_signal(&mut self, key: ParticipantKey, msg: ClientMessage, now: Instant) {
        if !self.participants.contains_key(&key) {
            return;
        }
        let result = match msg {
            ClientMessage::Join {} => Err(("already_joined", "this session already joined".into())),
            ClientMessage::Offer { target, sdp } => self.handle_offer(key, target, sdp, now),
            ClientMessage::Answer { target, sdp } => self.handle_answer(key, target, sdp, now),
            ClientMessage::Candidate { target, candidate } => {
                if let Some(c) = candidate {
                    let peer = self.peer_mut(key, target);
                    if let Some(peer) = peer {
                        // ICE-lite: the server never checks the client's candidates, so a bad
                        // one (mDNS, TCP) is harmless; keep them for rtc's bookkeeping.
                        let _ = peer.pc.add_remote_candidate(RTCIceCandidateInit {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_mline_index,
                            username_fragment: c.username_fragment,
                            url: None,
                        });
                    }
                }
                Ok(())
            }
            ClientMessage::Publish { cid, source, muted } => self.publish(key, cid, source, muted),
            ClientMessage::Unpublish { track_id } => match self.owned_track(key, &track_id) {
                Some(id) => {
                    self.unpublish(&id, now);
                    Ok(())
                }
                None => Err(("track_not_found", format!("you have no track '{track_id}'"))),
            },
            ClientMessage::Mute { track_id, muted } => match self.owned_track(key, &track_id) {
                Some(id) if !muted && self.tracks[&id].muted_by_server => Err((
                    "muted_by_server",
                    "the server muted this track; only the server can unmute it".into(),
                )),
                Some(id) => {
                    self.set_muted(&id, muted, false);
                    Ok(())
                }
                None => Err(("track_not_found", format!("you have no track '{track_id}'"))),
            },
            ClientMessage::Leave {} => {
                self.remove_participant(key, LeaveReason::ClientLeft, now);
                Ok(())
            }
            ClientMessage::IceRestart { target } => match target {
                PeerTarget::Subscriber if self.peer_mut(key, target).is_some() => {
                    self.restart_subscriber_ice(key, now);
                    Ok(())
                }
                PeerTarget::Subscriber => Err((
                    "no_connection",
                    "there is no subscriber connection to restart".into(),
                )),
                PeerTarget::Publisher => Err((
                    "bad_target",
                    "restart the publisher connection with a new offer (iceRestart)".into(),
                )),
            },
            ClientMessage::Ping { ts } => {
                self.send_to(key, ServerMessage::Pong { ts });
                Ok(())
            }
        };
        if let Err((code, message)) = result {
            self.send_to(
                key,
                ServerMessage::Error {
                    code: code.to_owned(),
                    message,
                },
            );
        }
    }

    fn peer_mut(&mut self, key: ParticipantKey, target: PeerTarget) -> Option<&mut Peer> {
        peer_of(&mut self.participants, key, target)
    }

    /// Creates a connection for `key` and routes its ufrag here.
    fn new_peer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        now: Instant,
    ) -> Result<Peer, String> {
        let role = match target {
            PeerTarget::Publisher => PeerRole::Publisher,
            PeerTarget::Subscriber => PeerRole::Subscriber,
        };
        let built = self.peers.build(role, now).map_err(|e| e.to_string())?;
        let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
        self.conns.insert(conn, (key, target));
        // Routed once its local description names its ufrag (`route_credentials`).
        Ok(Peer::new(conn, built.pc, built.ice))
    }

    /// Routes the ufrag of the local description just set to its connection: the first
    /// one, or a new one after an ICE restart (the old one stops routing; addresses the
    /// client already proved stay until they expire).
    fn route_credentials(&mut self, key: ParticipantKey, target: PeerTarget, now: Instant) {
        let demux = self.media.demux();
        let Some(peer) = peer_of(&mut self.participants, key, target) else {
            return;
        };
        let Some((old, new)) = peer.sync_credentials(now) else {
            return;
        };
        let route = Route {
            conn: peer.conn,
            inbox: self.inbox.clone(),
            control: self.control.clone(),
        };
        demux.add_ufrag(new, route);
        if let Some(old) = old {
            demux.remove_ufrag(&old, peer.conn);
            tracing::info!(room = %self.name, ?target, "ICE restarted");
        }
    }

    fn handle_offer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        sdp: String,
        now: Instant,
    ) -> Result<(), (&'static str, String)> {
        if target != PeerTarget::Publisher {
            return Err((
                "bad_target",
                "the server offers on the subscriber connection; answer it".into(),
            ));
        }
        if !self.participants[&key].grants.can_publish {
            return Err((
                "permission_denied",
                "you may not publish in this room".into(),
            ));
        }
        if self.participants[&key].publisher.is_none() {
            let peer = self
                .new_peer(key, PeerTarget::Publisher, now)
                .map_err(|e| ("transport_error", e))?;
            self.participants.get_mut(&key).expect("checked").publisher = Some(peer);
        }
        let peer = self
            .participants
            .get_mut(&key)
            .expect("checked")
            .publisher
            .as_mut()
            .expect("set");
        tracing::trace!(%sdp, "publisher offer");
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.pc
            .set_remote_description(now, offer)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        let answer = peer
            .pc
            .create_answer(None)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.pc
            .set_local_description(now, answer)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        let sdp = peer
            .pc
            .local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        tracing::trace!(%sdp, "publisher answer");
        self.route_credentials(key, PeerTarget::Publisher, now);
        self.send_to(
            key,
            ServerMessage::Answer {
                target: PeerTarget::Publisher,
                sdp,
            },
        );
        self.drain_peer(key, PeerTarget::Publisher, now);
        Ok(())
    }

    fn handle_answer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        sdp: String,
        now: Instant,
    ) -> Result<(), (&'static str, String)> {
        if target != PeerTarget::Subscriber {
            return Err((
                "bad_target",
                "answers go to the subscriber connection".into(),
            ));
        }
        let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) else {
            return Err(("no_offer", "no offer is waiting for an answer".into()));
        };
        if !peer.offer_in_flight {
            return Err(("no_offer", "no offer is waiting for an answer".into()));
        }
        tracing::trace!(%sdp, "subscriber answer");
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.pc
            .set_remote_description(now, answer)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.answer_applied();
        if peer.needs_offer {
            self.negotiate(key, now);
        }
        self.drain_peer(key, PeerTarget::Subscriber, now);
        Ok(())
    }

    fn publish(
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

    fn set_muted(&mut self, id: &TrackId, muted: bool, by_server: bool) -> TrackInfo {
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

    fn update_permissions(
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

    // ----- subscriptions -----

    fn subscribe_to_all(&mut self, key: ParticipantKey, now: Instant) {
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
    fn add_downtrack(
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

    fn remove_downtrack(&mut self, key: ParticipantKey, id: &TrackId, now: Instant) {
        let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) else {
            return;
        };
        if let Some(dt) = peer.downtracks.remove(id) {
            let _ = peer.pc.remove_track(dt.sender);
            self.negotiate(key, now);
        }
    }

    // ----- room audio -----

    /// Re-decides who hears what after talkers or listeners changed.
    fn update_audio(&mut self, now: Instant) {
        let sources: Vec<(ParticipantKey, TrackId)> = self
            .tracks
            .values()
            .filter(|t| t.kind() == MediaKind::Audio && t.upstream.is_some())
            .map(|t| (t.owner, t.id.clone()))
            .collect();
        let listeners: Vec<ParticipantKey> = self
            .participants
            .iter()
            .filter(|(_, p)| p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        for change in self.audio.update(listeners, &sources) {
            self.apply_feed_change(change, now);
        }
        self.sync_mixer(&sources, now);
    }

    /// An audio packet from `talker`: for the speaker detector and, while anyone
    /// hears the mix, the mixer.
    fn hear(
        &mut self,
        talker: ParticipantKey,
        seq: ExtSeq,
        level: Option<u8>,
        payload: &[u8],
        now: Instant,
    ) {
        let id = SourceId(talker.0);
        self.speakers.observe(id, level, now);
        if self.audio.mixing()
            && let Some(mixer) = self.mixer.as_mut()
        {
            mixer.push(id, seq.0, level, payload, now);
        }
    }

    /// Keeps the mixer's and the speaker detector's sources in step with the
    /// published microphones.
    fn sync_mixer(&mut self, sources: &[(ParticipantKey, TrackId)], now: Instant) {
        if !sources.is_empty() && self.next_speaker_poll.is_none() {
            self.next_speaker_poll = Some(now + SPEAKER_POLL);
        }
        if self.mixer.is_none() && !sources.is_empty() && !self.mixer_failed {
            match Mixer::new(MixerConfig::default()) {
                Ok(m) => self.mixer = Some(m),
                Err(e) => {
                    // The room still relays 1:1 audio; only the mix is missing.
                    tracing::error!(room = %self.name, error = %e, "cannot create the audio mixer");
                    self.mixer_failed = true;
                }
            }
        }
        let now_sources: Vec<ParticipantKey> = sources.iter().map(|(k, _)| *k).collect();
        for gone in self
            .audio_sources
            .iter()
            .filter(|k| !now_sources.contains(k))
        {
            let id = SourceId(gone.0);
            self.speakers.remove(id);
            if let Some(m) = self.mixer.as_mut() {
                m.remove_source(id);
            }
        }
        for (key, track) in sources {
            if self.audio_sources.contains(key) {
                continue;
            }
            let id = SourceId(key.0);
            let muted = self.tracks.get(track).is_some_and(|t| t.muted);
            self.speakers.add(id);
            self.speakers.set_muted(id, muted);
            if let Some(m) = self.mixer.as_mut() {
                m.add_source(id);
                m.set_muted(id, muted);
            }
        }
        self.audio_sources = now_sources;
    }

    /// Produces the mix frames due by `now` and sends each mix listener its own.
    fn tick_mixer(&mut self, now: Instant) {
        if !self.audio.mixing() {
            return;
        }
        let Some(mixer) = self.mixer.as_mut() else {
            return;
        };
        let listeners = self.audio.mix_listeners();
        while mixer.poll_timeout().is_some_and(|t| t <= now) {
            let Some(frame) = mixer.tick(now) else {
                break;
            };
            let common_payload = frame.common();
            if common_payload.is_empty() {
                continue; // the encoder failed; counted by the mixer
            }
            let common = Bytes::copy_from_slice(common_payload);
            // At most K listeners (the mixed talkers) get a payload of their own.
            let mut own: Vec<(ParticipantKey, Bytes)> = Vec::new();
            for l in listeners {
                let payload = frame.payload_for(SourceId(l.0));
                if !std::ptr::eq(payload, common_payload) {
                    own.push((*l, Bytes::copy_from_slice(payload)));
                }
            }
            let (seq, ts) = (ExtSeq(frame.seq), ExtTimestamp(frame.timestamp));
            let header = rtc::rtp::header::Header {
                version: 2,
                ..Default::default()
            };
            fan_out(
                &mut self.participants,
                &mut self.dirty,
                listeners,
                &self.room_audio,
                &header,
                seq,
                ts,
                false,
                now,
                |l| {
                    own.iter()
                        .find(|(k, _)| *k == l)
                        .map_or_else(|| common.clone(), |(_, b)| b.clone())
                },
            );
        }
    }

    /// Tells everyone when who is speaking changed.
    fn poll_speakers(&mut self, now: Instant) {
        if self.next_speaker_poll.is_none_or(|t| t > now) {
            return;
        }
        self.next_speaker_poll = (!self.audio_sources.is_empty()).then(|| now + SPEAKER_POLL);
        let Some(change) = self.speakers.poll_change(now) else {
            return;
        };
        let speakers = change
            .iter()
            .filter_map(|s| {
                let p = self.participants.get(&ParticipantKey(s.id.0))?;
                Some(ActiveSpeaker {
                    participant_id: p.id.to_string(),
                    level: s.loudness,
                })
            })
            .collect();
        self.broadcast(ServerMessage::ActiveSpeakers { speakers });
    }

    fn apply_feed_change(&mut self, change: FeedChange, now: Instant) {
        let FeedChange { listener, from, to } = change;
        if let AudioFeed::Relay(id) = &from
            && let Some(t) = self.tracks.get_mut(id)
        {
            t.subscribers.retain(|k| *k != listener);
        }
        if let AudioFeed::Relay(id) = &to
            && let Some(t) = self.tracks.get_mut(id)
        {
            t.subscribers.push(listener);
        }
        let room_audio = self.room_audio.clone();
        match (from, to) {
            (_, AudioFeed::Silent) => self.remove_downtrack(listener, &room_audio, now),
            (AudioFeed::Silent, _) => {
                let label = ROOM_AUDIO_TRACK.to_owned();
                self.add_downtrack(listener, &room_audio, MediaKind::Audio, label, now);
            }
            // Same track, another source: the listener's numbering continues.
            _ => {
                if let Some(dt) = self
                    .peer_mut(listener, PeerTarget::Subscriber)
                    .and_then(|peer| peer.downtracks.get_mut(&room_audio))
                {
                    dt.forwarder.switch_source(false);
                }
            }
        }
    }

    /// Offers on the subscriber connection, or notes that another offer is due.
    fn negotiate(&mut self, key: ParticipantKey, now: Instant) {
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

    // ----- tracks -----

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

    fn unpublish(&mut self, id: &TrackId, now: Instant) {
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

    fn request_keyframe(&mut self, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        let Some(UpstreamBinding {
            receiver,
            media_ssrc: Some(media_ssrc),
            ..
        }) = track.upstream
        else {
            return;
        };
        if track.kind() != MediaKind::Video || !track.keyframes.should_send(now) {
            return;
        }
        let owner = track.owner;
        let Some(peer) = self.peer_mut(owner, PeerTarget::Publisher) else {
            return;
        };
        if let Some(mut r) = peer.pc.rtp_receiver(receiver) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            let res = r.write_rtcp(now, vec![Box::new(pli)]);
            tracing::debug!(track = %id, media_ssrc, ok = res.is_ok(), "keyframe requested from publisher");
            let conn = peer.conn;
            if peer.mark_dirty() {
                self.dirty.push(conn);
            }
        }
    }

    // ----- media -----

    fn handle_datagram(&mut self, dg: Datagram, now: Instant) {
        let Some(&(key, target)) = self.conns.get(&dg.conn) else {
            return;
        };
        let local = self.media.local_addr();
        let counters = self.media.counters();
        let Some(peer) = peer_of(&mut self.participants, key, target) else {
            return;
        };
        peer.handle_datagram(local, dg.from, dg.at.min(now), dg.data, counters);
        self.drain_peer(key, target, now);
    }

    fn handle_timers(&mut self, now: Instant) {
        self.tick_mixer(now);
        self.poll_speakers(now);
        while let Some(Reverse((t, conn))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(&(key, target)) = self.conns.get(&conn) else {
                continue;
            };
            let Some(peer) = self.peer_mut(key, target) else {
                continue;
            };
            if peer.scheduled != Some(t) {
                continue; // superseded by a later deadline
            }
            peer.scheduled = None;
            peer.handle_timeout(now);
            self.drain_peer(key, target, now);
        }
    }

    fn drain_peer(&mut self, key: ParticipantKey, target: PeerTarget, now: Instant) {
        // Reused across calls: one allocation per room, not one per incoming packet.
        let mut out = std::mem::take(&mut self.scratch);
        match self.peer_mut(key, target) {
            Some(peer) => {
                peer.drain(&mut out);
                let conn = peer.conn;
                if peer.mark_dirty() {
                    self.dirty.push(conn);
                }
            }
            None => {
                self.scratch = out;
                return;
            }
        }
        for ev in out.events.drain(..) {
            self.handle_peer_event(key, target, ev, now);
        }
        for ev in out.ice.drain(..) {
            self.on_ice_event(key, target, ev);
        }
        for msg in out.messages.drain(..) {
            match (target, msg) {
                (PeerTarget::Publisher, RTCMessage::RtpPacket(track, packet)) => {
                    self.forward(key, &track, packet, now)
                }
                (PeerTarget::Subscriber, RTCMessage::RtcpPacket(_, packets)) => {
                    // rtc tags a compound packet by its first SSRC only; a PLI after an RR
                    // would be misattributed, so look at each request's own media SSRC.
                    for p in &packets {
                        let any = p.as_any();
                        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                            self.keyframe_requested(key, pli.media_ssrc, now);
                        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                            for entry in &fir.fir {
                                self.keyframe_requested(key, entry.ssrc, now);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.scratch = out;
    }

    /// A subscriber asked for a keyframe of the stream it receives as `ssrc`.
    fn keyframe_requested(&mut self, key: ParticipantKey, ssrc: u32, now: Instant) {
        let id = self.peer_mut(key, PeerTarget::Subscriber).and_then(|peer| {
            peer.downtracks
                .iter()
                .find(|(_, dt)| dt.ssrc == ssrc)
                .map(|(id, _)| id.clone())
        });
        if let Some(id) = id {
            self.request_keyframe(&id, now);
        }
    }

    fn handle_peer_event(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        ev: RTCPeerConnectionEvent,
        now: Instant,
    ) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.on_connection_state(key, target, state, now)
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init))
                if target == PeerTarget::Publisher =>
            {
                self.on_upstream_track(key, init.track_id, init.receiver_id, now)
            }
            _ => {}
        }
    }

    /// rtc's view of the connection: it says when ICE and DTLS are up, and when DTLS
    /// failed. Silence is judged by the connection's `IceLite` ([`Room::on_ice_event`]):
    /// rtc's own timers are off.
    fn on_connection_state(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        state: RTCPeerConnectionState,
        now: Instant,
    ) {
        tracing::debug!(room = %self.name, ?target, %state, "connection state");
        match state {
            RTCPeerConnectionState::Connected => {
                if let Some(peer) = self.peer_mut(key, target) {
                    peer.connected = true;
                    peer.ice.connected(now);
                }
                self.refresh_state(key);
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.doomed.push((key, LeaveReason::ConnectionLost));
            }
            _ => {}
        }
    }

    /// A decision of a connection's `IceLite`: routes, the path media takes, liveness.
    fn on_ice_event(&mut self, key: ParticipantKey, target: PeerTarget, ev: IceEvent) {
        let demux = self.media.demux();
        let Some(peer) = peer_of(&mut self.participants, key, target) else {
            return;
        };
        let conn = peer.conn;
        match ev {
            IceEvent::RouteConfirmed(addr) => {
                if let Some(ufrag) = &peer.ufrag {
                    demux.confirm_addr(addr, ufrag);
                }
            }
            IceEvent::RouteExpired(addr) => demux.forget_addr(addr, conn),
            IceEvent::Switched { from, to } => {
                tracing::info!(room = %self.name, ?target, ?from, %to, "media path switched");
            }
            IceEvent::State(LinkState::Connecting) => {}
            IceEvent::State(LinkState::Connected) => self.refresh_state(key),
            IceEvent::State(LinkState::Disconnected) => {
                tracing::info!(room = %self.name, ?target, "connection silent: asking for an ICE restart");
                self.refresh_state(key);
                // Asked, not imposed: a client that cannot restart (libnice answers a
                // restart offer with its old credentials and checks nothing) would lose
                // a connection that may only be quiet.
                self.send_to(key, ServerMessage::IceRestart { target });
            }
            IceEvent::State(LinkState::Lost) => {
                self.doomed.push((key, LeaveReason::ConnectionLost));
            }
            IceEvent::Unreachable { after } => {
                tracing::info!(room = %self.name, ?target, "media connection did not come up");
                self.send_to(
                    key,
                    ServerMessage::MediaUnreachable {
                        target,
                        after_ms: after.as_millis() as u64,
                        hint: UNREACHABLE_HINT.to_owned(),
                    },
                );
            }
        }
    }

    /// Restarts ICE on the subscriber connection at the client's request: the next
    /// offer carries new credentials.
    fn restart_subscriber_ice(&mut self, key: ParticipantKey, now: Instant) {
        if let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) {
            peer.restart_ice = true;
            self.negotiate(key, now);
        }
    }

    /// The participant is `disconnected` while any of its connections is, `connected`
    /// once all that are up are live again.
    fn refresh_state(&mut self, key: ParticipantKey) {
        let Some(p) = self.participants.get(&key) else {
            return;
        };
        let links: Vec<LinkState> = [&p.publisher, &p.subscriber]
            .into_iter()
            .flatten()
            .map(|peer| peer.ice.state())
            .collect();
        let state = if links.contains(&LinkState::Disconnected) {
            ParticipantState::Disconnected
        } else if links.contains(&LinkState::Connected) {
            ParticipantState::Connected
        } else {
            return;
        };
        self.set_state(key, state);
    }

    fn set_state(&mut self, key: ParticipantKey, state: ParticipantState) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if p.state == state {
            return;
        }
        p.state = state;
        let participant_id = p.id.to_string();
        self.broadcast(ServerMessage::ParticipantState {
            participant_id,
            state,
        });
    }

    /// A track appeared in a publisher's SDP: bind it to what the client announced.
    fn on_upstream_track(
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

    /// One packet from a publisher to every subscriber of its track.
    fn forward(
        &mut self,
        key: ParticipantKey,
        rtc_track: &str,
        mut packet: rtc::rtp::Packet,
        now: Instant,
    ) {
        let Some(id) = self
            .participants
            .get(&key)
            .and_then(|p| p.publisher.as_ref())
            .and_then(|peer| peer.uptracks.get(rtc_track))
            .cloned()
        else {
            return;
        };
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        let Some(binding) = track.upstream.as_mut() else {
            return;
        };
        if binding.media_ssrc.is_none() {
            binding.media_ssrc = Some(packet.header.ssrc);
            tracing::debug!(
                track = %track.id,
                ssrc = packet.header.ssrc,
                payload_type = packet.header.payload_type,
                "first packet of published track"
            );
        }
        let level_ext = binding.audio_level_ext;
        let seq = track.seq.unwrap(packet.header.sequence_number);
        let ts = track.ts.unwrap(packet.header.timestamp);
        if track.muted {
            return;
        }
        let audio = track.kind() == MediaKind::Audio;
        let keyframe = !audio && vp8_is_keyframe(&packet.payload);
        if audio {
            let level = level_ext.and_then(|ext| audio_level(&packet, ext));
            self.hear(key, seq, level, &packet.payload, now);
        }
        // Extension ids are per connection; the publisher's mean nothing downstream.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        // Audio goes out on each listener's room-audio track (here: the relays).
        let track = &self.tracks[&id];
        let down = if audio { &self.room_audio } else { &id };
        let payload = &packet.payload;
        let wants_keyframe = fan_out(
            &mut self.participants,
            &mut self.dirty,
            &track.subscribers,
            down,
            &packet.header,
            seq,
            ts,
            keyframe,
            now,
            |_| payload.clone(),
        );
        if wants_keyframe {
            self.request_keyframe(&id, now);
        }
    }

    // ----- participants -----

    fn remove_participant(&mut self, key: ParticipantKey, reason: LeaveReason, now: Instant) {
        let Some(mut p) = self.participants.remove(&key) else {
            return;
        };
        self.identities.remove(&p.identity);
        let owned: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| t.owner == key)
            .map(|t| t.id.clone())
            .collect();
        for mut peer in [p.publisher.take(), p.subscriber.take()]
            .into_iter()
            .flatten()
        {
            peer.close(&self.media, self.media.demux());
            self.conns.remove(&peer.conn);
        }
        for id in owned {
            self.unpublish(&id, now);
        }
        for t in self.tracks.values_mut() {
            t.subscribers.retain(|k| *k != key);
        }
        self.update_audio(now);
        if reason != LeaveReason::SignalingClosed {
            let _ = p.events.try_send(ServerMessage::Left { reason });
        }
        let participant_id = p.id.to_string();
        self.broadcast(ServerMessage::ParticipantLeft {
            participant_id: participant_id.clone(),
            identity: p.identity,
            reason,
        });
        tracing::info!(room = %self.name, participant = %participant_id, ?reason, "participant left");
    }

    fn close_all(&mut self, reason: LeaveReason, now: Instant) {
        let keys: Vec<ParticipantKey> = self.participants.keys().copied().collect();
        for k in keys {
            self.remove_participant(k, reason, now);
        }
    }

    fn send_to(&mut self, key: ParticipantKey, msg: ServerMessage) {
        if let Some(p) = self.participants.get(&key)
            && p.events.try_send(msg).is_err()
        {
            // Full: the client does not read; closed: it is gone. Either way it leaves.
            self.doomed.push((key, LeaveReason::SignalingClosed));
        }
    }

    fn broadcast(&mut self, msg: ServerMessage) {
        for (k, p) in &self.participants {
            if p.events.try_send(msg.clone()).is_err() {
                self.doomed.push((*k, LeaveReason::SignalingClosed));
            }
        }
    }

    fn broadcast_except(&mut self, except: ParticipantKey, msg: ServerMessage) {
        for (k, p) in &self.participants {
            if *k != except && p.events.try_send(msg.clone()).is_err() {
                self.doomed.push((*k, LeaveReason::SignalingClosed));
            }
        }
    }
}

/// One connection of a participant; a free function so that callers can hold other
/// parts of the room (the media plane) at the same time.
fn peer_of(
    participants: &mut HashMap<ParticipantKey, Participant>,
    key: ParticipantKey,
    target: PeerTarget,
) -> Option<&mut Peer> {
    participants.get_mut(&key)?.peer_mut(target)
}

/// Sends one packet on the `down` track of each listener, rewritten for each; returns
/// whether any of them waits for a keyframe. A free function so that the caller can lend
/// the listener list from another part of the room.
#[allow(clippy::too_many_arguments)]
fn fan_out(
    participants: &mut HashMap<ParticipantKey, Participant>,
    dirty: &mut Vec<ConnId>,
    listeners: &[ParticipantKey],
    down: &TrackId,
    header: &rtc::rtp::header::Header,
    seq: ExtSeq,
    ts: ExtTimestamp,
    keyframe: bool,
    now: Instant,
    payload_for: impl Fn(ParticipantKey) -> Bytes,
) -> bool {
    let mut wants_keyframe = false;
    for listener in listeners {
        let Some(peer) = participants
            .get_mut(listener)
            .and_then(|p| p.subscriber.as_mut())
        else {
            continue;
        };
        if !peer.connected {
            continue;
        }
        let Some(dt) = peer.downtracks.get_mut(down) else {
            continue;
        };
        if dt.negotiation != Negotiation::Live {
            continue;
        }
        match dt.forwarder.translate(seq, ts, header.marker, keyframe) {
            Translation::Forward {
                seq,
                timestamp,
                marker,
            } => {
                let mut header = header.clone();
                header.ssrc = dt.ssrc;
                header.payload_type = dt.payload_type;
                header.sequence_number = seq;
                header.timestamp = timestamp;
                header.marker = marker;
                let out = rtc::rtp::Packet {
                    header,
                    payload: payload_for(*listener),
                };
                // Straight into the connection: `RTCRtpSender::write_rtp` would rebuild
                // the sender's parameters to validate what we just set ourselves.
                let msg = TaggedRTCMessage {
                    now,
                    message: RTCMessage::RtpPacket(down.as_str().to_owned(), out),
                };
                if peer.pc.handle_write(msg).is_ok() && peer.mark_dirty() {
                    dirty.push(peer.conn);
                }
            }
            Translation::Drop(DropReason::AwaitingKeyframe) => wants_keyframe = true,
            Translation::Drop(_) => {}
        }
    }
    wants_keyframe
}

/// The RFC 6464 level (-dBov, 0 loudest) a packet carries under extension `id`.
fn audio_level(packet: &rtc::rtp::Packet, id: u8) -> Option<u8> {
    let value = packet.header.get_extension(id)?;
    value.first().map(|b| b & 0x7F)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
