//! Simulcast on the simulated room: a camera published in three layers (rids q, h, f)
//! is announced with them, and each subscriber gets ONE continuous stream (sequence
//! numbers, VP8 picture ids) of the layer that fits what it asked for
//! (`track_settings`), by default the highest layer present.

use std::collections::BTreeMap;

use chorus_protocol::TrackInfo;
use chorus_protocol::control::SimulcastStats;
use chorus_protocol::signal::{ClientMessage, ServerMessage, VideoQuality};
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, Dir, LAYERS, RtpIn, Sim, ms, seq_jumps};
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
    sim.run_for(ms(2000));

    let info = published(&sim, bob, &video).expect("track_published");
    assert_eq!(info.layers, ["q", "h", "f"], "lowest first");

    // One stream from a keyframe on, without a gap. The stream starts on q (the layers
    // start frame by frame, q first, and the bandwidth allocation starts a new video at
    // its lowest layer), and moves up at the allocation's next round, at a keyframe of
    // the layer it moves to; then f alone.
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

fn settings(track: &str, size: Option<(u32, u32)>, visible: bool) -> ClientMessage {
    ClientMessage::TrackSettings {
        track_id: track.to_owned(),
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        visible,
        max_quality: None,
    }
}

/// Places where the VP8 picture id does not stay or go up by one from one packet to
/// the next.
fn picture_id_jumps(packets: &[RtpIn]) -> Vec<(u16, u16)> {
    packets
        .windows(2)
        .filter_map(|w| Some((w[0].picture_id?, w[1].picture_id?)))
        .filter(|&(a, b)| b != a && b != (a + 1) & 0x7FFF)
        .collect()
}

/// Runs until `c` is told of `track` (and so receives it).
fn until_published(sim: &mut Sim, c: ClientId, track: &str) {
    for _ in 0..100 {
        if published(sim, c, track).is_some() {
            return;
        }
        sim.run_for(ms(10));
    }
    panic!("{track} never published to {c:?}");
}

fn keyframes_sent(sim: &Sim, c: ClientId, track: &str, rid: &str) -> u32 {
    let layers = sim.layers_sent(c, track);
    layers.iter().find(|l| l.0 == rid).map_or(0, |l| l.2)
}

#[test]
fn each_subscriber_gets_the_layer_that_fits_its_screen() {
    let (q, f) = (LAYERS[0].1, LAYERS[2].1);
    let mut sim = Sim::new(21);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    let video = sim.publish_simulcast(alice);
    until_published(&mut sim, bob, &video);
    // bob shows alice in a thumbnail, carol full screen (no settings: the best).
    sim.signal(bob, settings(&video, Some((320, 180)), true));
    sim.run_for(ms(1500));

    let small = sim.rtp(bob, &video);
    assert!(small.len() > 60, "{} packets", small.len());
    assert!(small[0].keyframe);
    assert!(small.iter().all(|p| p.payload_len == q), "q only");
    assert!(small.iter().all(|p| p.ssrc == small[0].ssrc));
    assert_eq!(seq_jumps(small), []);
    assert!(small.iter().all(|p| p.picture_id.is_some()));
    assert_eq!(picture_id_jumps(small), []);
    let large = sim.rtp(carol, &video);
    let first_f = large.iter().position(|p| p.payload_len == f).expect("f");
    assert!(large[first_f..].iter().all(|p| p.payload_len == f));
    assert!(large.len() - first_f > 60);
    assert_eq!(seq_jumps(large), []);
    assert_eq!(picture_id_jumps(large), [], "across the switches up");

    // bob goes full screen: on the next keyframe of f, which is asked for.
    let f_keyframes = keyframes_sent(&sim, alice, &video, "f");
    let n = sim.rtp(bob, &video).len();
    sim.signal(bob, settings(&video, Some((1280, 720)), true));
    sim.run_for(ms(500));
    assert!(
        keyframes_sent(&sim, alice, &video, "f") > f_keyframes,
        "a PLI for f reached alice"
    );
    let got = sim.rtp(bob, &video);
    let up = n + got[n..].iter().position(|p| p.payload_len == f).expect("f");
    assert!(got[up].keyframe);
    assert!(
        got[n..up].iter().all(|p| p.payload_len == q),
        "q until then"
    );
    assert!(got[up..].iter().all(|p| p.payload_len == f));
    assert!(got.len() - up > 10);
    assert_eq!(seq_jumps(got), []);
    assert_eq!(picture_id_jumps(got), []);
    assert!(got.iter().all(|p| p.ssrc == got[0].ssrc));

    // bob scrolls alice out of view: nothing; back in view: from a keyframe, numbered on.
    sim.signal(bob, settings(&video, Some((1280, 720)), false));
    sim.run_for(ms(100));
    let paused_at = sim.rtp(bob, &video).len();
    let paused = sim.skips().get(Skip::LayerPaused);
    sim.run_for(ms(500));
    assert_eq!(
        sim.rtp(bob, &video).len(),
        paused_at,
        "nothing while invisible"
    );
    assert!(sim.skips().get(Skip::LayerPaused) > paused + 30);
    sim.signal(bob, settings(&video, Some((1280, 720)), true));
    sim.run_for(ms(500));
    let got = sim.rtp(bob, &video);
    assert!(got.len() > paused_at + 10, "resumed");
    assert!(got[paused_at].keyframe);
    assert_eq!(seq_jumps(got), []);
    assert_eq!(picture_id_jumps(got), []);
    // carol never noticed.
    let large = sim.rtp(carol, &video);
    assert!(large[first_f..].iter().all(|p| p.payload_len == f));
    assert_eq!(seq_jumps(large), []);
}

#[test]
fn max_quality_caps_the_layer_and_unknown_tracks_are_refused() {
    let h = LAYERS[1].1;
    let mut sim = Sim::new(22);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join("bob");
    let video = sim.publish_simulcast(alice);
    until_published(&mut sim, bob, &video);
    let mut medium = settings(&video, None, true);
    if let ClientMessage::TrackSettings { max_quality, .. } = &mut medium {
        *max_quality = Some(VideoQuality::Medium);
    }
    sim.signal(bob, medium);
    sim.run_for(ms(2000));
    // bob may start on q (the layers start frame by frame, q first, and the bandwidth
    // allocation starts a new video there), then h, never f.
    let got = sizes(&sim, bob, &video, 0);
    let first_h = got.iter().position(|&s| s == h).expect("h");
    assert!(got[first_h..].iter().all(|&s| s == h), "{got:?}");
    assert!(got.len() - first_h > 40, "{got:?}");
    assert_eq!(seq_jumps(sim.rtp(bob, &video)), []);

    for (id, track) in [("s1", "TR_nosuchtrack00"), ("s2", video.as_str())] {
        // Its own track, alice does not receive.
        let who = if id == "s1" { bob } else { alice };
        sim.request(who, id, settings(track, None, true));
        let error = sim.frames(who).iter().find_map(|m| match m {
            ServerMessage::Error {
                code, request_id, ..
            } if request_id.as_deref() == Some(id) => Some(code.clone()),
            _ => None,
        });
        assert_eq!(error.as_deref(), Some("not_subscribed"), "{id}");
    }
}

#[test]
fn a_lost_simulcast_copy_is_resent_as_it_was_first_sent() {
    let mut sim = Sim::new(23);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join("bob");
    let video = sim.publish_simulcast(alice);
    until_published(&mut sim, bob, &video);
    sim.signal(bob, settings(&video, Some((640, 360)), true));
    // Past the allocation's start at q, on h.
    sim.run_for(ms(1500));
    sim.set_loss(bob, Dir::Down, 0.05);
    let start = sim.rtp(bob, &video).len();
    let resent = sim.skips().total_resent();
    sim.run_for(ms(3000));
    assert!(sim.dropped(bob, Dir::Down) > 5);
    assert!(sim.skips().total_resent() > resent + 5, "NACKs answered");
    // By sequence number, each copy (first or resent) carries the picture id and
    // timestamp of its place: the resent copy has the VP8 numbering bob was sent.
    let mut by_seq: BTreeMap<u16, (Option<u16>, u32, usize)> = BTreeMap::new();
    for p in &sim.rtp(bob, &video)[start..] {
        let copy = (p.picture_id, p.ts, p.payload_len);
        let first = *by_seq.entry(p.seq).or_insert(copy);
        assert_eq!(first, copy, "two copies of {} differ", p.seq);
    }
    let mut checked = 0;
    for (s, (pid, ts, len)) in &by_seq {
        assert_eq!(*len, LAYERS[1].1);
        if let Some((next_pid, next_ts, _)) = by_seq.get(&s.wrapping_add(1)) {
            let (a, b) = (pid.unwrap(), next_pid.unwrap());
            assert!(b == a || b == (a + 1) & 0x7FFF, "{s}: {a} then {b}");
            assert_eq!(b == a, ts == next_ts, "{s}: a frame has one timestamp");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}
