//! Janus VideoRoom as a load-test target (`--target janus`), so that the same fan-out
//! runs against Janus and Chorus on the same machine and the figure that matters,
//! server CPU per forwarded packet, is measured the same way for both.
//!
//! Each participant is what a browser using `janus.js` would be: its own Janus session
//! over the HTTP API (requests by `POST`, events by long-poll `GET
//! /janus/<session>?maxev=..`, a keepalive every 25 s) with one VideoRoom handle.
//! Publishers join as `publisher` and send the offer (`publish`, later `configure`);
//! subscribers join as `subscriber` with the multistream `streams` list of Janus ≥ 1.0,
//! Janus offers, and they answer with `start`. The media side is the harness's own
//! [`Engine`] (the same `rtc` peer connections and synthetic Opus/VP8 as against
//! Chorus); only the signaling differs. Janus is a full ICE agent, so the engine does
//! full ICE here (controlling on the publisher connection, where it offers).
//!
//! Only `fanout` is supported: subscribers subscribe to the publishers' feeds when they
//! join, so every publisher is in the room (published or failed) before the first
//! subscriber joins. The wait for that is not part of a subscriber's join time, which
//! runs from creating its session to Janus's offer (`attached`); a publisher's runs from
//! creating its session to `joined`. Publishers do not subscribe to each other.

use std::collections::VecDeque;
use std::hash::{Hash as _, Hasher as _};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use chorus_client::{
    ClientMessage, ClientStats, Engine, MediaProfile, PeerTarget, ServerMessage, StatsHandle,
    TrackSource,
};
use chorus_protocol::MediaKind;
use chorus_protocol::signal::IceCandidate;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::Role;
use crate::member::{JoinOutcome, Member, Participant};

/// Longest wait for a reply to a request (and for Janus to connect a handle).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus holds a long-poll for up to 30 s and then answers with a keepalive.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(40);
/// Events taken per long-poll answer.
const MAX_EVENTS: u32 = 16;
/// Below Janus's default `session_timeout` of 60 s.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);
/// Pause after a failed long-poll so a broken server cannot spin the poller.
const POLL_ERROR_BACKOFF: Duration = Duration::from_millis(200);
/// Janus's error for a session it no longer knows (destroyed or timed out).
const NO_SUCH_SESSION: i64 = 458;
/// Events queued for a participant's task.
const EVENT_QUEUE: usize = 256;

/// A Janus session (one per participant, as one per browser tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId(pub u64);

/// A plugin handle inside a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleId(pub u64);

/// A VideoRoom room (numeric: the plugin's default `string_ids = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomId(pub u64);

/// A publisher in a room, as subscribers name it in `streams: [{feed}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedId(pub u64);

/// Why a request to Janus failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Janus refused it (`"janus": "error"`, or a plugin's `error_code`).
    #[error("janus error {code}: {reason}")]
    Janus { code: i64, reason: String },
    /// The reply did not have the shape the Janus API documents.
    #[error("unexpected reply: {0}")]
    Malformed(String),
    /// No reply in time; names what was awaited.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The participant's long-poll ended (its session is gone).
    #[error("event stream closed")]
    Closed,
}

/// An SDP carried next to a Janus message or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jsep {
    Offer(String),
    Answer(String),
}

impl Jsep {
    fn parse(value: &Value) -> Option<Self> {
        let sdp = value.get("sdp")?.as_str()?.to_owned();
        match value.get("type")?.as_str()? {
            "offer" => Some(Jsep::Offer(sdp)),
            "answer" => Some(Jsep::Answer(sdp)),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Jsep::Offer(sdp) => json!({ "type": "offer", "sdp": sdp }),
            Jsep::Answer(sdp) => json!({ "type": "answer", "sdp": sdp }),
        }
    }
}

/// What one Janus event says, as far as a load-test participant cares.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// VideoRoom: joined the room as a publisher, with this feed id.
    Joined(FeedId),
    /// VideoRoom: subscribed to these streams (Janus's offer is in the jsep).
    Attached(Vec<Relayed>),
    /// VideoRoom: `publish`/`configure` applied (the answer is in the jsep).
    Configured,
    /// VideoRoom: the subscriber's answer was applied.
    Started,
    /// VideoRoom refused a request.
    PluginError { code: i64, reason: String },
    /// Another VideoRoom event (publishers joining, leaving, ...).
    Plugin,
    /// A candidate of Janus; `None` is the end of its candidates.
    Trickle(Option<IceCandidate>),
    /// ICE and DTLS are up on the handle.
    WebrtcUp,
    /// The handle's PeerConnection was closed.
    Hangup(String),
    /// Janus's answer to an idle long-poll.
    Keepalive,
    /// Anything else (`media`, `slowlink`, `ack`, ...), by its `janus` field.
    Other(String),
}

/// A stream Janus relays to a subscriber: its m-line (`mid`) and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub mid: String,
    pub feed: FeedId,
    pub kind: MediaKind,
}

impl Relayed {
    /// One entry of the `streams` list of `attached`; data channels and entries
    /// without a feed are skipped.
    fn parse(value: &Value) -> Option<Self> {
        let kind = match value.get("type")?.as_str()? {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => return None,
        };
        Some(Self {
            mid: value.get("mid")?.as_str()?.to_owned(),
            feed: FeedId(value.get("feed_id")?.as_u64()?),
            kind,
        })
    }
}

/// Names the tracks of a subscriber offer after the publishers' tracks.
///
/// Janus labels every relayed m-line `a=msid:janus janus<mid>`, one stream for all, so
/// its msids cannot tell the tracks apart; apps built on `janus.js` map mids to feeds
/// through the `streams` list instead. This does the same and writes the publisher's
/// track id into the m-line's msid (the engine counts received packets by msid stream
/// id), so loss is counted per track as against Chorus. `names` is (mid, track id);
/// m-lines without a name keep their msid.
pub fn name_tracks(sdp: &str, names: &[(String, String)]) -> String {
    let mut out = String::with_capacity(sdp.len() + 64 * names.len());
    let mut name: Option<&str> = None;
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        if text.starts_with("m=") {
            name = None;
        } else if let Some(mid) = text.strip_prefix("a=mid:") {
            name = names
                .iter()
                .find(|(m, _)| m == mid)
                .map(|(_, track)| track.as_str());
        } else if let (Some(track), true) = (name, text.starts_with("a=msid:")) {
            out.push_str(&format!("a=msid:{track} {track}\r\n"));
            continue;
        }
        out.push_str(line);
    }
    out
}

/// One Janus event: what it says, the request it answers and the SDP it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub transaction: Option<String>,
    pub kind: EventKind,
    pub jsep: Option<Jsep>,
}

impl Event {
    /// Reads one event of the Janus API. Unknown shapes become [`EventKind::Other`]:
    /// this is network input, so nothing here may fail hard.
    pub fn parse(value: &Value) -> Self {
        let janus = value.get("janus").and_then(Value::as_str).unwrap_or("");
        let kind = match janus {
            "event" => plugin_event(value.pointer("/plugindata/data").unwrap_or(&Value::Null)),
            "trickle" => EventKind::Trickle(value.get("candidate").and_then(candidate)),
            "webrtcup" => EventKind::WebrtcUp,
            "hangup" => EventKind::Hangup(
                value
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            ),
            "keepalive" => EventKind::Keepalive,
            other => EventKind::Other(other.to_owned()),
        };
        Self {
            transaction: value
                .get("transaction")
                .and_then(Value::as_str)
                .map(str::to_owned),
            kind,
            jsep: value.get("jsep").and_then(Jsep::parse),
        }
    }
}

fn plugin_event(data: &Value) -> EventKind {
    if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
        let reason = data.get("error").and_then(Value::as_str).unwrap_or("");
        return EventKind::PluginError {
            code,
            reason: reason.to_owned(),
        };
    }
    match data.get("videoroom").and_then(Value::as_str) {
        Some("joined") => match data.get("id").and_then(Value::as_u64) {
            Some(id) => EventKind::Joined(FeedId(id)),
            None => EventKind::Plugin,
        },
        Some("attached") => EventKind::Attached(
            data.get("streams")
                .and_then(Value::as_array)
                .map(|streams| streams.iter().filter_map(Relayed::parse).collect())
                .unwrap_or_default(),
        ),
        Some("event") if data.get("configured").is_some() => EventKind::Configured,
        Some("event") if data.get("started").is_some() => EventKind::Started,
        _ => EventKind::Plugin,
    }
}

/// A trickled candidate; `{"completed": true}` (or anything without a candidate line)
/// is the end of candidates.
fn candidate(value: &Value) -> Option<IceCandidate> {
    let line = value.get("candidate")?.as_str()?;
    Some(IceCandidate {
        candidate: line.to_owned(),
        sdp_mid: value
            .get("sdpMid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        sdp_mline_index: value
            .get("sdpMLineIndex")
            .and_then(Value::as_u64)
            .and_then(|i| u16::try_from(i).ok()),
        username_fragment: None,
    })
}

/// A request to Janus on a participant's handle.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A VideoRoom request, with an SDP or not.
    Message { body: Value, jsep: Option<Jsep> },
    /// One of our candidates; `None` is the end of them.
    Trickle(Option<IceCandidate>),
}

impl Request {
    /// The Janus request for a message of the engine, or `None` for ones that have no
    /// Janus counterpart. `published`: the publisher connection was offered before, so a
    /// new offer renegotiates (`configure`) instead of starting to publish.
    pub fn for_engine(message: &ClientMessage, published: bool) -> Option<Self> {
        match message {
            ClientMessage::Offer {
                target: PeerTarget::Publisher,
                sdp,
            } => {
                let request = if published { "configure" } else { "publish" };
                Some(Request::Message {
                    body: json!({ "request": request }),
                    jsep: Some(Jsep::Offer(sdp.clone())),
                })
            }
            ClientMessage::Answer {
                target: PeerTarget::Subscriber,
                sdp,
            } => Some(Request::Message {
                body: json!({ "request": "start" }),
                jsep: Some(Jsep::Answer(sdp.clone())),
            }),
            ClientMessage::Candidate { candidate, .. } => Some(Request::Trickle(candidate.clone())),
            _ => None,
        }
    }

    fn to_json(&self, transaction: &str) -> Value {
        match self {
            Request::Message { body, jsep } => {
                let mut request =
                    json!({ "janus": "message", "transaction": transaction, "body": body });
                if let Some(jsep) = jsep {
                    request["jsep"] = jsep.to_json();
                }
                request
            }
            Request::Trickle(Some(c)) => json!({
                "janus": "trickle",
                "transaction": transaction,
                "candidate": {
                    "candidate": c.candidate,
                    "sdpMid": c.sdp_mid,
                    "sdpMLineIndex": c.sdp_mline_index.unwrap_or(0),
                },
            }),
            Request::Trickle(None) => json!({
                "janus": "trickle",
                "transaction": transaction,
                "candidate": { "completed": true },
            }),
        }
    }
}

/// The engine message for a Janus event on the handle of `target`, if it has one.
/// A mismatched SDP direction is passed on and refused by the engine.
pub fn engine_message(target: PeerTarget, event: &Event) -> Option<ServerMessage> {
    if let Some(jsep) = &event.jsep {
        return Some(match jsep {
            Jsep::Offer(sdp) => ServerMessage::Offer {
                target,
                sdp: sdp.clone(),
            },
            Jsep::Answer(sdp) => ServerMessage::Answer {
                target,
                sdp: sdp.clone(),
            },
        });
    }
    match &event.kind {
        EventKind::Trickle(candidate) => Some(ServerMessage::Candidate {
            target,
            candidate: candidate.clone(),
        }),
        _ => None,
    }
}

/// The Janus HTTP API at one base URL (`http://127.0.0.1:8088/janus`).
#[derive(Clone)]
pub struct Api {
    base: Arc<str>,
    http: reqwest::Client,
    transactions: Arc<AtomicU64>,
}

impl Api {
    pub fn new(base: &str) -> Result<Self, RequestError> {
        Ok(Self {
            base: base.trim_end_matches('/').into(),
            // No client-wide timeout: long-polls last up to 30 s; each request sets its own.
            http: reqwest::Client::builder().build()?,
            transactions: Arc::new(AtomicU64::new(1)),
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.transactions.fetch_add(1, Ordering::Relaxed))
    }

    /// POSTs `body` to `path` and returns the reply, or the error Janus answered with.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, RequestError> {
        let reply: Value = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if reply.get("janus").and_then(Value::as_str) == Some("error") {
            return Err(janus_error(&reply));
        }
        Ok(reply)
    }

    /// `create` (session) or `attach` (handle): both answer `success` with `data.id`.
    async fn create(&self, path: &str, body: Value) -> Result<u64, RequestError> {
        let reply = self.post(path, &body).await?;
        reply
            .pointer("/data/id")
            .and_then(Value::as_u64)
            .ok_or_else(|| RequestError::Malformed(reply.to_string()))
    }

    pub async fn create_session(&self) -> Result<SessionId, RequestError> {
        let body = json!({ "janus": "create", "transaction": self.transaction() });
        self.create("", body).await.map(SessionId)
    }

    pub async fn attach_videoroom(&self, session: SessionId) -> Result<HandleId, RequestError> {
        let body = json!({
            "janus": "attach",
            "plugin": "janus.plugin.videoroom",
            "transaction": self.transaction(),
        });
        self.create(&format!("/{}", session.0), body)
            .await
            .map(HandleId)
    }

    /// Sends a request on a handle; returns its transaction. Asynchronous VideoRoom
    /// requests answer `ack` here and their result comes as an event.
    pub async fn send(
        &self,
        session: SessionId,
        handle: HandleId,
        request: &Request,
    ) -> Result<String, RequestError> {
        let transaction = self.transaction();
        let path = format!("/{}/{}", session.0, handle.0);
        self.post(&path, &request.to_json(&transaction)).await?;
        Ok(transaction)
    }

    /// A synchronous VideoRoom request (`create`, `exists`, ...): the result is in the reply.
    pub async fn request(
        &self,
        session: SessionId,
        handle: HandleId,
        body: Value,
    ) -> Result<Value, RequestError> {
        let request = Request::Message { body, jsep: None };
        let path = format!("/{}/{}", session.0, handle.0);
        let reply = self
            .post(&path, &request.to_json(&self.transaction()))
            .await?;
        let data = reply
            .pointer("/plugindata/data")
            .cloned()
            .ok_or_else(|| RequestError::Malformed(reply.to_string()))?;
        match plugin_event(&data) {
            EventKind::PluginError { code, reason } => Err(RequestError::Janus { code, reason }),
            _ => Ok(data),
        }
    }

    async fn keepalive(&self, session: SessionId) -> Result<(), RequestError> {
        let body = json!({ "janus": "keepalive", "transaction": self.transaction() });
        self.post(&format!("/{}", session.0), &body).await.map(drop)
    }

    async fn destroy(&self, session: SessionId) -> Result<(), RequestError> {
        let body = json!({ "janus": "destroy", "transaction": self.transaction() });
        self.post(&format!("/{}", session.0), &body).await.map(drop)
    }

    /// One long-poll: up to [`MAX_EVENTS`] events, or a keepalive after 30 s idle.
    async fn poll(&self, session: SessionId) -> Result<Vec<Value>, RequestError> {
        let reply: Value = self
            .http
            .get(format!("{}/{}?maxev={MAX_EVENTS}", self.base, session.0))
            .timeout(LONG_POLL_TIMEOUT)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match reply {
            Value::Array(events) => Ok(events),
            one if one.get("janus").and_then(Value::as_str) == Some("error") => {
                Err(janus_error(&one))
            }
            one => Ok(vec![one]),
        }
    }

    /// Polls `session` until it is gone or nobody reads `events` any more.
    fn spawn_poller(&self, session: SessionId, events: mpsc::Sender<Event>) -> JoinHandle<()> {
        let api = self.clone();
        tokio::spawn(async move {
            while !events.is_closed() {
                match api.poll(session).await {
                    Ok(batch) => {
                        for value in batch {
                            if events.send(Event::parse(&value)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(RequestError::Janus {
                        code: NO_SUCH_SESSION,
                        ..
                    }) => return,
                    Err(_) => tokio::time::sleep(POLL_ERROR_BACKOFF).await,
                }
            }
        })
    }
}

fn janus_error(reply: &Value) -> RequestError {
    RequestError::Janus {
        code: reply
            .pointer("/error/code")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        reason: reply
            .pointer("/error/reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    }
}

/// A numeric room id for a room name, so a run's `--room` names its Janus room too.
/// 52 bits: Janus ids travel as JSON numbers, which JavaScript clients read as doubles.
pub fn room_id(name: &str) -> RoomId {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    RoomId((hasher.finish() & ((1 << 52) - 1)).max(1))
}

/// A publisher whose tracks are up, and their ids in the harness (one per kind).
#[derive(Debug, Clone)]
struct Feed {
    id: FeedId,
    tracks: Vec<(MediaKind, String)>,
}

/// Publishers that published, and how many are done, published or not.
#[derive(Debug, Clone, Default)]
struct Feeds {
    published: Vec<Feed>,
    settled: usize,
}

/// The Janus side of one run: the room, and the feeds the subscribers subscribe to.
pub(crate) struct JanusRoom {
    api: Api,
    room: RoomId,
    media: MediaProfile,
    publishers: usize,
    feeds: watch::Sender<Feeds>,
}

impl JanusRoom {
    /// Creates the VideoRoom room for `roles` (only `fanout`-shaped plans: publishers
    /// first, then receive-only participants).
    pub(crate) async fn create(
        url: &str,
        room: &str,
        roles: &[Role],
        media: MediaProfile,
    ) -> Result<Arc<Self>> {
        let publishers = roles.iter().take_while(|r| r.mic || r.camera).count();
        if roles[publishers..].iter().any(|r| r.mic || r.camera) {
            bail!("--target janus runs the fanout scenario only (publishers, then subscribers)");
        }
        let api = Api::new(url)?;
        let room = room_id(room);
        let session = api.create_session().await.context("janus session")?;
        let handle = api
            .attach_videoroom(session)
            .await
            .context("janus attach")?;
        // Codecs as our clients send them; no bitrate cap (the synthetic sources ignore
        // REMB anyway); no periodic keyframe requests; every publisher of the plan.
        let create = json!({
            "request": "create",
            "room": room.0,
            "publishers": publishers.max(1),
            "audiocodec": "opus",
            "videocodec": "vp8",
            "bitrate": 0,
            "fir_freq": 0,
            "notify_joining": false,
        });
        let created = api.request(session, handle, create).await;
        let _ = api.destroy(session).await;
        created.with_context(|| format!("janus room {}", room.0))?;
        Ok(Arc::new(Self {
            api,
            room,
            media,
            publishers,
            feeds: watch::Sender::new(Feeds::default()),
        }))
    }

    /// Joins one participant: a publisher publishes its tracks, a subscriber
    /// subscribes to every published feed once all publishers are done.
    pub(crate) async fn join_one(self: Arc<Self>, index: usize, role: Role) -> Result<JoinOutcome> {
        if role.mic || role.camera {
            let outcome = self.join_publisher(index, role).await;
            let feed = match &outcome {
                Ok((outcome, feed)) if outcome.publish_error.is_none() => Some(feed.clone()),
                _ => None,
            };
            self.feeds.send_modify(|feeds| {
                feeds.settled += 1;
                feeds.published.extend(feed);
            });
            outcome.map(|(outcome, _)| outcome)
        } else {
            let mut feeds = self.feeds.subscribe();
            let feeds = feeds
                .wait_for(|f| f.settled >= self.publishers)
                .await
                .context("janus feeds")?
                .published
                .clone();
            self.join_subscriber(index, role, &feeds).await
        }
    }

    async fn join_publisher(&self, index: usize, role: Role) -> Result<(JoinOutcome, Feed)> {
        let started = Instant::now();
        let mut joining = Joining::open(&self.api, PeerTarget::Publisher).await?;
        let body = json!({
            "request": "join",
            "ptype": "publisher",
            "room": self.room.0,
            "display": format!("p{index:03}"),
        });
        let joined = joining.ask(Request::Message { body, jsep: None }).await?;
        let EventKind::Joined(id) = joined.kind else {
            bail!("janus join: unexpected event {:?}", joined.kind);
        };
        let joined_at = Instant::now();

        let mut engine = Engine::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), self.media.clone()).await?;
        let mut tracks = Vec::new();
        let mut feed = Feed {
            id,
            tracks: Vec::new(),
        };
        let sources = [
            (role.mic, TrackSource::Microphone, "mic"),
            (role.camera, TrackSource::Camera, "cam"),
        ];
        for (_, source, name) in sources.into_iter().filter(|(on, ..)| *on) {
            let track_id = format!("p{index:03}-{name}");
            engine.publish(Instant::now(), name, &track_id, source)?;
            feed.tracks.push((source.kind(), track_id.clone()));
            tracks.push(track_id);
        }
        let (negotiated_tx, mut negotiated) = mpsc::unbounded_channel();
        let (up_tx, up) = oneshot::channel();
        let progress = PublishProgress {
            negotiated: negotiated_tx,
            up: Some(up_tx),
        };
        // Publishers subscribe to nobody here (a fan-out has nothing else to receive), so
        // they expect nothing and count in no loss figure.
        let role = Role {
            subscribe: false,
            ..role
        };
        let member = joining.spawn(engine, Some(progress), index, joined_at, &tracks, role);
        // Every publication negotiated (Janus answered) or failed, like `Client::publish`,
        // and then the connection up: Janus refuses subscriptions to a feed before that
        // ("no such feed").
        let mut publish_error = None;
        for _ in &tracks {
            match tokio::time::timeout(REQUEST_TIMEOUT, negotiated.recv()).await {
                Ok(Some((cid, Err(err)))) => publish_error = Some(format!("publish {cid}: {err}")),
                Ok(Some((_, Ok(())))) => {}
                Ok(None) => publish_error = Some("publish: participant task ended".to_owned()),
                Err(_) => publish_error = Some("publish: no answer from janus".to_owned()),
            }
        }
        if publish_error.is_none()
            && !matches!(tokio::time::timeout(REQUEST_TIMEOUT, up).await, Ok(Ok(())))
        {
            publish_error = Some("publish: janus never reported the connection up".to_owned());
        }
        let outcome = JoinOutcome {
            member,
            join_time: joined_at - started,
            publish_error,
        };
        Ok((outcome, feed))
    }

    async fn join_subscriber(
        &self,
        index: usize,
        role: Role,
        feeds: &[Feed],
    ) -> Result<JoinOutcome> {
        if feeds.is_empty() {
            bail!("janus: no published feed to subscribe to");
        }
        let started = Instant::now();
        let mut joining = Joining::open(&self.api, PeerTarget::Subscriber).await?;
        let streams: Vec<Value> = feeds.iter().map(|f| json!({ "feed": f.id.0 })).collect();
        let body = json!({
            "request": "join",
            "ptype": "subscriber",
            "room": self.room.0,
            "streams": streams,
        });
        let attached = joining.ask(Request::Message { body, jsep: None }).await?;
        let joined_at = Instant::now();
        let (EventKind::Attached(relayed), Some(Jsep::Offer(sdp))) =
            (&attached.kind, &attached.jsep)
        else {
            bail!("janus subscribe: expected an offer, got {attached:?}");
        };
        let names: Vec<(String, String)> = relayed
            .iter()
            .filter_map(|r| {
                let feed = feeds.iter().find(|f| f.id == r.feed)?;
                let (_, track) = feed.tracks.iter().find(|(kind, _)| *kind == r.kind)?;
                Some((r.mid.clone(), track.clone()))
            })
            .collect();
        let offer = ServerMessage::Offer {
            target: PeerTarget::Subscriber,
            sdp: name_tracks(sdp, &names),
        };
        let mut engine = Engine::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), self.media.clone()).await?;
        engine.handle_signal(Instant::now(), &offer)?;
        let member = joining.spawn(engine, None, index, joined_at, &[], role);
        Ok(JoinOutcome {
            member,
            join_time: joined_at - started,
            publish_error: None,
        })
    }
}

/// What a publisher's join waits for from its task.
struct PublishProgress {
    negotiated: mpsc::UnboundedSender<chorus_client::NegotiationOutcome>,
    /// Fired at the first `webrtcup`.
    up: Option<oneshot::Sender<()>>,
}

/// A participant's session and handle while it joins, before its task takes over.
struct Joining {
    api: Api,
    target: PeerTarget,
    session: SessionId,
    handle: HandleId,
    events: mpsc::Receiver<Event>,
    poller: JoinHandle<()>,
    /// Events that came while waiting for a reply, for the task.
    early: VecDeque<Event>,
}

impl Joining {
    async fn open(api: &Api, target: PeerTarget) -> Result<Self, RequestError> {
        let session = api.create_session().await?;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let poller = api.spawn_poller(session, events_tx);
        let handle = match api.attach_videoroom(session).await {
            Ok(handle) => handle,
            Err(err) => {
                poller.abort();
                let _ = api.destroy(session).await;
                return Err(err);
            }
        };
        Ok(Self {
            api: api.clone(),
            target,
            session,
            handle,
            events,
            poller,
            early: VecDeque::new(),
        })
    }

    /// Sends `request` and waits for the event that answers it.
    async fn ask(&mut self, request: Request) -> Result<Event, RequestError> {
        let transaction = self.api.send(self.session, self.handle, &request).await?;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| RequestError::Timeout("janus event"))?
                .ok_or(RequestError::Closed)?;
            if event.transaction.as_deref() != Some(transaction.as_str()) {
                self.early.push_back(event);
                continue;
            }
            if let EventKind::PluginError { code, reason } = event.kind {
                return Err(RequestError::Janus { code, reason });
            }
            return Ok(event);
        }
    }

    /// Hands the engine and the session to a task of their own.
    fn spawn(
        self,
        engine: Engine,
        publishing: Option<PublishProgress>,
        index: usize,
        joined_at: Instant,
        tracks: &[String],
        role: Role,
    ) -> Member {
        let stats = engine.stats_handle();
        let (end, end_rx) = oneshot::channel();
        let task = tokio::spawn(
            Driver {
                api: self.api,
                target: self.target,
                session: self.session,
                handle: self.handle,
                engine,
                publishing,
                published: false,
                poller: self.poller,
            }
            .run(self.events, self.early, end_rx),
        );
        Member {
            index,
            client: Box::new(JanusParticipant {
                stats,
                end: Some(end),
                task,
            }),
            joined_at,
            tracks: tracks.to_vec(),
            subscribe: role.subscribe,
        }
    }
}

/// A joined participant as the harness sees it: counters, and an end when dropped.
struct JanusParticipant {
    stats: StatsHandle,
    end: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Participant for JanusParticipant {
    fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }
}

impl Drop for JanusParticipant {
    /// Asks the task to destroy the session; if the runtime is going away first, the
    /// task is aborted and Janus times the session out.
    fn drop(&mut self) {
        if let Some(end) = self.end.take()
            && end.send(()).is_err()
        {
            self.task.abort();
        }
    }
}

/// One participant's task: carries the engine's signaling to Janus and Janus's events
/// to the engine, and drives the engine's media and timers.
struct Driver {
    api: Api,
    target: PeerTarget,
    session: SessionId,
    handle: HandleId,
    engine: Engine,
    publishing: Option<PublishProgress>,
    /// The publisher connection was offered once; the next offer is a `configure`.
    published: bool,
    poller: JoinHandle<()>,
}

impl Driver {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        early: VecDeque<Event>,
        mut end: oneshot::Receiver<()>,
    ) {
        // Requests go out in order from a task of their own, so a slow POST never holds
        // up the media; a failed one is reported back as a plugin error event.
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let poster = tokio::spawn(post_in_order(
            self.api.clone(),
            self.session,
            self.handle,
            requests_rx,
        ));
        for event in early {
            self.on_event(&event);
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
        keepalive.tick().await;
        loop {
            while let Some(message) = self.engine.poll_signal() {
                if let Some(request) = Request::for_engine(&message, self.published) {
                    self.published |= matches!(message, ClientMessage::Offer { .. });
                    let _ = requests.send(Outgoing::Request(request));
                }
            }
            while let Some(outcome) = self.engine.poll_negotiated() {
                if let Some(publishing) = &self.publishing {
                    let _ = publishing.negotiated.send(outcome);
                }
            }
            tokio::select! {
                biased;
                _ = &mut end => break,
                event = events.recv() => match event {
                    Some(event) => self.on_event(&event),
                    // The session is gone: nothing will reach the engine any more.
                    None => break,
                },
                _ = keepalive.tick() => {
                    let _ = requests.send(Outgoing::Keepalive);
                }
                () = self.engine.step() => {}
            }
        }
        drop(requests);
        let _ = poster.await;
        self.poller.abort();
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, self.api.destroy(self.session)).await;
    }

    fn on_event(&mut self, event: &Event) {
        if event.kind == EventKind::WebrtcUp
            && let Some(up) = self.publishing.as_mut().and_then(|p| p.up.take())
        {
            let _ = up.send(());
        }
        if let Some(message) = engine_message(self.target, event) {
            // A refused SDP shows in the engine's `negotiation_failures`.
            let _ = self.engine.handle_signal(Instant::now(), &message);
        }
    }
}

enum Outgoing {
    Request(Request),
    Keepalive,
}

async fn post_in_order(
    api: Api,
    session: SessionId,
    handle: HandleId,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(outgoing) = requests.recv().await {
        // Failures are not fatal here: a lost trickle or keepalive is what a browser
        // would also survive, and a lost SDP shows as missing media in the report.
        let _ = match outgoing {
            Outgoing::Request(request) => api.send(session, handle, &request).await.map(drop),
            Outgoing::Keepalive => api.keepalive(session).await,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, jsep: Option<Jsep>) -> Event {
        Event {
            transaction: None,
            kind,
            jsep,
        }
    }

    #[test]
    fn events_parse_as_janus_sends_them() {
        let host = "candidate:1 1 udp 2015363327 127.0.0.1 20001 typ host";
        let cases: Vec<(Value, Option<&str>, EventKind, Option<Jsep>)> = vec![
            (
                json!({"janus": "event", "transaction": "t3", "sender": 9,
                       "plugindata": {"plugin": "janus.plugin.videoroom",
                                      "data": {"videoroom": "joined", "room": 1, "id": 77, "publishers": []}}}),
                Some("t3"),
                EventKind::Joined(FeedId(77)),
                None,
            ),
            (
                json!({"janus": "event", "transaction": "t4",
                       "plugindata": {"data": {"videoroom": "event", "configured": "ok", "streams": []}},
                       "jsep": {"type": "answer", "sdp": "v=0 a"}}),
                Some("t4"),
                EventKind::Configured,
                Some(Jsep::Answer("v=0 a".into())),
            ),
            (
                json!({"janus": "event", "transaction": "t5",
                       "plugindata": {"data": {"videoroom": "attached", "room": 1, "streams": [
                           {"type": "audio", "mid": "0", "mindex": 0, "feed_id": 77, "feed_mid": "0"},
                           {"type": "video", "mid": "1", "mindex": 1, "feed_id": 77, "feed_mid": "1"},
                           {"type": "data", "mid": "2", "mindex": 2},
                           {"type": "video", "mid": "3"},
                       ]}},
                       "jsep": {"type": "offer", "sdp": "v=0 o"}}),
                Some("t5"),
                EventKind::Attached(vec![
                    Relayed {
                        mid: "0".into(),
                        feed: FeedId(77),
                        kind: MediaKind::Audio,
                    },
                    Relayed {
                        mid: "1".into(),
                        feed: FeedId(77),
                        kind: MediaKind::Video,
                    },
                ]),
                Some(Jsep::Offer("v=0 o".into())),
            ),
            (
                json!({"janus": "event", "plugindata": {"data": {"videoroom": "event", "started": "ok"}}}),
                None,
                EventKind::Started,
                None,
            ),
            (
                json!({"janus": "event", "transaction": "t6",
                       "plugindata": {"data": {"videoroom": "event", "error_code": 426, "error": "No such room"}}}),
                Some("t6"),
                EventKind::PluginError {
                    code: 426,
                    reason: "No such room".into(),
                },
                None,
            ),
            (
                json!({"janus": "event", "plugindata": {"data": {"videoroom": "event", "publishers": []}}}),
                None,
                EventKind::Plugin,
                None,
            ),
            (
                json!({"janus": "trickle", "sender": 9,
                       "candidate": {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": host}}),
                None,
                EventKind::Trickle(Some(IceCandidate {
                    candidate: host.into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                })),
                None,
            ),
            (
                json!({"janus": "trickle", "candidate": {"completed": true}}),
                None,
                EventKind::Trickle(None),
                None,
            ),
            (
                json!({"janus": "webrtcup", "sender": 9}),
                None,
                EventKind::WebrtcUp,
                None,
            ),
            (
                json!({"janus": "hangup", "reason": "DTLS alert"}),
                None,
                EventKind::Hangup("DTLS alert".into()),
                None,
            ),
            (
                json!({"janus": "keepalive"}),
                None,
                EventKind::Keepalive,
                None,
            ),
            (
                json!({"janus": "media", "type": "video", "receiving": true}),
                None,
                EventKind::Other("media".into()),
                None,
            ),
            // Network input of the wrong shape must not fail.
            (json!(42), None, EventKind::Other(String::new()), None),
            (
                json!({"janus": "event", "plugindata": "nonsense", "jsep": {"type": "pranswer", "sdp": "x"}}),
                None,
                EventKind::Plugin,
                None,
            ),
        ];
        for (value, transaction, kind, jsep) in cases {
            let event = Event::parse(&value);
            assert_eq!(event.transaction.as_deref(), transaction, "{value}");
            assert_eq!(event.kind, kind, "{value}");
            assert_eq!(event.jsep, jsep, "{value}");
        }
    }

    #[test]
    fn engine_messages_become_janus_requests() {
        let c = IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: None,
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let offer = ClientMessage::Offer {
            target: PeerTarget::Publisher,
            sdp: "o".into(),
        };
        let cases = vec![
            (
                offer.clone(),
                false,
                Some(
                    json!({"janus": "message", "transaction": "t", "body": {"request": "publish"},
                            "jsep": {"type": "offer", "sdp": "o"}}),
                ),
            ),
            (
                offer,
                true,
                Some(
                    json!({"janus": "message", "transaction": "t", "body": {"request": "configure"},
                            "jsep": {"type": "offer", "sdp": "o"}}),
                ),
            ),
            (
                ClientMessage::Answer {
                    target: PeerTarget::Subscriber,
                    sdp: "a".into(),
                },
                false,
                Some(
                    json!({"janus": "message", "transaction": "t", "body": {"request": "start"},
                            "jsep": {"type": "answer", "sdp": "a"}}),
                ),
            ),
            (
                ClientMessage::Candidate {
                    target: PeerTarget::Publisher,
                    candidate: Some(c.clone()),
                },
                true,
                Some(json!({"janus": "trickle", "transaction": "t",
                            "candidate": {"candidate": c.candidate, "sdpMid": null, "sdpMLineIndex": 0}})),
            ),
            (
                ClientMessage::Candidate {
                    target: PeerTarget::Subscriber,
                    candidate: None,
                },
                false,
                Some(
                    json!({"janus": "trickle", "transaction": "t", "candidate": {"completed": true}}),
                ),
            ),
            // No Janus counterpart: Chorus-only messages, wrong directions.
            (ClientMessage::Ping { ts: 1 }, false, None),
            (
                ClientMessage::Offer {
                    target: PeerTarget::Subscriber,
                    sdp: "o".into(),
                },
                false,
                None,
            ),
        ];
        for (message, published, want) in cases {
            let got = Request::for_engine(&message, published).map(|r| r.to_json("t"));
            assert_eq!(got, want, "{message:?} published={published}");
        }
    }

    #[test]
    fn janus_events_become_engine_messages() {
        let sub = PeerTarget::Subscriber;
        let publ = PeerTarget::Publisher;
        let cases = vec![
            (
                sub,
                ev(EventKind::Attached(vec![]), Some(Jsep::Offer("o".into()))),
                Some(ServerMessage::Offer {
                    target: sub,
                    sdp: "o".into(),
                }),
            ),
            (
                publ,
                ev(EventKind::Configured, Some(Jsep::Answer("a".into()))),
                Some(ServerMessage::Answer {
                    target: publ,
                    sdp: "a".into(),
                }),
            ),
            (
                publ,
                ev(EventKind::Trickle(None), None),
                Some(ServerMessage::Candidate {
                    target: publ,
                    candidate: None,
                }),
            ),
            (sub, ev(EventKind::Started, None), None),
            (sub, ev(EventKind::WebrtcUp, None), None),
            (publ, ev(EventKind::Joined(FeedId(1)), None), None),
        ];
        for (target, event, want) in cases {
            assert_eq!(engine_message(target, &event), want, "{event:?}");
        }
    }

    #[test]
    fn relayed_tracks_are_named_after_the_publishers_tracks() {
        let offer = "v=0\r\na=msid-semantic: WMS *\r\n\
                     m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:janus janus0\r\na=ssrc:1 cname:janus\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:janus janus1\r\n";
        let named = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(m, t)| (m.to_string(), t.to_string()))
                .collect()
        };
        let cases = [
            (
                named(&[("0", "p000-mic"), ("1", "p000-cam")]),
                offer
                    .replace("a=msid:janus janus0", "a=msid:p000-mic p000-mic")
                    .replace("a=msid:janus janus1", "a=msid:p000-cam p000-cam"),
            ),
            // Unnamed m-lines keep Janus's msid; a name for an absent mid changes nothing.
            (
                named(&[("1", "p000-cam"), ("7", "x")]),
                offer.replace("a=msid:janus janus1", "a=msid:p000-cam p000-cam"),
            ),
            (named(&[]), offer.to_owned()),
        ];
        for (names, want) in cases {
            assert_eq!(name_tracks(offer, &names), want, "{names:?}");
        }
        // The session-level msid-semantic line is not an m-line's msid.
        let named = name_tracks(offer, &named(&[("0", "a"), ("1", "b")]));
        assert!(named.contains("a=msid-semantic: WMS *\r\n"));
    }

    #[test]
    fn room_ids_are_stable_nonzero_and_fit_a_double() {
        let a = room_id("loadtest-fanout-1");
        assert_eq!(a, room_id("loadtest-fanout-1"));
        assert_ne!(a, room_id("loadtest-fanout-2"));
        for name in ["", "a", "loadtest-fanout-1"] {
            let RoomId(id) = room_id(name);
            assert!(id > 0 && id < (1 << 52), "{name}: {id}");
        }
    }
}
