//! The bandwidth allocation on the simulated room: a subscriber receiving two simulcast
//! cameras at the top layer whose estimate falls (loss toward it) is moved to lower
//! layers, then the least important camera is paused, while packets keep flowing to
//! it; when the loss stops, it climbs back.

use chorus_protocol::control::SubscriberStats;
use chorus_protocol::signal::{PauseReason, ServerMessage};
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, Dir, LAYERS, Sim, ms};
use chorus_room::skips::Skip;

fn estimate(sim: &mut Sim, c: ClientId) -> u64 {
    let identity = sim.identity(c).to_owned();
    match sim.command(Command::Info) {
        Reply::Info(info) => info
            .subscribers
            .into_iter()
            .find(|s| s.identity == identity)
            .map_or(0, |s: SubscriberStats| s.estimated_bitrate_bps),
        other => panic!("{other:?}"),
    }
}

/// The layer (by payload size) of each packet `c` received of `track` from `from` on.
fn layers(sim: &Sim, c: ClientId, track: &str, from: usize) -> Vec<usize> {
    sim.rtp(c, track)[from..]
        .iter()
        .filter_map(|p| LAYERS.iter().position(|&(_, size)| size == p.payload_len))
        .collect()
}

#[test]
fn a_falling_estimate_lowers_layers_then_pauses_and_a_recovery_raises_them() {
    let mut sim = Sim::new(31);
    let alice = sim.join_simulcast("alice");
    let carol = sim.join_simulcast("carol");
    let bob = sim.join("bob");
    let a = sim.publish_simulcast(alice);
    let c = sim.publish_simulcast(carol);
    sim.run_for(ms(6000));
    let top = [sim.rtp(bob, &a).len(), sim.rtp(bob, &c).len()];
    sim.run_for(ms(2000));
    eprintln!("clean estimate {}", estimate(&mut sim, bob));
    for (t, from) in [(&a, top[0]), (&c, top[1])] {
        let got = layers(&sim, bob, t, from);
        assert!(got.len() > 40 && got.iter().all(|&l| l == 2), "{got:?}");
    }

    sim.set_loss(bob, Dir::Down, 0.3);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let from = [sim.rtp(bob, &a).len(), sim.rtp(bob, &c).len()];
        sim.run_for(ms(1000));
        let e = estimate(&mut sim, bob);
        let la = layers(&sim, bob, &a, from[0]);
        let lc = layers(&sim, bob, &c, from[1]);
        eprintln!("{e} a {:?} c {:?}", la.iter().max(), lc.iter().max());
        seen.push((e, la, lc));
    }
    let _ = (PauseReason::Bandwidth, Skip::BandwidthPaused, ServerMessage::VideoResumed { track_id: String::new(), participant_id: String::new() });
    sim.set_loss(bob, Dir::Down, 0.0);
    for _ in 0..30 {
        let from = [sim.rtp(bob, &a).len(), sim.rtp(bob, &c).len()];
        sim.run_for(ms(1000));
        let e = estimate(&mut sim, bob);
        let la = layers(&sim, bob, &a, from[0]);
        let lc = layers(&sim, bob, &c, from[1]);
        eprintln!("up {e} a {:?} c {:?}", la.iter().max(), lc.iter().max());
    }
    panic!("look");
}
