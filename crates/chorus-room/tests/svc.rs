//! VP9 SVC on the simulated room: a camera sent as one VP9 stream in three spatial and
//! three temporal layers (`L3T3_KEY`) reaches each subscriber as one continuous stream
//! of the spatial layers that fit its tile (`track_settings`): sequence numbers without
//! a gap, the RTP marker at the end of the highest spatial layer it gets of each
//! picture, up a layer at a keyframe only, down at the next picture. Everyone is told
//! the track's layers each time they become known or change (`track_updated`), once per
//! change; the control API lists each spatial layer's rates; the publisher is told which
//! spatial layers anyone needs (`publisher_layers`, dynacast as a hint).

use chorus_protocol::control::SimulcastStats;
use chorus_protocol::signal::ServerMessage;
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, RtpIn, SVC_LAYER_SIZES, Sim, ms, seq_jumps};

mod layered;
use layered::{layers_on, marked_at_picture_ends, publisher_layers, settings};

/// The spatial layers of each picture received, told by the VP9 descriptors.
fn pictures_of(got: &[RtpIn]) -> Vec<Vec<u8>> {
    layered::pictures(got, |p| p.vp9.expect("a VP9 descriptor").sid)
}

/// A room where alice publishes a camera in VP9 SVC layers and bob receives it: the
/// sim, alice, bob, and the track's id.
fn svc_room(seed: u64) -> (Sim, ClientId, ClientId, String) {
    let mut sim = Sim::new(seed);
    let alice = sim.join_svc("alice");
    let bob = sim.join("bob");
    let video = sim.publish_svc(alice);
    (sim, alice, bob, video)
}

#[test]
fn a_tile_gets_the_spatial_layers_that_fit_it_as_one_stream() {
    let (mut sim, alice, bob, video) = svc_room(21);
    // A large tile from the start, while the camera sends two layers (up to 640×360):
    // when its third comes, the tile gets it (the max is picked again).
    sim.run_for(ms(700));
    let before = sim.rtp(bob, &video);
    assert!(!before.is_empty(), "bob receives it before the third layer");
    assert!(before.iter().all(|p| p.vp9.unwrap().sid < 2));
    sim.signal(bob, settings(&video, 1280, 720));
    sim.run_for(ms(3000));

    // The layers are told once a keyframe's structure came (the roster of a late joiner).
    let carol = sim.join("carol");
    sim.run_for(ms(200));
    let layers = sim.frames(carol).iter().find_map(|m| match m {
        ServerMessage::Joined { participants, .. } => participants
            .iter()
            .flat_map(|p| &p.tracks)
            .find(|t| t.track_id == video)
            .map(|t| t.layers.clone()),
        _ => None,
    });
    assert_eq!(
        layers.as_deref(),
        Some(&["s0", "s1", "s2"].map(String::from)[..])
    );

    // All three layers of every picture, once the allocation allows.
    let got = sim.rtp(bob, &video).to_vec();
    assert!(got.len() > 60, "{} packets", got.len());
    assert_eq!(seq_jumps(&got), [], "one stream, no gap");
    assert!(marked_at_picture_ends(&got));
    let pics = pictures_of(&got);
    assert_eq!(pics.last().unwrap(), &[0, 1, 2], "{pics:?}");
    assert!(got[0].keyframe, "starts at a keyframe");

    // A small tile: the base layer alone from the next picture, marked at its end.
    let from = got.len();
    sim.signal(bob, settings(&video, 160, 90));
    sim.run_for(ms(1000));
    let small = sim.rtp(bob, &video).to_vec();
    assert_eq!(seq_jumps(&small), []);
    assert!(marked_at_picture_ends(&small));
    let pics = pictures_of(&small[from..]);
    let first_small = pics
        .iter()
        .position(|p| p == &[0])
        .expect("down to the base");
    assert!(first_small <= 2, "at once: {pics:?}");
    assert!(pics[first_small..].iter().all(|p| p == &[0]), "{pics:?}");

    // Large again: up only at a keyframe (asked for), all three from there.
    let from = small.len();
    let keyframes = sim.keyframes_sent(alice, &video);
    sim.signal(bob, settings(&video, 1280, 720));
    sim.run_for(ms(2000));
    assert!(
        sim.keyframes_sent(alice, &video) > keyframes,
        "a keyframe was asked for"
    );
    let again = sim.rtp(bob, &video).to_vec();
    assert_eq!(seq_jumps(&again), []);
    assert!(marked_at_picture_ends(&again));
    let tail = &again[from..];
    let first_up = tail
        .iter()
        .position(|p| p.vp9.unwrap().sid > 0)
        .expect("up again");
    assert!(tail[first_up - 1].keyframe, "it goes up at a keyframe");
    assert!(tail[..first_up - 1].iter().all(|p| !p.keyframe));
    assert_eq!(pictures_of(tail).last().unwrap(), &[0, 1, 2]);
}

/// The `layers` of `video` each `track_published` and `track_updated` told `c`, in order.
fn layers_told(sim: &Sim, c: ClientId, video: &str) -> Vec<Vec<String>> {
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::TrackPublished { track } | ServerMessage::TrackUpdated { track }
                if track.track_id == video =>
            {
                Some(track.layers.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn everyone_is_told_the_layers_once_each_time_they_change() {
    let (mut sim, alice, bob, video) = svc_room(22);
    // The first keyframe tells two layers; the one that adds the third (a second in)
    // tells three; keyframes asked for in between and after repeat a structure already
    // told, and tell nothing.
    sim.run_for(ms(500));
    assert!(sim.request_keyframe(bob, &video));
    sim.run_for(ms(2000));
    assert!(sim.request_keyframe(bob, &video));
    sim.run_for(ms(1000));
    assert!(
        sim.keyframes_sent(alice, &video) >= 4,
        "keyframes repeating a structure: {}",
        sim.keyframes_sent(alice, &video)
    );
    let want: Vec<Vec<String>> = vec![
        vec![],
        vec!["s0".into(), "s1".into()],
        vec!["s0".into(), "s1".into(), "s2".into()],
    ];
    // The first is `track_published` (before any media: no layers), the others
    // `track_updated`; the publisher is told too.
    assert_eq!(layers_told(&sim, bob, &video), want, "to bob");
    assert_eq!(layers_told(&sim, alice, &video), want, "to alice");
    assert_eq!(
        sim.count(bob, |m| matches!(m, ServerMessage::TrackUpdated { .. })),
        2
    );
}

/// The room's per-layer stats (control API `simulcast`) of `video`.
fn layer_stats(sim: &mut Sim, video: &str) -> Option<SimulcastStats> {
    match sim.command(Command::Info) {
        Reply::Info(info) => info.simulcast.into_iter().find(|s| s.track_id == video),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_control_api_lists_each_spatial_layer_of_an_svc_track() {
    let (mut sim, _alice, _bob, video) = svc_room(23);
    assert_eq!(layer_stats(&mut sim, &video), None, "nothing arrived yet");

    // Two layers at first.
    sim.run_for(ms(600));
    let two = layer_stats(&mut sim, &video).expect("listed once media arrives");
    assert!(two.svc);
    let rids: Vec<&str> = two.layers.iter().map(|l| l.rid.as_str()).collect();
    assert_eq!(rids, ["s0", "s1"]);
    assert_eq!(two.forwarded.as_deref(), Some("s1"));

    // All three, each measured on its own, on the stream's one SSRC.
    sim.run_for(ms(2000));
    let three = layer_stats(&mut sim, &video).unwrap();
    assert_eq!(three.forwarded.as_deref(), Some("s2"));
    assert_eq!(three.layers.len(), 3);
    let ssrc = three.layers[0].ssrc;
    assert!(ssrc.is_some());
    for (i, l) in three.layers.iter().enumerate() {
        assert_eq!((l.rid.clone(), l.index), (format!("s{i}"), i as u8));
        assert_eq!(l.ssrc, ssrc, "one stream");
        // One packet of SVC_LAYER_SIZES[i] bytes a picture, 30 pictures a second.
        let want = SVC_LAYER_SIZES[i] as u64 * 8 * 30;
        assert!(
            l.bitrate_bps.abs_diff(want) <= want / 10,
            "{}: {} bit/s, want about {want}",
            l.rid,
            l.bitrate_bps
        );
        assert!((28..=31).contains(&l.fps), "{}: {} fps", l.rid, l.fps);
        assert!(l.keyframe_age_ms.is_some(), "{} had a keyframe", l.rid);
    }
    assert!(
        three.layers[2].packets < three.layers[0].packets,
        "s2 came later"
    );
}

#[test]
fn the_publisher_hears_which_spatial_layers_anyone_needs() {
    let (mut sim, alice, bob, video) = svc_room(24);
    // Two layers, then three: bob (no settings) needs the top all along.
    sim.run_for(ms(2000));
    assert_eq!(
        publisher_layers(&sim, alice),
        Vec::<Vec<(String, bool)>>::new()
    );

    // A small tile needs s0 alone: s1 and s2 off, after the delay.
    sim.signal(bob, settings(&video, 160, 90));
    sim.run_for(ms(2500));
    assert!(publisher_layers(&sim, alice).is_empty(), "not at once");
    sim.run_for(ms(1000));
    assert_eq!(
        publisher_layers(&sim, alice),
        [layers_on(&[true, false, false])]
    );

    // A large tile: all three at once (the stream still carries three: the simulated
    // publisher does not apply the hint).
    sim.signal(bob, settings(&video, 1280, 720));
    sim.run_for(ms(50));
    assert_eq!(
        publisher_layers(&sim, alice),
        [
            layers_on(&[true, false, false]),
            layers_on(&[true, true, true])
        ]
    );
}

#[test]
fn a_small_tile_from_the_start_turns_off_each_upper_layer_as_it_comes() {
    let (mut sim, alice, bob, video) = svc_room(25);
    // Before the first keyframe: nothing to tell yet.
    sim.signal(bob, settings(&video, 160, 90));
    assert!(sim.rtp(bob, &video).is_empty(), "set before any media");
    sim.run_for(ms(6000));
    // s1 (of the first keyframe's two) off after the delay, while s2 (added a second
    // in) still has its own to run; then s2.
    assert_eq!(
        publisher_layers(&sim, alice),
        [
            layers_on(&[true, false, true]),
            layers_on(&[true, false, false])
        ]
    );
}
