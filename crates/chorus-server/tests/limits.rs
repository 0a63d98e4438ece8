//! Server-wide limits, through the real server.

mod common;

use chorus_client::ClientError;
use common::{TestServer, test_config};

/// Joins beyond the server's rate are refused with a code that says to try again, and the
/// refused client gets in once the rate allows.
#[tokio::test]
async fn joins_beyond_the_server_rate_are_refused() {
    let mut config = test_config();
    config.rooms.max_joins_per_second = 1;
    let server = TestServer::start_with(config).await;
    let _alice = server.join("one", "alice").await;
    // Another room: the server's rate, not the room's.
    match server.try_connect(server.token("two", "bob")).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "join_rate_limited"),
        Err(e) => panic!("bob: {e}"),
        Ok(_) => panic!("bob joined past the server's join rate"),
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let _bob = server.join("two", "bob").await;
    server.stop().await;
}
