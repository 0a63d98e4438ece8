//! The calling features on top of the room: participant states and the events that
//! announce them (the one setter, [`RoomCore::set_participant_state`]), the client's own
//! call state, invitations that ring until the invitee joins, and the lobby.

use std::time::Instant;

use chorus_core::ParticipantId;
use chorus_protocol::control::{
    CreateInvitationRequest, DepartedParticipant, InvitationEnd, InvitationInfo, RECENTLY_LEFT,
};
use chorus_protocol::signal::{LobbyOutcome, ServerMessage, joined_frames};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{CallState, LeaveReason, ParticipantState};
use chorus_room_api::RoomError;
use rand::Rng;

use super::RoomCore;
use crate::invitations::{Drawn, Invitation};
use crate::io::{Output, ParticipantKey, Recipients};
use crate::participants::StateChange;
use crate::signal_error::SignalError;

impl RoomCore {
    /// Changes a participant's state and announces it (`participant_state` to the
    /// room, `call_state` to the participant if its call's state moves). A change the
    /// state table refuses is logged and counted, and changes nothing. True if the state
    /// changed.
    pub(crate) fn set_participant_state(
        &mut self,
        key: ParticipantKey,
        state: ParticipantState,
    ) -> bool {
        self.change_state(key, state, None)
    }

    /// [`Self::set_participant_state`], with the reason when it is leaving.
    pub(super) fn change_state(
        &mut self,
        key: ParticipantKey,
        state: ParticipantState,
        reason: Option<LeaveReason>,
    ) -> bool {
        match self.participants.set_state(key, state, reason) {
            Ok(Some(change)) => {
                self.announce_state(key, change);
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.refused_transitions += 1;
                tracing::warn!(room = %self.name, "state change refused: {e}");
                false
            }
        }
    }

    /// The events of one state change.
    pub(super) fn announce_state(&mut self, key: ParticipantKey, change: StateChange) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        let participant_id = p.id.to_string();
        // Nobody in the room saw one who waited in the lobby: its admitters hear of it.
        if change.previous != ParticipantState::InLobby || change.reason.is_none() {
            self.send(
                Recipients::All,
                ServerMessage::ParticipantState {
                    participant_id,
                    previous: Some(change.previous),
                    state: change.state,
                    reason: change.reason,
                },
            );
        }
        let previous = change.previous.call_state();
        let state = match change.reason {
            Some(_) => Some(CallState::Disconnecting),
            None => change.state.call_state(),
        };
        // A client whose socket closed hears nothing more.
        if let Some(state) = state
            && Some(state) != previous
            && change.reason != Some(LeaveReason::SignalingClosed)
        {
            self.send(
                Recipients::One(key),
                ServerMessage::CallState {
                    previous,
                    state,
                    reason: change.reason,
                },
            );
        }
    }

    /// `key` comes into the room (as it joins, or out of the lobby): it gets the
    /// roster, the others get it, it subscribes. `from` is the state it had before
    /// (`ringing` for an invitee, `in_lobby`); the change is announced.
    pub(super) fn enter_room(
        &mut self,
        key: ParticipantKey,
        from: Option<ParticipantState>,
        now: Instant,
    ) {
        self.last_n.joined(key);
        self.last_n_due = true;
        self.lobby_count_due = true;
        let me = self.participant_info(key).expect("just admitted");
        let others = self
            .participants
            .admitted()
            .into_iter()
            .filter(|k| *k != key)
            .filter_map(|k| self.participant_info(k))
            .chain(self.invitations.iter().map(|i| i.roster_entry()))
            .collect();
        // The roster in pages, queued before anything else: whatever the newcomer hears
        // about the others afterwards applies to a roster it already has.
        for frame in joined_frames(self.name.clone(), me.clone(), others) {
            self.send(Recipients::One(key), frame);
        }
        self.event(WebhookEvent::ParticipantJoined {
            room: self.name.clone(),
            participant: me.clone(),
        });
        match from {
            // An invitee: its ringing entry, which everyone has, turns into it.
            Some(ParticipantState::Ringing) => {
                let change = StateChange {
                    previous: ParticipantState::Ringing,
                    state: ParticipantState::Connecting,
                    reason: None,
                };
                self.announce_state(key, change);
            }
            Some(_) => {}
            None => self.send(
                Recipients::One(key),
                ServerMessage::CallState {
                    previous: None,
                    state: CallState::Connecting,
                    reason: None,
                },
            ),
        }
        let can_subscribe = me.grants.can_subscribe;
        let can_admit = me.grants.can_admit;
        self.send(
            Recipients::AllExcept(key),
            ServerMessage::ParticipantJoined { participant: me },
        );
        if from == Some(ParticipantState::InLobby) {
            self.set_participant_state(key, ParticipantState::Connecting);
        }
        if can_admit {
            self.show_lobby(key);
        }
        if can_subscribe {
            self.subscribe_to_all(key, now);
        }
    }

    /// Remembers one who left (or an invitation that ended unanswered), bounded.
    pub(super) fn remember_departure(&mut self, departed: DepartedParticipant) {
        if self.recently_left.len() == RECENTLY_LEFT {
            self.recently_left.pop_front();
        }
        self.recently_left.push_back(departed);
    }

    // --- invitations ---

    pub(super) fn invite(
        &mut self,
        req: CreateInvitationRequest,
        now: Instant,
    ) -> Result<InvitationInfo, RoomError> {
        if self.closed {
            return Err(RoomError::RoomClosed);
        }
        let in_room = self.participants.find(&req.identity).is_some();
        let drawn = Drawn {
            invitation_id: format!("IN_{:016x}", self.rng.random::<u64>()),
            participant_id: ParticipantId::from_random(self.rng.random()),
            now,
            now_ms: self.unix_ms(now),
        };
        let invitation = match self.invitations.invite(req, in_room, drawn) {
            Ok(invitation) => invitation.clone(),
            Err(e) => {
                self.refused_invitations += 1;
                return Err(e);
            }
        };
        let info = invitation.info.clone();
        tracing::info!(room = %self.name, invitation = %info.invitation_id, "invitation ringing");
        self.event(WebhookEvent::InvitationRinging {
            room: self.name.clone(),
            invitation: info.clone(),
        });
        self.send(
            Recipients::All,
            ServerMessage::ParticipantJoined {
                participant: invitation.roster_entry(),
            },
        );
        self.send(
            Recipients::All,
            ServerMessage::ParticipantState {
                participant_id: info.participant_id.clone(),
                previous: Some(ParticipantState::Idle),
                state: ParticipantState::Ringing,
                reason: None,
            },
        );
        Ok(info)
    }

    /// Ends a ringing invitation through the control API (declined or cancelled).
    pub(super) fn end_invitation(
        &mut self,
        invitation_id: &str,
        reason: InvitationEnd,
        now: Instant,
    ) -> Result<(), RoomError> {
        let leave = match reason {
            InvitationEnd::Declined => LeaveReason::Declined,
            InvitationEnd::Cancelled => LeaveReason::Cancelled,
            InvitationEnd::NoAnswer => LeaveReason::NoAnswer,
            InvitationEnd::Accepted => {
                return Err(RoomError::InvalidInvitation(
                    "an invitation is accepted by joining".into(),
                ));
            }
        };
        let invitation = self.invitations.take_id(invitation_id)?;
        self.invitation_ended(invitation, reason, Some(leave), now);
        Ok(())
    }

    /// The room closes: what still rings ends as `cancelled`.
    pub(super) fn cancel_invitations(&mut self, now: Instant) {
        let ids: Vec<String> = self
            .invitations
            .iter()
            .map(|i| i.info.invitation_id.clone())
            .collect();
        for id in ids {
            let _ = self.end_invitation(&id, InvitationEnd::Cancelled, now);
        }
    }

    /// Invitations whose time ran out: `no_answer`.
    pub(super) fn reap_invitations(&mut self, now: Instant) {
        while let Some(invitation) = self.invitations.pop_expired(now) {
            let reason = InvitationEnd::NoAnswer;
            self.invitation_ended(invitation, reason, Some(LeaveReason::NoAnswer), now);
        }
    }

    /// Announces the end of an invitation; its ringing entry leaves the roster with
    /// `leave` (none when the invitee joined: the entry becomes the participant).
    pub(super) fn invitation_ended(
        &mut self,
        invitation: Invitation,
        reason: InvitationEnd,
        leave: Option<LeaveReason>,
        now: Instant,
    ) {
        let info = invitation.info;
        tracing::info!(room = %self.name, invitation = %info.invitation_id, ?reason, "invitation ended");
        self.event(WebhookEvent::InvitationEnded {
            room: self.name.clone(),
            invitation_id: info.invitation_id,
            identity: info.identity.clone(),
            reason,
        });
        let Some(leave) = leave else {
            return;
        };
        self.send(
            Recipients::All,
            ServerMessage::ParticipantState {
                participant_id: info.participant_id.clone(),
                previous: Some(ParticipantState::Ringing),
                state: ParticipantState::Disconnected,
                reason: Some(leave),
            },
        );
        self.send(
            Recipients::All,
            ServerMessage::ParticipantLeft {
                participant_id: info.participant_id.clone(),
                identity: info.identity.clone(),
                reason: leave,
            },
        );
        let left_at_ms = self.unix_ms(now);
        self.remember_departure(DepartedParticipant {
            participant_id: info.participant_id,
            identity: info.identity,
            name: info.name,
            state: ParticipantState::Disconnected,
            reason: leave,
            left_at_ms,
        });
    }

    // --- the lobby ---

    /// `key` joined a room with a lobby: it waits.
    pub(super) fn enter_lobby(&mut self, key: ParticipantKey) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        let (participant_id, identity, name) =
            (p.id.to_string(), p.identity.clone(), p.name.clone());
        tracing::info!(room = %self.name, participant = %participant_id, "waiting in the lobby");
        self.outputs.push_back(Output::Lobby {
            participant: key,
            waiting: true,
        });
        self.send(
            Recipients::One(key),
            ServerMessage::Lobby {
                room: self.name.clone(),
                participant_id: participant_id.clone(),
                num_participants: self.participants.admitted().len() as u32,
            },
        );
        self.send(
            Recipients::One(key),
            ServerMessage::CallState {
                previous: None,
                state: CallState::Connecting,
                reason: None,
            },
        );
        let waiting = ServerMessage::LobbyWaiting {
            participant_id,
            identity,
            name,
        };
        for admitter in self.participants.admitters() {
            self.send(Recipients::One(admitter), waiting.clone());
        }
        self.lobby_count_sent = Some(self.participants.admitted().len() as u32);
    }

    /// Those waiting, listed to a new admitter.
    pub(super) fn show_lobby(&mut self, admitter: ParticipantKey) {
        for key in self.participants.waiting() {
            let Some(p) = self.participants.get(key) else {
                continue;
            };
            let msg = ServerMessage::LobbyWaiting {
                participant_id: p.id.to_string(),
                identity: p.identity.clone(),
                name: p.name.clone(),
            };
            self.send(Recipients::One(admitter), msg);
        }
    }

    /// Admits or rejects one who waits in the lobby (control API, or an admitter).
    pub(super) fn decide_lobby(
        &mut self,
        key: ParticipantKey,
        admit: bool,
        now: Instant,
    ) -> Result<(), RoomError> {
        let p = self
            .participants
            .get(key)
            .filter(|p| p.state == ParticipantState::InLobby)
            .ok_or_else(|| {
                let who = self.participants.get(key).map(|p| p.id.to_string());
                RoomError::NotInLobby(who.unwrap_or_default())
            })?;
        let participant_id = p.id.to_string();
        let outcome = if admit {
            LobbyOutcome::Admitted
        } else {
            LobbyOutcome::Rejected
        };
        self.lobby_left(participant_id.clone(), outcome);
        if admit {
            tracing::info!(room = %self.name, participant = %participant_id, "admitted from the lobby");
            self.outputs.push_back(Output::Lobby {
                participant: key,
                waiting: false,
            });
            self.enter_room(key, Some(ParticipantState::InLobby), now);
        } else {
            self.remove_participant(key, LeaveReason::LobbyRejected, now);
        }
        Ok(())
    }

    /// Tells the admitters that `participant_id` no longer waits.
    pub(super) fn lobby_left(&mut self, participant_id: String, outcome: LobbyOutcome) {
        let msg = ServerMessage::LobbyLeft {
            participant_id,
            outcome,
        };
        for admitter in self.participants.admitters() {
            self.send(Recipients::One(admitter), msg.clone());
        }
    }

    /// An admitter's `admit` or `reject`.
    pub(super) fn lobby_request(
        &mut self,
        key: ParticipantKey,
        participant_id: &str,
        admit: bool,
        now: Instant,
    ) -> Result<(), SignalError> {
        let may = self
            .participants
            .get(key)
            .is_some_and(|p| p.grants.can_admit);
        if !may {
            return Err(SignalError::PermissionDenied(
                "admit or reject (no can_admit grant)".into(),
            ));
        }
        let waiting = self
            .participants
            .waiting()
            .into_iter()
            .find(|k| {
                self.participants
                    .get(*k)
                    .is_some_and(|p| p.id.as_str() == participant_id)
            })
            .ok_or_else(|| SignalError::NotInLobby(participant_id.to_owned()))?;
        self.decide_lobby(waiting, admit, now)
            .map_err(|_| SignalError::NotInLobby(participant_id.to_owned()))
    }

    /// The room's count changed: those waiting hear it again.
    pub(super) fn update_lobby_count(&mut self) {
        if !std::mem::take(&mut self.lobby_count_due) {
            return;
        }
        let count = self.participants.admitted().len() as u32;
        if self.lobby_count_sent == Some(count) {
            return;
        }
        let waiting = self.participants.waiting();
        if waiting.is_empty() {
            self.lobby_count_sent = None;
            return;
        }
        self.lobby_count_sent = Some(count);
        for key in waiting {
            let Some(p) = self.participants.get(key) else {
                continue;
            };
            let msg = ServerMessage::Lobby {
                room: self.name.clone(),
                participant_id: p.id.to_string(),
                num_participants: count,
            };
            self.send(Recipients::One(key), msg);
        }
    }
}
