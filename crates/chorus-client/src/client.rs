//! The public handle of a participant: [`connect`] joins a room and starts the session
//! task; the [`Client`] it returns sends that task commands and receives its events.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage, VideoQuality};
use chorus_protocol::{LeaveReason, ParticipantInfo, TrackInfo, TrackSource};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use crate::engine::{DataReceived, Engine};
use crate::error::ClientError;
use crate::keyframe::KeyframeRequestForm;
use crate::profile::MediaProfile;
use crate::session::{Command, End, PathChange, Session};
use crate::signaling::{CLOSE_TIMEOUT, Joined, join};
use crate::stats::{ClientStats, SharedStats};
use crate::talk::AudioContent;
use chorus_protocol::data::{BinarySend, DataMode, DataSend, write_binary};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
const COMMAND_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 1024;
const DATA_QUEUE: usize = 4096;

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

/// A participant connected to a Chorus room. Dropping it closes the signaling
/// connection (like [`Client::drop_signaling`]) and ends its task.
pub struct Client {
    room: String,
    participant: ParticipantInfo,
    others_at_join: Vec<ParticipantInfo>,
    commands: mpsc::Sender<Command>,
    end: oneshot::Sender<End>,
    events: mpsc::Receiver<ServerMessage>,
    data: mpsc::Receiver<DataReceived>,
    stats: SharedStats,
}

/// Opens the WebSocket, sends `join` and waits for `joined` and the rest of the roster
/// (`roster` pages). A refusal (HTTP status,
/// `error` frame or close frame instead of `joined`) is [`ClientError::Refused`].
pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
    let (mut ws, early, joined) = timeout(CONNECT_TIMEOUT, join(config.signaling_url()))
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
    let (data_tx, data) = mpsc::channel(DATA_QUEUE);
    let stats = engine.shared_stats();
    let session = Session::new(
        ws,
        engine,
        command_rx,
        end_rx,
        event_tx,
        data_tx,
        stats.clone(),
    );
    tokio::spawn(session.run(early));
    Ok(Client {
        room,
        participant,
        others_at_join: participants,
        commands,
        end,
        events,
        data,
        stats,
    })
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

    /// The other participants in the room at the join: `joined` and its `roster` pages.
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

    /// Tells the server how a received video is shown (`track_settings`, by server
    /// track id): it forwards the simulcast layer that fits `width`×`height` (`None`:
    /// no limit) up to `max_quality`, or nothing while not `visible`.
    pub async fn track_settings(
        &self,
        track_id: &str,
        size: Option<(u32, u32)>,
        visible: bool,
        max_quality: Option<VideoQuality>,
    ) -> Result<(), ClientError> {
        let message = ClientMessage::TrackSettings {
            track_id: track_id.to_owned(),
            width: size.map(|(width, _)| width),
            height: size.map(|(_, height)| height),
            visible,
            max_quality,
        };
        self.commands
            .send(Command::Send(message))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Receives the cameras of at most `last_n` others (`set_last_n`): pins first, then
    /// the latest speakers; the rest are paused (`video_paused` events).
    pub async fn set_last_n(&self, last_n: u32) -> Result<(), ClientError> {
        self.send(ClientMessage::SetLastN { last_n }).await
    }

    /// Pins these participants (by participant id), in this order; replaces the last
    /// pins (`set_pins`).
    pub async fn set_pins(&self, participant_ids: &[&str]) -> Result<(), ClientError> {
        let participant_ids = participant_ids.iter().map(|s| (*s).to_owned()).collect();
        self.send(ClientMessage::SetPins { participant_ids }).await
    }

    async fn send(&self, message: ClientMessage) -> Result<(), ClientError> {
        self.commands
            .send(Command::Send(message))
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

    /// Opens the data channels (`_reliable`, `_lossy`) on the publisher connection and
    /// waits until both are open: then [`Client::send_data`] works and messages of
    /// others arrive ([`Client::next_data`]).
    pub async fn open_data(&self) -> Result<(), ClientError> {
        self.request(
            |reply| Command::OpenData { reply },
            PUBLISH_TIMEOUT,
            "data channels open",
        )
        .await
    }

    /// Sends a data message: to the room, or to those `message` names.
    pub async fn send_data(&self, mode: DataMode, message: &DataSend) -> Result<(), ClientError> {
        let text =
            serde_json::to_string(message).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_data_text(mode, text).await
    }

    /// Sends `text` on the data channel of `mode` as it is (to see what the server does
    /// with any message).
    pub async fn send_data_text(&self, mode: DataMode, text: String) -> Result<(), ClientError> {
        self.request(
            |reply| Command::SendData { mode, text, reply },
            PUBLISH_TIMEOUT,
            "data sent",
        )
        .await
    }

    /// Sends a binary data message: `header` (to whom, its topic) framed before
    /// `payload` (docs/signaling.md, "Binary messages").
    pub async fn send_data_binary(
        &self,
        mode: DataMode,
        header: &BinarySend,
        payload: &[u8],
    ) -> Result<(), ClientError> {
        let message =
            write_binary(header, payload).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_data_bytes(mode, message).await
    }

    /// Sends `message` on the data channel of `mode` as one binary message, as it is
    /// (to see what the server does with any framing).
    pub async fn send_data_bytes(
        &self,
        mode: DataMode,
        message: Vec<u8>,
    ) -> Result<(), ClientError> {
        self.request(
            |reply| Command::SendDataBinary {
                mode,
                message,
                reply,
            },
            PUBLISH_TIMEOUT,
            "data sent",
        )
        .await
    }

    /// The next data message delivered to us, in order of arrival.
    pub async fn next_data(&mut self, limit: Duration) -> Result<DataReceived, ClientError> {
        timeout(limit, self.data.recv())
            .await
            .map_err(|_| ClientError::Timeout("data message"))?
            .ok_or(ClientError::Closed)
    }

    /// The data messages delivered and waiting, without waiting for more.
    pub fn take_data(&mut self) -> Vec<DataReceived> {
        std::iter::from_fn(|| self.data.try_recv().ok()).collect()
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
