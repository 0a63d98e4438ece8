//! The signaling half: a WebSocket to `/v1/rtc` and one task that owns the [`Engine`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::{LeaveReason, ParticipantInfo, TrackInfo, TrackSource};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, warn};

use crate::ClientError;
use crate::engine::{Engine, KeyframeRequestForm};
use crate::media::MediaProfile;
use crate::stats::{ClientStats, SharedStats};
use crate::talk::AudioContent;

type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long a killed client keeps its WebSocket open waiting for the server to give up.
const KILLED_LINGER: Duration = Duration::from_secs(120);
const COMMAND_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 1024;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `ws://127.0.0.1:7880`.
    pub url: String,
    /// User access token (JWT).
    pub token: String,
    /// Address the UDP sockets bind to and advertise as host candidate (not a wildcard).
    pub bind_ip: IpAddr,
    pub media: MediaProfile,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            media: MediaProfile::default(),
        }
    }

    fn signaling_url(&self) -> String {
        format!(
            "{}/v1/rtc?access_token={}",
            self.url.trim_end_matches('/'),
            self.token
        )
    }
}

enum Command {
    Publish {
        source: TrackSource,
        reply: oneshot::Sender<Result<TrackInfo, ClientError>>,
    },
    Unpublish {
        track_id: String,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Mute {
        track_id: String,
        muted: bool,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    RequestKeyframe {
        track_id: String,
        form: KeyframeRequestForm,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    SetAudio(AudioContent),
    Path {
        target: PeerTarget,
        change: PathChange,
        reply: oneshot::Sender<Result<SocketAddr, ClientError>>,
    },
    Leave {
        reply: oneshot::Sender<Result<LeaveReason, ClientError>>,
    },
}

/// A change of one connection's network path, as real clients go through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathChange {
    /// Open a second path (another local socket) and check it with the server: two
    /// candidate pairs, the first still nominated.
    Add,
    /// Nominate the second path and send through it; the first keeps receiving.
    Switch,
    /// Close the path used before the switch (its interface went away).
    DropPrevious,
    /// The local address changed (the old socket is closed): restart ICE.
    RestartIce,
    /// The connection's network goes down: nothing is sent or received.
    Offline,
    /// The network is back.
    Online,
}

/// How the handle ends the session abruptly. Dropping the handle without one is
/// [`End::DropSignaling`].
enum End {
    Kill,
    DropSignaling,
}

/// A participant connected to a Chorus room. Dropping it closes the signaling
/// connection (like [`Client::drop_signaling`]) and ends its task.
pub struct Client {
    room: String,
    participant: ParticipantInfo,
    others_at_join: Vec<ParticipantInfo>,
    commands: mpsc::Sender<Command>,
    end: oneshot::Sender<End>,
    events: mpsc::Receiver<ServerMessage>,
    stats: SharedStats,
}

/// Opens the WebSocket, sends `join` and waits for `joined`. A refusal (HTTP status,
/// `error` frame or close frame instead of `joined`) is [`ClientError::Refused`].
pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
    let (mut ws, early, joined) = timeout(CONNECT_TIMEOUT, join(&config))
        .await
        .map_err(|_| ClientError::Timeout("joined"))??;
    let Joined {
        room,
        participant,
        participants,
    } = joined;
    let engine = match Engine::bind(config.bind_ip, config.media.clone()).await {
        Ok(engine) => engine,
        Err(err) => {
            let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
            return Err(err);
        }
    };
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (end, end_rx) = oneshot::channel();
    let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
    let stats = engine.shared_stats();
    let session = Session {
        ws,
        engine,
        commands: command_rx,
        end: end_rx,
        events: event_tx,
        stats: stats.clone(),
        announced: VecDeque::new(),
        negotiating: HashMap::new(),
        leave: None,
    };
    tokio::spawn(session.run(early));
    Ok(Client {
        room,
        participant,
        others_at_join: participants,
        commands,
        end,
        events,
        stats,
    })
}

/// The content of `joined`.
struct Joined {
    room: String,
    participant: ParticipantInfo,
    participants: Vec<ParticipantInfo>,
}

/// Connects and joins; returns the socket, messages that came before `joined`, and `joined`.
async fn join(
    config: &ClientConfig,
) -> Result<(WebSocket, Vec<ServerMessage>, Joined), ClientError> {
    let (mut ws, _) = tokio_tungstenite::connect_async(config.signaling_url()).await?;
    send(&mut ws, &ClientMessage::Join {}).await?;
    let mut early = Vec::new();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(ServerMessage::Joined {
                    room,
                    participant,
                    participants,
                }) => {
                    let joined = Joined {
                        room,
                        participant,
                        participants,
                    };
                    return Ok((ws, early, joined));
                }
                Ok(ServerMessage::Error { code, message }) => {
                    return Err(ClientError::Refused { code, message });
                }
                Ok(other) => early.push(other),
                Err(err) => warn!(%err, "unparsable server message"),
            },
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err(ClientError::Refused {
                    code: format!("close_{}", u16::from(frame.code)),
                    message: frame.reason.to_string(),
                });
            }
            Some(Ok(Message::Close(None))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
        }
    }
}

async fn send(ws: &mut WebSocket, message: &ClientMessage) -> Result<(), ClientError> {
    let text = serde_json::to_string(message)
        .map_err(|err| ClientError::Protocol(format!("cannot encode message: {err}")))?;
    ws.send(Message::text(text)).await?;
    Ok(())
}

impl Client {
    pub fn participant_id(&self) -> &str {
        &self.participant.participant_id
    }

    /// This participant as the server described it in `joined`.
    pub fn participant(&self) -> &ParticipantInfo {
        &self.participant
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// The other participants listed in `joined`.
    pub fn others_at_join(&self) -> &[ParticipantInfo] {
        &self.others_at_join
    }

    pub fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
        limit: Duration,
        awaited: &'static str,
    ) -> Result<T, ClientError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| ClientError::Closed)?;
        timeout(limit, response)
            .await
            .map_err(|_| ClientError::Timeout(awaited))?
            .map_err(|_| ClientError::Closed)?
    }

    /// Announces a track (`publish`), waits for `publish_accepted`, adds it to the
    /// publisher connection and renegotiates. Returns once the server's answer is
    /// applied; synthetic media flows as soon as the connection is up.
    pub async fn publish(&self, source: TrackSource) -> Result<TrackInfo, ClientError> {
        self.request(
            |reply| Command::Publish { source, reply },
            PUBLISH_TIMEOUT,
            "publish_accepted and answer",
        )
        .await
    }

    /// Sends `unpublish`, stops the media and renegotiates without the track.
    pub async fn unpublish(&self, track_id: &str) -> Result<(), ClientError> {
        let track_id = track_id.to_owned();
        self.request(
            |reply| Command::Unpublish { track_id, reply },
            PUBLISH_TIMEOUT,
            "unpublish",
        )
        .await
    }

    /// Sends `mute` and stops (or resumes) sending the track's media.
    pub async fn mute(&self, track_id: &str, muted: bool) -> Result<(), ClientError> {
        let track_id = track_id.to_owned();
        self.request(
            |reply| Command::Mute {
                track_id,
                muted,
                reply,
            },
            PUBLISH_TIMEOUT,
            "mute",
        )
        .await
    }

    /// Sends a PLI for a subscribed remote video track (by server track id).
    pub async fn request_keyframe(&self, track_id: &str) -> Result<(), ClientError> {
        self.request_keyframe_with(track_id, KeyframeRequestForm::Pli)
            .await
    }

    /// Asks for a keyframe of a subscribed remote video track (by server track id) in
    /// the RTCP `form` some client sends.
    pub async fn request_keyframe_with(
        &self,
        track_id: &str,
        form: KeyframeRequestForm,
    ) -> Result<(), ClientError> {
        let track_id = track_id.to_owned();
        self.request(
            |reply| Command::RequestKeyframe {
                track_id,
                form,
                reply,
            },
            PUBLISH_TIMEOUT,
            "keyframe request",
        )
        .await
    }

    /// The silence frame labelled with this RFC 6464 level (-dBov, 127 = silence) from
    /// now on: see [`AudioContent::from_level`].
    pub async fn set_audio_level(&self, dbov: u8) -> Result<(), ClientError> {
        self.set_audio(AudioContent::from_level(dbov)).await
    }

    /// What the microphone sends from now on (talk, a tone, silence).
    pub async fn set_audio(&self, content: AudioContent) -> Result<(), ClientError> {
        self.commands
            .send(Command::SetAudio(content))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Changes the network path of one connection (see [`PathChange`]); returns the
    /// local address now in use.
    pub async fn change_path(
        &self,
        target: PeerTarget,
        change: PathChange,
    ) -> Result<SocketAddr, ClientError> {
        self.request(
            |reply| Command::Path {
                target,
                change,
                reply,
            },
            PUBLISH_TIMEOUT,
            "path change",
        )
        .await
    }

    /// Sends `leave` and waits for `left`.
    pub async fn leave(self) -> Result<LeaveReason, ClientError> {
        self.request(|reply| Command::Leave { reply }, LEAVE_TIMEOUT, "left")
            .await
    }

    /// Vanishes from the media plane: no more media, RTCP or ICE responses, while the
    /// WebSocket stays open (up to two minutes, or until the server closes it), so the
    /// server has to notice by ICE/DTLS timeout.
    pub fn kill(self) {
        let _ = self.end.send(End::Kill);
    }

    /// Closes the WebSocket without `leave` and drops everything.
    pub fn drop_signaling(self) {
        let _ = self.end.send(End::DropSignaling);
    }

    /// Next server event (everything except SDP, candidates and pongs), in order.
    pub async fn next_event(&mut self, limit: Duration) -> Result<ServerMessage, ClientError> {
        timeout(limit, self.events.recv())
            .await
            .map_err(|_| ClientError::Timeout("server event"))?
            .ok_or(ClientError::Closed)
    }

    /// Discards events until one matches `predicate`, within `limit` overall.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        mut predicate: impl FnMut(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next_event(left).await?;
            if predicate(&event) {
                return Ok(event);
            }
        }
    }
}

/// A `publish` sent, waiting for `publish_accepted`.
struct Announced {
    cid: String,
    source: TrackSource,
    reply: oneshot::Sender<Result<TrackInfo, ClientError>>,
}

/// The client task: owns the WebSocket and the engine.
struct Session {
    ws: WebSocket,
    engine: Engine,
    commands: mpsc::Receiver<Command>,
    end: oneshot::Receiver<End>,
    events: mpsc::Sender<ServerMessage>,
    stats: SharedStats,
    announced: VecDeque<Announced>,
    /// Accepted publications waiting for the publisher answer, by cid.
    negotiating: HashMap<String, (TrackInfo, oneshot::Sender<Result<TrackInfo, ClientError>>)>,
    leave: Option<oneshot::Sender<Result<LeaveReason, ClientError>>>,
}

/// What to do after a command or frame.
enum Next {
    Continue,
    Stop,
    Linger,
}

impl Session {
    async fn run(mut self, early: Vec<ServerMessage>) {
        for message in early {
            self.on_server_message(message);
        }
        if self.flush().await.is_err() {
            return;
        }
        let mut ping = interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        loop {
            let next = tokio::select! {
                biased;
                end = &mut self.end => match end {
                    Ok(End::Kill) => Next::Linger,
                    Ok(End::DropSignaling) | Err(_) => Next::Stop,
                },
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => Next::Stop,
                },
                _ = self.engine.step() => Next::Continue,
                frame = self.ws.next() => self.on_frame(frame),
                _ = ping.tick() => match send(&mut self.ws, &ping_message()).await {
                    Ok(()) => Next::Continue,
                    Err(_) => Next::Stop,
                },
            };
            match next {
                Next::Continue => {}
                Next::Stop => {
                    let _ = timeout(CLOSE_TIMEOUT, self.ws.close(None)).await;
                    return;
                }
                Next::Linger => {
                    let Session { ws, engine, .. } = self;
                    drop(engine);
                    linger(ws).await;
                    return;
                }
            }
            if self.flush().await.is_err() {
                return;
            }
        }
    }

    /// Answers publish requests whose negotiation finished and sends the engine's signals.
    async fn flush(&mut self) -> Result<(), ClientError> {
        while let Some((cid, outcome)) = self.engine.poll_negotiated() {
            if let Some((track, reply)) = self.negotiating.remove(&cid) {
                let _ = reply.send(outcome.map(|()| track));
            }
        }
        while let Some(message) = self.engine.poll_signal() {
            send(&mut self.ws, &message).await?;
        }
        Ok(())
    }

    async fn on_command(&mut self, command: Command) -> Next {
        let now = Instant::now();
        let message = match command {
            Command::Publish { source, reply } => {
                let cid = format!("{}-{:08x}", source.as_str(), rand::random::<u32>());
                self.announced.push_back(Announced {
                    cid: cid.clone(),
                    source,
                    reply,
                });
                let message = ClientMessage::Publish {
                    cid,
                    source,
                    muted: false,
                };
                Some(message)
            }
            Command::Unpublish { track_id, reply } => {
                let result = self.engine.unpublish(now, &track_id);
                let message = result
                    .is_ok()
                    .then_some(ClientMessage::Unpublish { track_id });
                let _ = reply.send(result);
                message
            }
            Command::Mute {
                track_id,
                muted,
                reply,
            } => {
                let result = self.engine.set_muted(&track_id, muted);
                let message = result
                    .is_ok()
                    .then_some(ClientMessage::Mute { track_id, muted });
                let _ = reply.send(result);
                message
            }
            Command::RequestKeyframe {
                track_id,
                form,
                reply,
            } => {
                let result = self.engine.request_keyframe_with(now, &track_id, form);
                let _ = reply.send(result);
                None
            }
            Command::SetAudio(content) => {
                self.engine.set_audio(content);
                None
            }
            Command::Path {
                target,
                change,
                reply,
            } => {
                let result = match change {
                    PathChange::Add => self.engine.add_path(target).await,
                    PathChange::Switch => self.engine.switch_path(target).await,
                    PathChange::DropPrevious => self.engine.drop_previous_path(target),
                    PathChange::RestartIce => self.engine.change_address(target).await,
                    PathChange::Offline | PathChange::Online => {
                        self.engine
                            .set_offline(target, change == PathChange::Offline);
                        Ok(self.engine.local_addrs().0)
                    }
                };
                // A restart queued an offer or an `ice_restart` request: sent by `flush`.
                let _ = reply.send(result);
                None
            }
            Command::Leave { reply } => {
                self.leave = Some(reply);
                Some(ClientMessage::Leave {})
            }
        };
        match message {
            Some(message) if send(&mut self.ws, &message).await.is_err() => Next::Stop,
            _ => Next::Continue,
        }
    }

    fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Next {
        match frame {
            Some(Ok(Message::Text(text))) => {
                match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(message) => self.on_server_message(message),
                    Err(err) => warn!(%err, "unparsable server message"),
                }
                Next::Continue
            }
            Some(Ok(Message::Close(_))) | None => {
                debug!("signaling closed by server");
                Next::Stop
            }
            Some(Err(err)) => {
                debug!(%err, "signaling failed");
                Next::Stop
            }
            Some(Ok(_)) => Next::Continue,
        }
    }

    fn on_server_message(&mut self, message: ServerMessage) {
        let now = Instant::now();
        match &message {
            ServerMessage::Offer { .. }
            | ServerMessage::Answer { .. }
            | ServerMessage::Candidate { .. } => {
                if let Err(err) = self.engine.handle_signal(now, &message) {
                    warn!(%err, "signal not applied");
                }
                return;
            }
            ServerMessage::Pong { .. } => return,
            ServerMessage::PublishAccepted { cid, track } => {
                self.on_publish_accepted(now, cid, track);
            }
            // Errors carry no request id: one fails the oldest pending publish.
            ServerMessage::Error { code, message } => {
                if let Some(announced) = self.announced.pop_front() {
                    let _ = announced.reply.send(Err(ClientError::Refused {
                        code: code.clone(),
                        message: message.clone(),
                    }));
                }
            }
            ServerMessage::Left { reason } => {
                if let Some(reply) = self.leave.take() {
                    let _ = reply.send(Ok(*reason));
                }
            }
            // The server heard nothing on that connection: restart ICE there.
            ServerMessage::IceRestart { target } => self.engine.restart_ice(*target),
            _ => {}
        }
        if self.events.try_send(message).is_err() {
            self.stats.lock().events_dropped += 1;
        }
    }
}

impl Session {
    /// Adds an announced track to the publisher connection; the reply waits for the answer.
    fn on_publish_accepted(&mut self, now: Instant, cid: &str, track: &TrackInfo) {
        let Some(at) = self.announced.iter().position(|a| a.cid == cid) else {
            return;
        };
        let Some(announced) = self.announced.remove(at) else {
            return;
        };
        match self
            .engine
            .publish(now, cid, &track.track_id, announced.source)
        {
            Ok(()) => {
                self.negotiating
                    .insert(cid.to_owned(), (track.clone(), announced.reply));
            }
            Err(err) => {
                let _ = announced.reply.send(Err(err));
            }
        }
    }
}

/// After a kill: keep the WebSocket open, answering nothing but its own keepalive.
async fn linger(mut ws: WebSocket) {
    let deadline = sleep(KILLED_LINGER);
    tokio::pin!(deadline);
    let mut ping = interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if send(&mut ws, &ping_message()).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
}

fn ping_message() -> ClientMessage {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    ClientMessage::Ping { ts }
}
