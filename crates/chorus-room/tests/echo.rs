//! The echo test room on the simulated clock: its one participant gets its own
//! microphone back about a second later on its room-audio track, and its own camera.

use chorus_protocol::signal::ROOM_AUDIO_TRACK;
use chorus_room::sim::{Sim, ms, seq_jumps};

#[test]
fn the_echo_room_sends_a_participant_its_own_media() {
    let mut sim = Sim::with_config(41, |c| {
        c.echo = true;
        c.max_participants = 1;
    });
    let alice = sim.join("alice");
    let cam = sim.publish_video(alice);
    let start = sim.now();
    sim.publish_audio(alice);
    sim.run_for(ms(900));
    assert!(
        sim.rtp(alice, ROOM_AUDIO_TRACK).is_empty(),
        "nothing before the delay"
    );
    sim.run_for(ms(2100));
    let audio = sim.rtp(alice, ROOM_AUDIO_TRACK);
    // Her first packets left about when she published (plus the connection's setup).
    let first = audio.first().expect("her voice comes back").at - start;
    assert!(first >= ms(1000) && first < ms(1500), "{first:?}");
    assert!(audio.len() > 80, "{} packets", audio.len());
    assert_eq!(seq_jumps(audio), []);
    // One SSRC, timestamps 20 ms apart: rewritten as one stream.
    assert!(audio.iter().all(|p| p.ssrc == audio[0].ssrc));
    assert!(
        audio
            .windows(2)
            .all(|w| w[1].ts.wrapping_sub(w[0].ts) == 960)
    );
    let video = sim.rtp(alice, &cam);
    assert!(video.len() > 40, "her own camera: {}", video.len());
    assert!(video[0].keyframe);
}

#[test]
fn an_ordinary_room_sends_no_one_their_own_media() {
    let mut sim = Sim::new(42);
    let alice = sim.join("alice");
    let cam = sim.publish_video(alice);
    sim.publish_audio(alice);
    sim.run_for(ms(3000));
    assert!(sim.rtp(alice, ROOM_AUDIO_TRACK).is_empty());
    assert!(sim.rtp(alice, &cam).is_empty());
}
