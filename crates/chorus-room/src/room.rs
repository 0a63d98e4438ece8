//! The room actor: one task owns everything about one room.
//!
//! This module holds the [`Room`] and its participants, the task's loop (commands,
//! datagrams, timers, and the end of each turn), the commands of the registry and the
//! control API, join and leave, and the helpers that send frames to clients. Each child
//! module adds an `impl Room` block for one concern: `signal` (the client's messages,
//! offer/answer), `tracks` (publishing, subscriptions, renegotiation), `mixing` (the
//! room audio: relay, mixer, active speakers), `media` (datagrams, timers, forwarding,
//! keyframe requests) and `link` (connections, ICE routing, connection state).

mod link;
mod media;
mod mixing;
mod signal;
mod tracks;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use chorus_core::{ConnId, ParticipantId, TrackId};
use chorus_mixer::{Mixer, SpeakerConfig, SpeakerDetector};
use chorus_protocol::control::RoomInfo;
use chorus_protocol::signal::{PeerTarget, ROOM_AUDIO_TRACK, ServerMessage};
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, ParticipantState, TrackInfo};
use chorus_transport::{Datagram, MediaPlane, PeerFactory};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audio::AudioRoutes;
use crate::command::{ParticipantKey, RoomCommand};
use crate::peer::{Peer, PeerOutput};
use crate::{JoinError, JoinRequest, RoomError, Session, SessionHandle};
use media::{MAX_MEDIA_QUEUEING, Overload};
use tracks::PublishedTrack;

/// Frames queued for one client before it counts as stuck and is dropped.
const EVENTS_PER_PARTICIPANT: usize = 512;
/// Datagrams taken from the inbox per wake-up.
const INBOX_BATCH: usize = 64;

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

impl Participant {
    fn peer_mut(&mut self, target: PeerTarget) -> Option<&mut Peer> {
        match target {
            PeerTarget::Publisher => self.publisher.as_mut(),
            PeerTarget::Subscriber => self.subscriber.as_mut(),
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

    fn peer_mut(&mut self, key: ParticipantKey, target: PeerTarget) -> Option<&mut Peer> {
        peer_of(&mut self.participants, key, target)
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
