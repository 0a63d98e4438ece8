//! Shared by the integration tests: a whole server on ephemeral ports, tokens,
//! participants (real WebRTC clients) and waiting for what they see.
//!
//! Nothing here sleeps to decide an outcome: every wait polls a condition until
//! a generous deadline ([`LIMIT`]), so a slow machine makes a test slower, not red.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

pub mod binary;

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chorus_api::ApiState;
use chorus_api::token::{Keys, NewToken};
use chorus_client::{
    Client, ClientConfig, ClientError, ClientStats, LeaveReason, MediaKind, ServerMessage,
    TrackInfo, TrackSource,
};
use chorus_protocol::Grants;
use chorus_protocol::signal::ROOM_AUDIO_TRACK;
use chorus_room::RoomRegistry;
use chorus_server::config::{DEV_API_KEY, DEV_API_SECRET};
use chorus_server::{Config, RunningServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Deadline for anything that normally takes well under a second.
pub const LIMIT: Duration = Duration::from_secs(20);
/// Packets of a track that count as "media flows".
pub const FLOWING: u64 = 20;
/// How often stats are polled.
const POLL: Duration = Duration::from_millis(20);

/// Ephemeral ports on loopback, one media thread, quiet unless `RUST_LOG` says otherwise.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config.media.bind = "127.0.0.1:0".parse().unwrap();
    config.media.workers = 1;
    config
}

/// `RUST_LOG=chorus_room=debug cargo test ...` shows the server's logs.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server in this process. Dropping it shuts it down.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub http_url: String,
    /// `ws://127.0.0.1:PORT`, what [`ClientConfig`] wants.
    pub ws_url: String,
    /// The UDP port media flows through.
    pub media_addr: SocketAddr,
    pub keys: Keys,
    shutdown: CancellationToken,
    running: Option<RunningServer>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    /// Through `chorus_server::run`, as the binary does.
    pub async fn start_with(config: Config) -> Self {
        init_logging();
        let keys = config.keys();
        let shutdown = CancellationToken::new();
        let server = chorus_server::run(config, shutdown.clone()).await.unwrap();
        Self {
            http_url: server.public_url.clone(),
            ws_url: server.public_url.replacen("http", "ws", 1),
            media_addr: server.media_addr,
            keys,
            shutdown,
            running: Some(server),
        }
    }

    /// The same pieces `run` puts together, assembled here so the test holds the
    /// [`RoomRegistry`] (e.g. to inject faults).
    pub async fn start_with_registry(config: Config) -> (Self, RoomRegistry) {
        Self::assemble(config, true).await
    }

    /// With UDP GSO off, so that each datagram reaches the kernel's queues on its own,
    /// as a router on the way sees it: a `tc` filter on this machine judges a whole
    /// GSO run (one frame's packets) as one.
    pub async fn start_without_gso(config: Config) -> Self {
        Self::assemble(config, false).await.0
    }

    async fn assemble(config: Config, gso: bool) -> (Self, RoomRegistry) {
        init_logging();
        let listener = TcpListener::bind(config.http.bind).await.unwrap();
        let http_url = config.public_url_for(listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let media = chorus_server::media::start(&config.media_config()).unwrap();
        if !gso {
            media.plane.disable_gso();
        }
        let registry = RoomRegistry::new(
            config.room_config(),
            media.plane,
            media.peers,
            shutdown.clone(),
        );
        let state = ApiState::new(
            registry.clone(),
            config.api_config(http_url.clone()),
            shutdown.clone(),
        );
        let app = chorus_api::router(state);
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .unwrap();
        });
        let server = Self {
            ws_url: http_url.replacen("http", "ws", 1),
            media_addr: registry.media_addr(),
            http_url,
            keys: config.keys(),
            shutdown,
            running: None,
        };
        (server, registry)
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.running.take() {
            tokio::time::timeout(chorus_server::SHUTDOWN_CAP * 2, server.stopped())
                .await
                .expect("the server stops in time");
        }
    }

    /// Waits for the server to stop by itself (a drain ending); false if it has not
    /// within `limit`. Nothing is cancelled here.
    pub async fn stops_by_itself(&mut self, limit: Duration) -> bool {
        let server = self.running.take().expect("started through run");
        tokio::time::timeout(limit, server.stopped()).await.is_ok()
    }

    /// A token for `identity` in `room` with every grant.
    pub fn token(&self, room: &str, identity: &str) -> String {
        self.token_with(room, identity, Grants::default())
    }

    pub fn token_with(&self, room: &str, identity: &str, grants: Grants) -> String {
        let grant = NewToken {
            room: room.to_owned(),
            identity: identity.to_owned(),
            name: String::new(),
            grants,
            ttl_secs: 600,
        };
        self.keys.mint(DEV_API_KEY, grant, unix_now()).unwrap()
    }

    pub async fn try_connect(&self, token: String) -> Result<Client, ClientError> {
        chorus_client::connect(ClientConfig::new(&self.ws_url, token)).await
    }

    /// Joins `room` as `identity` with every grant.
    pub async fn join(&self, room: &str, identity: &str) -> Participant {
        self.join_with(room, identity, Grants::default()).await
    }

    pub async fn join_with(&self, room: &str, identity: &str, grants: Grants) -> Participant {
        let token = self.token_with(room, identity, grants);
        let client = self
            .try_connect(token)
            .await
            .unwrap_or_else(|e| panic!("{identity} cannot join {room}: {e}"));
        Participant::new(identity, client)
    }

    /// A control API request with the development credentials.
    pub fn control(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.http_url))
            .basic_auth(DEV_API_KEY, Some(DEV_API_SECRET))
    }

    /// Sends a control request; returns the status and the JSON body (`null` if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.control(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = tokio::time::timeout(LIMIT, request.send())
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer in time"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, json)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A connected client and every event it has seen so far (events are kept, so
/// waiting for one never loses another).
pub struct Participant {
    pub identity: String,
    client: Client,
    log: Vec<ServerMessage>,
    closed: bool,
}

impl Deref for Participant {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Participant {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Participant {
    pub fn new(identity: &str, client: Client) -> Self {
        Self {
            identity: identity.to_owned(),
            client,
            log: Vec::new(),
            closed: false,
        }
    }

    pub fn id(&self) -> String {
        self.client.participant_id().to_owned()
    }

    /// Every event seen so far, in order.
    pub fn log(&self) -> &[ServerMessage] {
        &self.log
    }

    /// Where the log ends now; pass to [`Participant::expect_since`] for "from now on".
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    /// Reads events until `done(log)` holds; panics at the deadline or if the
    /// signaling connection ends first.
    pub async fn until(&mut self, what: &str, mut done: impl FnMut(&[ServerMessage]) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !done(&self.log) {
            if self.closed {
                panic!(
                    "{}: signaling ended before {what}; events: {:#?}",
                    self.identity, self.log
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.next_event(left).await {
                Ok(event) => self.log.push(event),
                Err(ClientError::Closed) => self.closed = true,
                Err(e) => panic!(
                    "{}: {e} while waiting for {what}; events: {:#?}",
                    self.identity, self.log
                ),
            }
        }
    }

    /// Reads every event that arrives until none came for `quiet`.
    pub async fn settle(&mut self, quiet: Duration) {
        while !self.closed {
            match self.client.next_event(quiet).await {
                Ok(event) => self.log.push(event),
                Err(ClientError::Closed) => self.closed = true,
                Err(_) => return,
            }
        }
    }

    /// The first event (ever) that matches.
    pub async fn expect(
        &mut self,
        what: &str,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> ServerMessage {
        self.expect_since(0, what, wanted).await
    }

    /// The first event at or after `mark` that matches.
    pub async fn expect_since(
        &mut self,
        mark: usize,
        what: &str,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> ServerMessage {
        self.until(what, |log| log[mark.min(log.len())..].iter().any(&wanted))
            .await;
        self.log[mark..]
            .iter()
            .find(|e| wanted(e))
            .cloned()
            .expect("just seen")
    }

    /// Waits until the server has ended the signaling connection.
    pub async fn expect_closed(&mut self, what: &str) {
        let deadline = Instant::now() + LIMIT;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.next_event(left).await {
                Ok(event) => self.log.push(event),
                Err(ClientError::Closed) => self.closed = true,
                Err(e) => panic!(
                    "{}: {e} while waiting for the connection to end ({what}); events: {:#?}",
                    self.identity, self.log
                ),
            }
        }
    }

    /// Publishes `source` and waits until the server announced it (`track_published`
    /// to the publisher itself, so every other participant got it too).
    pub async fn publish_ok(&mut self, source: TrackSource) -> TrackInfo {
        let track = self
            .client
            .publish(source)
            .await
            .unwrap_or_else(|e| panic!("{}: publish {source:?}: {e}", self.identity));
        assert_eq!(track.source, source);
        assert_eq!(track.kind, source.kind());
        let id = track.track_id.clone();
        self.expect("own track_published", track_published(&id))
            .await;
        track
    }

    /// Microphone and camera.
    pub async fn publish_mic_and_camera(&mut self) -> (TrackInfo, TrackInfo) {
        let mic = self.publish_ok(TrackSource::Microphone).await;
        let cam = self.publish_ok(TrackSource::Camera).await;
        (mic, cam)
    }

    pub fn packets(&self, track_id: &str) -> u64 {
        packets(&self.client.stats(), track_id)
    }

    /// Polls the client's stats until `done` holds.
    pub async fn wait_stats(
        &self,
        what: &str,
        mut done: impl FnMut(&ClientStats) -> bool,
    ) -> ClientStats {
        let deadline = Instant::now() + LIMIT;
        loop {
            let stats = self.client.stats();
            if done(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} not reached in {LIMIT:?}; stats: {stats:#?}",
                self.identity
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until at least `n` packets of each track have arrived.
    pub async fn wait_receiving(&self, tracks: &[&TrackInfo], n: u64) {
        self.wait_stats(&format!("{n} packets on each of {}", ids(tracks)), |s| {
            tracks.iter().all(|t| packets(s, stream_of(t)) >= n)
        })
        .await;
    }

    /// Waits until `n` more packets of each track have arrived than now.
    pub async fn wait_more_packets(&self, tracks: &[&TrackInfo], n: u64) {
        let before: Vec<u64> = tracks.iter().map(|t| self.packets(stream_of(t))).collect();
        self.wait_stats(
            &format!("{n} more packets on each of {}", ids(tracks)),
            |s| {
                tracks
                    .iter()
                    .zip(&before)
                    .all(|(t, b)| packets(s, stream_of(t)) >= b + n)
            },
        )
        .await;
    }

    /// Waits until no packet of `track` arrived for `quiet` (while the deadline allows),
    /// and returns the count then.
    pub async fn wait_track_silent(&self, track: &TrackInfo, quiet: Duration) -> u64 {
        let deadline = Instant::now() + LIMIT;
        let mut count = self.packets(stream_of(track));
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            let now = self.packets(stream_of(track));
            if now != count {
                (count, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return count;
            }
            assert!(
                Instant::now() < deadline,
                "{}: packets of {} kept arriving ({count} so far)",
                self.identity,
                track.track_id
            );
        }
    }

    pub async fn leave(self) -> Result<LeaveReason, ClientError> {
        self.client.leave().await
    }

    pub fn kill(self) {
        self.client.kill();
    }

    pub fn drop_signaling(self) {
        self.client.drop_signaling();
    }
}

/// Where a listener receives `track`: video on its own track, a microphone on the
/// listener's one room-audio track (relayed with one talker, mixed with more).
pub fn stream_of(track: &TrackInfo) -> &str {
    match track.kind {
        MediaKind::Audio => ROOM_AUDIO_TRACK,
        MediaKind::Video => &track.track_id,
    }
}

pub fn packets(stats: &ClientStats, track_id: &str) -> u64 {
    stats.inbound.get(track_id).map_or(0, |t| t.packets)
}

fn ids(tracks: &[&TrackInfo]) -> String {
    let ids: Vec<&str> = tracks.iter().map(|t| t.track_id.as_str()).collect();
    ids.join(", ")
}

// ----- event predicates -----

pub fn contains(log: &[ServerMessage], wanted: impl Fn(&ServerMessage) -> bool) -> bool {
    log.iter().any(wanted)
}

/// Index of the first matching event.
pub fn position(log: &[ServerMessage], wanted: impl Fn(&ServerMessage) -> bool) -> Option<usize> {
    log.iter().position(wanted)
}

pub fn track_published(track_id: &str) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| matches!(e, ServerMessage::TrackPublished { track } if track.track_id == track_id)
}

pub fn track_unpublished(track_id: &str) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| matches!(e, ServerMessage::TrackUnpublished { track_id: t, .. } if t == track_id)
}

pub fn track_muted(track_id: &str, muted: bool) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| {
        matches!(e, ServerMessage::TrackMuted { track_id: t, muted: m, .. }
            if t == track_id && *m == muted)
    }
}

pub fn participant_joined(identity: &str) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| {
        matches!(e, ServerMessage::ParticipantJoined { participant }
            if participant.identity == identity)
    }
}

pub fn participant_left(
    participant_id: &str,
    reason: LeaveReason,
) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| {
        matches!(e, ServerMessage::ParticipantLeft { participant_id: p, reason: r, .. }
            if p == participant_id && *r == reason)
    }
}

/// Any `participant_left` for this participant, whatever the reason.
pub fn any_participant_left(participant_id: &str) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| matches!(e, ServerMessage::ParticipantLeft { participant_id: p, .. } if p == participant_id)
}

pub fn left(reason: LeaveReason) -> impl Fn(&ServerMessage) -> bool {
    move |e| matches!(e, ServerMessage::Left { reason: r, .. } if *r == reason)
}

pub fn error_code(code: &str) -> impl Fn(&ServerMessage) -> bool + '_ {
    move |e| matches!(e, ServerMessage::Error { code: c, .. } if c == code)
}

/// The refusal code of a failed connect or publish.
pub fn refusal_code<T>(result: Result<T, ClientError>) -> String {
    match result {
        Err(ClientError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got success"),
    }
}
