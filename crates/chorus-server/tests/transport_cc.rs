//! A subscriber that answers without transport-wide congestion control (as the load
//! harness's `--no-transport-cc` makes its receivers) gets its media all the same, and
//! the server keeps no bandwidth estimate for it, so the allocation leaves it alone; one
//! that answers it (as browsers do) has an estimate.

mod common;

use std::time::Duration;

use chorus_client::{ClientConfig, MediaProfile, TrackSource};
use common::{FLOWING, Participant, TestServer, contains, track_published};

const ROOM: &str = "twcc";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_without_transport_cc_has_no_estimate_but_gets_its_media() {
    let server = TestServer::start().await;
    let mut alice = server.join(ROOM, "alice").await;
    let mut bob = server.join(ROOM, "bob").await;
    let mut config = ClientConfig::new(&server.ws_url, server.token(ROOM, "carol"));
    config.media = MediaProfile {
        transport_cc: false,
        ..MediaProfile::default()
    };
    let client = chorus_client::connect(config).await.expect("carol joins");
    let mut carol = Participant::new("carol", client);

    let cam = alice.publish_ok(TrackSource::Camera).await;
    let id = cam.track_id.clone();
    for p in [&mut bob, &mut carol] {
        p.until("alice's camera published", |log| {
            contains(log, track_published(&id))
        })
        .await;
        p.wait_receiving(&[&cam], FLOWING).await;
    }

    // Bob's feedback gives him an estimate; carol never gets one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let subscribers = loop {
        let (status, room) = server
            .call(reqwest::Method::GET, &format!("/v1/rooms/{ROOM}"), None)
            .await;
        assert_eq!(status, 200, "{room}");
        let subscribers = room["subscribers"].as_array().cloned().unwrap_or_default();
        let bob_estimated = subscribers
            .iter()
            .any(|s| s["identity"] == "bob" && s["estimated_bitrate_bps"].as_u64() > Some(0));
        if bob_estimated {
            break subscribers;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no estimate for bob: {room}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        subscribers.iter().all(|s| s["identity"] != "carol"),
        "carol answered without transport-cc: {subscribers:?}"
    );
}
