//! Participants that go away without saying so: the others learn why.

mod common;

use chorus_client::{LeaveReason, ServerMessage};
use chorus_protocol::ParticipantState;
use common::{
    FLOWING, TestServer, contains, participant_left, position, test_config, track_unpublished,
};

/// A client whose media vanishes while its WebSocket stays open is noticed by
/// ICE timeout: first `disconnected`, then removed with `connection_lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_media_is_connection_lost() {
    let mut config = test_config();
    // Above the clients' 2 s ICE keepalive, so healthy connections never time out.
    config.media.ice_disconnected_timeout_ms = 3_000;
    config.media.ice_failed_timeout_ms = 3_000;
    let server = TestServer::start_with(config).await;
    let mut a = server.join("vanish", "alice").await;
    let mut d = server.join("vanish", "dave").await;
    let (mic, cam) = d.publish_mic_and_camera().await;
    a.wait_receiving(&[&mic, &cam], FLOWING).await;
    let dave = d.id();

    d.kill();
    a.until("dave removed for connection_lost", |log| {
        contains(log, participant_left(&dave, LeaveReason::ConnectionLost))
    })
    .await;
    let log = a.log();
    let disconnected = position(log, |e| {
        matches!(e, ServerMessage::ParticipantState { participant_id, state, .. }
            if *participant_id == dave && *state == ParticipantState::Disconnected)
    });
    let left = position(log, participant_left(&dave, LeaveReason::ConnectionLost));
    assert!(
        disconnected.is_some() && disconnected < left,
        "dave shows as disconnected before he is removed: {log:#?}"
    );
    for track in [&mic, &cam] {
        assert!(
            position(log, track_unpublished(&track.track_id)) < left,
            "{} unpublished before dave left: {log:#?}",
            track.track_id
        );
    }
    // Alice herself stayed connected all along.
    let alice = a.id();
    assert!(
        !contains(
            log,
            |e| matches!(e, ServerMessage::ParticipantState { participant_id, state, .. }
            if *participant_id == alice && *state != ParticipantState::Connected)
        ),
        "alice's own state changed: {log:#?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_signaling_is_signaling_closed() {
    let server = TestServer::start().await;
    let mut a = server.join("drop", "alice").await;
    let mut e = server.join("drop", "erin").await;
    let (mic, cam) = e.publish_mic_and_camera().await;
    a.wait_receiving(&[&mic, &cam], FLOWING).await;
    let erin = e.id();

    e.drop_signaling();
    a.until("erin's tracks unpublished and erin left", |log| {
        contains(log, track_unpublished(&mic.track_id))
            && contains(log, track_unpublished(&cam.track_id))
            && contains(log, participant_left(&erin, LeaveReason::SignalingClosed))
    })
    .await;
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/v1/rooms/drop/participants/erin",
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}
