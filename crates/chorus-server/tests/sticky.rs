//! A removal that sticks and hold, through a whole server: the control API removes with
//! a message the client reads in `left`, the old token is refused with `removed`
//! (counted), a token minted after the removal lets the identity back in, also after
//! the room closed and opened again; the control API's hold shows `on_hold` to the
//! others.

mod common;

use std::time::Duration;

use chorus_client::{LeaveReason, ServerMessage};
use chorus_protocol::ParticipantState;
use common::{LIMIT, TestServer, contains, left, refusal_code, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_identity_needs_a_token_issued_after_the_removal() {
    let server = TestServer::start().await;
    let old_token = server.token("sticky", "alice");
    let mut alice = server.join("sticky", "alice").await;
    let mut bob = server.join("sticky", "bob").await;

    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/rooms/sticky/participants/alice/hold",
            Some(serde_json::json!({ "held": true })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "on_hold");
    let alice_id = alice.id();
    bob.until("alice on hold", |log| {
        contains(log, |m| {
            matches!(m, ServerMessage::ParticipantState { participant_id, state: ParticipantState::OnHold, .. }
                if *participant_id == alice_id)
        })
    })
    .await;

    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            "/v1/rooms/sticky/participants/alice?message=see%20you%20tomorrow",
            None,
        )
        .await;
    assert_eq!(status, 204);
    alice
        .expect("left with the message", |m| {
            matches!(m, ServerMessage::Left { reason: LeaveReason::RemovedByServer, message: Some(t) }
                if t == "see you tomorrow")
        })
        .await;
    assert!(contains(alice.log(), left(LeaveReason::RemovedByServer)));

    // The token she had is refused, clearly, and counted.
    let refused = server.try_connect(old_token).await;
    assert_eq!(refusal_code(refused), "removed");
    let metrics = reqwest::get(format!("{}/metrics", server.http_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("chorus_signaling_errors_total{code=\"removed\"} 1"),
        "{metrics}"
    );
    // Tokens carry whole seconds: one minted in a later second lets her back in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let back = server.try_connect(server.token("sticky", "alice")).await;
    assert!(back.is_ok(), "{:?}", back.err());
    server.stop().await;
}

/// The room closes once empty (`rooms.empty_timeout_secs`) and the next join opens a new
/// one: the server, not the room, kept the removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_outlives_the_room() {
    let mut config = test_config();
    config.rooms.empty_timeout_secs = 1;
    let server = TestServer::start_with(config).await;
    let old_token = server.token("again", "alice");
    let _alice = server.join("again", "alice").await;
    let bob = server.join("again", "bob").await;
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            "/v1/rooms/again/participants/alice",
            None,
        )
        .await;
    assert_eq!(status, 204);
    bob.leave().await.unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let (status, _) = server
            .call(reqwest::Method::GET, "/v1/rooms/again", None)
            .await;
        if status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Her old token opens a new room of that name, which refuses it all the same.
    let refused = server.try_connect(old_token).await;
    assert_eq!(refusal_code(refused), "removed");
    let metrics = reqwest::get(format!("{}/metrics", server.http_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("chorus_removal_records 1"), "{metrics}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let back = server.try_connect(server.token("again", "alice")).await;
    assert!(back.is_ok(), "{:?}", back.err());
    server.stop().await;
}
