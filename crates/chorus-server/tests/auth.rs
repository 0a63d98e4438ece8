//! Who may connect, and what they may publish.

mod common;

use chorus_api::token::{ApiSecret, Keys};
use chorus_client::{ServerMessage, TrackSource};
use chorus_protocol::Grants;
use chorus_protocol::token::AccessClaims;
use chorus_server::config::DEV_API_KEY;
use common::{FLOWING, LIMIT, TestServer, error_code, refusal_code, unix_now};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn claims(iss: &str, room: &str, exp: u64, nbf: u64) -> AccessClaims {
    AccessClaims {
        iss: iss.to_owned(),
        sub: "mallory".to_owned(),
        name: String::new(),
        room: room.to_owned(),
        exp,
        nbf,
        iat: None,
        grants: Grants::default(),
    }
}

/// Opens the signaling socket with `query` and returns the error code of the one
/// frame that comes, after checking that the socket then closes with 4401.
async fn refusal(server: &TestServer, query: &str) -> String {
    let url = format!("{}/v1/rtc{query}", server.ws_url);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("the upgrade completes, so the client can read why");
    let frame = tokio::time::timeout(LIMIT, ws.next())
        .await
        .expect("a frame in time");
    let code = match frame {
        Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
            Ok(ServerMessage::Error { code, .. }) => code,
            other => panic!("{query}: expected an error frame, got {other:?}"),
        },
        other => panic!("{query}: expected an error frame, got {other:?}"),
    };
    let close = tokio::time::timeout(LIMIT, ws.next())
        .await
        .expect("a close in time");
    match close {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::from(4401), "{query}");
        }
        other => panic!("{query}: expected close 4401, got {other:?}"),
    }
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_each_with_its_code() {
    let server = TestServer::start().await;
    let now = unix_now();
    let valid = server.token("lobby", "mallory");
    let expired = server
        .keys
        .sign(&claims(DEV_API_KEY, "lobby", now - 60, now - 3600))
        .unwrap();
    let not_yet_valid = server
        .keys
        .sign(&claims(DEV_API_KEY, "lobby", now + 7200, now + 3600))
        .unwrap();
    let forged = Keys::new(
        DEV_API_KEY,
        ApiSecret::new("not-the-secret-but-32-bytes-long!!"),
    )
    .sign(&claims(DEV_API_KEY, "lobby", now + 600, now))
    .unwrap();
    let unknown_key = Keys::new(
        "nokey",
        ApiSecret::new("some-other-secret-0123456789abcdef"),
    )
    .sign(&claims("nokey", "lobby", now + 600, now))
    .unwrap();

    let cases = [
        (
            "expired",
            format!("?access_token={expired}"),
            "token_expired",
        ),
        (
            "not yet valid",
            format!("?access_token={not_yet_valid}"),
            "token_not_yet_valid",
        ),
        (
            "forged (wrong secret)",
            format!("?access_token={forged}"),
            "token_invalid_signature",
        ),
        (
            "wrong room",
            format!("?access_token={valid}&room=elsewhere"),
            "token_wrong_room",
        ),
        ("no token at all", String::new(), "token_missing"),
        ("empty token", "?access_token=".to_owned(), "token_missing"),
        (
            "unknown key",
            format!("?access_token={unknown_key}"),
            "token_unknown_key",
        ),
        (
            "not a JWT",
            "?access_token=not-a-jwt".to_owned(),
            "token_malformed",
        ),
    ];
    for (name, query, want) in &cases {
        assert_eq!(refusal(&server, query).await, *want, "{name}");
    }

    // The Rust client reports the same code.
    assert_eq!(
        refusal_code(server.try_connect(expired).await),
        "token_expired"
    );
    // Refused before any room work: no room came into being.
    let (status, body) = server.call(reqwest::Method::GET, "/v1/rooms", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["rooms"], serde_json::json!([]), "{body}");

    // The same valid token with the right room (or none) is admitted.
    let url = format!("{}/v1/rtc?access_token={valid}&room=lobby", server.ws_url);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(r#"{"type":"join"}"#)).await.unwrap();
    let joined = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    let Some(Ok(Message::Text(text))) = joined else {
        panic!("expected joined, got {joined:?}")
    };
    assert!(
        matches!(serde_json::from_str(&text), Ok(ServerMessage::Joined { room, .. }) if room == "lobby"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_the_grant_for_the_source() {
    let server = TestServer::start().await;
    let viewer = server
        .join_with("grants", "viewer", Grants::subscribe_only())
        .await;
    let mic_only = Grants {
        can_publish_sources: vec![TrackSource::Microphone],
        ..Grants::default()
    };
    let mut speaker = server.join_with("grants", "speaker", mic_only).await;

    // A subscribe-only participant may publish nothing.
    for source in [TrackSource::Microphone, TrackSource::Camera] {
        let refused = viewer.publish(source).await;
        assert_eq!(refusal_code(refused), "permission_denied", "{source:?}");
    }
    // A microphone-only participant may publish its microphone, not its camera.
    let mic = speaker.publish_ok(TrackSource::Microphone).await;
    let refused = speaker.publish(TrackSource::Camera).await;
    assert_eq!(refusal_code(refused), "permission_denied");
    speaker
        .expect("permission_denied event", error_code("permission_denied"))
        .await;

    // The viewer still receives; the refused camera never shows up anywhere.
    viewer.wait_receiving(&[&mic], FLOWING).await;
    assert_eq!(viewer.stats().inbound.len(), 1, "{:#?}", viewer.stats());
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/v1/rooms/grants/participants/speaker",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["tracks"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["tracks"][0]["source"], "microphone", "{body}");
    server.stop().await;
}
