//! The signaling socket end to end: a real HTTP server on an ephemeral port,
//! a WebSocket client, and a fake room the test plays.

use std::net::SocketAddr;
use std::time::Duration;

use chorus_protocol::Grants;
use chorus_protocol::signal::{ClientFrame, ClientMessage, ServerMessage};
use chorus_protocol::token::AccessClaims;
use chorus_protocol::{LeaveReason, TrackSource};
use chorus_room_api::JoinError;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;
use crate::testing::{self, FakeRooms, FakeSession, LinkEvent};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

fn quick_limits() -> Limits {
    Limits {
        join_timeout: Duration::from_millis(300),
        admit_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(2),
        message_burst: 1000,
        messages_per_second: 1000,
    }
}

async fn serve(rooms: FakeRooms) -> SocketAddr {
    serve_with(rooms, quick_limits()).await
}

async fn serve_with(rooms: FakeRooms, limits: Limits) -> SocketAddr {
    let state = testing::state(rooms).with_limits(limits);
    let app = crate::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn claims(room: &str) -> AccessClaims {
    let now = unix_now();
    AccessClaims {
        iss: "devkey".into(),
        sub: "alice".into(),
        name: "Alice".into(),
        room: room.into(),
        exp: now + 600,
        nbf: now,
        iat: None,
        grants: Grants::subscribe_only(),
    }
}

fn token(claims: &AccessClaims) -> String {
    testing::keys().sign(claims).unwrap()
}

async fn connect(addr: SocketAddr, query: &str) -> Client {
    let url = format!("ws://{addr}/v1/rtc?{query}");
    let (client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    client
}

async fn send(client: &mut Client, msg: &ClientMessage) {
    let json = serde_json::to_string(msg).unwrap();
    client.send(WsMessage::text(json)).await.unwrap();
}

/// The next frame: a server message, or the close code.
// A test's frames are few and short-lived: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
enum Frame {
    Msg(ServerMessage),
    Close(u16),
    /// The connection ended without a close frame.
    Dropped,
}

async fn next(client: &mut Client) -> Frame {
    loop {
        let msg = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a frame in time");
        match msg {
            Some(Ok(WsMessage::Text(text))) => {
                return Frame::Msg(serde_json::from_str(&text).unwrap());
            }
            Some(Ok(WsMessage::Close(frame))) => {
                // Sends the queued close reply, so the server need not linger.
                let _ = client.flush().await;
                return Frame::Close(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Dropped,
        }
    }
}

async fn expect_error(client: &mut Client, code: &str) {
    match next(client).await {
        Frame::Msg(ServerMessage::Error { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected error {code}, got {other:?}"),
    }
}

async fn expect_refusal(client: &mut Client, code: &str, close: u16) {
    expect_error(client, code).await;
    assert_eq!(next(client).await, Frame::Close(close));
}

async fn joined_room() -> (Client, FakeSession) {
    joined_room_with(quick_limits()).await
}

async fn joined_room_with(limits: Limits) -> (Client, FakeSession) {
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let addr = serve_with(
        FakeRooms {
            joined: Some(joined_tx),
            ..FakeRooms::default()
        },
        limits,
    )
    .await;
    let token = token(&claims("standup"));
    let mut client = connect(addr, &format!("access_token={token}&room=standup")).await;
    send(&mut client, &ClientMessage::Join {}).await;
    let session = tokio::time::timeout(WAIT, joined_rx.recv())
        .await
        .unwrap()
        .unwrap();
    (client, session)
}

async fn next_link_event(session: &mut FakeSession) -> Option<LinkEvent> {
    tokio::time::timeout(WAIT, session.link.recv())
        .await
        .expect("a link event in time")
}

#[tokio::test]
async fn token_refusals_close_with_4401() {
    let addr = serve(FakeRooms::default()).await;
    let expired = AccessClaims {
        exp: unix_now() - 1,
        ..claims("standup")
    };
    let early = AccessClaims {
        nbf: unix_now() + 3600,
        ..claims("standup")
    };
    let stranger = AccessClaims {
        iss: "nokey".into(),
        ..claims("standup")
    };
    let cases = [
        (String::new(), "token_missing"),
        ("access_token=".to_owned(), "token_missing"),
        ("access_token=garbage".to_owned(), "token_malformed"),
        (format!("access_token={}", token(&expired)), "token_expired"),
        (
            format!("access_token={}", token(&early)),
            "token_not_yet_valid",
        ),
        (
            format!(
                "access_token={}",
                testing::keys()
                    .with("nokey", crate::ApiSecret::new("x"))
                    .sign(&stranger)
                    .unwrap()
            ),
            "token_unknown_key",
        ),
        (
            format!("access_token={}x", token(&claims("standup"))),
            "token_invalid_signature",
        ),
        (
            format!("access_token={}&room=other", token(&claims("standup"))),
            "token_wrong_room",
        ),
    ];
    for (query, code) in cases {
        let mut client = connect(addr, &query).await;
        expect_refusal(&mut client, code, close_code::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn no_join_in_time_closes_with_4408() {
    let addr = serve(FakeRooms::default()).await;
    let token = token(&claims("standup"));
    let mut client = connect(addr, &format!("access_token={token}")).await;
    // Before join: pings are answered, other messages are errors, the clock runs.
    send(&mut client, &ClientMessage::Ping { ts: 7 }).await;
    assert_eq!(
        next(&mut client).await,
        Frame::Msg(ServerMessage::Pong { ts: 7 })
    );
    send(&mut client, &ClientMessage::Leave {}).await;
    expect_error(&mut client, "not_joined").await;
    expect_refusal(&mut client, "join_timeout", close_code::JOIN_TIMEOUT).await;
}

#[tokio::test]
async fn join_refused_by_the_room_closes_with_4403() {
    let addr = serve(FakeRooms {
        join_error: Some(JoinError::RoomFull(350)),
        ..FakeRooms::default()
    })
    .await;
    let token = token(&claims("standup"));
    let mut client = connect(addr, &format!("access_token={token}")).await;
    send(&mut client, &ClientMessage::Join {}).await;
    expect_refusal(&mut client, "room_full", close_code::JOIN_REFUSED).await;
}

#[tokio::test]
async fn session_carries_frames_both_ways_until_left() {
    let (mut client, mut session) = joined_room().await;
    assert_eq!(session.room, "standup");
    assert_eq!(session.who.identity, "alice");
    assert_eq!(session.who.name, "Alice");
    assert_eq!(session.who.grants, Grants::subscribe_only());

    let pong = ServerMessage::Pong { ts: 1 };
    session.events.send(pong.clone()).await.unwrap();
    assert_eq!(next(&mut client).await, Frame::Msg(pong));

    // A malformed frame is answered and the session goes on.
    client.send(WsMessage::text("{\"type\":")).await.unwrap();
    expect_error(&mut client, "bad_message").await;
    client
        .send(WsMessage::text("{\"type\":\"dance\"}"))
        .await
        .unwrap();
    expect_error(&mut client, "bad_message").await;
    client.send(WsMessage::binary(vec![1, 2, 3])).await.unwrap();
    expect_error(&mut client, "bad_message").await;

    let publish = ClientMessage::Publish {
        cid: "mic".into(),
        source: TrackSource::Microphone,
        muted: false,
    };
    send(&mut client, &publish).await;
    assert_eq!(
        next_link_event(&mut session).await,
        Some(LinkEvent::Sent(publish.into()))
    );

    send(&mut client, &ClientMessage::Leave {}).await;
    assert_eq!(
        next_link_event(&mut session).await,
        Some(LinkEvent::Sent(ClientMessage::Leave {}.into()))
    );
    let left = ServerMessage::Left {
        reason: LeaveReason::ClientLeft,
        message: None,
    };
    session.events.send(left.clone()).await.unwrap();
    assert_eq!(next(&mut client).await, Frame::Msg(left));
    assert_eq!(next(&mut client).await, Frame::Close(close_code::NORMAL));
    // The room already knows: no signaling_closed after a leave.
    assert_eq!(next_link_event(&mut session).await, None);
}

#[tokio::test]
async fn a_request_id_reaches_the_room_with_its_message() {
    let (mut client, mut session) = joined_room().await;
    client
        .send(WsMessage::text(
            r#"{"type":"mute","track_id":"TR_1","muted":true,"request_id":"r-7"}"#,
        ))
        .await
        .unwrap();
    let want = ClientFrame {
        request_id: Some("r-7".into()),
        msg: ClientMessage::Mute {
            track_id: "TR_1".into(),
            muted: true,
        },
    };
    assert_eq!(
        next_link_event(&mut session).await,
        Some(LinkEvent::Sent(want))
    );
}

#[tokio::test]
async fn an_error_from_the_link_echoes_the_request_id() {
    let (mut client, session) = joined_room().await;
    // The room's end of the link is gone: sending fails, the events stream stays.
    drop(session.link);
    client
        .send(WsMessage::text(r#"{"type":"ping","request_id":"p-1"}"#))
        .await
        .unwrap();
    match next(&mut client).await {
        Frame::Msg(ServerMessage::Error {
            code, request_id, ..
        }) => {
            assert_eq!(code, "room_closed");
            assert_eq!(request_id.as_deref(), Some("p-1"));
        }
        other => panic!("expected an error, got {other:?}"),
    }
    drop(session.events);
}

#[tokio::test]
async fn removed_by_the_room_closes_normally() {
    let (mut client, mut session) = joined_room().await;
    let left = ServerMessage::Left {
        reason: LeaveReason::RemovedByServer,
        message: Some("bye".into()),
    };
    session.events.send(left.clone()).await.unwrap();
    assert_eq!(next(&mut client).await, Frame::Msg(left));
    assert_eq!(next(&mut client).await, Frame::Close(close_code::NORMAL));
    assert_eq!(next_link_event(&mut session).await, None);
}

#[tokio::test]
async fn socket_closed_without_leave_tells_the_room() {
    let (mut client, mut session) = joined_room().await;
    client.close(None).await.unwrap();
    assert_eq!(
        next_link_event(&mut session).await,
        Some(LinkEvent::Closed(LeaveReason::SignalingClosed))
    );
}

#[tokio::test]
async fn socket_dropped_without_leave_tells_the_room() {
    let (client, mut session) = joined_room().await;
    drop(client);
    assert_eq!(
        next_link_event(&mut session).await,
        Some(LinkEvent::Closed(LeaveReason::SignalingClosed))
    );
}

#[tokio::test]
async fn room_vanishing_is_room_closed_4500() {
    let (mut client, session) = joined_room().await;
    drop(session.events);
    expect_refusal(&mut client, "room_closed", close_code::ROOM_FAILED).await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let (mut client, mut session) = joined_room().await;
    let huge = format!(
        "{{\"type\":\"offer\",\"target\":\"publisher\",\"sdp\":\"{}\"}}",
        "a".repeat(MAX_CLIENT_FRAME)
    );
    client.send(WsMessage::text(huge)).await.unwrap();
    expect_refusal(&mut client, "message_too_large", close_code::TOO_BIG).await;
    assert_eq!(
        next_link_event(&mut session).await,
        Some(LinkEvent::Closed(LeaveReason::SignalingClosed))
    );
}

#[tokio::test]
async fn plain_http_get_is_a_json_error() {
    let addr = serve(FakeRooms::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /v1/rtc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 4"), "{response}");
    assert!(
        response.contains("\"code\":\"invalid_request\""),
        "{response}"
    );
}

#[tokio::test]
async fn a_flooding_client_is_rate_limited_and_stays_connected() {
    // No refill: exactly `message_burst` messages reach the room, whatever the clock does.
    let limits = Limits {
        message_burst: 5,
        messages_per_second: 0,
        ..quick_limits()
    };
    let (mut client, mut session) = joined_room_with(limits).await;
    for ts in 0..8 {
        send(&mut client, &ClientMessage::Ping { ts }).await;
    }
    for ts in 0..5 {
        assert_eq!(
            next_link_event(&mut session).await,
            Some(LinkEvent::Sent(ClientMessage::Ping { ts }.into()))
        );
    }
    for _ in 5..8 {
        expect_error(&mut client, "rate_limited").await;
    }
    // The room saw nothing more, and the session is still up.
    let pong = ServerMessage::Pong { ts: 9 };
    session.events.send(pong.clone()).await.unwrap();
    assert_eq!(next(&mut client).await, Frame::Msg(pong));
}

/// With allowed origins configured, a page of another origin is refused before the
/// upgrade; a listed origin and a client without `Origin` (a native app) get in.
#[tokio::test]
async fn only_allowed_origins_open_the_socket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let config = crate::ApiConfig {
        allowed_origins: vec!["https://app.example.com".into()],
        ..testing::config()
    };
    let state = ApiState::with_rooms(
        std::sync::Arc::new(FakeRooms::default()),
        config,
        tokio_util::sync::CancellationToken::new(),
    )
    .with_limits(quick_limits());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = crate::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let query = format!("access_token={}", token(&claims("demo")));
    let open = async |origin: Option<&str>| {
        let mut req = format!("ws://{addr}/v1/rtc?{query}")
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            req.headers_mut().insert("origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(open(Some("https://evil.example.net")).await, 403);
    assert_eq!(open(Some("https://app.example.com")).await, 101);
    assert_eq!(open(None).await, 101);
}
