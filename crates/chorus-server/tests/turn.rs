//! TURN credentials in `joined`: a server with `[turn]` hands each client coturn's URLs
//! with a TURN REST credential made for its identity from the configured secret; a
//! server without hands out none.

mod common;

use std::time::Duration;

use chorus_api::turn::rest_credential;
use chorus_protocol::signal::ClientMessage;
use common::{LIMIT, TestServer, test_config, unix_now};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "coturn-static-auth-secret-for-this-test";
const TTL: Duration = Duration::from_secs(3600);

/// Joins `room` as `identity` over a raw WebSocket and returns `joined` as JSON, as a
/// browser sees it.
async fn joined(server: &TestServer, room: &str, identity: &str) -> serde_json::Value {
    let url = format!(
        "{}/v1/rtc?access_token={}",
        server.ws_url,
        server.token(room, identity)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let join = serde_json::to_string(&ClientMessage::Join {}).unwrap();
    ws.send(Message::text(join)).await.unwrap();
    loop {
        let frame = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("a frame in time");
        let Some(Ok(Message::Text(text))) = frame else {
            panic!("{identity}: the socket ended before joined: {frame:?}");
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "joined" {
            return value;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_carries_turn_credentials_for_the_identity() {
    let mut config = test_config();
    config.turn.urls = vec![
        "turn:127.0.0.1:3478?transport=udp".into(),
        "turns:turn.example.com:443?transport=tcp".into(),
    ];
    config.turn.secret = SECRET.into();
    config.turn.credential_ttl_secs = TTL.as_secs();
    let server = TestServer::start_with(config).await;

    for identity in ["alice", "bob"] {
        let before = unix_now();
        let joined = joined(&server, "turn", identity).await;
        let after = unix_now();
        let servers = joined["ice_servers"]
            .as_array()
            .unwrap_or_else(|| panic!("no ice_servers in {joined}"));
        assert_eq!(servers.len(), 1, "{joined}");
        let server_entry = &servers[0];
        assert_eq!(
            server_entry["urls"],
            serde_json::json!([
                "turn:127.0.0.1:3478?transport=udp",
                "turns:turn.example.com:443?transport=tcp"
            ])
        );
        let username = server_entry["username"].as_str().unwrap();
        let (expiry, who) = username.split_once(':').unwrap();
        assert_eq!(who, identity);
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            (before + TTL.as_secs()..=after + TTL.as_secs()).contains(&expiry),
            "expiry {expiry} is not the join time ({before}..={after}) plus {TTL:?}"
        );
        // The algorithm itself is checked against openssl-made vectors in chorus-api.
        let want = rest_credential(SECRET, identity, expiry);
        assert_eq!(server_entry["credential"], want.password.as_str());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_has_no_ice_servers_without_turn() {
    let server = TestServer::start().await;
    let joined = joined(&server, "no-turn", "alice").await;
    assert_eq!(joined["room"], "no-turn");
    assert!(joined.get("ice_servers").is_none(), "{joined}");
    server.stop().await;
}
