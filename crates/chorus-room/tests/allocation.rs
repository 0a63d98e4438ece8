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

    // 30 % of what goes to bob is lost: his estimate falls, and each second shows
    // (estimate, alice's highest layer, carol's) of what reached him.
    let second = |sim: &mut Sim| {
        let from = [sim.rtp(bob, &a).len(), sim.rtp(bob, &c).len()];
        sim.run_for(ms(1000));
        let top_of = |got: Vec<usize>| got.into_iter().max();
        let la = top_of(layers(sim, bob, &a, from[0]));
        let lc = top_of(layers(sim, bob, &c, from[1]));
        (estimate(sim, bob), la, lc)
    };
    sim.set_loss(bob, Dir::Down, 0.3);
    let falling: Vec<_> = (0..15).map(|_| second(&mut sim)).collect();
    eprintln!("falling: {falling:?}");
    // alice is the dominant speaker (first in the speaking order: nobody spoke, and she
    // joined first), carol one of the others: carol is paused, and only after both were
    // lowered to their lowest layer; alice keeps flowing all along.
    let paused_at = falling
        .iter()
        .position(|s| s.2.is_none())
        .expect("carol paused");
    let both_lowest = falling
        .iter()
        .position(|s| s.1 == Some(0) && s.2 == Some(0));
    assert!(both_lowest.is_some_and(|i| i < paused_at), "{falling:?}");
    assert!(falling.iter().all(|s| s.1.is_some()), "{falling:?}");
    assert!(
        falling[paused_at..].iter().all(|s| s.2.is_none()),
        "{falling:?}"
    );
    let last = falling.last().unwrap();
    assert_eq!(last.1, Some(0), "{falling:?}");
    assert!(sim.skips().get(Skip::BandwidthPaused) > 0);
    let carol_id = sim.participant_id(carol).to_owned();
    let told = |sim: &Sim, paused: bool| {
        sim.count(bob, |m| match m {
            ServerMessage::VideoPaused {
                track_id,
                participant_id,
                reason,
            } => {
                paused
                    && *track_id == c
                    && *participant_id == carol_id
                    && *reason == PauseReason::Bandwidth
            }
            ServerMessage::VideoResumed { track_id, .. } => !paused && *track_id == c,
            _ => false,
        })
    };
    assert_eq!(told(&sim, true), 1);
    assert_eq!(told(&sim, false), 0);

    // The loss stops: the estimate climbs (each step sent before the estimator can see
    // room for the next), and so do the layers, back to the top for both.
    sim.set_loss(bob, Dir::Down, 0.0);
    let rising: Vec<_> = (0..20).map(|_| second(&mut sim)).collect();
    eprintln!("rising: {rising:?}");
    let back = rising
        .iter()
        .position(|s| s.1 == Some(2) && s.2 == Some(2))
        .expect("both back at the top");
    assert!(
        rising[back..]
            .iter()
            .all(|s| s.1 == Some(2) && s.2 == Some(2)),
        "{rising:?}"
    );
    assert_eq!(told(&sim, false), 1, "carol resumed");
}
