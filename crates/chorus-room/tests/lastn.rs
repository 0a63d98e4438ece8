//! Last-N on the simulated room: a subscriber receives the cameras of at most N others
//! (6 by default), its pins first and then who spoke last; the others are paused (the
//! track stays, nothing is sent) and resume at a keyframe the server asks for, numbered
//! on without a gap; each change is told (`video_paused`, `video_resumed`). Screen
//! shares are outside N.

use chorus_protocol::TrackSource;
use chorus_protocol::signal::{ClientMessage, PauseReason, ServerMessage};
use chorus_room::sim::{ClientId, Sim, ms, seq_jumps};
use chorus_room::skips::Skip;

/// (track, paused) for every `video_paused` / `video_resumed` `c` got, in order.
fn pauses(sim: &Sim, c: ClientId) -> Vec<(String, bool)> {
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::VideoPaused {
                track_id, reason, ..
            } => {
                assert_eq!(*reason, PauseReason::LastN);
                Some((track_id.clone(), true))
            }
            ServerMessage::VideoResumed { track_id, .. } => Some((track_id.clone(), false)),
            _ => None,
        })
        .collect()
}

/// Whether `c` got more than 10 packets of `track` since it had `before`.
fn grew(sim: &Sim, c: ClientId, track: &str, before: usize) -> bool {
    sim.rtp(c, track).len() > before + 10
}

fn error_code(sim: &Sim, c: ClientId) -> Option<String> {
    match sim.frames(c).last() {
        Some(ServerMessage::Error { code, .. }) => Some(code.clone()),
        _ => None,
    }
}

/// A viewer and seven others with a camera each, in join order.
fn room_of_eight(seed: u64) -> (Sim, ClientId, Vec<ClientId>, Vec<String>) {
    let mut sim = Sim::new(seed);
    let viewer = sim.join("viewer");
    let mut others = Vec::new();
    let mut cams = Vec::new();
    for i in 1..=7 {
        let c = sim.join(&format!("p{i}"));
        cams.push(sim.publish_video(c));
        others.push(c);
    }
    sim.run_for(ms(1500));
    (sim, viewer, others, cams)
}

#[test]
fn the_seventh_camera_is_paused_and_resumes_at_a_keyframe_when_its_owner_speaks() {
    let (mut sim, viewer, others, cams) = room_of_eight(21);

    // Nobody spoke: the first six to join are shown; the seventh is paused, told once.
    assert_eq!(pauses(&sim, viewer), [(cams[6].clone(), true)]);
    for cam in &cams[..6] {
        assert!(sim.rtp(viewer, cam).len() > 20, "{cam}");
    }
    assert_eq!(sim.rtp(viewer, &cams[6]).len(), 0);
    assert!(sim.skips().get(Skip::LastNPaused) > 20);
    // Each of the others sees six of its six others: nothing paused for them.
    assert!(pauses(&sim, others[0]).is_empty());

    // p7 speaks: its camera comes in at a keyframe; the one who joined last of the
    // shown ones (p6) goes out.
    let plis = sim.plis(others[6]).len();
    sim.publish_audio(others[6]);
    sim.run_for(ms(2000));
    assert_eq!(
        pauses(&sim, viewer),
        [
            (cams[6].clone(), true),
            (cams[6].clone(), false),
            (cams[5].clone(), true)
        ]
    );
    assert!(sim.plis(others[6]).len() > plis, "a keyframe is asked for");
    let got = sim.rtp(viewer, &cams[6]);
    assert!(got.len() > 20 && got[0].keyframe);
    assert_eq!(seq_jumps(got), []);

    // p6 speaks after p7 stopped: p6 comes back, numbered on from the last packet
    // it got before the pause (no gap for the decoder), from a keyframe asked for.
    sim.signal(
        others[6],
        ClientMessage::Mute {
            track_id: sim
                .frames(others[6])
                .iter()
                .find_map(|m| match m {
                    ServerMessage::PublishAccepted { track, .. }
                        if track.source == TrackSource::Microphone =>
                    {
                        Some(track.track_id.clone())
                    }
                    _ => None,
                })
                .expect("p7's microphone"),
            muted: true,
        },
    );
    let before = sim.rtp(viewer, &cams[5]).len();
    let plis = sim.plis(others[5]).len();
    sim.publish_audio(others[5]);
    sim.run_for(ms(2000));
    let got = sim.rtp(viewer, &cams[5]);
    assert!(grew(&sim, viewer, &cams[5], before));
    assert!(got[before].keyframe, "resumes at a keyframe");
    assert_eq!(seq_jumps(got), [], "numbered on across the pause");
    assert!(sim.plis(others[5]).len() > plis);
    // p7 spoke before p6: both shown; p5 (the last to join of the silent) goes out.
    let last = pauses(&sim, viewer);
    assert_eq!(
        last[3..],
        [(cams[5].clone(), false), (cams[4].clone(), true)]
    );
}

#[test]
fn pins_come_first_and_last_n_is_the_subscribers_own() {
    let (mut sim, viewer, others, cams) = room_of_eight(22);
    let id = |sim: &Sim, c: ClientId| sim.participant_id(c).to_owned();

    // Pinning p7 shows it, in place of p6.
    let pin = vec![id(&sim, others[6])];
    sim.signal(
        viewer,
        ClientMessage::SetPins {
            participant_ids: pin,
        },
    );
    sim.run_for(ms(500));
    let n = sim.rtp(viewer, &cams[6]).len();
    assert!(n > 5 && sim.rtp(viewer, &cams[6])[0].keyframe);
    assert_eq!(
        pauses(&sim, viewer)[1..],
        [(cams[6].clone(), false), (cams[5].clone(), true)]
    );

    // A web client asks for one: its pin alone.
    sim.signal(viewer, ClientMessage::SetLastN { last_n: 1 });
    sim.run_for(ms(500));
    let counts: Vec<usize> = cams.iter().map(|c| sim.rtp(viewer, c).len()).collect();
    sim.run_for(ms(500));
    for (i, cam) in cams.iter().enumerate() {
        let more = sim.rtp(viewer, cam).len() > counts[i];
        assert_eq!(more, i == 6, "camera {i}");
    }

    // Unpinned, the first to join takes the one place.
    sim.signal(
        viewer,
        ClientMessage::SetPins {
            participant_ids: vec![],
        },
    );
    sim.run_for(ms(500));
    let last = pauses(&sim, viewer);
    assert_eq!(
        last[last.len() - 2..],
        [(cams[0].clone(), false), (cams[6].clone(), true)]
    );

    // Bad requests: an error, and nothing changes.
    let told = pauses(&sim, viewer).len();
    sim.signal(viewer, ClientMessage::SetLastN { last_n: 351 });
    assert_eq!(error_code(&sim, viewer).as_deref(), Some("bad_message"));
    let unknown = vec!["PA_nobody".to_owned()];
    sim.signal(
        viewer,
        ClientMessage::SetPins {
            participant_ids: unknown,
        },
    );
    assert_eq!(
        error_code(&sim, viewer).as_deref(),
        Some("participant_not_found")
    );
    let many = vec![id(&sim, others[0]); 9];
    sim.signal(
        viewer,
        ClientMessage::SetPins {
            participant_ids: many,
        },
    );
    assert_eq!(error_code(&sim, viewer).as_deref(), Some("bad_message"));
    sim.run_for(ms(300));
    assert_eq!(pauses(&sim, viewer).len(), told);

    // A pinned participant who leaves is unpinned; last-N 0 pauses every camera.
    sim.signal(viewer, ClientMessage::SetLastN { last_n: 0 });
    sim.run_for(ms(300));
    let counts: Vec<usize> = cams.iter().map(|c| sim.rtp(viewer, c).len()).collect();
    sim.run_for(ms(500));
    let now: Vec<usize> = cams.iter().map(|c| sim.rtp(viewer, c).len()).collect();
    assert_eq!(now, counts);
}

#[test]
fn a_screen_share_is_outside_last_n_and_a_second_camera_is_refused() {
    let (mut sim, viewer, others, cams) = room_of_eight(23);
    sim.signal(viewer, ClientMessage::SetLastN { last_n: 1 });
    // p7, whose camera the viewer does not receive, shares its screen.
    let screen = sim.publish(others[6], TrackSource::ScreenShare);
    sim.run_for(ms(1000));
    assert!(sim.rtp(viewer, &screen).len() > 20);
    assert!(sim.rtp(viewer, &cams[6]).is_empty());
    assert!(pauses(&sim, viewer).iter().all(|(t, _)| *t != screen));

    // One camera and one screen share each: a second of either is refused.
    for source in [TrackSource::Camera, TrackSource::ScreenShare] {
        sim.signal(
            others[6],
            ClientMessage::Publish {
                cid: format!("second-{}", source.as_str()),
                source,
                muted: false,
            },
        );
        assert_eq!(
            error_code(&sim, others[6]).as_deref(),
            Some("source_already_published")
        );
    }
}

#[test]
fn screen_share_audio_is_a_track_of_its_own_outside_the_room_audio() {
    let mut sim = Sim::new(24);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let screen = sim.publish(alice, TrackSource::ScreenShare);
    let sound = sim.publish(alice, TrackSource::ScreenShareAudio);
    sim.run_for(ms(1500));

    // bob gets the tab's sound on its own track, as it arrives (50 packets a second)…
    let got = sim.rtp(bob, &sound);
    assert!(got.len() > 40, "{} packets", got.len());
    assert_eq!(seq_jumps(got), []);
    assert!(sim.rtp(bob, &screen).len() > 20);
    // …and not in the room audio (alice has no microphone: bob's room audio is silent),
    // nor does it make alice a speaker.
    assert!(
        sim.rtp(bob, chorus_protocol::signal::ROOM_AUDIO_TRACK)
            .is_empty()
    );
    let alice_id = sim.participant_id(alice).to_owned();
    let spoke = sim.frames(bob).iter().any(|m| {
        matches!(m, ServerMessage::ActiveSpeakers { speakers }
            if speakers.iter().any(|s| s.participant_id == alice_id))
    });
    assert!(!spoke, "screen sound is not speech");

    // Muted, it stops; one per participant, like every source.
    sim.signal(
        alice,
        ClientMessage::Mute {
            track_id: sound.clone(),
            muted: true,
        },
    );
    sim.run_for(ms(200));
    let n = sim.rtp(bob, &sound).len();
    sim.run_for(ms(500));
    assert_eq!(sim.rtp(bob, &sound).len(), n);
    sim.signal(
        alice,
        ClientMessage::Publish {
            cid: "second-sound".into(),
            source: TrackSource::ScreenShareAudio,
            muted: false,
        },
    );
    assert_eq!(
        error_code(&sim, alice).as_deref(),
        Some("source_already_published")
    );
}
