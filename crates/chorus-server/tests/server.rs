//! A whole server in-process on ephemeral ports: control API, signaling, shutdown.

use std::time::Duration;

use chorus_protocol::LeaveReason;
use chorus_protocol::signal::{ClientMessage, ServerMessage};
use chorus_server::{Config, RunningServer, run};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> (RunningServer, CancellationToken) {
    let mut config = Config::default();
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config.media.bind = "127.0.0.1:0".parse().unwrap();
    config.media.workers = 1;
    let shutdown = CancellationToken::new();
    let server = run(config, shutdown.clone()).await.unwrap();
    (server, shutdown)
}

fn control(server: &RunningServer, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", server.public_url))
        .basic_auth("devkey", Some(chorus_server::config::DEV_API_SECRET))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_and_signaling_until_shutdown() {
    let (server, shutdown) = start().await;
    assert_ne!(server.http_addr.port(), 0);

    // The document is public; the API is not.
    let doc = reqwest::get(format!("{}/v1/openapi.json", server.public_url))
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    let anonymous = reqwest::get(format!("{}/v1/rooms", server.public_url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let created = control(&server, reqwest::Method::POST, "/v1/rooms")
        .json(&serde_json::json!({"name": "standup", "max_participants": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let again = control(&server, reqwest::Method::POST, "/v1/rooms")
        .json(&serde_json::json!({"name": "standup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "room_exists");

    let token: serde_json::Value = control(&server, reqwest::Method::POST, "/v1/tokens")
        .json(&serde_json::json!({"room": "standup", "identity": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}?access_token={}",
        token["url"].as_str().unwrap(),
        token["token"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let join = serde_json::to_string(&ClientMessage::Join {}).unwrap();
    ws.send(Message::text(join)).await.unwrap();
    let next = |frame: Option<Result<Message, _>>| match frame {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<ServerMessage>(&text).ok(),
        _ => None,
    };
    let joined = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert!(
        matches!(next(joined), Some(ServerMessage::Joined { ref room, .. }) if room == "standup")
    );

    let participants: serde_json::Value = control(
        &server,
        reqwest::Method::GET,
        "/v1/rooms/standup/participants",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(participants["participants"][0]["identity"], "alice");

    // Shutdown: the client is told why, the socket closes, the server stops in time.
    shutdown.cancel();
    let left = loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        match next(frame) {
            Some(ServerMessage::Left { reason, .. }) => break reason,
            Some(_) => continue,
            None => panic!("socket ended without left"),
        }
    };
    assert_eq!(left, LeaveReason::ServerShutdown);
    tokio::time::timeout(
        chorus_server::SHUTDOWN_CAP + Duration::from_secs(2),
        server.stopped(),
    )
    .await
    .expect("the server stops within the cap");
}
