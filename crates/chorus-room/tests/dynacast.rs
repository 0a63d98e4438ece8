//! Dynacast on the simulated room: when no subscriber needs a simulcast layer (all ask
//! for small tiles, or are paused), the publisher is told to stop it
//! (`publisher_layers`) after a few seconds, and to send it again at once when someone
//! needs it; the lowest layer always stays on. The simulated publisher applies what it
//! is told, as a browser's `setParameters` does.

use chorus_protocol::control::SimulcastStats;
use chorus_protocol::signal::{ClientMessage, ServerMessage};
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, LAYERS, Sim, ms, seq_jumps};

/// Every `publisher_layers` `c` got: the `active` flags in rid order (q, h, f).
fn told(sim: &Sim, c: ClientId) -> Vec<Vec<bool>> {
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::PublisherLayers { layers, .. } => {
                let rids: Vec<&str> = layers.iter().map(|l| l.rid.as_str()).collect();
                assert_eq!(rids, ["q", "h", "f"]);
                Some(layers.iter().map(|l| l.active).collect())
            }
            _ => None,
        })
        .collect()
}

fn stats(sim: &mut Sim) -> SimulcastStats {
    match sim.command(Command::Info) {
        Reply::Info(mut info) => info.simulcast.remove(0),
        other => panic!("{other:?}"),
    }
}

fn small_tile(track: &str) -> ClientMessage {
    ClientMessage::TrackSettings {
        track_id: track.to_owned(),
        width: Some(320),
        height: Some(180),
        visible: true,
        max_quality: None,
    }
}

#[test]
fn a_layer_nobody_needs_is_stopped_and_restarted_when_someone_does() {
    let (q, f) = (LAYERS[0].1, LAYERS[2].1);
    let mut sim = Sim::new(31);
    let alice = sim.join_simulcast("alice");
    sim.apply_publisher_layers(alice);
    let bob = sim.join("bob");
    let video = sim.publish_simulcast(alice);
    sim.run_for(ms(1000));
    assert!(told(&sim, alice).is_empty(), "bob wants the top");

    // bob shows a small tile: q is all anyone needs. h and f stop only after a while.
    sim.signal(bob, small_tile(&video));
    sim.run_for(ms(2500));
    assert!(told(&sim, alice).is_empty(), "not before 3 s");
    sim.run_for(ms(1000));
    assert_eq!(told(&sim, alice), [[true, false, false]]);
    sim.run_for(ms(1500));
    let s = stats(&mut sim);
    let rates: Vec<u64> = s.layers.iter().map(|l| l.bitrate_bps).collect();
    assert!(rates[0] > 0 && rates[1] == 0 && rates[2] == 0, "{rates:?}");
    // bob's q went on without a break.
    let got = sim.rtp(bob, &video);
    assert!(got.iter().rev().take(20).all(|p| p.payload_len == q));
    assert_eq!(seq_jumps(got), []);

    // carol joins and asks nothing: the top for her, turned on at once, and she gets f
    // from its keyframe.
    let carol = sim.join("carol");
    assert_eq!(told(&sim, alice)[1..], [[true, true, true]]);
    sim.run_for(ms(1500));
    let got = sim.rtp(carol, &video);
    let first_f = got
        .iter()
        .position(|p| p.payload_len == f)
        .expect("f comes");
    assert!(got[first_f].keyframe);
    assert_eq!(seq_jumps(got), []);

    // carol hides it (and bob keeps his small tile): off again after the delay.
    sim.signal(
        carol,
        ClientMessage::TrackSettings {
            track_id: video.clone(),
            width: None,
            height: None,
            visible: false,
            max_quality: None,
        },
    );
    sim.run_for(ms(3500));
    assert_eq!(told(&sim, alice)[2..], [[true, false, false]]);

    // Both gone: nobody needs anything, and q stays on (nothing more is said).
    sim.leave(bob);
    sim.leave(carol);
    sim.run_for(ms(4000));
    assert_eq!(told(&sim, alice).len(), 3);
    assert!(stats(&mut sim).layers[0].bitrate_bps > 0);
}

#[test]
fn the_top_layers_stop_when_the_last_subscriber_wanting_them_leaves() {
    let mut sim = Sim::new(32);
    let alice = sim.join_simulcast("alice");
    sim.apply_publisher_layers(alice);
    let dave = sim.join_simulcast("dave");
    sim.apply_publisher_layers(dave);
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    let videos = [sim.publish_simulcast(alice), sim.publish_simulcast(dave)];
    sim.run_for(ms(1000));
    for video in &videos {
        sim.signal(bob, small_tile(video));
    }
    sim.signal(alice, small_tile(&videos[1]));
    sim.signal(dave, small_tile(&videos[0]));
    // carol asks nothing (the top of both) and keeps every layer on.
    sim.run_for(ms(4000));
    assert!(told(&sim, alice).is_empty() && told(&sim, dave).is_empty());

    // She leaves without a word about either track: bob's tiles are all that is left.
    sim.leave(carol);
    sim.run_for(ms(4000));
    assert_eq!(told(&sim, alice), [[true, false, false]]);
    assert_eq!(told(&sim, dave), [[true, false, false]]);
}

#[test]
fn a_simulcast_camera_paused_by_last_n_keeps_its_lowest_layer_and_resumes_at_the_top() {
    let f = LAYERS[2].1;
    let mut sim = Sim::new(32);
    let alice = sim.join_simulcast("alice");
    sim.apply_publisher_layers(alice);
    let bob = sim.join("bob");
    let video = sim.publish_simulcast(alice);
    sim.run_for(ms(1000));
    let before = sim.rtp(bob, &video).len();
    assert!(before > 20);

    // bob receives no camera: paused for him, and nobody else needs any layer.
    sim.signal(bob, ClientMessage::SetLastN { last_n: 0 });
    sim.run_for(ms(3500));
    let paused = sim.rtp(bob, &video).len();
    assert!(paused - before < 5, "{before} → {paused}");
    assert_eq!(told(&sim, alice), [[true, false, false]]);

    // bob asks for one again: the top layer is turned on at once and he gets it from
    // its keyframe, numbered on from before the pause.
    let plis = sim.plis(alice).len();
    sim.signal(bob, ClientMessage::SetLastN { last_n: 1 });
    assert_eq!(told(&sim, alice)[1..], [[true, true, true]]);
    sim.run_for(ms(1500));
    let got = sim.rtp(bob, &video);
    assert!(got[paused].keyframe, "resumes at a keyframe");
    assert!(got.iter().rev().take(10).all(|p| p.payload_len == f));
    assert_eq!(seq_jumps(got), []);
    assert!(sim.plis(alice).len() > plis, "a keyframe was asked for");
}
