//! The client task: owns the signaling WebSocket and the [`Engine`], carries the
//! engine's signals both ways, and serves the [`crate::Client`] handle's commands.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::{LeaveReason, TrackInfo, TrackSource};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

use crate::engine::{DataReceived, Engine};
use crate::error::ClientError;
use crate::keyframe::KeyframeRequestForm;
use crate::signaling::{CLOSE_TIMEOUT, WebSocket, send};
use crate::stats::SharedStats;
use crate::talk::AudioContent;
use chorus_protocol::data::DataMode;

const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long a killed client keeps its WebSocket open waiting for the server to give up.
const KILLED_LINGER: Duration = Duration::from_secs(120);

/// What the handle asks of the task.
pub(crate) enum Command {
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
    /// A message the engine has no part in (`track_settings`), sent as it is.
    Send(ClientMessage),
    Path {
        target: PeerTarget,
        change: PathChange,
        reply: oneshot::Sender<Result<SocketAddr, ClientError>>,
    },
    Leave {
        reply: oneshot::Sender<Result<LeaveReason, ClientError>>,
    },
    /// Opens the data channels; the reply comes once both are open.
    OpenData {
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    /// One text message on a data channel.
    SendData {
        mode: DataMode,
        text: String,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    /// One binary message on a data channel.
    SendDataBinary {
        mode: DataMode,
        message: Vec<u8>,
        reply: oneshot::Sender<Result<(), ClientError>>,
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
pub(crate) enum End {
    Kill,
    DropSignaling,
}

/// A `publish` sent, waiting for `publish_accepted`.
struct Announced {
    cid: String,
    source: TrackSource,
    reply: oneshot::Sender<Result<TrackInfo, ClientError>>,
}

/// The client task: owns the WebSocket and the engine.
pub(crate) struct Session {
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
    /// Data messages delivered, to the handle.
    data: mpsc::Sender<DataReceived>,
    /// Waiting for both data channels to open.
    data_opening: Option<oneshot::Sender<Result<(), ClientError>>>,
}

/// What to do after a command or frame.
enum Next {
    Continue,
    Stop,
    Linger,
}

impl Session {
    /// The task of a joined `ws`: `commands`, `end` and `events` are the other ends of the
    /// handle's channels, `stats` the engine's counters.
    pub(crate) fn new(
        ws: WebSocket,
        engine: Engine,
        commands: mpsc::Receiver<Command>,
        end: oneshot::Receiver<End>,
        events: mpsc::Sender<ServerMessage>,
        data: mpsc::Sender<DataReceived>,
        stats: SharedStats,
    ) -> Self {
        Self {
            ws,
            engine,
            commands,
            end,
            events,
            stats,
            announced: VecDeque::new(),
            negotiating: HashMap::new(),
            leave: None,
            data,
            data_opening: None,
        }
    }

    /// Applies the messages that came before `joined`, then serves until the handle ends
    /// the session or the server closes the WebSocket.
    pub(crate) async fn run(mut self, early: Vec<ServerMessage>) {
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
        if self.engine.data_open()
            && let Some(reply) = self.data_opening.take()
        {
            let _ = reply.send(Ok(()));
        }
        while let Some(received) = self.engine.poll_data() {
            if self.data.try_send(received).is_err() {
                self.stats.lock().data_dropped += 1;
            }
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
            Command::Send(message) => Some(message),
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
            Command::OpenData { reply } => {
                match self.engine.open_data(now) {
                    Ok(()) => self.data_opening = Some(reply),
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
                None
            }
            Command::SendData { mode, text, reply } => {
                let _ = reply.send(self.engine.send_data(now, mode, text));
                None
            }
            Command::SendDataBinary {
                mode,
                message,
                reply,
            } => {
                let _ = reply.send(self.engine.send_data_binary(now, mode, &message));
                None
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
            // Counted for loss figures that leave paused videos out, and passed on.
            ServerMessage::VideoPaused { track_id, .. } => {
                let mut stats = self.stats.lock();
                stats
                    .told_paused
                    .entry(track_id.clone())
                    .or_default()
                    .pause(now);
            }
            ServerMessage::VideoResumed { track_id, .. } => {
                let mut stats = self.stats.lock();
                stats
                    .told_paused
                    .entry(track_id.clone())
                    .or_default()
                    .resume(now);
            }
            ServerMessage::PublishAccepted { cid, track } => {
                self.on_publish_accepted(now, cid, track);
            }
            // Errors carry no request id: one fails the oldest pending publish (those
            // about data messages are no answer to one).
            ServerMessage::Error { code, message, .. } if !is_data_error(code) => {
                if let Some(announced) = self.announced.pop_front() {
                    let _ = announced.reply.send(Err(ClientError::Refused {
                        code: code.clone(),
                        message: message.clone(),
                    }));
                }
            }
            ServerMessage::Left { reason, .. } => {
                if let Some(reply) = self.leave.take() {
                    let _ = reply.send(Ok(*reason));
                }
            }
            // The server heard nothing on that connection: restart ICE there.
            ServerMessage::IceRestart { target } => self.engine.restart_ice(*target),
            // Dynacast: applied to our simulcast camera, and passed on as an event.
            ServerMessage::PublisherLayers { .. } => {
                if let Err(err) = self.engine.handle_signal(now, &message) {
                    warn!(%err, "publisher layers not applied");
                }
            }
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

/// The `error` codes about data messages (docs/signaling.md, "Data messages").
fn is_data_error(code: &str) -> bool {
    code.starts_with("data_") || code == "bad_data_message"
}

fn ping_message() -> ClientMessage {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    ClientMessage::Ping { ts }
}
