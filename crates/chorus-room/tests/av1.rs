//! AV1 on the simulated room: a camera sent in AV1 as one stream (no layers) reaches
//! its subscribers as VP8 would: in the publisher's payload type, negotiated in the
//! server's offer (AV1 first in the section, the other video codecs after it), from a
//! keyframe (found by the N bit of the AV1 aggregation header) and without a gap, its
//! dependency descriptors (taken in the publisher's answer) stripped; a late
//! joiner's forwarder waits for a keyframe, which the room asks the publisher for.

use chorus_protocol::signal::ServerMessage;
use chorus_room::sim::{ClientId, KEYFRAME_PACKETS, Sim, ms, seq_jumps};
use chorus_transport::AV1_PT;
use chorus_transport::webrtc::sdp::DD_URI;

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
