//! Limits a room enforces on its own, on the simulated clock.

use chorus_protocol::Grants;
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{Sim, ms};
use chorus_room_api::{JoinError, JoinRequest};

fn join(sim: &mut Sim, identity: &str) -> Result<(), JoinError> {
    let req = JoinRequest {
        identity: identity.to_owned(),
        name: identity.to_owned(),
        grants: Grants::default(),
        issued_at: 0,
    };
    match sim.command(Command::Join(req)) {
        Reply::Joined(r) => r.map(|_| ()),
        other => panic!("{other:?}"),
    }
}

/// A storm of joins is admitted at the room's rate (a burst, then so many a second): the
/// rest are refused with a reason to try again, and get in a moment later.
#[test]
fn joins_beyond_the_room_rate_are_refused_then_admitted() {
    let mut sim = Sim::with_join_rate(7, 2);
    assert_eq!(join(&mut sim, "a"), Ok(()));
    assert_eq!(join(&mut sim, "b"), Ok(()));
    let refused = join(&mut sim, "c").unwrap_err();
    assert_eq!(refused, JoinError::RateLimited("room"));
    assert_eq!(refused.code(), "join_rate_limited");
    sim.run_for(ms(500));
    assert_eq!(join(&mut sim, "c"), Ok(()), "one more after half a second");
    assert!(join(&mut sim, "d").is_err());
    sim.run_for(ms(1_000));
    assert_eq!(join(&mut sim, "d"), Ok(()));
    assert_eq!(join(&mut sim, "e"), Ok(()));
}

/// Publishing past `max_tracks_per_participant` is refused with `too_many_tracks`;
/// after an unpublish there is room again.
#[test]
fn tracks_beyond_the_participant_limit_are_refused() {
    use chorus_protocol::TrackSource;
    use chorus_protocol::signal::{ClientMessage, ServerMessage};

    let mut sim = Sim::with_config(8, |c| c.max_tracks_per_participant = 2);
    let alice = sim.join("alice");
    let mic = sim.publish_audio(alice);
    sim.publish_video(alice);
    let refused = |sim: &Sim| {
        sim.count(alice, |m| {
            matches!(m, ServerMessage::Error { code, request_id, .. }
                if code == "too_many_tracks" && request_id.as_deref() == Some("screen"))
        })
    };
    let screen = ClientMessage::Publish {
        cid: "screen-1".to_owned(),
        source: TrackSource::ScreenShare,
        muted: false,
    };
    sim.request(alice, "screen", screen.clone());
    assert_eq!(refused(&sim), 1);

    sim.unpublish(alice, &mic);
    sim.request(alice, "screen", screen);
    assert_eq!(refused(&sim), 1, "accepted once a track went");
    let accepted = sim.count(
        alice,
        |m| matches!(m, ServerMessage::PublishAccepted { cid, .. } if cid == "screen-1"),
    );
    assert_eq!(accepted, 1);
}
