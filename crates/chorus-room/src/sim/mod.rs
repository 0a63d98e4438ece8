//! A whole room on a simulated clock: the real [`RoomCore`], fed the way the driver
//! feeds it, with real `rtc` client peer connections connected to it in memory (ICE,
//! DTLS, SRTP), time advanced by hand and seeded loss per client and direction. No
//! sockets, no runtime, no sleeping.
//!
//! Datagrams from clients go through a real [`Demux`], routed by every
//! [`Output::Route`] by the driver's own code; what it delivers goes into the core as
//! [`Input::Datagram`]. Clients answer the server's offers (unless told to hold their
//! answers), offer their tracks after `publish_accepted`, send media on every published
//! track (VP8 at 30 fps, a keyframe first and on request; Opus every 20 ms with an audio
//! level) and record every frame, RTP packet and keyframe request they get. A client
//! joined with [`Sim::join_simulcast`] can publish a camera in three simulcast layers
//! ([`Sim::publish_simulcast`], `simulcast.rs`); one joined with [`Sim::join_svc`] a
//! camera in one VP9 stream of spatial and temporal layers ([`Sim::publish_svc`],
//! `svc.rs`); one joined with [`Sim::join_av1`] cameras in AV1 (`av1.rs`). Every
//! client takes VP8, VP9 and AV1. Clients open data channels and send
//! and receive data messages through them ([`Sim::open_data`], `data.rs`).
//! The room sends bandwidth probes as a server does (a scenario may turn them off,
//! [`Sim::set_probing`]); clients keep padding-only packets apart ([`Sim::padding`]),
//! and the numbering checks count them ([`seq_jumps`], [`Sim::numbered`]).
//!
//! Here: the room and its clients, joining, publishing and signaling. How a step of
//! time moves everything is in `pump.rs`; what a scenario reads back (the clock, the
//! room, each client's frames, RTP, keyframe requests, losses) in `observe.rs` and
//! `told.rs`; the clients themselves in `client.rs`.
//!
//! ```
//! use chorus_room::sim::{Sim, ms};
//!
//! let mut sim = Sim::new(1);
//! let alice = sim.join("alice");
//! let bob = sim.join("bob");
//! let video = sim.publish_video(alice);
//! sim.run_for(ms(500));
//! assert!(sim.rtp(bob, &video).len() > 10);
//! ```
//!
//! Benches step the room one datagram at a time instead, with the clock stopped: a
//! client writes one packet ([`Sim::video_datagram`], [`Sim::rtcp_datagram`]), the
//! demultiplexer routes it, and [`Sim::feed_datagram`] gives it to the core and drains
//! every output, counting the datagrams the room sends (which no client then receives):
//!
//! ```
//! # use chorus_room::sim::{Sim, ms};
//! # let mut sim = Sim::new(1);
//! # let alice = sim.join("alice");
//! # let bob = sim.join("bob");
//! # let carol = sim.join("carol");
//! # let video = sim.publish_video(alice);
//! # sim.run_for(ms(500));
//! // One packet of alice's camera in, one SRTP datagram out to each subscriber.
//! let dg = sim.video_datagram(alice, &video);
//! assert_eq!(sim.feed_datagram(dg), 2);
//! assert_eq!(sim.step_video(alice, &video), 2);
//! ```

mod av1;
mod client;
mod data;
mod media;
mod net;
mod observe;
mod pump;
mod simulcast;
mod step;
mod stream;
mod svc;
mod told;

use std::time::{Duration, Instant};

use chorus_protocol::signal::{ClientFrame, ClientMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{Grants, TrackSource};
use chorus_transport::{Datagram, Demux, PeerFactory};
use tokio::sync::mpsc;

pub use client::DataIn;
pub use client::RtpIn;
pub use media::{opus_loop, vp8_frame};
pub use net::{Dir, SERVER};
pub use observe::seq_jumps;
pub use simulcast::LAYERS;
pub use stream::{DELTA_PACKETS, KEYFRAME_PACKETS};
pub use stream::{TALK_DBOV, VIDEO_FPS};
pub use svc::SVC_LAYER_SIZES;

use crate::core::{CoreParams, RoomCore};
use crate::io::{Command, Input, ParticipantKey, Reply};
use chorus_room_api::JoinRequest;
use client::SimClient;

/// The room's wall-clock time of creation, Unix milliseconds.
const CREATED_AT_MS: u64 = 1_700_000_000_000;

/// How far the clock moves per step of [`Sim::run_for`].
pub const STEP: Duration = Duration::from_millis(5);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A client of the simulation, in the order they joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub usize);

pub struct Sim {
    core: RoomCore,
    /// What the room was made from: [`Sim::reopen`] makes the next one from it.
    params: CoreParams,
    start: Instant,
    now: Instant,
    seed: u64,
    demux: Demux,
    /// The room's two inboxes, as the driver has them: STUN and DTLS, then media.
    control: (mpsc::Sender<Datagram>, mpsc::Receiver<Datagram>),
    inbox: (mpsc::Sender<Datagram>, mpsc::Receiver<Datagram>),
    clients: Vec<SimClient>,
    events: Vec<WebhookEvent>,
    /// Mix frames the room handed to plain-RTP participants' endpoints.
    rtp_mix: Vec<(ParticipantKey, chorus_plainrtp::driver::MixFrame)>,
    /// Rooms made so far (see [`Sim::reopen`]).
    generation: u64,
}

impl Sim {
    /// An empty room; `seed` seeds the room's ids and every client's losses.
    pub fn new(seed: u64) -> Self {
        Self::with_join_rate(seed, crate::RoomConfig::default().room_joins_per_second)
    }

    /// An empty room that admits `joins_per_second` joins a second (and at once).
    pub fn with_join_rate(seed: u64, joins_per_second: u32) -> Self {
        Self::with_config(seed, |c| c.joins_per_second = joins_per_second)
    }

    /// An empty room made from the sim's defaults as `change` leaves them.
    pub fn with_config(seed: u64, change: impl FnOnce(&mut CoreParams)) -> Self {
        let now = Instant::now();
        let peers = PeerFactory::new(SERVER).expect("peer factory");
        let mut params = CoreParams {
            name: "sim".to_owned(),
            // The most a room takes (`RoomConfig::default_max_participants`).
            max_participants: 350,
            empty_timeout: Duration::from_secs(300),
            peers,
            seed,
            first_conn_id: 1,
            // Two, so that every scenario splits its room like a server does.
            egress_shards: 2,
            created_at_ms: CREATED_AT_MS,
            joins_per_second: crate::RoomConfig::default().room_joins_per_second,
            last_n: crate::lastn::DEFAULT_LAST_N,
            media_setup_timeout: crate::RoomConfig::default().media_setup_timeout,
            max_tracks_per_participant: crate::RoomConfig::default().max_tracks_per_participant,
            lobby: false,
            data: crate::data::DataLimits::default(),
            removals: crate::removals::SharedRemovals::default(),
            echo: false,
        };
        change(&mut params);
        let core = RoomCore::new(params.clone(), now);
        Self {
            core,
            params,
            start: now,
            now,
            seed,
            demux: Demux::default(),
            control: mpsc::channel(1 << 16),
            inbox: mpsc::channel(1 << 16),
            clients: Vec::new(),
            events: Vec::new(),
            rtp_mix: Vec::new(),
            generation: 1,
        }
    }

    // --- acting ---

    /// The room closed (empty for its timeout): the next join opens a new one of the
    /// same name, as the registry does, sharing what the server keeps across rooms (its
    /// removals). Those who were in the old one stay departed.
    pub fn reopen(&mut self) {
        assert!(self.core.is_closed(), "the room is still open");
        let mut params = self.params.clone();
        params.created_at_ms = CREATED_AT_MS + self.elapsed().as_millis() as u64;
        // Each room its own connection ids, as the registry's generations give them.
        self.generation += 1;
        params.first_conn_id = self.generation << 32;
        // Other participant ids and SSRCs than the closed room's.
        params.seed = self.params.seed.wrapping_add(self.generation);
        self.core = RoomCore::new(params, self.now);
        self.pump();
    }

    /// Joins with every grant.
    pub fn join(&mut self, identity: &str) -> ClientId {
        self.join_with(identity, Grants::default())
    }

    pub fn join_with(&mut self, identity: &str, grants: Grants) -> ClientId {
        let issued_at = self.unix_secs();
        self.try_join(identity, grants, issued_at)
            .unwrap_or_else(|e| panic!("{identity} could not join: {e:?}"))
    }

    /// Joins with a token issued at `issued_at` (Unix seconds; see [`Self::unix_secs`]).
    pub fn try_join(
        &mut self,
        identity: &str,
        grants: Grants,
        issued_at: u64,
    ) -> Result<ClientId, chorus_room_api::JoinError> {
        let id = ClientId(self.clients.len());
        let mut client = SimClient::new(identity, id.0, self.seed, self.now);
        let req = JoinRequest {
            identity: identity.to_owned(),
            name: identity.to_owned(),
            grants,
            issued_at,
        };
        match self
            .core
            .handle_input(Input::Command(Command::Join(req)), self.now)
        {
            Some(Reply::Joined(Ok(admitted))) => {
                client.key = admitted.participant;
                client.participant_id = admitted.participant_id.to_string();
            }
            Some(Reply::Joined(Err(e))) => return Err(e),
            other => panic!("{identity}: unexpected answer to a join: {other:?}"),
        }
        self.clients.push(client);
        self.pump();
        Ok(id)
    }

    /// The room's wall clock now, in Unix seconds (the room starts at 1 700 000 000).
    pub fn unix_secs(&self) -> u64 {
        (CREATED_AT_MS + self.elapsed().as_millis() as u64) / 1000
    }

    /// Publishes a camera; media flows once the publisher connection is up. Returns the
    /// server's track id.
    pub fn publish_video(&mut self, c: ClientId) -> String {
        self.publish(c, TrackSource::Camera)
    }

    /// Publishes a microphone (Opus with audio levels).
    pub fn publish_audio(&mut self, c: ClientId) -> String {
        self.publish(c, TrackSource::Microphone)
    }

    pub fn publish(&mut self, c: ClientId, source: TrackSource) -> String {
        let cid = self.clients[c.0].announce(source);
        self.published(c, &cid)
    }

    /// Runs the room until `c`'s track announced as `cid` is published; its track id.
    pub(crate) fn published(&mut self, c: ClientId, cid: &str) -> String {
        self.pump();
        let client = &self.clients[c.0];
        client
            .publications
            .iter()
            .find(|p| p.cid == cid)
            .map(|p| p.track_id.clone())
            .unwrap_or_else(|| panic!("{} could not publish {cid}", client.identity))
    }

    /// Unpublishes one of the client's tracks: `unpublish`, and an offer without it.
    pub fn unpublish(&mut self, c: ClientId, track: &str) {
        self.clients[c.0].unpublish(track, self.now);
        self.pump();
    }

    /// Sends a message as the client's signaling would.
    pub fn signal(&mut self, c: ClientId, msg: ClientMessage) {
        self.signal_frame(c, msg.into());
    }

    /// Sends a message with a `request_id`.
    pub fn request(&mut self, c: ClientId, request_id: &str, msg: ClientMessage) {
        let frame = ClientFrame {
            request_id: Some(request_id.to_owned()),
            msg,
        };
        self.signal_frame(c, frame);
    }

    fn signal_frame(&mut self, c: ClientId, frame: ClientFrame) {
        self.clients[c.0].outbox.push_back(frame);
        self.pump();
    }

    /// `leave`.
    pub fn leave(&mut self, c: ClientId) {
        self.signal(c, ClientMessage::Leave {});
    }

    /// A control API command, carried out at once.
    pub fn command(&mut self, cmd: Command) -> Reply {
        let reply = self.core.handle_input(Input::Command(cmd), self.now);
        self.pump();
        reply.expect("commands are answered")
    }

    /// Any input, as the driver would feed it (a plain-RTP participant's frames).
    pub fn input(&mut self, input: Input) {
        self.core.handle_input(input, self.now);
        self.pump();
    }

    /// The mix frames handed to plain-RTP participants so far.
    pub fn rtp_mix(&self) -> &[(ParticipantKey, chorus_plainrtp::driver::MixFrame)] {
        &self.rtp_mix
    }

    /// From now on the client keeps the server's offers unanswered.
    /// The client applies `publisher_layers` (dynacast) to its simulcast layers.
    pub fn apply_publisher_layers(&mut self, c: ClientId) {
        self.clients[c.0].applies_layers = true;
    }

    pub fn hold_answers(&mut self, c: ClientId) {
        self.clients[c.0].hold_answers = true;
    }

    /// Answers the held offers and stops holding.
    pub fn release_answers(&mut self, c: ClientId) {
        let client = &mut self.clients[c.0];
        client.hold_answers = false;
        client.answer_held(self.now);
        self.pump();
    }

    /// The client's network goes away: nothing it sends arrives, nothing reaches it
    /// (its signaling stays).
    pub fn vanish(&mut self, c: ClientId) {
        self.clients[c.0].offline = true;
    }

    /// Loses this share (0 to 1) of the client's datagrams going `dir`.
    pub fn set_loss(&mut self, c: ClientId, dir: Dir, rate: f64) {
        let client = &mut self.clients[c.0];
        match dir {
            Dir::Up => client.up.set_rate(rate),
            Dir::Down => client.down.set_rate(rate),
        }
    }

    /// Sends a PLI for `track` from the client's subscriber connection; false if no
    /// media of it arrived there yet.
    pub fn request_keyframe(&mut self, c: ClientId, track: &str) -> bool {
        let sent = self.clients[c.0].request_keyframe(track, self.now);
        self.pump();
        sent
    }
}
