//! Last-N and dynacast through a whole server with real WebRTC clients: a camera
//! paused for a subscriber that asks for no camera is told (`video_paused`), stops
//! arriving, and comes back (`video_resumed`) decoding from a keyframe; a simulcast
//! layer nobody needs is stopped by the publishing client (`publisher_layers`, which
//! chorus-client applies as a browser's `setParameters` would) and started again.

mod common;

use std::time::Duration;

use chorus_client::{ClientConfig, MediaProfile, TrackSource};
use chorus_protocol::signal::{PauseReason, ServerMessage};
use common::{FLOWING, Participant, TestServer, contains, track_published};

const QUIET: Duration = Duration::from_millis(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_outside_last_n_is_paused_and_resumed() {
    let server = TestServer::start().await;
    let mut alice = server.join("lastn", "alice").await;
    let mut bob = server.join("lastn", "bob").await;
    let cam = alice.publish_ok(TrackSource::Camera).await;
    let id = cam.track_id.clone();
    bob.until("alice's camera", |log| contains(log, track_published(&id)))
        .await;
    bob.wait_receiving(&[&cam], FLOWING).await;

    bob.set_last_n(0).await.unwrap();
    bob.until("video_paused", |log| {
        contains(log, |m| {
            matches!(m, ServerMessage::VideoPaused { track_id, reason: PauseReason::LastN, .. }
                if *track_id == id)
        })
    })
    .await;
    let paused_at = bob.wait_track_silent(&cam, QUIET).await;
    // The client logs the told pause (the load test's loss outside pauses reads it).
    let told = bob.stats().told_paused[&id];
    assert!(told.since.is_some() && told.pauses == 1, "{told:?}");

    bob.set_pins(&[&alice.id()]).await.unwrap();
    bob.set_last_n(1).await.unwrap();
    bob.until("video_resumed", |log| {
        contains(
            log,
            |m| matches!(m, ServerMessage::VideoResumed { track_id, .. } if *track_id == id),
        )
    })
    .await;
    let stats = bob
        .wait_stats("video again, from a keyframe", |s| {
            let t = &s.inbound[&id];
            t.packets >= paused_at + FLOWING && t.keyframes >= 2
        })
        .await;
    // Numbered on across the pause: no hole the receiver would take for loss.
    let t = &stats.inbound[&id];
    assert_eq!(t.expected_packets(), t.received.len(), "{t:#?}");
    let told = stats.told_paused[&id];
    assert!(told.since.is_none() && told.ended >= QUIET, "{told:?}");
    assert_eq!(alice.stats().negotiation_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_layer_nobody_needs_is_stopped_by_the_publisher() {
    let server = TestServer::start().await;
    let mut config = ClientConfig::new(&server.ws_url, server.token("dynacast", "alice"));
    config.media = MediaProfile {
        simulcast: true,
        ..MediaProfile::default()
    };
    let client = chorus_client::connect(config).await.expect("alice joins");
    let mut alice = Participant::new("alice", client);
    let mut bob = server.join("dynacast", "bob").await;
    let cam = alice.publish_ok(TrackSource::Camera).await;
    let id = cam.track_id.clone();
    bob.until("alice's camera", |log| contains(log, track_published(&id)))
        .await;
    bob.wait_receiving(&[&cam], FLOWING).await;

    // A small tile: after 3 s h and f are turned off, and alice stops sending them.
    bob.track_settings(&id, Some((320, 180)), true, None)
        .await
        .unwrap();
    let told = |active: [bool; 3]| {
        move |log: &[ServerMessage]| {
            contains(log, |m| match m {
                ServerMessage::PublisherLayers { layers, .. } => {
                    layers.iter().map(|l| l.active).eq(active)
                }
                _ => false,
            })
        }
    };
    alice.until("h and f off", told([true, false, false])).await;
    let frames = |alice: &Participant| -> Vec<u64> {
        alice.stats().outbound[&id]
            .layers
            .iter()
            .map(|l| l.frames)
            .collect()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = frames(&alice);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = frames(&alice);
    assert!(after[0] > before[0], "q goes on: {before:?} → {after:?}");
    assert_eq!(after[1..], before[1..], "h and f stopped");

    // A large tile: on again at once, and bob gets f.
    bob.track_settings(&id, Some((1280, 720)), true, None)
        .await
        .unwrap();
    alice.until("all on", told([true, true, true])).await;
    bob.wait_stats("the f layer", |s| {
        s.inbound[&id].frame_size == Some((1280, 720))
    })
    .await;
}
