//! Downstream bandwidth estimation on the simulated room: the server numbers what it
//! sends a subscriber (transport-wide sequence numbers), the subscriber's real `rtc`
//! client answers with transport-wide feedback, and the estimate shows in the room's
//! stats (`GET /v1/rooms/{room}`, `subscribers`).

use chorus_room::sim::{Dir, Sim, ms};

#[test]
fn a_subscribers_feedback_drives_its_estimate_and_loss_lowers_it() {
    let mut sim = Sim::new(21);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    sim.publish_video(alice);
    sim.publish_audio(alice);
    sim.run_for(ms(5000));

    // bob's client took transport-wide CC and reports what arrived: the estimator
    // measured what got through and a round trip, and saw no loss.
    let clean = sim.subscriber_stats(bob).expect("bob's estimate");
    let acked = clean.acknowledged_bitrate_bps.expect("acknowledged rate");
    assert!(acked > 20_000, "{clean:?}");
    assert_eq!(clean.loss_percent, 0.0, "{clean:?}");
    assert!(clean.rtt_ms < 500, "{clean:?}");
    // An application-limited sender earns at most 1.5 × what got through (+10 kbit/s).
    assert!(
        clean.estimated_bitrate_bps <= acked * 3 / 2 + 10_000 + acked / 5,
        "{clean:?}"
    );

    eprintln!("clean: {clean:?}");
    // 30 % of what goes to bob is lost: the feedback says so, and the estimate falls.
    sim.set_loss(bob, Dir::Down, 0.3);
    sim.run_for(ms(5000));
    let lossy = sim.subscriber_stats(bob).expect("bob's estimate");
    eprintln!("lossy: {lossy:?}");
    assert!(lossy.loss_percent > 10.0, "{lossy:?}");
    assert!(
        lossy.estimated_bitrate_bps < clean.estimated_bitrate_bps / 2,
        "{clean:?} then {lossy:?}"
    );
    // alice receives nothing (no one else publishes): nothing is numbered for her
    // that she could report, so she has an estimator but only its starting value.
    let alice_stats = sim.subscriber_stats(alice);
    assert!(
        alice_stats
            .as_ref()
            .is_none_or(|s| s.acknowledged_bitrate_bps.is_none()),
        "{alice_stats:?}"
    );
}
