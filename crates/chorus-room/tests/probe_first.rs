//! The allocation probes before it steps up: a subscriber behind a cap that the next
//! step would exceed sees no switch up and none undone, only probes that fail (and
//! back off); when the cap is lifted the probes find the room and it climbs; a paused
//! video without layers resumes only once a probe showed its rate fits.

use chorus_protocol::signal::ServerMessage;
use chorus_room::sim::{LAYERS, RtpIn, Sim, ms, seq_jumps};

fn layer(p: &RtpIn) -> Option<usize> {
    LAYERS.iter().position(|&(_, size)| size == p.payload_len)
}

/// Layer switches up and down in `packets` (a gap of over 200 ms is a pause, counted
/// down, and what follows it up).
fn ups_and_downs(packets: &[RtpIn]) -> (usize, usize) {
    let (mut up, mut down) = (0, 0);
    for w in packets.windows(2) {
        let (a, b) = (layer(&w[0]), layer(&w[1]));
        if w[1].at - w[0].at > ms(200) {
            up += 1;
            down += 1;
        } else if b > a {
            up += 1;
        } else if b < a {
            down += 1;
        }
    }
    (up, down)
}

/// What one capped run showed.
#[derive(Debug)]
struct Capped {
    /// Switches up and down over the 20 s watched, all videos together.
    ups: usize,
    downs: usize,
    /// Steps that waited for a probe, and those that failed, in those 20 s.
    asked: u64,
    failed: u64,
    /// After the cap is lifted: how long until every video is at its top layer.
    climb: Option<std::time::Duration>,
}

/// A viewer of `n` cameras (asking for every top layer) behind a cap of `cap_bps`,
/// settled for 15 s, watched for 20 s; then the cap is lifted.
fn capped(seed: u64, n: usize, cap_bps: u64) -> Capped {
    let (mut sim, tracks) = Sim::with_cameras(seed, n);
    let viewer = sim.join("viewer");
    sim.cap_downlink(viewer, Some(cap_bps));
    sim.run_for(ms(15_000));
    let from: Vec<usize> = tracks.iter().map(|t| sim.rtp(viewer, t).len()).collect();
    let before = sim.subscriber_stats(viewer).expect("an estimate");
    sim.run_for(ms(20_000));
    let after = sim.subscriber_stats(viewer).expect("an estimate");
    let (mut ups, mut downs) = (0, 0);
    for (t, &f) in tracks.iter().zip(&from) {
        let (u, d) = ups_and_downs(&sim.rtp(viewer, t)[f..]);
        ups += u;
        downs += d;
    }
    eprintln!("{n} cameras, {cap_bps} bit/s: {before:?} -> {after:?}");
    sim.cap_downlink(viewer, None);
    let lifted = sim.elapsed();
    let mut climb = None;
    for _ in 0..120 {
        sim.run_for(ms(250));
        let top = tracks.iter().all(|t| {
            let got = sim.rtp(viewer, t);
            got.len() > 10 && got[got.len() - 10..].iter().all(|p| layer(p) == Some(2))
        });
        if top {
            climb = Some(sim.elapsed() - lifted);
            break;
        }
    }
    Capped {
        ups,
        downs,
        asked: after.step_probes_asked - before.step_probes_asked,
        failed: after.step_probes_failed - before.step_probes_failed,
        climb,
    }
}

/// Each case settles for 15 s behind its cap, then over 20 s: no layer switch up and
/// none undone (the next step does not fit in the link; each probe for it fails, and
/// the next waits longer), but probes keep asking; once the cap is lifted, every video
/// reaches its top layer within 10 s (probes find the room, then the steps that fit
/// are taken at once). Before the allocator waited for probes, each of these cases
/// switched up and back every 6.5 s or so.
#[test]
fn behind_a_cap_the_next_step_is_probed_not_switched_and_a_lifted_cap_is_climbed() {
    // (seed, cameras, cap bit/s): the top layer of one camera does not fit; four
    // lowest layers and a step do not; eight cameras, two steps above their lowest.
    let cases: [(u64, usize, u64); 3] = [(51, 1, 450_000), (52, 4, 1_000_000), (53, 8, 2_000_000)];
    for (seed, n, cap) in cases {
        let got = capped(seed, n, cap);
        eprintln!("{n} cameras behind {cap} bit/s: {got:?}");
        assert_eq!((got.ups, got.downs), (0, 0), "{n} cameras: {got:?}");
        assert!(got.asked >= 1 && got.failed >= 1, "{n} cameras: {got:?}");
        assert!(
            got.climb.is_some_and(|t| t <= ms(10_000)),
            "{n} cameras: {got:?}"
        );
    }
}

/// bob receives alice's and carol's cameras, both without layers; loss toward him
/// pauses carol's. When the loss stops, carol's is resumed only after a probe (padding
/// on alice's SSRC, numbered into her video through its forwarder) showed the room:
/// the step counted as a probe's success, and alice's numbering, padding included,
/// has no gap.
#[test]
fn a_paused_video_without_layers_resumes_only_after_a_successful_probe() {
    let mut sim = Sim::new(54);
    let alice = sim.join("alice");
    let carol = sim.join("carol");
    let bob = sim.join("bob");
    let a = sim.publish_video(alice);
    let c = sim.publish_video(carol);
    sim.run_for(ms(6000));
    sim.set_loss(bob, chorus_room::sim::Dir::Down, 0.3);
    sim.run_for(ms(15_000));
    let resumed = |sim: &Sim| {
        sim.count(
            bob,
            |m| matches!(m, ServerMessage::VideoResumed { track_id, .. } if *track_id == c),
        )
    };
    let paused = sim.count(
        bob,
        |m| matches!(m, ServerMessage::VideoPaused { track_id, .. } if *track_id == c),
    );
    assert_eq!((paused, resumed(&sim)), (1, 0), "carol paused");
    sim.set_loss(bob, chorus_room::sim::Dir::Down, 0.0);
    let lifted = sim.now();
    let from = sim.rtp(bob, &a).len();
    let before = sim.subscriber_stats(bob).expect("an estimate");
    let mut trace = Vec::new();
    let at_resume = loop {
        sim.run_for(ms(250));
        let s = sim.subscriber_stats(bob).expect("an estimate");
        trace.push((
            s.estimated_bitrate_bps / 1000,
            s.step_probes_asked,
            s.step_probes_succeeded,
        ));
        if resumed(&sim) > 0 {
            break s;
        }
        assert!(sim.now() - lifted < ms(30_000), "never resumed: {trace:?}");
    };
    eprintln!("(estimate kbit/s, steps asked, succeeded) per 250 ms: {trace:?}");
    eprintln!("at the resume: {at_resume:?}");
    assert!(
        at_resume.step_probes_succeeded > before.step_probes_succeeded,
        "{before:?} -> {at_resume:?}"
    );
    assert!(at_resume.probes_delivered > before.probes_delivered);
    // The probes went on alice's video (the one flowing), before the resume.
    let padding = sim.padding(bob, &a);
    assert!(
        padding.iter().any(|p| p.at > lifted),
        "no padding on alice's video"
    );
    assert!(sim.padding(bob, &c).is_empty());
    let media = &sim.rtp(bob, &a)[from..];
    let ssrc = media[0].ssrc;
    assert!(padding.iter().all(|p| p.ssrc == ssrc));
    assert!(media.iter().any(|p| p.padding_before > 0));
    // Numbered into her video: media and padding one sequence, nothing lost since.
    sim.run_for(ms(1000));
    assert_eq!(seq_jumps(&sim.rtp(bob, &a)[from..]), []);
}
