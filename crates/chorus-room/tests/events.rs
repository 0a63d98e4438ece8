//! The events a room reports for the signaling service's webhooks, in order.

use chorus_protocol::LeaveReason;
use chorus_protocol::webhook::WebhookEvent;
use chorus_room::sim::{Sim, ms};

#[test]
fn a_participant_joins_publishes_and_leaves() {
    let mut sim = Sim::new(3);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let mic = sim.publish_audio(alice);
    sim.run_for(ms(500));
    sim.unpublish(alice, &mic);
    sim.run_for(ms(100));
    sim.leave(alice);
    sim.run_for(ms(100));
    let names: Vec<&str> = sim.events().iter().map(WebhookEvent::name).collect();
    assert_eq!(
        names,
        [
            "participant_joined",
            "participant_joined",
            "track_published",
            "track_unpublished",
            "participant_left"
        ]
    );
    let e = sim.events();
    assert!(
        matches!(&e[0], WebhookEvent::ParticipantJoined { room, participant }
            if room == "sim" && participant.identity == "alice")
    );
    assert!(matches!(&e[2], WebhookEvent::TrackPublished { track, .. } if track.track_id == mic));
    assert!(matches!(
        &e[4],
        WebhookEvent::ParticipantLeft { identity, reason: LeaveReason::ClientLeft, .. }
            if identity == "alice"
    ));
    let _ = bob;
}
