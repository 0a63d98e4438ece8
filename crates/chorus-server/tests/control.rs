//! The control API acting on live sessions: remove, mute, permissions, room
//! limits and deletion, as the clients experience them; and the media counters
//! it reports while media flows.

mod common;

use std::time::{Duration, Instant};

use chorus_client::{LeaveReason, ServerMessage, TrackSource};
use common::{
    FLOWING, LIMIT, TestServer, contains, error_code, left, participant_left, refusal_code,
    stream_of, track_muted, track_unpublished,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_participant() {
    let server = TestServer::start().await;
    let mut a = server.join("remove", "alice").await;
    let mut b = server.join("remove", "bob").await;
    let (mic, cam) = b.publish_mic_and_camera().await;
    a.wait_receiving(&[&mic, &cam], FLOWING).await;
    let bob = b.id();

    let (status, body) = server
        .call(Method::DELETE, "/v1/rooms/remove/participants/bob", None)
        .await;
    assert_eq!(status, 204, "{body}");

    b.expect("left removed_by_server", left(LeaveReason::RemovedByServer))
        .await;
    b.expect_closed("after left").await;
    a.until("bob's tracks unpublished and bob removed", |log| {
        contains(log, track_unpublished(&mic.track_id))
            && contains(log, track_unpublished(&cam.track_id))
            && contains(log, participant_left(&bob, LeaveReason::RemovedByServer))
    })
    .await;

    let (status, body) = server
        .call(Method::DELETE, "/v1/rooms/remove/participants/bob", None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "participant_not_found");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_muted_by_the_server_stops_until_the_server_unmutes_it() {
    let server = TestServer::start().await;
    let mut a = server.join("mute", "alice").await;
    let mut b = server.join("mute", "bob").await;
    let (mic, cam) = a.publish_mic_and_camera().await;
    b.wait_receiving(&[&mic, &cam], FLOWING).await;
    let mute_path = format!(
        "/v1/rooms/mute/participants/alice/tracks/{}/mute",
        mic.track_id
    );

    let (status, body) = server
        .call(Method::POST, &mute_path, Some(json!({"muted": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["track_id"], mic.track_id.as_str());
    assert_eq!(body["muted"], true);
    for p in [&mut a, &mut b] {
        p.expect("track_muted true", track_muted(&mic.track_id, true))
            .await;
    }
    // Alice's client keeps sending (it does not follow the mute), yet Bob gets
    // nothing of the microphone while the camera keeps flowing.
    let silent_at = b.wait_track_silent(&mic, Duration::from_millis(500)).await;
    b.wait_more_packets(&[&cam], FLOWING).await;
    assert_eq!(
        b.packets(stream_of(&mic)),
        silent_at,
        "muted packets arrived"
    );

    // The owner cannot lift a server mute.
    let mark = a.mark();
    a.mute(&mic.track_id, false).await.unwrap();
    a.expect_since(mark, "error muted_by_server", error_code("muted_by_server"))
        .await;
    b.wait_more_packets(&[&cam], FLOWING).await;
    assert_eq!(
        b.packets(stream_of(&mic)),
        silent_at,
        "muted packets arrived"
    );
    assert!(
        !contains(b.log(), track_muted(&mic.track_id, false)),
        "{:#?}",
        b.log()
    );
    // The room counts what it forwarded and what it held back, and why.
    let (status, room) = server.call(Method::GET, "/v1/rooms/mute", None).await;
    assert_eq!(status, 200, "{room}");
    let forwarding = &room["forwarding"];
    assert!(forwarding["forwarded"].as_u64().unwrap() > 0, "{room}");
    assert!(
        forwarding["skipped"]["muted"].as_u64().unwrap() > 0,
        "{room}"
    );

    // The server can.
    let (status, body) = server
        .call(Method::POST, &mute_path, Some(json!({"muted": false})))
        .await;
    assert_eq!(status, 200, "{body}");
    b.expect("track_muted false", track_muted(&mic.track_id, false))
        .await;
    b.wait_more_packets(&[&mic], FLOWING).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_publish_permission_unpublishes() {
    let server = TestServer::start().await;
    let mut a = server.join("perms", "alice").await;
    let mut b = server.join("perms", "bob").await;
    let (mic, cam) = a.publish_mic_and_camera().await;
    b.wait_receiving(&[&mic, &cam], FLOWING).await;

    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/rooms/perms/participants/alice/permissions",
            Some(json!({"grants": {"can_publish": false}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grants"]["can_publish"], false, "{body}");
    assert_eq!(body["tracks"], json!([]), "{body}");

    a.expect(
        "permissions_changed",
        |e| matches!(e, ServerMessage::PermissionsChanged { grants } if !grants.can_publish),
    )
    .await;
    for p in [&mut a, &mut b] {
        p.until("alice's tracks unpublished", |log| {
            contains(log, track_unpublished(&mic.track_id))
                && contains(log, track_unpublished(&cam.track_id))
        })
        .await;
    }
    b.wait_track_silent(&mic, Duration::from_millis(500)).await;
    b.wait_track_silent(&cam, Duration::from_millis(500)).await;
    // Publishing again is refused.
    assert_eq!(
        refusal_code(a.publish(TrackSource::Microphone).await),
        "permission_denied"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_refuses_the_next_participant() {
    let server = TestServer::start().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/rooms",
            Some(json!({"name": "small", "max_participants": 2})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let _a = server.join("small", "alice").await;
    let b = server.join("small", "bob").await;

    let refused = server.try_connect(server.token("small", "carol")).await;
    assert_eq!(refusal_code(refused), "room_full");

    // A free seat admits again.
    b.leave().await.unwrap();
    let c = server.join("small", "carol").await;
    assert_eq!(c.room(), "small");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_ends_every_session() {
    let server = TestServer::start().await;
    let mut a = server.join("doomed", "alice").await;
    let mut b = server.join("doomed", "bob").await;
    let mic = a.publish_ok(TrackSource::Microphone).await;
    b.wait_receiving(&[&mic], FLOWING).await;

    let (status, body) = server.call(Method::DELETE, "/v1/rooms/doomed", None).await;
    assert_eq!(status, 204, "{body}");
    for p in [&mut a, &mut b] {
        p.expect("left room_deleted", left(LeaveReason::RoomDeleted))
            .await;
        p.expect_closed("after left").await;
    }
    let (status, body) = server.call(Method::GET, "/v1/rooms/doomed", None).await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_counters_follow_the_traffic() {
    let server = TestServer::start().await;
    let mut a = server.join("counted", "alice").await;
    let b = server.join("counted", "bob").await;
    let (mic, cam) = a.publish_mic_and_camera().await;
    b.wait_receiving(&[&mic, &cam], FLOWING).await;

    let stats = media_stats(&server).await;
    assert!(stats["received"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["sent"].as_u64().unwrap() > 0, "{stats}");
    let unknown_addr = |stats: &Value| stats["unroutable"]["unknown_addr"].as_u64().unwrap();
    let before = unknown_addr(&stats);

    // Not STUN, from an address no connection knows: noise.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(b"\xffnot a media packet", server.media_addr)
        .await
        .unwrap();
    // The I/O thread counts it when it gets to it.
    let deadline = Instant::now() + LIMIT;
    loop {
        let stats = media_stats(&server).await;
        if unknown_addr(&stats) > before {
            break;
        }
        assert!(Instant::now() < deadline, "garbage not counted: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The clients' reports (sent every second or so) are read and counted.
    loop {
        let stats = media_stats(&server).await;
        if stats["rtcp"]["delivered"].as_u64().unwrap() > 0 {
            assert_eq!(stats["srtp_refused"], 0, "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "no RTCP counted: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

async fn media_stats(server: &TestServer) -> Value {
    let (status, body) = server.call(Method::GET, "/v1/media", None).await;
    assert_eq!(status, 200, "{body}");
    body
}
