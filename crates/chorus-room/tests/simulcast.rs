//! Simulcast in, on the simulated room: a camera published in three layers (rids q, h,
//! f) is announced with them, and until subscribers pick their own layer each gets ONE
//! continuous stream, of the highest layer present.

use chorus_protocol::TrackInfo;
use chorus_protocol::control::SimulcastStats;
use chorus_protocol::signal::ServerMessage;
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, LAYERS, Sim, ms, seq_jumps};
use chorus_room::skips::Skip;

/// What `GET /v1/rooms/{room}` says of the room's simulcast tracks.
fn simulcast_stats(sim: &mut Sim) -> Vec<SimulcastStats> {
    match sim.command(Command::Info) {
        Reply::Info(info) => info.simulcast,
        other => panic!("{other:?}"),
    }
}

fn published(sim: &Sim, c: ClientId, track: &str) -> Option<TrackInfo> {
    sim.frames(c).iter().find_map(|m| match m {
        ServerMessage::TrackPublished { track: t } if t.track_id == track => Some(t.clone()),
        _ => None,
    })
}

/// Payload size of each packet `c` received of `track`, from `from` on.
fn sizes(sim: &Sim, c: ClientId, track: &str, from: usize) -> Vec<usize> {
    sim.rtp(c, track)[from..]
        .iter()
        .map(|p| p.payload_len)
        .collect()
}

#[test]
fn three_layers_are_announced_and_the_highest_is_forwarded_as_one_stream() {
    let (q, h, f) = (LAYERS[0].1, LAYERS[1].1, LAYERS[2].1);
    let mut sim = Sim::new(11);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join("bob");
    let video = sim.publish_simulcast(alice);
    sim.run_for(ms(1000));

    let info = published(&sim, bob, &video).expect("track_published");
    assert_eq!(info.layers, ["q", "h", "f"], "lowest first");

    // One stream from a keyframe on, without a gap. The layers start frame by frame,
    // q first: the stream starts on the highest one there, and moves up as the others
    // come, each time at one of their keyframes; then f alone.
    let got = sim.rtp(bob, &video);
    assert!(got.len() > 40, "{} packets", got.len());
    assert!(got[0].keyframe);
    assert!(got.iter().all(|p| p.ssrc == got[0].ssrc));
    assert_eq!(seq_jumps(got), []);
    let all = sizes(&sim, bob, &video, 0);
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "only up: {all:?}");
    let first_f = all.iter().position(|&s| s == f).expect("f forwarded");
    assert!(got[first_f].keyframe);
    assert!(all.len() - first_f > 40, "{all:?}");
    // q and h arrive as often as f, and (but for the start) are dropped under their
    // own name.
    let dropped = sim.skips().get(Skip::LayerNotForwarded);
    let forwarded_f = (all.len() - first_f) as u64;
    assert!(
        dropped >= forwarded_f * 3 / 2,
        "{dropped} dropped, {forwarded_f} of f"
    );

    // The control API has each layer's rates; f is forwarded.
    let stats = simulcast_stats(&mut sim);
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].track_id, video);
    assert_eq!(stats[0].forwarded.as_deref(), Some("f"));
    let layers = &stats[0].layers;
    let rates: Vec<u64> = layers.iter().map(|l| l.bitrate_bps).collect();
    for (l, (rid, size)) in layers.iter().zip(LAYERS) {
        assert_eq!(l.rid, rid);
        assert!((25..=31).contains(&l.fps), "{l:?}");
        // Two packets a frame at 30 fps; keyframes (four) add a little.
        let want = (2 * size * 8 * 30) as u64;
        assert!(
            l.bitrate_bps >= want * 9 / 10 && l.bitrate_bps <= want * 13 / 10,
            "{l:?}"
        );
        assert!(l.keyframe_age_ms.is_some() && l.ssrc.is_some() && l.packets > 50);
    }
    assert!(rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");

    // bob's keyframe request goes to f's SSRC, not to q's or h's.
    let keys =
        |sim: &Sim| -> Vec<u32> { sim.layers_sent(alice, &video).iter().map(|l| l.2).collect() };
    let before = keys(&sim);
    assert!(sim.request_keyframe(bob, &video));
    sim.run_for(ms(200));
    let after = keys(&sim);
    assert_eq!(
        after,
        [before[0], before[1], before[2] + 1],
        "keyframes of q, h, f"
    );

    // f stops (short of bandwidth): a second later bob gets h, on from its keyframe,
    // numbered on with no gap.
    sim.pause_layer(alice, &video, "f", true);
    let n = sim.rtp(bob, &video).len();
    sim.run_for(ms(2000));
    let fallen = sizes(&sim, bob, &video, n);
    let first_h = fallen.iter().position(|&s| s == h).expect("h forwarded");
    assert!(fallen[first_h..].iter().all(|&s| s == h), "{fallen:?}");
    assert!(sim.rtp(bob, &video)[n + first_h].keyframe);
    assert!(!fallen.contains(&q));
    let stats = simulcast_stats(&mut sim);
    assert_eq!(stats[0].forwarded.as_deref(), Some("h"));
    assert_eq!(
        (stats[0].layers[2].bitrate_bps, stats[0].layers[2].fps),
        (0, 0)
    );
    // f resumes: back to it.
    sim.pause_layer(alice, &video, "f", false);
    let n = sim.rtp(bob, &video).len();
    sim.run_for(ms(1000));
    let back = sizes(&sim, bob, &video, n);
    assert_eq!(back.last(), Some(&f), "{back:?}");
    let all = sim.rtp(bob, &video);
    assert_eq!(
        seq_jumps(all),
        [],
        "one continuous stream across both switches"
    );
    assert!(all.iter().all(|p| p.ssrc == all[0].ssrc));
}

#[test]
fn a_plain_camera_beside_a_simulcast_one_is_forwarded_as_before() {
    let mut sim = Sim::new(12);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    let layered = sim.publish_simulcast(alice);
    let plain = sim.publish_video(bob);
    sim.run_for(ms(1000));
    let info = published(&sim, carol, &plain).expect("track_published");
    assert!(info.layers.is_empty());
    assert!(sim.rtp(carol, &plain).len() > 40);
    assert_eq!(seq_jumps(sim.rtp(carol, &plain)), []);
    assert!(sim.rtp(bob, &layered).len() > 40);
    assert!(sim.rtp(alice, &plain).len() > 40);
}
