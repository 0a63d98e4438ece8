//! Whole-room scenarios: the real room core, real client peer connections connected in
//! memory, a simulated clock (`chorus_room::sim`). Each asserts behaviour a change to
//! the core could break.

use std::collections::BTreeSet;

use chorus_protocol::signal::{ROOM_AUDIO_TRACK, ServerMessage};
use chorus_room::sim::{Sim, ms, opus_loop, seq_jumps};

const MIX: &str = ROOM_AUDIO_TRACK;

#[test]
fn join_publish_subscribe_media_flows() {
    let mut sim = Sim::new(1);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let video = sim.publish_video(alice);
    let audio = sim.publish_audio(alice);
    sim.run_for(ms(1000));

    assert!(
        matches!(&sim.frames(bob)[0], ServerMessage::Joined { participants, .. }
        if participants.iter().any(|p| p.identity == "alice"))
    );
    assert_eq!(
        sim.count(
            alice,
            |m| matches!(m, ServerMessage::ParticipantJoined { participant }
            if participant.identity == "bob")
        ),
        1
    );
    for track in [&video, &audio] {
        assert_eq!(
            sim.count(
                bob,
                |m| matches!(m, ServerMessage::TrackPublished { track: t }
                if t.track_id == *track)
            ),
            1,
            "track_published {track}"
        );
    }
    let got = sim.rtp(bob, &video);
    assert!(got.len() > 40, "video packets: {}", got.len());
    assert!(
        got[0].keyframe,
        "the subscriber's video starts at a keyframe"
    );
    assert_eq!(seq_jumps(got), []);
    // One other talker: the room audio relays alice's Opus frames as they are.
    let heard = sim.rtp(bob, MIX);
    assert!(heard.len() > 30, "room audio packets: {}", heard.len());
    let sizes: BTreeSet<usize> = opus_loop().iter().map(|f| f.len()).collect();
    assert!(heard.iter().all(|p| sizes.contains(&p.payload_len)));
    // Nothing comes back to alice: she is the only talker and publisher.
    assert!(sim.rtp(alice, MIX).is_empty());
}
