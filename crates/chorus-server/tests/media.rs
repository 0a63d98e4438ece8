//! Media through a whole server: real WebRTC clients (ICE, DTLS-SRTP) publish
//! synthetic Opus and VP8, and everyone else receives it.

mod common;

use std::time::{Duration, Instant};

use chorus_client::{
    AudioContent, LeaveReason, MediaKind, ServerMessage, TrackSource, tone_energy,
};
use chorus_protocol::ParticipantState;
use chorus_protocol::signal::ROOM_AUDIO_TRACK;
use common::{
    FLOWING, LIMIT, TestServer, contains, participant_joined, participant_left, position,
    track_published, track_unpublished,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_receive_each_others_tracks() {
    let server = TestServer::start().await;
    let mut a = server.join("pubsub", "alice").await;
    let mut b = server.join("pubsub", "bob").await;
    assert_eq!(b.room(), "pubsub");
    let alice_at_join = &b.others_at_join()[0];
    assert_eq!(alice_at_join.identity, "alice");
    assert_eq!(alice_at_join.participant_id, a.id());
    assert!(alice_at_join.tracks.is_empty());
    let bob = b.id();
    a.expect("participant_joined for bob", participant_joined("bob"))
        .await;

    // Alice publishes: Bob is told about both tracks and receives both.
    let (a_mic, a_cam) = a.publish_mic_and_camera().await;
    b.until("track_published for alice's tracks", |log| {
        contains(log, track_published(&a_mic.track_id))
            && contains(log, track_published(&a_cam.track_id))
    })
    .await;
    b.wait_receiving(&[&a_mic, &a_cam], FLOWING).await;
    let stats = b.stats();
    // Alice's microphone reaches Bob on his one room-audio track.
    assert_eq!(stats.inbound[ROOM_AUDIO_TRACK].kind, MediaKind::Audio);
    assert_eq!(stats.inbound[&a_cam.track_id].kind, MediaKind::Video);
    assert!(
        stats.inbound[&a_cam.track_id].keyframes >= 1,
        "video starts with a keyframe: {stats:#?}"
    );
    let alice = a.id();
    b.expect("alice connected", |e| {
        matches!(e, ServerMessage::ParticipantState { participant_id, state, .. }
            if *participant_id == alice && *state == ParticipantState::Connected)
    })
    .await;

    // Bob publishes: Alice receives his tracks, and neither gets its own back.
    let (b_mic, b_cam) = b.publish_mic_and_camera().await;
    a.until("track_published for bob's tracks", |log| {
        contains(log, track_published(&b_mic.track_id))
            && contains(log, track_published(&b_cam.track_id))
    })
    .await;
    a.wait_receiving(&[&b_mic, &b_cam], FLOWING).await;
    b.wait_more_packets(&[&a_mic, &a_cam], FLOWING).await;
    let (a_stats, b_stats) = (a.stats(), b.stats());
    assert_eq!(a_stats.inbound.len(), 2, "alice: {a_stats:#?}");
    assert_eq!(b_stats.inbound.len(), 2, "bob: {b_stats:#?}");
    assert_eq!(
        a_stats.negotiation_failures + b_stats.negotiation_failures,
        0
    );

    // The roster the control API shows agrees.
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/v1/rooms/pubsub/participants/bob",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["participant_id"], bob.as_str());
    assert_eq!(body["tracks"].as_array().map(Vec::len), Some(2), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_publisher_is_offered_to_everyone_and_receives_everyone() {
    let server = TestServer::start().await;
    let mut a = server.join("trio", "alice").await;
    let mut b = server.join("trio", "bob").await;
    let (a_mic, a_cam) = a.publish_mic_and_camera().await;
    let (b_mic, b_cam) = b.publish_mic_and_camera().await;
    a.wait_receiving(&[&b_mic, &b_cam], FLOWING).await;
    b.wait_receiving(&[&a_mic, &a_cam], FLOWING).await;

    // Carol joins after both publish: she gets their two cameras and the room audio
    // (now a mix of two talkers) on her first offer...
    let mut c = server.join("trio", "carol").await;
    let listed: usize = c.others_at_join().iter().map(|p| p.tracks.len()).sum();
    assert_eq!(listed, 4, "joined lists everyone's tracks");
    c.wait_receiving(&[&a_mic, &a_cam, &b_mic, &b_cam], FLOWING)
        .await;
    // ...and when she publishes, the server re-offers on Alice's and Bob's
    // subscriber connections for her camera; their room audio turns into the mix
    // without a new track.
    let (c_mic, c_cam) = c.publish_mic_and_camera().await;
    a.wait_receiving(&[&c_mic, &c_cam], FLOWING).await;
    b.wait_receiving(&[&c_mic, &c_cam], FLOWING).await;
    // The earlier tracks keep flowing across the renegotiation.
    a.wait_more_packets(&[&b_mic, &b_cam], FLOWING).await;
    b.wait_more_packets(&[&a_mic, &a_cam], FLOWING).await;
    c.wait_more_packets(&[&a_mic, &a_cam, &b_mic, &b_cam], FLOWING)
        .await;
    for p in [&a, &b, &c] {
        let stats = p.stats();
        // Two cameras and the room audio.
        assert_eq!(stats.inbound.len(), 3, "{}: {stats:#?}", p.identity);
        // Alice's and Bob's room audio went from relaying each other to the mix
        // without a jump in sequence numbers (a jump would count as loss).
        let audio = &stats.inbound[ROOM_AUDIO_TRACK];
        let missing = audio.expected_packets().saturating_sub(audio.packets);
        assert!(
            missing <= 2,
            "{}: {missing} packets missing: {audio:#?}",
            p.identity
        );
        assert_eq!(stats.negotiation_failures, 0, "{}: {stats:#?}", p.identity);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_tells_the_others_and_unpublishes() {
    let server = TestServer::start().await;
    let mut a = server.join("leave", "alice").await;
    let mut b = server.join("leave", "bob").await;
    let mut c = server.join("leave", "carol").await;
    let (c_mic, c_cam) = c.publish_mic_and_camera().await;
    a.wait_receiving(&[&c_mic, &c_cam], FLOWING).await;
    b.wait_receiving(&[&c_mic, &c_cam], FLOWING).await;
    let carol = c.id();

    let reason = tokio::time::timeout(LIMIT, c.leave())
        .await
        .expect("leave answers in time")
        .expect("leave");
    assert_eq!(reason, LeaveReason::ClientLeft);

    for p in [&mut a, &mut b] {
        p.until("carol's tracks unpublished and carol left", |log| {
            contains(log, track_unpublished(&c_mic.track_id))
                && contains(log, track_unpublished(&c_cam.track_id))
                && contains(log, participant_left(&carol, LeaveReason::ClientLeft))
        })
        .await;
        let log = p.log();
        let left_at = position(log, participant_left(&carol, LeaveReason::ClientLeft));
        for track in [&c_mic, &c_cam] {
            assert!(
                position(log, track_unpublished(&track.track_id)) < left_at,
                "{}: track_unpublished precedes participant_left: {log:#?}",
                p.identity
            );
        }
    }
    // Media stops with the publisher.
    a.wait_track_silent(&c_cam, Duration::from_millis(500))
        .await;
    let (status, body) = server
        .call(reqwest::Method::GET, "/v1/rooms/leave/participants", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["participants"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    server.stop().await;
}

/// Subscribers' PLIs reach the publisher, which answers with a keyframe, and a
/// burst from several subscribers reaches it as (about) one request per 500 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_requests_reach_the_publisher_throttled() {
    let server = TestServer::start().await;
    let mut a = server.join("keyframes", "alice").await;
    let cam = a.publish_ok(TrackSource::Camera).await;
    let mut subscribers = Vec::new();
    for name in ["bob", "carol", "dave"] {
        subscribers.push(server.join("keyframes", name).await);
    }
    for s in &subscribers {
        s.wait_stats("packets and a keyframe of alice's camera", |st| {
            st.inbound
                .get(&cam.track_id)
                .is_some_and(|t| t.packets >= FLOWING && t.keyframes >= 1)
        })
        .await;
    }

    // Let the throttle window of the PLIs sent while subscribers joined pass:
    // no PLI reaches Alice for well over 500 ms.
    let plis = |p: &common::Participant| p.stats().outbound[&cam.track_id].plis_received;
    let quiet = Duration::from_millis(800);
    let deadline = Instant::now() + LIMIT;
    let mut baseline = plis(&a);
    loop {
        tokio::time::sleep(quiet).await;
        let now = plis(&a);
        if now == baseline {
            break;
        }
        baseline = now;
        assert!(Instant::now() < deadline, "PLIs keep reaching alice");
    }
    let keyframes_sent = a.stats().outbound[&cam.track_id].keyframes;
    let keyframes_seen = subscribers[0].stats().inbound[&cam.track_id].keyframes;

    // A burst: three subscribers, five requests each.
    let burst_start = Instant::now();
    for _ in 0..5 {
        for s in &subscribers {
            s.request_keyframe(&cam.track_id).await.unwrap();
        }
    }
    let burst = burst_start.elapsed();
    for s in &subscribers {
        assert_eq!(s.stats().inbound[&cam.track_id].plis_sent, 5);
    }
    a.wait_stats("a PLI for the camera", |s| {
        s.outbound[&cam.track_id].plis_received > baseline
    })
    .await;
    // The publisher answers with a keyframe, which reaches the subscribers.
    a.wait_stats("a keyframe sent after the PLI", |s| {
        s.outbound[&cam.track_id].keyframes > keyframes_sent
    })
    .await;
    subscribers[0]
        .wait_stats("the new keyframe", |s| {
            s.inbound[&cam.track_id].keyframes > keyframes_seen
        })
        .await;
    // Give late PLIs time to arrive before counting them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = plis(&a) - baseline;
    // One per 500 ms window the burst touched.
    let allowed = 1 + (burst.as_millis() / 500) as u64;
    assert!(
        received <= allowed,
        "15 requests in {burst:?} reached alice as {received} PLIs (at most {allowed} expected)"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_reports_flow_both_ways() {
    let server = TestServer::start().await;
    let mut a = server.join("rtcp", "alice").await;
    let b = server.join("rtcp", "bob").await;
    let (mic, cam) = a.publish_mic_and_camera().await;
    b.wait_receiving(&[&mic, &cam], FLOWING).await;
    // The server receives Alice's media and reports on it; it sends Bob media
    // and describes it with sender reports.
    a.wait_stats("receiver reports on the publisher connection", |s| {
        s.publisher.receiver_reports >= 1
    })
    .await;
    b.wait_stats("sender reports on the subscriber connection", |s| {
        s.subscriber.sender_reports >= 1
    })
    .await;
    server.stop().await;
}

/// Three talkers, each a tone: every listener hears the other two in its room audio and
/// not itself (mix-minus-self), and everyone is told who speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_audio_mixes_the_others_and_leaves_out_the_listener() {
    let server = TestServer::start().await;
    let tones = [("alice", 440.0), ("bob", 1100.0), ("carol", 2500.0)];
    let mut people = Vec::new();
    for (name, hz) in tones {
        let mut p = server.join("chorus", name).await;
        p.set_audio(AudioContent::Tone { hz: hz as u16 })
            .await
            .unwrap();
        p.publish_ok(TrackSource::Microphone).await;
        people.push(p);
    }
    // One second of mix after everyone publishes: 50 frames, all decoded.
    for p in &people {
        p.wait_stats("a second of decoded room audio", |s| {
            s.inbound
                .get(ROOM_AUDIO_TRACK)
                .and_then(|t| t.decoded.as_ref())
                .is_some_and(|d| d.loud_frames >= 50)
        })
        .await;
    }
    for (p, (me, my_hz)) in people.iter().zip(tones) {
        let stats = p.stats();
        let audio = &stats.inbound[ROOM_AUDIO_TRACK];
        let decoded = audio.decoded.as_ref().expect("decoded");
        assert_eq!(decoded.errors, 0, "{me}: every mixed packet decodes");
        let pcm: Vec<i16> = decoded.recent.iter().copied().collect();
        let own = tone_energy(&pcm, my_hz, 48_000);
        for (other, hz) in tones.iter().filter(|(n, _)| *n != me) {
            let heard = tone_energy(&pcm, *hz, 48_000);
            // A -15 dBov tone has ≈ 0.03 of full-scale energy; its own tone must be
            // absent, not merely quieter.
            assert!(heard > 0.005, "{me} hears {other} ({hz} Hz): {heard}");
            assert!(
                heard > 100.0 * own,
                "{me} hears itself: own {own} vs {other} {heard}"
            );
        }
        // One audio track, nothing per talker.
        assert_eq!(stats.inbound.len(), 1, "{me}: {stats:#?}");
    }
    // Everyone was announced as speaking at some point.
    let ids: Vec<String> = people.iter().map(|p| p.id()).collect();
    for p in &mut people {
        p.until("all three in active_speakers", |log| {
            ids.iter().all(|id| {
                contains(log, |e| {
                    matches!(e, ServerMessage::ActiveSpeakers { speakers }
                        if speakers.iter().any(|s| s.participant_id == *id))
                })
            })
        })
        .await;
    }
    server.stop().await;
}
