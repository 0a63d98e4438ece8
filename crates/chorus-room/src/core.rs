//! The room core: everything about one room, without I/O. It takes [`Input`]s with the
//! time, answers commands with a [`Reply`], and says what to do through
//! [`RoomCore::poll_output`] and when to wake it through [`RoomCore::poll_timeout`].
//!
//! The state lives in parts that each own theirs: [`Participants`], [`Tracks`],
//! [`Connections`] (each connection's negotiation and forwarders in its [`crate::peer::Peer`]),
//! [`RoomAudio`] and the [`Skips`] counters. This coordinator applies their decisions;
//! its child modules hold its handlers by concern: `signal` (client messages,
//! offer/answer), `publish` (tracks in), `subscribe` (tracks out and the server's
//! offers), `media` (datagrams, timers, forwarding, keyframe requests), `repair` (NACKs answered), `audio` (the
//! room audio applied) and `links` (connections, routes, liveness).

mod audio;
mod bandwidth;
mod calling;
mod data;
mod echo;
mod hold;
mod last_n;
mod layers_needed;
mod links;
mod media;
mod membership;
mod probe;
mod publish;
mod repair;
mod rtp;
mod settings;
mod signal;
mod stats;
mod subscribe;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chorus_core::{ConnId, SpatialLayer, TokenBucket, TrackId};
use chorus_protocol::control::{DepartedParticipant, FeedbackStats};
use chorus_protocol::signal::{ROOM_AUDIO_TRACK, ServerMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{LeaveReason, ParticipantInfo};
use chorus_transport::{IceCredentials, PeerFactory};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::allocation::Allocator;
use crate::connections::Connections;
use crate::dynacast::Dynacast;
use crate::echo::EchoLine;
use crate::forward::{EgressQueue, ShardJob};
use crate::invitations::Invitations;
use crate::io::{Command, Input, Output, ParticipantKey, Recipients, Reply};
use crate::lastn::LastN;
use crate::mixing::RoomAudio;
use crate::participants::Participants;
use crate::peer::PeerEvent;
use crate::removals::SharedRemovals;
use crate::skips::{Overload, Skips};
use crate::sticky::Sticky;
use crate::timers::Timers;
use crate::tracks::Tracks;
use chorus_room_api::RoomError;

/// What a room starts from. Everything random or clock-bound is handed in.
#[derive(Clone)]
pub struct CoreParams {
    pub name: String,
    pub max_participants: u32,
    /// A room nobody is in for this long closes.
    pub empty_timeout: Duration,
    /// Builds the room's connections.
    pub peers: PeerFactory,
    /// Seeds the room's random ids and SSRCs.
    pub seed: u64,
    /// The room's connection ids start here (distinct per room).
    pub first_conn_id: u64,
    /// How many egress shards split the room's connections (one per core).
    pub egress_shards: usize,
    /// Wall-clock time of creation, in ms since the Unix epoch (for `joined_at_ms`).
    pub created_at_ms: u64,
    /// Joins the room admits a second (and at once): a storm of joins must not starve
    /// the media of those already in.
    pub joins_per_second: u32,
    /// Cameras a subscriber receives until it asks otherwise (`set_last_n`).
    pub last_n: u32,
    /// A participant whose media is not up (ICE and DTLS on one of its connections)
    /// this long after its first connection was created is removed (`media_timeout`).
    pub media_setup_timeout: Duration,
    /// Tracks one participant may publish (announced or bound) at once.
    pub max_tracks_per_participant: u32,
    /// Joiners without `can_admit` wait in a lobby until admitted.
    pub lobby: bool,
    /// What one participant may send as data messages.
    pub data: crate::data::DataLimits,
    /// The server's removals, which outlive the room: asked at each join, told of
    /// each removal.
    pub removals: SharedRemovals,
    /// An echo test room: its one participant gets its own microphone back
    /// [`crate::echo::ECHO_DELAY`] later on its room-audio track, and its own video.
    pub echo: bool,
}

pub struct RoomCore {
    name: String,
    created_at_ms: u64,
    created: Instant,
    empty_timeout: Duration,
    peers: PeerFactory,
    rng: StdRng,
    participants: Participants,
    tracks: Tracks,
    conns: Connections,
    /// This turn's packets, decided and waiting for the egress shards.
    queue: EgressQueue,
    /// The time of the latest input.
    now: Instant,
    /// Fault injection: the next egress run panics in a shard.
    #[cfg(feature = "fault-injection")]
    panic_shard: bool,
    audio: RoomAudio,
    skips: Skips,
    /// What to hand out, in order: frames, routes, and the datagrams of egress runs made
    /// here (after the frames and routes queued before them).
    outputs: VecDeque<Output>,
    /// Buffers for what a connection produced, kept between packets.
    scratch: Vec<PeerEvent>,
    /// Participants to remove when the current input is done (their link failed).
    doomed: Vec<(ParticipantKey, LeaveReason)>,
    /// Subscriber connections that may owe an offer when the current input is done.
    offers_due: Vec<ConnId>,
    empty_since: Option<Instant>,
    closed: bool,
    /// Every listener's room-audio track ([`ROOM_AUDIO_TRACK`]).
    room_audio: TrackId,
    overload: Overload,
    /// Connections whose DTLS handshake completed, by negotiated SRTP profile.
    srtp_profiles: BTreeMap<String, u64>,
    feedback: FeedbackStats,
    mix_frames: u64,
    /// What its plain-RTP participants' ports did not take: counted by their
    /// endpoints' tasks as it happens, read for the room's stats.
    plain_rtp_drops: std::sync::Arc<chorus_plainrtp::DropCounts>,
    joins: TokenBucket,
    /// Whose camera each subscriber receives.
    last_n: LastN,
    /// Something changed that may change it: decided when the input is done.
    last_n_due: bool,
    /// Tracks whose layers may have changed in this input: told when it is done.
    layers_due: Vec<TrackId>,
    /// Which simulcast layers anyone needs, told to publishers.
    dynacast: Dynacast,
    /// What changed that may change them: recomputed when the input is done.
    dynacast_due: layers_needed::DynacastDue,
    /// When a layer nobody needs is next due to turn off.
    dynacast_wake: Option<Instant>,
    /// Each subscriber connection's bandwidth allocation (hysteresis state).
    allocators: HashMap<ConnId, Allocator>,
    /// When the bandwidth allocation next runs.
    allocation_wake: Option<Instant>,
    /// Bandwidth probes toward subscribers (`core/probe.rs`).
    probes: probe::Probes,
    /// Each participant's media setup deadline, while its media has not come up.
    setup: Timers<ParticipantKey>,
    setup_timeout: Duration,
    max_tracks: u32,
    lobby: bool,
    invitations: Invitations,
    /// The last who left, for the control API.
    recently_left: VecDeque<DepartedParticipant>,
    /// The room's count may have changed: those waiting in the lobby hear it.
    lobby_count_due: bool,
    /// The count they heard last.
    lobby_count_sent: Option<u32>,
    /// State changes the state table refused (a bug if ever not 0).
    refused_transitions: u64,
    /// Invitations refused (bad, duplicate, over the limit).
    refused_invitations: u64,
    /// Data messages: each sender's allowance, and the counts.
    data: data::DataRoom,
    /// Server mutes that outlive a session.
    sticky: Sticky,
    /// The server's removals (by room and identity).
    removals: SharedRemovals,
    /// The echo room's delay line; `None` in any other room.
    echo: Option<EchoLine>,
}

/// Runs the shards' jobs through `run`; what they found. Takes only the connections
/// and the queue, so that `run` may hold on to the rest of the room.
fn egress(
    conns: &mut Connections,
    queue: &mut EgressQueue,
    panic: bool,
    now: Instant,
    run: impl FnOnce(&mut [ShardJob<'_>]),
) -> Found {
    let mut jobs = queue.jobs(conns.shards_mut(), now);
    if panic && let Some(job) = jobs.last_mut() {
        job.inject_panic();
    }
    run(&mut jobs);
    let mut found = Found::default();
    for job in jobs {
        found.skips.absorb(&job.skips);
        found.keyframes.extend(job.keyframes);
        found.layer_keyframes.extend(job.layer_keyframes);
    }
    queue.clear();
    found
}

/// What one egress run found, for the room.
#[derive(Default)]
struct Found {
    skips: Skips,
    keyframes: Vec<TrackId>,
    layer_keyframes: Vec<(TrackId, SpatialLayer)>,
}

impl RoomCore {
    pub fn new(params: CoreParams, now: Instant) -> Self {
        Self {
            name: params.name,
            created_at_ms: params.created_at_ms,
            created: now,
            empty_timeout: params.empty_timeout,
            peers: params.peers,
            rng: StdRng::seed_from_u64(params.seed),
            participants: Participants::new(params.max_participants),
            tracks: Tracks::default(),
            conns: Connections::new(params.first_conn_id, params.egress_shards),
            queue: EgressQueue::new(params.egress_shards),
            now,
            #[cfg(feature = "fault-injection")]
            panic_shard: false,
            audio: RoomAudio::default(),
            skips: Skips::default(),
            outputs: VecDeque::new(),
            scratch: Vec::new(),
            doomed: Vec::new(),
            offers_due: Vec::new(),
            empty_since: Some(now),
            closed: false,
            room_audio: TrackId::named(ROOM_AUDIO_TRACK),
            overload: Overload::default(),
            srtp_profiles: BTreeMap::new(),
            feedback: FeedbackStats::default(),
            mix_frames: 0,
            plain_rtp_drops: Default::default(),
            joins: TokenBucket::new(params.joins_per_second, params.joins_per_second),
            last_n: LastN::new(params.last_n),
            last_n_due: false,
            layers_due: Vec::new(),
            dynacast: Dynacast::default(),
            dynacast_due: Default::default(),
            dynacast_wake: None,
            allocators: HashMap::new(),
            allocation_wake: None,
            probes: probe::Probes::default(),
            setup: Timers::default(),
            setup_timeout: params.media_setup_timeout,
            max_tracks: params.max_tracks_per_participant,
            lobby: params.lobby,
            invitations: Invitations::default(),
            recently_left: VecDeque::new(),
            lobby_count_due: false,
            lobby_count_sent: None,
            refused_transitions: 0,
            refused_invitations: 0,
            data: data::DataRoom::new(params.data),
            sticky: Sticky::default(),
            removals: params.removals,
            echo: params.echo.then(EchoLine::default),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room was deleted, shut down, or stayed empty too long: drop it once its
    /// output is drained.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Packets forwarded and not forwarded, by reason.
    /// Where its plain-RTP participants' endpoints count their drops.
    pub fn plain_rtp_drops(&self) -> &std::sync::Arc<chorus_plainrtp::DropCounts> {
        &self.plain_rtp_drops
    }

    pub fn skips(&self) -> &Skips {
        &self.skips
    }

    pub fn handle_input(&mut self, input: Input, now: Instant) -> Option<Reply> {
        self.now = now;
        let reply = match input {
            Input::Command(cmd) => Some(self.handle_command(cmd, now)),
            Input::Signal { participant, frame } => {
                self.handle_signal(participant, frame, now);
                None
            }
            Input::ClientGone {
                participant,
                reason,
            } => {
                self.remove_participant(participant, reason, now);
                None
            }
            Input::Datagram(dg) => {
                self.handle_datagram(dg, now);
                None
            }
            Input::RtpFrame { participant, frame } => {
                self.rtp_frame(participant, frame, now);
                None
            }
            Input::Timeout => {
                self.handle_timeout(now);
                None
            }
            Input::Drain { within } => {
                let within_ms = within.as_millis() as u64;
                self.send(Recipients::All, ServerMessage::Draining { within_ms });
                None
            }
            Input::Shutdown => {
                self.cancel_invitations(now);
                self.close_all(LeaveReason::ServerShutdown, now);
                self.closed = true;
                None
            }
        };
        self.settle(now);
        reply
    }

    /// The next thing to do: frames and routes first, then datagrams to send.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() && (!self.queue.is_empty() || self.conns.has_dirty()) {
            // What no egress run sent yet (the turn's packets, if nobody ran the shards;
            // a keyframe request, a goodbye) goes out here, shard after shard.
            let panic = self.take_shard_panic();
            let outputs = &mut self.outputs;
            let found = egress(&mut self.conns, &mut self.queue, panic, self.now, |jobs| {
                for job in jobs {
                    job.run(&mut |to, data| outputs.push_back(Output::Transmit { to, data }));
                }
            });
            self.egress_done(found, self.now);
        }
        self.outputs.pop_front()
    }

    /// Runs the turn's egress: `run` gets one job per shard, to run at once on
    /// different threads or one after the other; each makes its subscribers' copies of
    /// the queued packets and sends what its connections have waiting. Then what the
    /// jobs found comes back to the room (skip counts, keyframes wanted).
    pub fn run_egress(&mut self, now: Instant, run: impl FnOnce(&mut [ShardJob<'_>])) {
        let panic = self.take_shard_panic();
        let found = egress(&mut self.conns, &mut self.queue, panic, now, run);
        self.egress_done(found, now);
    }

    fn take_shard_panic(&mut self) -> bool {
        #[cfg(feature = "fault-injection")]
        return std::mem::take(&mut self.panic_shard);
        #[cfg(not(feature = "fault-injection"))]
        false
    }

    fn egress_done(&mut self, found: Found, now: Instant) {
        self.skips.absorb(&found.skips);
        for id in found.keyframes {
            self.request_keyframe(&id, now);
        }
        for (id, layer) in found.layer_keyframes {
            self.request_layer_keyframe(&id, layer, now);
        }
    }

    /// Bandwidth probes on or off (on by default): for tests that compare the two.
    pub fn set_probing(&mut self, on: bool) {
        self.probes.disabled = !on;
    }

    /// Fault injection: makes one egress shard panic in the next run.
    #[cfg(feature = "fault-injection")]
    pub fn panic_in_shard(&mut self) {
        self.panic_shard = true;
    }

    /// When the room must next get [`Input::Timeout`].
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let empty = self.empty_since.map(|t| t + self.empty_timeout);
        [
            self.conns.next_timeout(),
            self.audio.poll_timeout(),
            self.echo.as_ref().and_then(EchoLine::next_due),
            self.setup.next(),
            empty,
            self.dynacast_wake,
            self.allocation_wake,
            self.probes.next_due(),
            self.invitations.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// After every input: removals, offers, the empty-room clock.
    fn settle(&mut self, now: Instant) {
        while let Some((key, reason)) = self.doomed.pop() {
            self.remove_participant(key, reason, now);
        }
        self.tell_layers();
        // Before the offers: a camera subscribed in this input is paused before it is live.
        self.update_last_n(now);
        self.update_allocation(now);
        self.send_probes(now);
        self.update_dynacast(now);
        self.update_lobby_count();
        // Sending an offer never makes another due: this ends.
        while let Some(conn) = self.offers_due.pop() {
            self.send_offer(conn, now);
        }
        // Ringing invitations keep a room open: the invitee joins it.
        if !self.participants.is_empty() || !self.invitations.is_empty() {
            self.empty_since = None;
            return;
        }
        let since = *self.empty_since.get_or_insert(now);
        if !self.closed && now.duration_since(since) >= self.empty_timeout {
            tracing::info!(room = %self.name, "closing empty room");
            self.closed = true;
        }
    }

    fn handle_command(&mut self, cmd: Command, now: Instant) -> Reply {
        match cmd {
            Command::Join(req) => Reply::Joined(self.join(req, now)),
            Command::Info => Reply::Info(self.info(now)),
            Command::Participants => Reply::Participants(
                self.participants
                    .keys()
                    .into_iter()
                    .filter_map(|k| self.participant_info(k))
                    .chain(self.invitations.iter().map(|i| i.roster_entry()))
                    .collect(),
            ),
            Command::Participant { identity } => Reply::Participant(
                self.participants
                    .key_of(&identity)
                    .and_then(|k| self.participant_info(k).ok_or(RoomError::RoomClosed)),
            ),
            Command::Remove { identity, message } => {
                Reply::Removed(self.participants.key_of(&identity).map(|k| {
                    let at = self.unix_ms(now);
                    self.removals.removed(&self.name, &identity, at);
                    self.remove_with(k, LeaveReason::RemovedByServer, message, now)
                }))
            }
            Command::Hold { identity, held } => Reply::Held(
                self.participants
                    .key_of(&identity)
                    .and_then(|k| self.may_hold(k, held).map(|()| k))
                    .map(|k| self.hold_by_server(k, held, now)),
            ),
            Command::MuteTrack {
                identity,
                track_id,
                muted,
            } => Reply::TrackMuted(self.server_mute(&identity, &track_id, muted, now)),
            Command::UpdatePermissions { identity, grants } => Reply::PermissionsChanged(
                self.participants
                    .key_of(&identity)
                    .map(|k| self.update_permissions(k, grants, now)),
            ),
            Command::Invite(req) => Reply::Invited(self.invite(req, now)),
            Command::EndInvitation {
                invitation_id,
                reason,
            } => Reply::InvitationEnded(self.end_invitation(&invitation_id, reason, now)),
            Command::DecideLobby { participant, admit } => Reply::LobbyDecided(
                self.participants
                    .named(&participant)
                    .ok_or(RoomError::NotInLobby(participant))
                    .and_then(|k| self.decide_lobby(k, admit, now)),
            ),
            Command::AddRtpParticipant(join) => {
                Reply::RtpAdded(self.add_rtp_participant(join, now))
            }
            Command::AnswerRtp { identity } => Reply::RtpAnswered(self.answer_rtp(&identity, now)),
            Command::Delete => {
                self.cancel_invitations(now);
                self.close_all(LeaveReason::RoomDeleted, now);
                self.closed = true;
                Reply::Deleted
            }
        }
    }

    fn participant_info(&self, key: ParticipantKey) -> Option<ParticipantInfo> {
        let p = self.participants.get(key)?;
        Some(p.info(self.tracks.infos_of(key)))
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        self.created_at_ms + now.saturating_duration_since(self.created).as_millis() as u64
    }

    fn send(&mut self, to: Recipients, msg: ServerMessage) {
        self.outputs.push_back(Output::ToClient { to, msg });
    }

    fn event(&mut self, event: WebhookEvent) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// Fresh server ICE credentials (RFC 8839: a ufrag of at least 4 and a password of at
/// least 22 characters from the ice-char set), drawn from the room's seeded generator.
fn draw_credentials(rng: &mut StdRng) -> IceCredentials {
    const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut draw = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ICE_CHARS[rng.random_range(0..ICE_CHARS.len())]))
            .collect()
    };
    IceCredentials {
        ufrag: draw(16),
        pwd: draw(32),
    }
}
