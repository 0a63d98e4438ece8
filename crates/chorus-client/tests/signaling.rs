//! The whole [`Client`] against a stand-in server: a WebSocket speaking the Chorus
//! protocol, with a client [`Engine`] playing the SFU's side of both peer connections
//! (it answers the client's publisher offers and offers its own track to the client's
//! subscriber connection, in a stream named by the server track id).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use chorus_client::{
    Client, ClientConfig, ClientError, ClientMessage, ClientStats, Engine, LeaveReason,
    MediaProfile, ServerMessage, TrackInfo, TrackSource,
};
use chorus_protocol::signal::{ROSTER_PAGE, joined_frames};
use chorus_protocol::{Grants, ParticipantInfo, ParticipantState};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

const LIMIT: Duration = Duration::from_secs(10);
const PARTICIPANT: &str = "PA_test";
const SERVER_TRACK: &str = "TR_server_cam";

fn participant() -> ParticipantInfo {
    ParticipantInfo {
        participant_id: PARTICIPANT.to_owned(),
        identity: "alice".to_owned(),
        name: "Alice".to_owned(),
        state: ParticipantState::Connecting,
        grants: Grants::default(),
        tracks: vec![],
        joined_at_ms: 0,
    }
}

/// Someone else in the room, as the roster lists them.
fn other(participant_id: &str) -> ParticipantInfo {
    ParticipantInfo {
        participant_id: participant_id.to_owned(),
        identity: participant_id.to_lowercase(),
        ..participant()
    }
}

/// How many others the stand-in server lists for the token `crowd`.
const CROWD: usize = 2 * ROSTER_PAGE + 1;

fn track(track_id: &str, source: TrackSource) -> TrackInfo {
    TrackInfo {
        track_id: track_id.to_owned(),
        participant_id: PARTICIPANT.to_owned(),
        source,
        kind: source.kind(),
        muted: false,
        layers: Vec::new(),
    }
}

/// What the stand-in server saw.
#[derive(Debug)]
enum Seen {
    Message(ClientMessage),
    Closed,
}

struct FakeServer {
    url: String,
    /// The server engine's counters (its subscriber side receives the client's media).
    stats: watch::Receiver<ClientStats>,
    publish_camera: mpsc::Sender<()>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl FakeServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stats_tx, stats) = watch::channel(ClientStats::default());
        let (publish_camera, publish_rx) = mpsc::channel(1);
        let (seen_tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream, stats_tx, publish_rx, seen_tx).await;
        });
        Self {
            url: format!("ws://{addr}"),
            stats,
            publish_camera,
            seen,
        }
    }

    async fn connect(&self, token: &str) -> Result<Client, ClientError> {
        chorus_client::connect(ClientConfig::new(&self.url, token)).await
    }

    async fn wait_stats(&mut self, mut done: impl FnMut(&ClientStats) -> bool) {
        let reached = tokio::time::timeout(LIMIT, self.stats.wait_for(|s| done(s)))
            .await
            .is_ok_and(|result| result.is_ok());
        assert!(reached, "server stats: {:#?}", *self.stats.borrow());
    }

    async fn next_seen(&mut self, mut wanted: impl FnMut(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let seen = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .expect("server saw nothing in time")
                .expect("server gone");
            if wanted(&seen) {
                return seen;
            }
        }
    }
}

async fn send(ws: &mut WebSocketStream<TcpStream>, message: &ServerMessage) {
    let text = serde_json::to_string(message).unwrap();
    let _ = ws.send(Message::text(text)).await;
}

async fn serve(
    stream: TcpStream,
    stats: watch::Sender<ClientStats>,
    mut publish_camera: mpsc::Receiver<()>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let mut query = String::new();
    #[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
    let check_token = |request: &Request, response: Response| {
        query = request.uri().query().unwrap_or_default().to_owned();
        if request.uri().path() != "/v1/rtc" || query.contains("access_token=http-refused") {
            let mut refusal = ErrorResponse::new(Some("bad token".to_owned()));
            *refusal.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(refusal);
        }
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check_token).await else {
        return;
    };
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut engine = Engine::bind(ip, MediaProfile::default()).await.unwrap();
    let mut published = 0;
    loop {
        tokio::select! {
            _ = engine.step() => {}
            Some(()) = publish_camera.recv() => {
                let info = track(SERVER_TRACK, TrackSource::Camera);
                send(&mut ws, &ServerMessage::TrackPublished { track: info }).await;
                engine
                    .publish(Instant::now(), "server-cam", SERVER_TRACK, TrackSource::Camera)
                    .unwrap();
            }
            frame = ws.next() => {
                let message = match frame {
                    Some(Ok(Message::Text(text))) => serde_json::from_str::<ClientMessage>(&text).unwrap(),
                    Some(Ok(_)) => continue,
                    _ => {
                        let _ = seen.send(Seen::Closed);
                        return;
                    }
                };
                let _ = seen.send(Seen::Message(message.clone()));
                let reply = match message {
                    ClientMessage::Join {} if query.contains("access_token=refused") => {
                        let error = ServerMessage::Error {
                            code: "unauthorized".to_owned(),
                            message: "token rejected".to_owned(),
                            request_id: None,
                        };
                        send(&mut ws, &error).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    ClientMessage::Join {} if query.contains("access_token=crowd") => {
                        // More than two pages, then news about someone else.
                        let others = (0..CROWD).map(|i| other(&format!("PA_{i}"))).collect();
                        for frame in joined_frames("room-1".to_owned(), participant(), others) {
                            send(&mut ws, &frame).await;
                        }
                        Some(ServerMessage::ParticipantJoined { participant: other("PA_late") })
                    }
                    ClientMessage::Join {} => Some(ServerMessage::Joined {
                        room: "room-1".to_owned(),
                        participant: participant(),
                        participants: vec![],
                        roster_complete: true,
                        ice_servers: vec![],
                    }),
                    ClientMessage::Publish { cid, source, .. } => {
                        published += 1;
                        let track = track(&format!("TR_{published}"), source);
                        Some(ServerMessage::PublishAccepted { cid, track })
                    }
                    ClientMessage::Mute { track_id, muted } => Some(ServerMessage::TrackMuted {
                        participant_id: PARTICIPANT.to_owned(),
                        track_id,
                        muted,
                    }),
                    ClientMessage::Leave {} => {
                        let left = ServerMessage::Left { reason: LeaveReason::ClientLeft, message: None };
                        send(&mut ws, &left).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    ClientMessage::Ping { ts } => Some(ServerMessage::Pong { ts }),
                    signal => {
                        if let Some(signal) = common::relay(signal) {
                            engine.handle_signal(Instant::now(), &signal).unwrap();
                        }
                        None
                    }
                };
                if let Some(reply) = reply {
                    send(&mut ws, &reply).await;
                }
            }
        }
        while let Some(signal) = engine.poll_signal().and_then(common::relay) {
            send(&mut ws, &signal).await;
        }
        stats.send_replace(engine.stats());
    }
}

async fn wait_client(client: &Client, mut done: impl FnMut(&ClientStats) -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done(&client.stats()) {
        assert!(
            Instant::now() < deadline,
            "client stats: {:#?}",
            client.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn inbound_packets(stats: &ClientStats, track_id: &str) -> u64 {
    stats.inbound.get(track_id).map_or(0, |t| t.packets)
}

#[tokio::test]
async fn the_roster_at_join_includes_every_page() {
    let server = FakeServer::start().await;
    let mut client = server.connect("crowd").await.unwrap();
    let ids: Vec<&str> = client
        .others_at_join()
        .iter()
        .map(|p| p.participant_id.as_str())
        .collect();
    let want: Vec<String> = (0..CROWD).map(|i| format!("PA_{i}")).collect();
    assert_eq!(ids, want);
    // What follows the pages is an event, not part of the roster.
    let late = client
        .wait_for(LIMIT, |e| {
            matches!(e, ServerMessage::ParticipantJoined { .. })
        })
        .await
        .unwrap();
    assert!(
        matches!(late, ServerMessage::ParticipantJoined { participant } if participant.participant_id == "PA_late")
    );
}

#[tokio::test]
async fn a_client_publishes_subscribes_and_leaves() {
    let mut server = FakeServer::start().await;
    let mut client = server.connect("good").await.unwrap();
    assert_eq!(client.participant_id(), PARTICIPANT);
    assert_eq!(client.room(), "room-1");

    // Publish: announce, accept, offer/answer, then media reaches the server side.
    let mic = client.publish(TrackSource::Microphone).await.unwrap();
    assert_eq!(mic.track_id, "TR_1");
    server
        .wait_stats(|s| inbound_packets(s, "TR_1") >= 10)
        .await;

    // The server offers its own camera; the client maps it by stream id and asks for a keyframe.
    server.publish_camera.send(()).await.unwrap();
    let published = client
        .wait_for(LIMIT, |e| matches!(e, ServerMessage::TrackPublished { .. }))
        .await
        .unwrap();
    assert!(
        matches!(published, ServerMessage::TrackPublished { track } if track.track_id == SERVER_TRACK)
    );
    wait_client(&client, |s| {
        inbound_packets(s, SERVER_TRACK) >= 10 && s.inbound[SERVER_TRACK].keyframes >= 1
    })
    .await;
    client.request_keyframe(SERVER_TRACK).await.unwrap();
    server
        .wait_stats(|s| s.outbound[SERVER_TRACK].plis_received >= 1)
        .await;
    assert!(matches!(
        client.request_keyframe("TR_nope").await,
        Err(ClientError::UnknownTrack(_))
    ));

    // Mute is announced and answered with an event.
    client.mute(&mic.track_id, true).await.unwrap();
    let muted = client
        .wait_for(LIMIT, |e| matches!(e, ServerMessage::TrackMuted { .. }))
        .await
        .unwrap();
    assert!(matches!(
        muted,
        ServerMessage::TrackMuted { muted: true, .. }
    ));

    assert_eq!(client.leave().await.unwrap(), LeaveReason::ClientLeft);
    server
        .next_seen(|s| matches!(s, Seen::Message(ClientMessage::Leave {})))
        .await;
}

#[tokio::test]
async fn kill_keeps_signaling_open_and_stops_media() {
    let mut server = FakeServer::start().await;
    let client = server.connect("good").await.unwrap();
    client.publish(TrackSource::Camera).await.unwrap();
    server
        .wait_stats(|s| inbound_packets(s, "TR_1") >= 10)
        .await;

    client.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_kill = inbound_packets(&server.stats.borrow(), "TR_1");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(inbound_packets(&server.stats.borrow(), "TR_1"), after_kill);
    // The socket is still open: nothing but what was sent before the kill.
    while let Ok(seen) = server.seen.try_recv() {
        assert!(!matches!(seen, Seen::Closed), "signaling closed after kill");
    }
}

#[tokio::test]
async fn drop_signaling_closes_the_socket_without_leave() {
    let mut server = FakeServer::start().await;
    let client = server.connect("good").await.unwrap();
    client.drop_signaling();
    match server
        .next_seen(|s| matches!(s, Seen::Closed | Seen::Message(ClientMessage::Leave {})))
        .await
    {
        Seen::Closed => {}
        other => panic!("expected a close without leave, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_instead_of_joined_is_a_refusal() {
    let server = FakeServer::start().await;
    match server.connect("refused").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "unauthorized"),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a client"),
    }
}

#[tokio::test]
async fn a_refused_upgrade_is_a_refusal() {
    let server = FakeServer::start().await;
    match server.connect("http-refused").await {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, "http_401");
            assert_eq!(message, "bad token");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a client"),
    }
}
