//! The echo test room through a whole server, with real WebRTC clients: each joiner
//! gets a private room where its own voice comes back about a second later on its
//! room-audio track, and its own camera; a second joiner gets none of the first's.

mod common;

use std::time::{Duration, Instant};

use chorus_client::{AudioContent, TrackSource, tone_energy};
use chorus_protocol::signal::ROOM_AUDIO_TRACK;
use chorus_room::DEFAULT_ECHO_ROOM;
use common::{FLOWING, TestServer, contains, participant_joined};

/// Loud frames of decoded room audio the client has heard.
fn loud(p: &chorus_client::Client) -> u64 {
    let stats = p.stats();
    stats
        .inbound
        .get(ROOM_AUDIO_TRACK)
        .and_then(|t| t.decoded.as_ref())
        .map_or(0, |d| d.loud_frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_room_returns_a_participants_own_voice_a_second_later_and_its_camera() {
    let server = TestServer::start().await;
    let mut alice = server.join(DEFAULT_ECHO_ROOM, "alice").await;
    assert_eq!(alice.room(), DEFAULT_ECHO_ROOM);
    assert!(alice.others_at_join().is_empty());
    // Silence first: the echo runs, and nothing loud comes back.
    alice.set_audio(AudioContent::Silence).await.unwrap();
    let mic = alice.publish_ok(TrackSource::Microphone).await;
    let cam = alice.publish_ok(TrackSource::Camera).await;
    alice
        .wait_stats("her silence decoded back", |s| {
            s.inbound
                .get(ROOM_AUDIO_TRACK)
                .and_then(|t| t.decoded.as_ref())
                .is_some_and(|d| d.frames >= 25)
        })
        .await;
    assert_eq!(loud(&alice), 0);

    // The marker: a tone from now on. It comes back after the echo's delay.
    let marked = Instant::now();
    alice
        .set_audio(AudioContent::Tone { hz: 440 })
        .await
        .unwrap();
    alice
        .wait_stats("her tone back", |s| {
            s.inbound
                .get(ROOM_AUDIO_TRACK)
                .and_then(|t| t.decoded.as_ref())
                .is_some_and(|d| d.loud_frames > 0)
        })
        .await;
    let delay = marked.elapsed();
    println!("echo delay: {delay:?}");
    assert!(
        delay >= Duration::from_millis(700) && delay <= Duration::from_millis(1500),
        "her voice came back after {delay:?}"
    );
    // It is her tone, decoded whole.
    let stats = alice
        .wait_stats("half a second of her tone", |s| {
            s.inbound[ROOM_AUDIO_TRACK]
                .decoded
                .as_ref()
                .is_some_and(|d| d.loud_frames >= 25)
        })
        .await;
    let decoded = stats.inbound[ROOM_AUDIO_TRACK].decoded.as_ref().unwrap();
    assert_eq!(decoded.errors, 0);
    assert!(tone_energy(&decoded.recent_pcm(), 440.0, 48_000) > 0.005);
    // And her own camera, from a keyframe.
    let stats = alice
        .wait_stats("her own camera", |s| {
            s.inbound
                .get(&cam.track_id)
                .is_some_and(|t| t.packets >= FLOWING && t.keyframes >= 1)
        })
        .await;
    assert!(
        !stats.inbound.contains_key(&mic.track_id),
        "no raw mic track"
    );

    // Bob joins the same name: a room of his own. He hears himself, not her.
    let mut bob = server.join(DEFAULT_ECHO_ROOM, "bob").await;
    assert!(bob.others_at_join().is_empty(), "nobody else in his room");
    bob.set_audio(AudioContent::Tone { hz: 1100 })
        .await
        .unwrap();
    bob.publish_ok(TrackSource::Microphone).await;
    let bob_cam = bob.publish_ok(TrackSource::Camera).await;
    let stats = bob
        .wait_stats("a second of his own voice and his camera", |s| {
            s.inbound
                .get(ROOM_AUDIO_TRACK)
                .and_then(|t| t.decoded.as_ref())
                .is_some_and(|d| d.loud_frames >= 50)
                && s.inbound
                    .get(&bob_cam.track_id)
                    .is_some_and(|t| t.packets >= FLOWING)
        })
        .await;
    let pcm = stats.inbound[ROOM_AUDIO_TRACK]
        .decoded
        .as_ref()
        .unwrap()
        .recent_pcm();
    let (his, hers) = (
        tone_energy(&pcm, 1100.0, 48_000),
        tone_energy(&pcm, 440.0, 48_000),
    );
    assert!(
        his > 0.005 && his > 100.0 * hers,
        "his {his} vs hers {hers}"
    );
    assert!(!stats.inbound.contains_key(&cam.track_id), "not her camera");
    assert_eq!(stats.inbound.len(), 2, "{stats:#?}");
    let alice_stats = alice.stats();
    assert!(!alice_stats.inbound.contains_key(&bob_cam.track_id));
    // Neither heard of the other.
    alice.settle(Duration::from_millis(200)).await;
    bob.settle(Duration::from_millis(200)).await;
    assert!(!contains(alice.log(), participant_joined("bob")));
    assert!(!contains(bob.log(), participant_joined("alice")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_room_name_cannot_be_created() {
    let server = TestServer::start().await;
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/rooms",
            Some(serde_json::json!({ "name": DEFAULT_ECHO_ROOM })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_room_name");
    server.stop().await;
}
