//! `GET /metrics` on a real server: the rooms' reading, the signaling sessions, the join
//! latency and the room turns, after a participant joins and leaves.

mod common;

use common::TestServer;

async fn scrape(server: &TestServer) -> String {
    let response = reqwest::get(format!("{}/metrics", server.http_url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the sample named exactly `name` (with its labels, if any).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_follow_a_participant_in_and_out() {
    let server = TestServer::start().await;
    let before = scrape(&server).await;
    assert_eq!(sample(&before, "chorus_participants"), Some(0.0));
    assert_eq!(sample(&before, "chorus_signaling_sessions"), Some(0.0));

    let alice = server.join("standup", "alice").await;
    let during = scrape(&server).await;
    assert_eq!(sample(&during, "chorus_rooms"), Some(1.0), "{during}");
    assert_eq!(sample(&during, "chorus_participants"), Some(1.0));
    assert_eq!(sample(&during, "chorus_signaling_sessions"), Some(1.0));
    assert_eq!(
        sample(&during, "chorus_join_duration_seconds_count"),
        Some(1.0)
    );
    assert!(sample(&during, "chorus_room_turn_seconds_count").unwrap() >= 1.0);
    assert!(sample(&during, "chorus_media_received_datagrams_total").is_some());

    alice.leave().await.unwrap();
    // The session ends once `left` is through.
    let mut after = scrape(&server).await;
    for _ in 0..100 {
        if sample(&after, "chorus_signaling_sessions") == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        after = scrape(&server).await;
    }
    assert_eq!(sample(&after, "chorus_participants"), Some(0.0));
    assert_eq!(sample(&after, "chorus_signaling_sessions"), Some(0.0));
    let route = "chorus_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}";
    assert!(sample(&after, route).unwrap() >= 2.0, "{after}");
    server.stop().await;
}
