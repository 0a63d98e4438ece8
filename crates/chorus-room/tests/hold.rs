//! Hold and unhold, a removal that sticks, a server mute that sticks: whole-room
//! scenarios on the simulated clock (`chorus_room::sim`).

use std::time::Duration;

use chorus_protocol::signal::{ClientMessage, ROOM_AUDIO_TRACK, ServerMessage};
use chorus_protocol::{Grants, LeaveReason, ParticipantState};
use chorus_room::JoinError;
use chorus_room::io::{Command, Reply};
use chorus_room::removals::{RemovalPolicy, SharedRemovals};
use chorus_room::sim::{ClientId, Sim, ms, seq_jumps};
use chorus_room::skips::Skip;

const MIX: &str = ROOM_AUDIO_TRACK;

/// The states `c` was told `who` went through, in order.
fn states(sim: &Sim, c: ClientId, who: ClientId) -> Vec<ParticipantState> {
    let id = sim.participant_id(who);
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ParticipantState {
                participant_id,
                state,
                ..
            } if participant_id == id => Some(*state),
            _ => None,
        })
        .collect()
}

/// Whether `c` was ever told that `who` speaks.
fn heard_speaking(sim: &Sim, c: ClientId, who: ClientId) -> usize {
    let id = sim.participant_id(who).to_owned();
    sim.count(c, |m| {
        matches!(m, ServerMessage::ActiveSpeakers { speakers }
            if speakers.iter().any(|s| s.participant_id == id))
    })
}

#[test]
fn hold_stops_media_both_ways_and_unhold_resumes_from_keyframes() {
    let mut sim = Sim::new(31);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    let alice_cam = sim.publish_video(alice);
    let bob_cam = sim.publish_video(bob);
    for c in [alice, bob, carol] {
        sim.publish_audio(c);
    }
    sim.run_for(ms(1500));
    assert!(sim.rtp(bob, &alice_cam).len() > 20);
    assert!(sim.rtp(alice, &bob_cam).len() > 20);
    assert!(sim.rtp(alice, MIX).len() > 20);
    assert!(heard_speaking(&sim, bob, alice) > 0, "alice talks before");

    sim.signal(alice, ClientMessage::Hold {});
    assert_eq!(
        states(&sim, bob, alice).last(),
        Some(&ParticipantState::OnHold)
    );
    // What was on its way lands; from then on nothing moves either way.
    sim.run_for(ms(100));
    // She leaves the speakers at once (muted in the detector), not after its release.
    sim.run_for(ms(150));
    let alice_id = sim.participant_id(alice).to_owned();
    let last_speakers = sim.frames(bob).iter().rev().find_map(|m| match m {
        ServerMessage::ActiveSpeakers { speakers } => Some(speakers.clone()),
        _ => None,
    });
    assert!(
        last_speakers.is_some_and(|s| s.iter().all(|s| s.participant_id != alice_id)),
        "still a speaker a moment after her hold"
    );
    let (to_bob, to_alice, mix_to_alice) = (
        sim.rtp(bob, &alice_cam).len(),
        sim.rtp(alice, &bob_cam).len(),
        sim.rtp(alice, MIX).len(),
    );
    let speaking = heard_speaking(&sim, bob, alice);
    let plis = sim.plis(alice).len();
    let (held_pub, held_sub) = (
        sim.skips().get(Skip::PublisherOnHold),
        sim.skips().get(Skip::SubscriberOnHold),
    );
    sim.run_for(ms(3000));
    assert_eq!(sim.rtp(bob, &alice_cam).len(), to_bob, "nothing from alice");
    assert_eq!(sim.rtp(alice, &bob_cam).len(), to_alice, "nothing to alice");
    assert_eq!(sim.rtp(alice, MIX).len(), mix_to_alice, "no audio to alice");
    assert!(sim.skips().get(Skip::PublisherOnHold) - held_pub > 100);
    assert!(sim.skips().get(Skip::SubscriberOnHold) - held_sub > 100);
    // Not among the talkers: she is never the active speaker, however loud.
    assert_eq!(
        heard_speaking(&sim, bob, alice),
        speaking,
        "held: no speaker"
    );
    assert!(
        heard_speaking(&sim, carol, bob) > 0,
        "the others still talk"
    );
    // Even when someone asks for her camera's keyframe.
    sim.request_keyframe(bob, &alice_cam);
    sim.run_for(ms(100));
    assert_eq!(sim.plis(alice).len(), plis, "no keyframe asked of her");
    // Her connections stay up: no one declares her dead, nothing is renegotiated.
    assert!(!sim.departed(alice));
    assert_eq!(sim.connected(alice), (true, true));
    let offers = sim.offers(alice).len();

    let bob_plis = sim.plis(bob).len();
    sim.signal(alice, ClientMessage::Unhold {});
    assert_eq!(
        states(&sim, bob, alice).last(),
        Some(&ParticipantState::Connected)
    );
    assert_eq!(
        sim.plis(alice).len(),
        plis + 1,
        "her camera: a keyframe asked"
    );
    assert_eq!(
        sim.plis(bob).len(),
        bob_plis + 1,
        "what she gets: a keyframe"
    );
    sim.run_for(ms(1000));
    assert_eq!(sim.offers(alice).len(), offers, "no renegotiation");
    for (c, track, before) in [(bob, &alice_cam, to_bob), (alice, &bob_cam, to_alice)] {
        let got = sim.rtp(c, track);
        assert!(got.len() > before + 20, "video resumes");
        assert!(got[before].keyframe, "resumes at a keyframe");
        assert_eq!(seq_jumps(got), [], "numbered on: no loss to repair");
    }
    let mix = sim.rtp(alice, MIX);
    assert!(mix.len() > mix_to_alice + 20, "audio resumes");
    assert_eq!(seq_jumps(mix), []);
}

#[test]
fn the_control_api_holds_too() {
    let mut sim = Sim::new(32);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    // Carol receives nothing: no connection of hers comes up.
    let carol = sim.join_with(
        "carol",
        Grants {
            can_subscribe: false,
            ..Grants::default()
        },
    );
    sim.publish_video(alice);
    sim.run_for(ms(500));
    let reply = sim.command(Command::Hold {
        identity: "alice".into(),
        held: true,
    });
    assert!(matches!(reply, Reply::Held(Ok(ref p)) if p.state == ParticipantState::OnHold));
    assert_eq!(
        states(&sim, bob, alice).last(),
        Some(&ParticipantState::OnHold)
    );
    sim.command(Command::Hold {
        identity: "alice".into(),
        held: false,
    });
    assert_eq!(
        states(&sim, bob, alice).last(),
        Some(&ParticipantState::Connected)
    );
    // Held before its media came up, then resumed: back to connecting.
    sim.command(Command::Hold {
        identity: "carol".into(),
        held: true,
    });
    sim.command(Command::Hold {
        identity: "carol".into(),
        held: false,
    });
    assert_eq!(
        states(&sim, bob, carol),
        [ParticipantState::OnHold, ParticipantState::Connecting]
    );
    let reply = sim.command(Command::Hold {
        identity: "nobody".into(),
        held: true,
    });
    assert!(matches!(reply, Reply::Held(Err(_))));
}

#[test]
fn a_track_published_on_hold_is_held_until_the_unhold() {
    let mut sim = Sim::new(36);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    sim.publish_audio(bob);
    sim.run_for(ms(500));
    sim.signal(alice, ClientMessage::Hold {});
    // Her camera comes while she is on hold: announced, bound, and still held.
    let cam = sim.publish_video(alice);
    let held_before = sim.skips().get(Skip::PublisherOnHold);
    sim.run_for(ms(1500));
    assert!(
        sim.rtp(bob, &cam).is_empty(),
        "nothing of a camera published on hold"
    );
    assert!(sim.skips().get(Skip::PublisherOnHold) - held_before > 20);

    sim.signal(alice, ClientMessage::Unhold {});
    sim.run_for(ms(1000));
    let got = sim.rtp(bob, &cam);
    assert!(got.len() > 20, "it flows after the unhold");
    assert!(got[0].keyframe, "from a keyframe");
}

#[test]
fn a_removal_refuses_tokens_issued_before_it() {
    let mut sim = Sim::new(33);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    sim.run_for(ms(2000));
    let old_token = sim.unix_secs() - 1;

    let reply = sim.command(Command::Remove {
        identity: "alice".into(),
        message: Some("be nice".into()),
    });
    assert!(matches!(reply, Reply::Removed(Ok(()))));
    assert!(sim.departed(alice));
    assert!(sim.frames(alice).iter().any(|m| matches!(m,
        ServerMessage::Left { reason: LeaveReason::RemovedByServer, message: Some(t) }
            if t == "be nice")));
    assert!(sim.frames(bob).iter().any(|m| matches!(
        m,
        ServerMessage::ParticipantLeft {
            reason: LeaveReason::RemovedByServer,
            ..
        }
    )));

    // The token she had, or one minted in the same second: refused.
    for issued in [old_token, sim.unix_secs()] {
        let again = sim.try_join("alice", Grants::default(), issued);
        assert!(matches!(again, Err(JoinError::Removed(_))), "{again:?}");
    }
    assert_eq!(JoinError::Removed(String::new()).code(), "removed");
    // Others are not concerned.
    sim.try_join("carol", Grants::default(), old_token)
        .expect("carol joins");
    // A token issued after the removal lets her back in.
    sim.run_for(ms(1000));
    let fresh = sim.unix_secs();
    let back = sim.try_join("alice", Grants::default(), fresh);
    assert!(back.is_ok(), "{back:?}");
}

#[test]
fn a_removal_ban_refuses_even_fresh_tokens_for_a_while() {
    let mut sim = Sim::with_config(34, |c| {
        c.removals = SharedRemovals::new(RemovalPolicy {
            ban: Duration::from_secs(10),
            ..RemovalPolicy::default()
        })
    });
    sim.join("alice");
    sim.run_for(ms(500));
    sim.command(Command::Remove {
        identity: "alice".into(),
        message: None,
    });
    sim.run_for(ms(5000));
    let fresh = sim.unix_secs();
    let again = sim.try_join("alice", Grants::default(), fresh);
    assert!(matches!(again, Err(JoinError::Removed(_))), "{again:?}");
    sim.run_for(ms(6000));
    let fresh = sim.unix_secs();
    assert!(sim.try_join("alice", Grants::default(), fresh).is_ok());
}

/// The room closes (empty for its timeout) and the next join opens a new one: the
/// removal is the server's, not the room's, and still refuses the old token.
#[test]
fn a_removal_outlives_the_room() {
    let removals = SharedRemovals::default();
    let shared = removals.clone();
    let mut sim = Sim::with_config(37, |c| {
        c.empty_timeout = Duration::from_secs(5);
        c.removals = shared;
    });
    sim.join("alice");
    let bob = sim.join("bob");
    sim.run_for(ms(1500));
    let old_token = sim.unix_secs();
    sim.command(Command::Remove {
        identity: "alice".into(),
        message: None,
    });
    sim.leave(bob);
    sim.run_for(Duration::from_secs(6));
    assert!(sim.core().is_closed(), "closed once empty for its timeout");

    sim.reopen();
    let again = sim.try_join("alice", Grants::default(), old_token);
    assert!(matches!(again, Err(JoinError::Removed(_))), "{again:?}");
    assert_eq!(removals.counts().records, 1);
    sim.try_join("bob", Grants::default(), old_token)
        .expect("bob was not removed");
    sim.run_for(ms(1000));
    let fresh = sim.unix_secs();
    let back = sim.try_join("alice", Grants::default(), fresh);
    assert!(back.is_ok(), "a token issued after the removal: {back:?}");
}

/// Once every token issued before the removal has expired, the record goes.
#[test]
fn a_removal_is_forgotten_when_older_tokens_have_expired() {
    let removals = SharedRemovals::new(RemovalPolicy {
        keep: Duration::from_secs(60),
        ..RemovalPolicy::default()
    });
    let shared = removals.clone();
    let mut sim = Sim::with_config(38, |c| c.removals = shared);
    sim.join("alice");
    sim.run_for(ms(500));
    let old_token = sim.unix_secs();
    sim.command(Command::Remove {
        identity: "alice".into(),
        message: None,
    });
    sim.run_for(Duration::from_secs(59));
    let again = sim.try_join("alice", Grants::default(), old_token);
    assert!(matches!(again, Err(JoinError::Removed(_))), "{again:?}");
    sim.run_for(Duration::from_secs(1));
    // A token that old is past the longest lifetime: the server's token check refuses
    // it, the record has nothing left to do.
    sim.try_join("alice", Grants::default(), old_token)
        .expect("forgotten after `keep`");
    let counts = removals.counts();
    assert_eq!((counts.records, counts.expired), (0, 1));
}

#[test]
fn a_server_mute_sticks_across_unpublish_and_rejoin() {
    let mut sim = Sim::new(35);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let cam = sim.publish_video(alice);
    sim.run_for(ms(500));
    let reply = sim.command(Command::MuteTrack {
        identity: "alice".into(),
        track_id: cam.clone(),
        muted: true,
    });
    assert!(matches!(reply, Reply::TrackMuted(Ok(_))));

    // Unpublish, publish again: the new camera starts muted by the server.
    sim.unpublish(alice, &cam);
    let cam2 = sim.publish_video(alice);
    let accepted = sim.frames(alice).iter().rev().find_map(|m| match m {
        ServerMessage::PublishAccepted { track, .. } => Some(track.clone()),
        _ => None,
    });
    assert!(accepted.is_some_and(|t| t.muted), "published muted");
    let muted_before = sim.skips().get(Skip::Muted);
    sim.run_for(ms(1000));
    assert!(sim.rtp(bob, &cam2).is_empty(), "nothing of the new camera");
    assert!(sim.skips().get(Skip::Muted) - muted_before > 20);
    // Her own unmute is refused.
    sim.request(
        alice,
        "u1",
        ClientMessage::Mute {
            track_id: cam2.clone(),
            muted: false,
        },
    );
    assert!(matches!(sim.frames(alice).last(),
        Some(ServerMessage::Error { code, request_id: Some(id), .. })
            if code == "muted_by_server" && id == "u1"));
    // Her microphone was never muted: it is not concerned.
    let mic = sim.publish_audio(alice);
    sim.run_for(ms(500));
    assert!(!sim.rtp(bob, &mic).is_empty() || !sim.rtp(bob, MIX).is_empty());

    // She leaves and comes back: still muted.
    sim.leave(alice);
    let alice2 = sim.join("alice");
    let cam3 = sim.publish_video(alice2);
    sim.run_for(ms(1000));
    assert!(sim.rtp(bob, &cam3).is_empty(), "muted after a rejoin");

    // The control API unmutes: it flows, and the next publication is free.
    sim.command(Command::MuteTrack {
        identity: "alice".into(),
        track_id: cam3.clone(),
        muted: false,
    });
    sim.run_for(ms(1000));
    assert!(sim.rtp(bob, &cam3).len() > 20);
    sim.unpublish(alice2, &cam3);
    let cam4 = sim.publish_video(alice2);
    sim.run_for(ms(1000));
    assert!(sim.rtp(bob, &cam4).len() > 20);
}

#[test]
fn a_held_simulcast_camera_resumes_from_a_keyframe_both_ways() {
    let mut sim = Sim::new(36);
    let alice = sim.join_simulcast("alice");
    let bob = sim.join_simulcast("bob");
    let alice_cam = sim.publish_simulcast(alice);
    let bob_cam = sim.publish_simulcast(bob);
    sim.run_for(ms(1500));
    for hold in [alice, bob] {
        sim.signal(hold, ClientMessage::Hold {});
        sim.run_for(ms(100));
        let before = [
            sim.rtp(bob, &alice_cam).len(),
            sim.rtp(alice, &bob_cam).len(),
        ];
        sim.run_for(ms(1000));
        let during = [
            sim.rtp(bob, &alice_cam).len(),
            sim.rtp(alice, &bob_cam).len(),
        ];
        assert_eq!(before, during, "nothing moves while held");
        sim.signal(hold, ClientMessage::Unhold {});
        sim.run_for(ms(1000));
        for (c, track, n) in [(bob, &alice_cam, before[0]), (alice, &bob_cam, before[1])] {
            let got = sim.rtp(c, track);
            assert!(got.len() > n + 20, "resumes");
            assert!(got[n].keyframe, "resumes at a keyframe");
            assert_eq!(seq_jumps(got), [], "numbered on");
        }
    }
}
