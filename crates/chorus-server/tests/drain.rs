//! Draining for a rolling restart (`POST /v1/drain`; SIGTERM does the same through
//! `ServerControl::drain`): no new rooms or participants, readiness turns 503, everyone is
//! told, and the server stops by itself when the last participant leaves, or at the
//! deadline with `server_shutdown` for whoever is still in.

mod common;

use std::time::{Duration, Instant};

use chorus_client::ClientError;
use chorus_protocol::LeaveReason;
use chorus_protocol::signal::ServerMessage;
use common::binary::Binary;
use common::{TestServer, test_config};

async fn ready(server: &TestServer) -> u16 {
    reqwest::get(format!("{}/readyz", server.http_url))
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn drain_request(server: &TestServer, body: &str) -> reqwest::RequestBuilder {
    server
        .control(reqwest::Method::POST, "/v1/drain")
        .header("content-type", "application/json")
        .body(body.to_owned())
}

/// Who is told what, what is refused, and that the last one leaving ends it early.
#[tokio::test]
async fn a_drain_refuses_newcomers_tells_everyone_and_ends_when_the_last_leaves() {
    let mut config = test_config();
    config.rooms.drain_timeout_secs = 600;
    let mut server = TestServer::start_with(config).await;
    let mut alice = server.join("standup", "alice").await;
    assert_eq!(ready(&server).await, 200);

    let bad = drain_request(&server, r#"{"timeout_secs": 100000}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "a drain longer than a day is refused");
    assert_eq!(ready(&server).await, 200, "and nothing started");

    let started = drain_request(&server, "").send().await.unwrap();
    assert_eq!(started.status(), 202);
    let status: serde_json::Value = started.json().await.unwrap();
    let window =
        status["deadline_unix_ms"].as_u64().unwrap() - status["since_unix_ms"].as_u64().unwrap();
    assert_eq!(window, 600_000, "the configured timeout");
    let again: serde_json::Value = drain_request(&server, r#"{"timeout_secs": 1}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, status, "a drain under way is not changed");

    alice
        .expect(
            "draining",
            |m| matches!(m, ServerMessage::Draining { within_ms } if *within_ms == 600_000),
        )
        .await;
    assert_eq!(ready(&server).await, 503);
    match server.try_connect(server.token("standup", "bob")).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "server_draining"),
        Err(e) => panic!("bob: {e}"),
        Ok(_) => panic!("bob joined a draining server"),
    }
    let room = server
        .control(reqwest::Method::POST, "/v1/rooms")
        .json(&serde_json::json!({"name": "later"}))
        .send()
        .await
        .unwrap();
    assert_eq!(room.status(), 503);
    let body: serde_json::Value = room.json().await.unwrap();
    assert_eq!(body["error"]["code"], "server_draining");

    // Alice leaves: the server stops long before its ten minutes are up.
    let left = Instant::now();
    alice.leave().await.unwrap();
    assert!(
        server.stops_by_itself(Duration::from_secs(20)).await,
        "the server stops once everyone has left"
    );
    assert!(left.elapsed() < Duration::from_secs(20));
}

/// Whoever stays past the deadline leaves with `server_shutdown`, and the server stops.
#[tokio::test]
async fn the_drain_deadline_stops_the_server_with_participants_in() {
    let mut server = TestServer::start_with(test_config()).await;
    let mut alice = server.join("standup", "alice").await;
    let started = drain_request(&server, r#"{"timeout_secs": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    alice
        .expect("left", |m| {
            matches!(
                m,
                ServerMessage::Left {
                    reason: LeaveReason::ServerShutdown,
                    ..
                }
            )
        })
        .await;
    assert!(
        server.stops_by_itself(Duration::from_secs(20)).await,
        "the server stops at the deadline"
    );
}

/// The binary itself: SIGTERM drains (the participant is told, readiness turns 503), and
/// the process exits by itself, cleanly, once the participant has left.
#[tokio::test]
async fn sigterm_drains_the_binary_until_the_last_participant_leaves() {
    let server = Binary::start(&[("CHORUS_DRAIN_TIMEOUT_SECS", "600")], false).await;
    let mut alice = server.join("standup", "alice").await;
    let readyz = format!("{}/readyz", server.url);
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);

    server.signal("TERM");
    alice
        .wait_for(
            Duration::from_secs(10),
            |m| matches!(m, ServerMessage::Draining { within_ms } if *within_ms == 600_000),
        )
        .await
        .expect("told of the drain");
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 503);
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "still serving alice while draining"
    );

    alice.leave().await.unwrap();
    let status = server.exited(Duration::from_secs(20)).await;
    let status = status.expect("the server exits once alice has left");
    assert!(status.success(), "{status}");
}
