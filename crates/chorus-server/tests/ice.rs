//! ICE as real clients use it: several paths, pair switches, ICE restarts after an
//! address change, sparse consent checks, libnice's indications, and a connection that
//! never comes up.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_client::{
    ClientConfig, Engine, Keepalive, LeaveReason, MediaProfile, PathChange, PeerTarget,
    ServerMessage, TrackInfo, TrackSource,
};
use chorus_protocol::ParticipantState;
use chorus_protocol::signal::{ClientMessage, ROOM_AUDIO_TRACK};
use common::{FLOWING, Participant, TestServer, contains, participant_left, test_config};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

async fn join_with_keepalive(
    server: &TestServer,
    room: &str,
    identity: &str,
    keepalive: Keepalive,
) -> Participant {
    let mut config = ClientConfig::new(&server.ws_url, server.token(room, identity));
    config.media = MediaProfile {
        keepalive,
        ..MediaProfile::default()
    };
    let client = chorus_client::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{identity} cannot join {room}: {e}"));
    Participant::new(identity, client)
}

/// Packets received and the seq range seen, per stream; the loss is what the range
/// says should have come and did not.
fn lost(p: &Participant, stream: &str) -> u64 {
    let stats = p.stats();
    let inbound = &stats.inbound[stream];
    let (first, last) = inbound.seq_range.expect("packets arrived");
    (last - first + 1).saturating_sub(inbound.packets)
}

/// Watches `streams` for `span` and returns the longest time any of them received
/// nothing, with the stream it happened on.
async fn longest_pause(p: &Participant, streams: &[&str], span: Duration) -> (Duration, String) {
    let start = Instant::now();
    let mut last: HashMap<&str, (u64, Instant)> = streams
        .iter()
        .map(|s| (*s, (p.packets(s), start)))
        .collect();
    let mut worst = (Duration::ZERO, String::new());
    while start.elapsed() < span {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = Instant::now();
        for s in streams {
            let count = p.packets(s);
            let (seen, since) = last[s];
            if count != seen {
                last.insert(s, (count, now));
            } else if now - since > worst.0 {
                worst = (now - since, (*s).to_owned());
            }
        }
    }
    worst
}

fn went_disconnected(log: &[ServerMessage], participant: &str) -> bool {
    contains(log, |e| {
        matches!(e, ServerMessage::ParticipantState { participant_id, state, .. }
            if participant_id == participant && *state == ParticipantState::Disconnected)
    })
}

/// What `p` saw of `who`: never `disconnected` (unless `may_flap`), never removed for
/// `connection_lost`; and `p` got no `error`.
fn assert_stayed(p: &Participant, who: &str, may_flap: bool) {
    let log = p.log();
    assert!(
        may_flap || !went_disconnected(log, who),
        "{who} showed as disconnected: {log:#?}"
    );
    assert!(
        !contains(log, participant_left(who, LeaveReason::ConnectionLost)),
        "{who} was removed: {log:#?}"
    );
    assert!(
        !contains(log, |e| matches!(e, ServerMessage::Error { .. })),
        "{log:#?}"
    );
}

/// Alice and Bob publish microphone and camera and receive each other.
async fn call(server: &TestServer, room: &str, alice_keepalive: Keepalive) -> Call {
    let mut alice = join_with_keepalive(server, room, "alice", alice_keepalive).await;
    let mut bob = server.join(room, "bob").await;
    let (a_mic, a_cam) = alice.publish_mic_and_camera().await;
    let (b_mic, b_cam) = bob.publish_mic_and_camera().await;
    alice.wait_receiving(&[&b_cam], FLOWING).await;
    bob.wait_receiving(&[&a_cam], FLOWING).await;
    // Both hear the other on the room-audio track.
    for p in [&alice, &bob] {
        p.wait_stats("room audio flowing", |s| {
            s.inbound
                .get(ROOM_AUDIO_TRACK)
                .is_some_and(|t| t.packets >= FLOWING)
        })
        .await;
    }
    let _ = (a_mic, b_mic);
    Call {
        alice,
        bob,
        a_cam,
        b_cam,
    }
}

struct Call {
    alice: Participant,
    bob: Participant,
    a_cam: TrackInfo,
    b_cam: TrackInfo,
}

/// Reads the events both got so far.
async fn drain_events(c: &mut Call) {
    for p in [&mut c.alice, &mut c.bob] {
        p.settle(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_follows_a_pair_switch_both_ways() {
    let server = TestServer::start().await;
    let mut c = call(&server, "switch", Keepalive::default()).await;
    let alice = c.alice.id();

    // Alice gets a second interface: two candidate pairs on each connection.
    for target in [PeerTarget::Publisher, PeerTarget::Subscriber] {
        c.alice
            .change_path(target, PathChange::Add)
            .await
            .expect("second path");
    }
    c.bob.wait_more_packets(&[&c.a_cam], FLOWING).await;
    let (a_before, b_before) = (
        lost(&c.alice, &c.b_cam.track_id),
        lost(&c.bob, &c.a_cam.track_id),
    );
    let (a_packets, b_packets) = (
        c.alice.packets(&c.b_cam.track_id),
        c.bob.packets(&c.a_cam.track_id),
    );

    // Mid-call she nominates the second pair on both connections.
    for target in [PeerTarget::Publisher, PeerTarget::Subscriber] {
        c.alice
            .change_path(target, PathChange::Switch)
            .await
            .expect("switch");
    }
    // Once the server has moved, the old interface goes away: what still went there
    // would be lost from now on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for target in [PeerTarget::Publisher, PeerTarget::Subscriber] {
        c.alice
            .change_path(target, PathChange::DropPrevious)
            .await
            .expect("drop the old path");
    }
    // Past the disconnect timeout, so a path judged by the old pair alone would flap.
    let span = Duration::from_secs(8);
    let alice_gets = [c.b_cam.track_id.as_str(), ROOM_AUDIO_TRACK];
    let bob_gets = [c.a_cam.track_id.as_str(), ROOM_AUDIO_TRACK];
    let (alice_pause, bob_pause) = tokio::join!(
        longest_pause(&c.alice, &alice_gets, span),
        longest_pause(&c.bob, &bob_gets, span),
    );
    assert!(
        alice_pause.0 < Duration::from_secs(1),
        "alice's downlink paused {alice_pause:?} after the switch"
    );
    assert!(
        bob_pause.0 < Duration::from_secs(1),
        "alice's uplink (as bob receives it) paused {bob_pause:?} after the switch"
    );
    assert!(c.alice.packets(&c.b_cam.track_id) > a_packets + 50);
    assert!(c.bob.packets(&c.a_cam.track_id) > b_packets + 50);
    let (a_lost, b_lost) = (
        lost(&c.alice, &c.b_cam.track_id) - a_before,
        lost(&c.bob, &c.a_cam.track_id) - b_before,
    );
    assert!(
        a_lost <= 2 && b_lost <= 2,
        "video lost across the switch: alice received {a_lost} fewer, bob {b_lost} fewer"
    );
    drain_events(&mut c).await;
    for p in [&c.alice, &c.bob] {
        assert_stayed(p, &alice, false);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_after_an_address_change_keeps_the_tracks() {
    let server = TestServer::start().await;
    let mut c = call(&server, "restart", Keepalive::default()).await;
    let alice = c.alice.id();
    let tracks_before: Vec<String> = c.alice.stats().inbound.keys().cloned().collect();

    // Her network changed: new sockets, old ones closed, ICE restarted on both.
    for target in [PeerTarget::Publisher, PeerTarget::Subscriber] {
        c.alice
            .change_path(target, PathChange::RestartIce)
            .await
            .expect("restart");
    }
    // The server answers the publisher re-offer and sends a subscriber offer with new
    // credentials (the client applies both); the old sockets are closed, so media that
    // flows again does so on the new addresses, both ways.
    c.bob.wait_more_packets(&[&c.a_cam], 3 * FLOWING).await;
    c.alice.wait_more_packets(&[&c.b_cam], 3 * FLOWING).await;
    let (pause, stream) = longest_pause(
        &c.alice,
        &[&c.b_cam.track_id, ROOM_AUDIO_TRACK],
        Duration::from_secs(3),
    )
    .await;
    assert!(
        pause < Duration::from_secs(1),
        "{stream} paused {pause:?} after the restart"
    );

    let mut tracks_after: Vec<String> = c.alice.stats().inbound.keys().cloned().collect();
    let mut before = tracks_before;
    before.sort();
    tracks_after.sort();
    assert_eq!(before, tracks_after, "the same tracks, no rejoin");
    drain_events(&mut c).await;
    // Both restarts accepted, the call never interrupted.
    for p in [&c.alice, &c.bob] {
        assert_stayed(p, &alice, false);
    }
    assert_eq!(
        c.alice.stats().negotiation_failures,
        0,
        "every restart offer and answer applied"
    );
    server.stop().await;
}

/// Firefox checks consent about every 4–6 s, Chromium every 2.5 s; both keep sending
/// media. Liveness counts the media, so an 8 s gap between checks never flaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_consent_checks_with_media_never_flap() {
    let mut config = test_config();
    // Below the 8 s between checks: only the media can keep the connection up.
    config.media.ice_disconnected_timeout_ms = 5_000;
    let server = TestServer::start_with(config).await;
    let mut c = call(
        &server,
        "sparse",
        Keepalive::Consent(Duration::from_secs(8)),
    )
    .await;
    let alice = c.alice.id();
    let span = Duration::from_secs(60);
    let alice_gets = [c.b_cam.track_id.as_str(), ROOM_AUDIO_TRACK];
    let bob_gets = [c.a_cam.track_id.as_str()];
    let (alice_pause, bob_pause) = tokio::join!(
        longest_pause(&c.alice, &alice_gets, span),
        longest_pause(&c.bob, &bob_gets, span),
    );
    assert!(
        alice_pause.0 < Duration::from_secs(1),
        "alice's downlink paused {alice_pause:?}"
    );
    assert!(
        bob_pause.0 < Duration::from_secs(1),
        "alice's uplink paused {bob_pause:?}"
    );
    drain_events(&mut c).await;
    for p in [&c.alice, &c.bob] {
        assert_stayed(p, &alice, false);
    }
    server.stop().await;
}

/// libnice keeps its pairs alive with binding indications, which prove nothing; its
/// media does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indications_and_media_keep_a_connection_alive() {
    let mut config = test_config();
    // Shorter than the default 30 s, so the test covers a removal's worth of time.
    config.media.ice_disconnected_timeout_ms = 3_000;
    config.media.ice_failed_timeout_ms = 5_000;
    let server = TestServer::start_with(config).await;
    let mut c = call(
        &server,
        "libnice",
        Keepalive::Indications(Duration::from_secs(2)),
    )
    .await;
    let alice = c.alice.id();
    let (pause, stream) = longest_pause(
        &c.alice,
        &[&c.b_cam.track_id, ROOM_AUDIO_TRACK],
        Duration::from_secs(15),
    )
    .await;
    assert!(pause < Duration::from_secs(1), "{stream} paused {pause:?}");
    c.bob.wait_more_packets(&[&c.a_cam], FLOWING).await;
    drain_events(&mut c).await;
    for p in [&c.alice, &c.bob] {
        assert_stayed(p, &alice, false);
    }
    server.stop().await;
}

/// A client whose media never reaches the server hears why on its signaling socket,
/// and is removed by the media setup timeout (before ICE would give the connection
/// up), with `media_timeout`, counted in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_comes_up_is_reported_then_removed() {
    let mut config = test_config();
    config.media.ice_connect_timeout_ms = 1_500;
    config.media.ice_disconnected_timeout_ms = 1_000;
    config.media.ice_failed_timeout_ms = 14_000;
    config.media.setup_timeout_ms = 3_000;
    let server = TestServer::start_with(config).await;
    let url = format!(
        "{}/v1/rtc?access_token={}",
        server.ws_url,
        server.token("blocked", "carol")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let send = |m: &ClientMessage| Message::text(serde_json::to_string(m).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log: Vec<ServerMessage> = Vec::new();
    let next = async |ws: &mut _, log: &mut Vec<ServerMessage>| -> ServerMessage {
        let ws: &mut tokio_tungstenite::WebSocketStream<_> = ws;
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; events: {log:#?}"))
            .expect("socket open")
            .expect("frame");
        let msg: ServerMessage = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        log.push(msg.clone());
        msg
    };
    ws.send(send(&ClientMessage::Join {})).await.unwrap();
    while !matches!(next(&mut ws, &mut log).await, ServerMessage::Joined { .. }) {}
    let publish = ClientMessage::Publish {
        cid: "cam".into(),
        source: TrackSource::Camera,
        muted: false,
    };
    ws.send(send(&publish)).await.unwrap();
    let track_id = loop {
        if let ServerMessage::PublishAccepted { track, .. } = next(&mut ws, &mut log).await {
            break track.track_id;
        }
    };
    // A real offer, from a client whose UDP never leaves (its engine is never driven).
    let mut engine = Engine::bind([127, 0, 0, 1].into(), MediaProfile::default())
        .await
        .unwrap();
    engine
        .publish(Instant::now(), "cam", &track_id, TrackSource::Camera)
        .unwrap();
    while let Some(m) = engine.poll_signal() {
        ws.send(send(&m)).await.unwrap();
    }
    let started = Instant::now();
    let unreachable = loop {
        if let ServerMessage::MediaUnreachable {
            target,
            after_ms,
            hint,
        } = next(&mut ws, &mut log).await
        {
            break (target, after_ms, hint, started.elapsed());
        }
    };
    assert_eq!(unreachable.0, PeerTarget::Publisher);
    assert_eq!(unreachable.1, 1_500);
    assert!(unreachable.2.contains("TURN"), "a hint: {}", unreachable.2);
    assert!(
        unreachable.3 >= Duration::from_millis(1_400),
        "not before the documented time: {:?}",
        unreachable.3
    );
    // Nothing ever arrived: removed 3 s after the offer, long before ICE's 15 s.
    loop {
        if let ServerMessage::Left { reason, .. } = next(&mut ws, &mut log).await {
            assert_eq!(reason, LeaveReason::MediaTimeout);
            break;
        }
    }
    let removed_after = started.elapsed();
    assert!(
        removed_after >= Duration::from_millis(2_900) && removed_after < Duration::from_secs(14),
        "removed after {removed_after:?}"
    );
    let metrics = reqwest::get(format!("{}/metrics", server.http_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = "chorus_participants_left_total{reason=\"media_timeout\"} 1";
    assert!(metrics.lines().any(|l| l == counted), "{metrics}");
    server.stop().await;
}

/// A client whose network goes down for a while: the server marks it `disconnected`,
/// restarts ICE on both its connections (a new subscriber offer, `ice_restart` for the
/// publisher, which the client answers with a new offer), and the call carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarts_ice_on_a_silent_connection() {
    let mut config = test_config();
    config.media.ice_disconnected_timeout_ms = 2_000;
    config.media.ice_failed_timeout_ms = 20_000;
    let server = TestServer::start_with(config).await;
    let mut c = call(&server, "outage", Keepalive::default()).await;
    let alice = c.alice.id();

    for target in [PeerTarget::Publisher, PeerTarget::Subscriber] {
        c.alice
            .change_path(target, PathChange::Offline)
            .await
            .expect("offline");
    }
    // The subscriber connection (fewer packets) goes silent first, then the publisher:
    // the server asks for a restart of the publisher once it is silent too.
    c.alice
        .until("the server's ice_restart for the publisher", |log| {
            contains(log, |e| {
                matches!(
                    e,
                    ServerMessage::IceRestart {
                        target: PeerTarget::Publisher
                    }
                )
            })
        })
        .await;
    // The network is back just as the client restarts (checks lost while it is down
    // would fail its new pairs for good).
    for target in [PeerTarget::Publisher, PeerTarget::Subscriber] {
        c.alice
            .change_path(target, PathChange::Online)
            .await
            .expect("online");
    }
    c.bob
        .until("alice disconnected", |log| went_disconnected(log, &alice))
        .await;
    let mark = c.bob.mark();
    c.bob
        .expect_since(mark, "alice connected again", |e| {
            matches!(e, ServerMessage::ParticipantState { participant_id, state, .. }
                if *participant_id == alice && *state == ParticipantState::Connected)
        })
        .await;
    c.bob.wait_more_packets(&[&c.a_cam], 3 * FLOWING).await;
    c.alice.wait_more_packets(&[&c.b_cam], 3 * FLOWING).await;
    drain_events(&mut c).await;
    for p in [&c.alice, &c.bob] {
        assert_stayed(p, &alice, true);
    }
    server.stop().await;
}
