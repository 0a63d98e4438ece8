//! Simulcast through a whole server: chorus-client publishes a camera in three layers
//! (rids q/h/f, 180p/360p/720p), a subscriber picks one with `track_settings`, and the
//! VP8 keyframes it receives say which layer the server forwards.

mod common;

use chorus_client::{ClientConfig, MediaProfile, TrackSource};
use common::{FLOWING, Participant, TestServer, contains, track_published};

const ROOM: &str = "simulcast";

/// What each layer's keyframe header says, lowest first.
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_gets_the_layer_its_track_settings_ask_for() {
    let server = TestServer::start().await;
    let mut config = ClientConfig::new(&server.ws_url, server.token(ROOM, "alice"));
    config.media = MediaProfile {
        simulcast: true,
        ..MediaProfile::default()
    };
    let client = chorus_client::connect(config).await.expect("alice joins");
    let mut alice = Participant::new("alice", client);
    let mut bob = server.join(ROOM, "bob").await;

    let cam = alice.publish_ok(TrackSource::Camera).await;
    let id = cam.track_id.clone();
    bob.until("track_published for alice's camera", |log| {
        contains(log, track_published(&id))
    })
    .await;
    bob.wait_receiving(&[&cam], FLOWING).await;

    // Alice sends every layer on its own SSRC, and the server placed each one.
    let sent = alice
        .wait_stats("every layer sent", |s| {
            s.outbound[&id].layers.len() == 3
                && s.outbound[&id].layers.iter().all(|l| l.frames >= 10)
        })
        .await;
    let layers = &sent.outbound[&id].layers;
    let rids: Vec<&str> = layers.iter().map(|l| l.rid).collect();
    assert_eq!(rids, ["q", "h", "f"]);
    let (status, room) = server
        .call(reqwest::Method::GET, &format!("/v1/rooms/{ROOM}"), None)
        .await;
    assert_eq!(status, 200, "{room}");
    let track = &room["simulcast"][0];
    assert_eq!(track["track_id"], id.as_str(), "{room}");
    for (i, layer) in layers.iter().enumerate() {
        let placed = &track["layers"][i];
        assert_eq!(placed["rid"], layer.rid, "{room}");
        assert_eq!(placed["ssrc"], layer.ssrc, "{room}");
        assert!(placed["packets"].as_u64() > Some(0), "{room}");
    }

    // Bob shows it small: the low layer, from a keyframe the server asked the q
    // layer (its SSRC alone) for.
    bob.track_settings(&id, Some((320, 180)), true, None)
        .await
        .unwrap();
    bob.wait_stats("the q layer", |s| {
        s.inbound[&id].frame_size == Some(SIZES[0])
    })
    .await;
    let q = alice
        .wait_stats("a keyframe request for q", |s| {
            s.outbound[&id].layers[0].keyframe_requests >= 1
        })
        .await;
    assert!(q.outbound[&id].layers[0].keyframes >= 2, "{q:#?}");
    let skipped = |room: &serde_json::Value| {
        room["forwarding"]["skipped"]["layer_not_forwarded"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = skipped(&room);
    let (_, room) = server
        .call(reqwest::Method::GET, &format!("/v1/rooms/{ROOM}"), None)
        .await;
    assert!(skipped(&room) > before, "the other layers skipped: {room}");

    // Then large: the high layer.
    bob.track_settings(&id, Some((1280, 720)), true, None)
        .await
        .unwrap();
    let stats = bob
        .wait_stats("the f layer", |s| {
            s.inbound[&id].frame_size == Some(SIZES[2])
        })
        .await;
    bob.wait_more_packets(&[&cam], FLOWING).await;
    assert_eq!(stats.negotiation_failures, 0);
    assert_eq!(alice.stats().negotiation_failures, 0);
}
