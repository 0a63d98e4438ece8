//! The calling features on the simulated clock: participant and call states with their
//! previous state, invitations that ring (accepted, unanswered, declined, cancelled),
//! and the lobby (admitted, rejected).

use chorus_protocol::control::{CreateInvitationRequest, InvitationEnd, InvitationInfo};
use chorus_protocol::signal::{ClientMessage, LobbyOutcome, ServerMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{CallState, Grants, LeaveReason, ParticipantState, TrackSource};
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, Sim, ms};
use chorus_room_api::RoomError;

/// The `participant_state` changes `c` saw for `participant_id`: (previous, state, reason).
fn states(
    sim: &Sim,
    c: ClientId,
    participant_id: &str,
) -> Vec<(
    Option<ParticipantState>,
    ParticipantState,
    Option<LeaveReason>,
)> {
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ParticipantState {
                participant_id: id,
                previous,
                state,
                reason,
            } if id == participant_id => Some((*previous, *state, *reason)),
            _ => None,
        })
        .collect()
}

/// The `call_state` frames `c` got: (previous, state, reason).
fn call_states(sim: &Sim, c: ClientId) -> Vec<(Option<CallState>, CallState, Option<LeaveReason>)> {
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::CallState {
                previous,
                state,
                reason,
            } => Some((*previous, *state, *reason)),
            _ => None,
        })
        .collect()
}

fn invite(sim: &mut Sim, identity: &str, timeout_secs: u64) -> Result<InvitationInfo, RoomError> {
    let req = CreateInvitationRequest {
        identity: identity.into(),
        name: Some(format!("{identity} (invited)")),
        timeout_secs: Some(timeout_secs),
    };
    match sim.command(Command::Invite(req)) {
        Reply::Invited(r) => r,
        other => panic!("{other:?}"),
    }
}

fn end(sim: &mut Sim, invitation_id: &str, reason: InvitationEnd) -> Result<(), RoomError> {
    let cmd = Command::EndInvitation {
        invitation_id: invitation_id.into(),
        reason,
    };
    match sim.command(cmd) {
        Reply::InvitationEnded(r) => r,
        other => panic!("{other:?}"),
    }
}

fn ended(sim: &Sim) -> Vec<(String, InvitationEnd)> {
    sim.events()
        .iter()
        .filter_map(|e| match e {
            WebhookEvent::InvitationEnded {
                identity, reason, ..
            } => Some((identity.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn roster_state(sim: &mut Sim, identity: &str) -> Option<ParticipantState> {
    let Reply::Participants(list) = sim.command(Command::Participants) else {
        panic!("participants");
    };
    list.iter()
        .find(|p| p.identity == identity)
        .map(|p| p.state)
}

fn left_reason(sim: &Sim, c: ClientId, participant_id: &str) -> Option<LeaveReason> {
    sim.frames(c).iter().find_map(|m| match m {
        ServerMessage::ParticipantLeft {
            participant_id: id,
            reason,
            ..
        } if id == participant_id => Some(*reason),
        _ => None,
    })
}

fn own_left(sim: &Sim, c: ClientId) -> Option<LeaveReason> {
    sim.frames(c).iter().find_map(|m| match m {
        ServerMessage::Left { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// Every state change comes with the one before: the room sees connecting → connected,
/// and on leaving the final disconnected with the reason; the client's own call goes
/// connecting → connected → disconnecting (just before `left`).
#[test]
fn state_changes_carry_the_previous_state_and_leaving_its_reason() {
    let mut sim = Sim::new(11);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    sim.publish_audio(bob);
    sim.run_for(ms(500));
    let bob_id = sim.participant_id(bob).to_owned();
    use ParticipantState::*;
    assert_eq!(
        states(&sim, alice, &bob_id),
        [(Some(Connecting), Connected, None)]
    );
    sim.leave(bob);
    let reason = Some(LeaveReason::ClientLeft);
    assert_eq!(
        states(&sim, alice, &bob_id),
        [
            (Some(Connecting), Connected, None),
            (Some(Connected), Disconnected, reason)
        ]
    );
    assert_eq!(
        call_states(&sim, bob),
        [
            (None, CallState::Connecting, None),
            (Some(CallState::Connecting), CallState::Connected, None),
            (Some(CallState::Connected), CallState::Disconnecting, reason),
        ]
    );
    // Disconnecting comes before `left`, the last frame.
    let frames = sim.frames(bob);
    assert!(matches!(frames.last(), Some(ServerMessage::Left { .. })));
    let disconnecting = frames.iter().position(|m| {
        matches!(
            m,
            ServerMessage::CallState {
                state: CallState::Disconnecting,
                ..
            }
        )
    });
    assert!(disconnecting.is_some_and(|i| i < frames.len() - 1));
    // The room remembers who left, and why.
    let Reply::Info(info) = sim.command(Command::Info) else {
        panic!("info");
    };
    let gone: Vec<_> = info
        .recently_left
        .iter()
        .map(|d| (d.identity.as_str(), d.state, d.reason))
        .collect();
    assert_eq!(gone, [("bob", Disconnected, LeaveReason::ClientLeft)]);
}

/// Invited, bob rings in the roster; he joins with his identity and the ringing entry
/// becomes him under the same id (ringing → connecting), with no leave in between. A
/// 1:1 call that gets a third participant this way is a group call.
#[test]
fn an_invitee_rings_then_joins_as_the_same_entry() {
    let mut sim = Sim::new(12);
    let alice = sim.join("alice");
    sim.publish_audio(alice);
    let carol = sim.join("carol");
    let invitation = invite(&mut sim, "bob", 30).unwrap();
    assert!(invitation.invitation_id.starts_with("IN_"));
    let ringing_id = invitation.participant_id.clone();
    use ParticipantState::*;
    assert_eq!(
        states(&sim, alice, &ringing_id),
        [(Some(Idle), Ringing, None)]
    );
    let entry = sim.frames(alice).iter().find_map(|m| match m {
        ServerMessage::ParticipantJoined { participant } if participant.identity == "bob" => {
            Some(participant.clone())
        }
        _ => None,
    });
    assert_eq!(entry.map(|p| p.state), Some(Ringing));
    assert_eq!(roster_state(&mut sim, "bob"), Some(Ringing));
    assert!(matches!(
        sim.events().last(),
        Some(WebhookEvent::InvitationRinging { invitation: i, .. }) if i.identity == "bob"
    ));
    // A second invitation for a ringing or present identity is refused.
    assert_eq!(
        invite(&mut sim, "bob", 30).map_err(|e| e.code()),
        Err("already_invited")
    );
    assert_eq!(
        invite(&mut sim, "alice", 30).map_err(|e| e.code()),
        Err("already_in_room")
    );

    sim.run_for(ms(10_000));
    let bob = sim.join("bob");
    assert_eq!(sim.participant_id(bob), ringing_id);
    assert_eq!(
        states(&sim, alice, &ringing_id)[1],
        (Some(Ringing), Connecting, None)
    );
    assert_eq!(left_reason(&sim, alice, &ringing_id), None);
    assert_eq!(ended(&sim), [("bob".to_owned(), InvitationEnd::Accepted)]);
    assert_eq!(
        call_states(&sim, bob)[0],
        (Some(CallState::Incoming), CallState::Connecting, None)
    );
    let Reply::Info(info) = sim.command(Command::Info) else {
        panic!("info");
    };
    assert!(info.invitations.is_empty());
    assert_eq!(
        info.refused_invitations, 2,
        "the two refused above are counted"
    );
    // Bob's roster has the two others; he is in the room as anyone is.
    let roster = sim.frames(bob).iter().find_map(|m| match m {
        ServerMessage::Joined { participants, .. } => Some(participants.len()),
        _ => None,
    });
    assert_eq!(roster, Some(2));
    sim.publish_audio(bob);
    sim.run_for(ms(500));
    assert!(sim.connected(bob).1, "bob's subscriber connection is up");
    assert_eq!(roster_state(&mut sim, "bob"), Some(Connected));
    // The timeout passing after the join ends nothing.
    sim.run_for(ms(25_000));
    assert_eq!(ended(&sim).len(), 1);
    let _ = carol;
}

/// Nobody answers: after its timeout (on the room's clock) the invitation ends with
/// `no_answer`, its entry leaves with that reason, and the room remembers it.
#[test]
fn an_unanswered_invitation_ends_with_no_answer() {
    let mut sim = Sim::new(13);
    let alice = sim.join("alice");
    let invitation = invite(&mut sim, "bob", 5).unwrap();
    let id = invitation.participant_id;
    sim.run_for(ms(4_900));
    assert_eq!(
        roster_state(&mut sim, "bob"),
        Some(ParticipantState::Ringing)
    );
    assert!(ended(&sim).is_empty());
    sim.run_for(ms(200));
    assert_eq!(ended(&sim), [("bob".to_owned(), InvitationEnd::NoAnswer)]);
    assert_eq!(left_reason(&sim, alice, &id), Some(LeaveReason::NoAnswer));
    assert_eq!(
        states(&sim, alice, &id).last(),
        Some(&(
            Some(ParticipantState::Ringing),
            ParticipantState::Disconnected,
            Some(LeaveReason::NoAnswer)
        ))
    );
    assert_eq!(roster_state(&mut sim, "bob"), None);
    let Reply::Info(info) = sim.command(Command::Info) else {
        panic!("info");
    };
    assert_eq!(info.recently_left[0].reason, LeaveReason::NoAnswer);
    // Joining later is an ordinary join: a new id.
    let bob = sim.join("bob");
    assert_ne!(sim.participant_id(bob), id);
}

/// Declined and cancelled end the ringing with their reason; an unknown or ended
/// invitation is not found.
#[test]
fn invitations_are_declined_or_cancelled() {
    let mut sim = Sim::new(14);
    let alice = sim.join("alice");
    let bob = invite(&mut sim, "bob", 30).unwrap();
    let dan = invite(&mut sim, "dan", 30).unwrap();
    end(&mut sim, &bob.invitation_id, InvitationEnd::Declined).unwrap();
    end(&mut sim, &dan.invitation_id, InvitationEnd::Cancelled).unwrap();
    assert_eq!(
        left_reason(&sim, alice, &bob.participant_id),
        Some(LeaveReason::Declined)
    );
    assert_eq!(
        left_reason(&sim, alice, &dan.participant_id),
        Some(LeaveReason::Cancelled)
    );
    assert_eq!(
        ended(&sim),
        [
            ("bob".to_owned(), InvitationEnd::Declined),
            ("dan".to_owned(), InvitationEnd::Cancelled)
        ]
    );
    assert_eq!(
        end(&mut sim, &bob.invitation_id, InvitationEnd::Declined),
        Err(RoomError::InvitationNotFound(bob.invitation_id.clone()))
    );
    // Nothing rings any more: the timeouts pass without a word.
    sim.run_for(ms(31_000));
    assert_eq!(ended(&sim).len(), 2);
    // A room deleted while one rings cancels it.
    invite(&mut sim, "erin", 30).unwrap();
    sim.command(Command::Delete);
    assert_eq!(
        ended(&sim).last(),
        Some(&("erin".to_owned(), InvitationEnd::Cancelled))
    );
}

fn admitter() -> Grants {
    Grants {
        can_admit: true,
        ..Grants::default()
    }
}

/// In a room with a lobby, a joiner without `can_admit` waits: it sees the room's name
/// and count, gets no roster, no offer and may not publish; the host sees it waiting and
/// admits it by signaling, after which it joins as anyone does.
#[test]
fn the_lobby_holds_a_joiner_until_an_admitter_lets_it_in() {
    let mut sim = Sim::with_config(15, |c| c.lobby = true);
    let host = sim.join_with("host", admitter());
    sim.publish_audio(host);
    let guest = sim.join("guest");
    sim.run_for(ms(500));
    let guest_id = sim.participant_id(guest).to_owned();
    assert!(matches!(
        &sim.frames(guest)[0],
        ServerMessage::Lobby { room, num_participants: 1, participant_id }
            if room == "sim" && *participant_id == guest_id
    ));
    let no_room = |m: &ServerMessage| {
        matches!(
            m,
            ServerMessage::Joined { .. }
                | ServerMessage::Offer { .. }
                | ServerMessage::ParticipantJoined { .. }
                | ServerMessage::ParticipantState { .. }
                | ServerMessage::ActiveSpeakers { .. }
        )
    };
    assert_eq!(sim.count(guest, no_room), 0, "{:?}", sim.frames(guest));
    assert_eq!(sim.connected(guest), (false, false));
    sim.request(
        guest,
        "p1",
        ClientMessage::Publish {
            cid: "mic".into(),
            source: TrackSource::Microphone,
            muted: false,
        },
    );
    assert!(matches!(
        sim.frames(guest).last(),
        Some(ServerMessage::Error { code, request_id: Some(r), .. }) if code == "in_lobby" && r == "p1"
    ));
    // The host sees it waiting, not in the room.
    assert_eq!(
        sim.count(host, |m| matches!(m, ServerMessage::LobbyWaiting { participant_id, .. } if *participant_id == guest_id)),
        1
    );
    assert_eq!(
        sim.count(host, |m| matches!(
            m,
            ServerMessage::ParticipantJoined { .. }
        )),
        0
    );
    assert_eq!(
        roster_state(&mut sim, "guest"),
        Some(ParticipantState::InLobby)
    );

    sim.signal(
        host,
        ClientMessage::Admit {
            participant_id: guest_id.clone(),
        },
    );
    sim.run_for(ms(500));
    assert!(sim.frames(guest).iter().any(
        |m| matches!(m, ServerMessage::Joined { participants, .. } if participants.len() == 1)
    ));
    assert!(sim.connected(guest).1, "the guest receives media");
    assert!(
        sim.count(host, |m| matches!(
            m,
            ServerMessage::LobbyLeft {
                outcome: LobbyOutcome::Admitted,
                ..
            }
        )) == 1
    );
    use ParticipantState::*;
    assert_eq!(
        states(&sim, host, &guest_id),
        [
            (Some(InLobby), Connecting, None),
            (Some(Connecting), Connected, None)
        ]
    );
    // Its own call: connecting from the lobby on, then connected.
    assert_eq!(
        call_states(&sim, guest),
        [
            (None, CallState::Connecting, None),
            (Some(CallState::Connecting), CallState::Connected, None)
        ]
    );
    let _ = sim.publish_audio(guest);
}

/// Rejected through the control API, the waiting participant leaves with
/// `lobby_rejected`; the room never saw it. One without `can_admit` may not admit.
#[test]
fn the_lobby_rejects_and_only_admitters_decide() {
    let mut sim = Sim::with_config(16, |c| c.lobby = true);
    let host = sim.join_with("host", admitter());
    let guest = sim.join("guest");
    let other = sim.join("other");
    let guest_id = sim.participant_id(guest).to_owned();
    // `other` waits too; waiting, it may not admit anyone.
    sim.request(
        other,
        "a",
        ClientMessage::Admit {
            participant_id: guest_id.clone(),
        },
    );
    assert!(matches!(
        sim.frames(other).last(),
        Some(ServerMessage::Error { code, .. }) if code == "in_lobby"
    ));
    // The host sees both waiting; a later admitter is shown them when it joins.
    let cohost = sim.join_with("cohost", admitter());
    assert_eq!(
        sim.count(cohost, |m| matches!(m, ServerMessage::LobbyWaiting { .. })),
        2
    );
    // Those waiting hear the new count.
    assert!(matches!(
        sim.frames(guest).last(),
        Some(ServerMessage::Lobby {
            num_participants: 2,
            ..
        })
    ));
    let reply = sim.command(Command::DecideLobby {
        participant: guest_id.clone(),
        admit: false,
    });
    assert!(matches!(reply, Reply::LobbyDecided(Ok(()))));
    assert_eq!(own_left(&sim, guest), Some(LeaveReason::LobbyRejected));
    assert_eq!(
        call_states(&sim, guest).last(),
        Some(&(
            Some(CallState::Connecting),
            CallState::Disconnecting,
            Some(LeaveReason::LobbyRejected)
        ))
    );
    assert!(sim.departed(guest));
    assert_eq!(
        sim.count(host, |m| matches!(
            m,
            ServerMessage::LobbyLeft {
                outcome: LobbyOutcome::Rejected,
                ..
            }
        )),
        1
    );
    assert_eq!(
        left_reason(&sim, host, &guest_id),
        None,
        "the room never saw it"
    );
    assert!(states(&sim, host, &guest_id).is_empty());
    // Not waiting any more: nothing to decide.
    let reply = sim.command(Command::DecideLobby {
        participant: guest_id,
        admit: true,
    });
    assert!(matches!(
        reply,
        Reply::LobbyDecided(Err(RoomError::NotInLobby(_)))
    ));
    // The host (in the room) can admit `other` by identity through the control API.
    let reply = sim.command(Command::DecideLobby {
        participant: "other".into(),
        admit: true,
    });
    assert!(matches!(reply, Reply::LobbyDecided(Ok(()))));
    sim.run_for(ms(500));
    assert_eq!(
        sim.count(other, |m| matches!(m, ServerMessage::Joined { .. })),
        1
    );
    // Admitted, without `can_admit`, it still may not admit.
    let late = sim.join("late");
    sim.request(
        other,
        "b",
        ClientMessage::Admit {
            participant_id: sim.participant_id(late).to_owned(),
        },
    );
    assert!(matches!(
        sim.frames(other).last(),
        Some(ServerMessage::Error { code, .. }) if code == "permission_denied"
    ));
    // Grants changed while one waits take effect when it is admitted: no media before.
    sim.publish_video(host);
    let shy = sim.join_with(
        "shy",
        Grants {
            can_subscribe: false,
            ..Grants::default()
        },
    );
    sim.command(Command::UpdatePermissions {
        identity: "shy".into(),
        grants: Grants::default(),
    });
    sim.run_for(ms(500));
    let offers = |sim: &Sim| sim.count(shy, |m| matches!(m, ServerMessage::Offer { .. }));
    assert_eq!(offers(&sim), 0, "{:?}", sim.frames(shy));
    sim.command(Command::DecideLobby {
        participant: "shy".into(),
        admit: true,
    });
    sim.run_for(ms(500));
    assert!(offers(&sim) >= 1, "admitted, it subscribes");
}
