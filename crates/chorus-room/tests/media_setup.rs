//! The media setup timeout (`media.setup_timeout_ms`) on the simulated clock: a
//! participant whose media never comes up is removed with `media_timeout`; one whose
//! media came up, or that has nothing to set up yet, stays.

use std::time::Duration;

use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{Grants, LeaveReason};
use chorus_room::sim::{ClientId, Sim, ms};

const SETUP: Duration = Duration::from_secs(5);

fn sim(seed: u64) -> Sim {
    Sim::with_config(seed, |c| c.media_setup_timeout = SETUP)
}

/// Why `who` left, as `c` was told (`participant_left`).
fn left_reason(sim: &Sim, c: ClientId, who: ClientId) -> Option<LeaveReason> {
    let id = sim.participant_id(who);
    sim.frames(c).iter().find_map(|m| match m {
        ServerMessage::ParticipantLeft {
            participant_id,
            reason,
            ..
        } if participant_id == id => Some(*reason),
        _ => None,
    })
}

/// The `left` frame `c` got about itself.
fn own_left(sim: &Sim, c: ClientId) -> Option<LeaveReason> {
    sim.frames(c).iter().find_map(|m| match m {
        ServerMessage::Left { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// The reason in the `participant_left` webhook event about `who`.
fn event_reason(sim: &Sim, who: ClientId) -> Option<LeaveReason> {
    let id = sim.participant_id(who);
    sim.events().iter().find_map(|e| match e {
        WebhookEvent::ParticipantLeft {
            participant_id,
            reason,
            ..
        } if participant_id == id => Some(*reason),
        _ => None,
    })
}

/// Bob never answers the subscriber offer he gets when Alice publishes; Carol offers
/// her publisher connection but none of her datagrams arrive. Each is removed `SETUP`
/// after their first connection was created, with `media_timeout`: told to them, to
/// the others, and in the webhook event. Alice, whose media is up, stays.
#[test]
fn media_that_never_comes_up_is_removed_with_media_timeout() {
    let mut sim = sim(11);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    sim.hold_answers(bob);
    let carol = sim.join_with(
        "carol",
        Grants {
            can_subscribe: false,
            ..Grants::default()
        },
    );
    sim.vanish(carol);
    // Nothing to set up yet: no clock runs.
    sim.run_for(SETUP * 2);
    assert_eq!(own_left(&sim, bob), None);
    sim.publish_audio(alice);
    sim.publish_audio(carol);

    sim.run_for(SETUP - ms(100));
    assert_eq!(left_reason(&sim, alice, bob), None);
    assert_eq!(left_reason(&sim, alice, carol), None);
    sim.run_for(ms(200));
    for who in [bob, carol] {
        let name = sim.identity(who).to_owned();
        let reason = Some(LeaveReason::MediaTimeout);
        assert_eq!(left_reason(&sim, alice, who), reason, "{name}");
        assert_eq!(event_reason(&sim, who), reason, "{name}");
    }
    assert_eq!(own_left(&sim, bob), Some(LeaveReason::MediaTimeout));
    assert!(sim.departed(bob) && sim.departed(carol));
    sim.run_for(ms(60_000));
    assert_eq!(own_left(&sim, alice), None, "alice's media is up");
}

/// Dave joins an empty room and publishes nothing: nothing to set up, no clock. When
/// Erin publishes, Dave's subscriber connection comes up, and so does Erin's publisher
/// connection (she receives nothing): neither is removed, not across an ICE restart of
/// Dave's connection either, long past the setup timeout.
#[test]
fn a_lone_listener_and_media_that_came_up_stay() {
    let mut sim = sim(12);
    let dave = sim.join("dave");
    sim.run_for(SETUP * 4);
    assert_eq!(own_left(&sim, dave), None, "alone, nothing to set up");

    let erin = sim.join("erin");
    sim.publish_audio(erin);
    sim.run_for(ms(1_000));
    assert_eq!(sim.connected(dave), (false, true));
    assert_eq!(sim.connected(erin), (true, false));

    sim.run_for(SETUP);
    sim.signal(
        dave,
        ClientMessage::IceRestart {
            target: PeerTarget::Subscriber,
        },
    );
    sim.run_for(SETUP * 4);
    assert_eq!(own_left(&sim, dave), None);
    assert_eq!(own_left(&sim, erin), None);
    assert_eq!(left_reason(&sim, erin, dave), None);
    assert!(sim.offers(dave).len() >= 2, "the restart offer went out");
}
