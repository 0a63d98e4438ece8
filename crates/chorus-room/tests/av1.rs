//! AV1 on the simulated room: a camera sent in AV1 as one stream of one layer (its
//! descriptors name only T0 frames) reaches its subscribers whole, as VP8 would: in the
//! publisher's payload type, negotiated in the
//! server's offer (AV1 first in the section, the other video codecs after it), from a
//! keyframe (found by the N bit of the AV1 aggregation header) and without a gap, its
//! dependency descriptors (taken in the publisher's answer) stripped; a late
//! joiner's forwarder waits for a keyframe, which the room asks the publisher for.
//! Sent in layers (L3T3) with dependency descriptors, it reaches each subscriber as the
//! spatial layers that fit its tile, as VP9 SVC does (`svc.rs`).

use chorus_protocol::signal::ServerMessage;
use chorus_room::sim::{ClientId, KEYFRAME_PACKETS, RtpIn, SVC_LAYER_SIZES, Sim, ms, seq_jumps};
use chorus_transport::AV1_PT;
use chorus_transport::webrtc::sdp::DD_URI;

mod layered;
use layered::{layers_on, marked_at_picture_ends, publisher_layers, settings};

/// The spatial layers of each picture received, each packet's told by its size (the
/// descriptors are not forwarded).
fn pictures_of(got: &[RtpIn]) -> Vec<Vec<usize>> {
    layered::pictures(got, |p| {
        SVC_LAYER_SIZES
            .iter()
            .position(|&s| s == p.payload_len)
            .expect("a layer's size")
    })
}

/// The last SDP offer `c` received from the server.
fn last_offer(sim: &Sim, c: ClientId) -> String {
    let offers = sim.frames(c).iter().rev().find_map(|m| match m {
        ServerMessage::Offer { sdp, .. } => Some(sdp.clone()),
        _ => None,
    });
    offers.expect("an offer")
}

/// The last SDP answer `c` received from the server.
fn last_answer(sim: &Sim, c: ClientId) -> String {
    let answers = sim.frames(c).iter().rev().find_map(|m| match m {
        ServerMessage::Answer { sdp, .. } => Some(sdp.clone()),
        _ => None,
    });
    answers.expect("an answer")
}

#[test]
fn an_av1_camera_is_forwarded_whole_from_a_keyframe() {
    let mut sim = Sim::new(45);
    let alice = sim.join_av1("alice");
    let bob = sim.join("bob");
    let video = sim.publish_video(alice);
    sim.run_for(ms(1500));

    // The publisher's descriptors (the keyframe's in a two-byte header extension) are
    // negotiated, arrive, and are read past.
    let answer = last_answer(&sim, alice);
    assert!(answer.contains("a=extmap-allow-mixed\r\n"), "{answer}");
    assert!(answer.contains(DD_URI), "{answer}");
    let offer = last_offer(&sim, bob);
    assert!(
        offer.contains("m=video 9 UDP/TLS/RTP/SAVPF 45 96 102 98\r\n"),
        "{offer}"
    );
    assert!(offer.contains("a=fmtp:45 level-idx=5;profile=0;tier=0\r\n"));
    let got = sim.rtp(bob, &video);
    assert!(got.len() > 40, "bob receives alice's camera: {}", got.len());
    assert!(got.iter().all(|p| p.payload_type == AV1_PT));
    assert!(got[0].keyframe, "from a keyframe");
    assert_eq!(seq_jumps(got), [], "no gap");

    // A late joiner: the room asks alice for a keyframe, carol starts with it.
    let sent = sim.keyframes_sent(alice, &video);
    let carol = sim.join("carol");
    sim.run_for(ms(1000));
    let got = sim.rtp(carol, &video);
    assert!(got.len() > 20, "carol receives it: {}", got.len());
    assert!(got[0].keyframe, "from a keyframe");
    assert_eq!(got.iter().filter(|p| p.keyframe).count(), 1);
    assert!(sim.keyframes_sent(alice, &video) > sent, "asked for one");
    // A keyframe's packets arrive whole: every packet of it, then delta frames.
    let first_delta = got.iter().position(|p| p.ts != got[0].ts).unwrap();
    assert_eq!(first_delta, KEYFRAME_PACKETS);
}

/// Without the dependency descriptor (not forwarded) Chromium decodes one spatial layer
/// of AV1 only (tests/browser/av1.js): every tile, small or large, gets the base layer
/// alone, while the layers are still read and told.
#[test]
fn an_av1_svc_camera_reaches_every_tile_as_its_base_layer_alone() {
    let mut sim = Sim::new(46);
    let alice = sim.join_av1("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    let video = sim.publish_svc(alice);
    sim.signal(bob, settings(&video, 160, 90));
    sim.signal(carol, settings(&video, 1280, 720));
    sim.run_for(ms(3000));

    // Its layers are told from the keyframe's structure, as a VP9 SVC track's.
    let told = sim.frames(carol).iter().rev().find_map(|m| match m {
        ServerMessage::TrackPublished { track } | ServerMessage::TrackUpdated { track }
            if track.track_id == video =>
        {
            Some(track.layers.clone())
        }
        _ => None,
    });
    assert_eq!(told.unwrap(), ["s0", "s1", "s2"]);

    // Small tile and large alike: the base layer alone, from a keyframe, one stream
    // without a gap, every picture marked at its end, all temporal layers.
    let small = sim.rtp(bob, &video).to_vec();
    let large = sim.rtp(carol, &video);
    for (tile, got) in [("small", &small[..]), ("large", large)] {
        assert!(got.len() > 40, "{tile}: {} packets", got.len());
        assert!(got[0].keyframe, "{tile}: from a keyframe");
        assert_eq!(seq_jumps(got), [], "{tile}: one stream, no gap");
        assert!(marked_at_picture_ends(got), "{tile}");
        let pics = pictures_of(got);
        assert!(pics.iter().all(|p| p == &[0]), "{tile}: {pics:?}");
    }
    let (s, l) = (small.len() as i64, large.len() as i64);
    assert!(
        (s - l).abs() * 10 < s,
        "the same layers: {s} and {l} packets"
    );

    // Nobody can be sent the upper layers, so dynacast tells the publisher to stop them
    // (after its delay), though carol's tile is large.
    sim.run_for(ms(1000));
    assert_eq!(
        publisher_layers(&sim, alice),
        [layers_on(&[true, false, false])]
    );
}
