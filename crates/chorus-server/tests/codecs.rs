//! H.264 next to VP8 through a whole server: one publisher sends its camera in H.264
//! (packetization mode 1, constrained baseline), another in VP8, and a subscriber that
//! takes both receives each in its own codec, from a keyframe, and can ask for more.

mod common;

use chorus_client::{ClientConfig, MediaProfile, TrackSource, VideoCodec};
use common::{FLOWING, Participant, TestServer, contains, track_published};

const ROOM: &str = "codecs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_vp8_publishers_reach_a_subscriber_that_takes_both() {
    let server = TestServer::start().await;
    let mut config = ClientConfig::new(&server.ws_url, server.token(ROOM, "alice"));
    config.media = MediaProfile {
        video_codec: VideoCodec::H264,
        ..MediaProfile::default()
    };
    let client = chorus_client::connect(config).await.expect("alice joins");
    let mut alice = Participant::new("alice", client);
    let mut carol = server.join(ROOM, "carol").await;
    let mut bob = server.join(ROOM, "bob").await;

    let h264 = alice.publish_ok(TrackSource::Camera).await;
    let vp8 = carol.publish_ok(TrackSource::Camera).await;
    bob.until("both cameras published", |log| {
        contains(log, track_published(&h264.track_id))
            && contains(log, track_published(&vp8.track_id))
    })
    .await;
    bob.wait_receiving(&[&h264, &vp8], FLOWING).await;

    // Each arrives in its publisher's codec: the keyframes counted are H.264 SPS packets
    // under payload type 102 for Alice's, VP8 keyframe headers for Carol's.
    let stats = bob.stats();
    let (a, c) = (
        &stats.inbound[&h264.track_id],
        &stats.inbound[&vp8.track_id],
    );
    assert!(a.keyframes >= 1, "H.264 starts with a keyframe: {a:?}");
    assert_eq!(a.frame_size, None, "not VP8: {a:?}");
    assert!(c.keyframes >= 1, "VP8 starts with a keyframe: {c:?}");
    assert!(c.frame_size.is_some(), "VP8: {c:?}");
    // Alice receives Carol's VP8 though she sends H.264.
    alice.wait_receiving(&[&vp8], FLOWING).await;

    // A keyframe request for the H.264 track reaches Alice, and the keyframe she sends
    // then is forwarded.
    let before = alice.stats().outbound[&h264.track_id].keyframes;
    let received = bob.stats().inbound[&h264.track_id].keyframes;
    bob.request_keyframe(&h264.track_id).await.unwrap();
    alice
        .wait_stats("a keyframe sent on request", |s| {
            s.outbound[&h264.track_id].keyframes > before
        })
        .await;
    bob.wait_stats("that keyframe received", |s| {
        s.inbound[&h264.track_id].keyframes > received
    })
    .await;

    // A subscriber who comes later starts the H.264 track at a keyframe too: the
    // server recognised it (its forwarder waits for one).
    let dave = server.join(ROOM, "dave").await;
    dave.wait_receiving(&[&h264], FLOWING).await;
    assert!(dave.stats().inbound[&h264.track_id].keyframes >= 1);
    for p in [&alice, &bob, &carol, &dave] {
        assert_eq!(p.stats().negotiation_failures, 0, "{}", p.id());
    }
    server.stop().await;
}
