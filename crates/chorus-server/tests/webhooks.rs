//! Webhooks end to end: a real HTTP receiver gets a room's events, signed with the API
//! secret, in the order they happened.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chorus_protocol::TrackSource;
use chorus_protocol::webhook::{WebhookBody, WebhookEvent};
use chorus_server::config::DEV_API_SECRET;
use chorus_webhooks::{SIGNATURE_HEADER, verify};
use common::{TestServer, test_config};

type Got = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(State(got): State<Got>, headers: HeaderMap, body: String) {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    got.lock().unwrap().push((signature, body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_life_reaches_the_webhook_signed_and_in_order() {
    let got: Got = Arc::default();
    let app = Router::new()
        .route("/events", post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut config = test_config();
    config.webhooks.urls = vec![url];
    let server = TestServer::start_with(config).await;
    let mut alice = server.join("standup", "alice").await;
    alice.publish_ok(TrackSource::Microphone).await;
    alice.leave().await.unwrap();
    let (status, _) = server
        .call(reqwest::Method::DELETE, "/v1/rooms/standup", None)
        .await;
    assert_eq!(status, 204);

    let mut events = Vec::new();
    for _ in 0..1000 {
        events = got.lock().unwrap().clone();
        if events.iter().any(|(_, b)| b.contains("room_finished")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut names = Vec::new();
    for (signature, body) in &events {
        assert!(
            verify(DEV_API_SECRET, signature, body),
            "{signature} {body}"
        );
        let body: WebhookBody = serde_json::from_str(body).unwrap();
        if let WebhookEvent::ParticipantJoined { room, participant } = &body.event {
            assert_eq!(
                (room.as_str(), participant.identity.as_str()),
                ("standup", "alice")
            );
        }
        names.push(body.event.name());
    }
    assert_eq!(
        names,
        [
            "room_started",
            "participant_joined",
            "track_published",
            "track_unpublished",
            "participant_left",
            "room_finished"
        ]
    );
    server.stop().await;
}
