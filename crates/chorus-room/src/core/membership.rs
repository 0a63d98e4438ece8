//! Participants joining and leaving: admission, the roster they are sent, and what
//! a departure takes down.

use std::time::Instant;

use chorus_core::ParticipantId;
use chorus_protocol::control::DepartedParticipant;
use chorus_protocol::control::InvitationEnd;
use chorus_protocol::signal::{LobbyOutcome, ServerMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{LeaveReason, ParticipantState};
use rand::Rng;

use crate::io::{Admitted, Output, ParticipantKey, Recipients};
use chorus_room_api::{JoinError, JoinRequest};

use super::RoomCore;

impl RoomCore {
    pub(super) fn join(&mut self, req: JoinRequest, now: Instant) -> Result<Admitted, JoinError> {
        if self.closed {
            return Err(JoinError::RoomClosed);
        }
        if !self.joins.allow(now) {
            return Err(JoinError::RateLimited("room"));
        }
        let at = self.unix_ms(now);
        if let Err(r) = self
            .removals
            .may_join(&self.name, &req.identity, req.issued_at, at)
        {
            let how = match r.banned_until_ms {
                Some(until) => format!(
                    "no token lets you back in for {} s after the removal, then one issued after it",
                    until.saturating_sub(r.removed_at_ms) / 1000
                ),
                None => "only a token issued after the removal lets you back in".to_owned(),
            };
            return Err(JoinError::Removed(how));
        }
        if let Some(old) = self.participants.find(&req.identity) {
            self.remove_participant(old, LeaveReason::DuplicateIdentity, now);
        }
        // An invitee accepts by joining: its ringing entry becomes it, under the same
        // id. Invited, it does not wait in the lobby.
        let invited = self
            .invitations
            .find_identity(&req.identity)
            .map(|i| i.participant_id.clone());
        let waits = self.lobby && !req.grants.can_admit && invited.is_none();
        let state = if waits {
            ParticipantState::InLobby
        } else {
            ParticipantState::Connecting
        };
        let id = invited
            .clone()
            .unwrap_or_else(|| ParticipantId::from_random(self.rng.random()));
        let identity = req.identity.clone();
        let key = self
            .participants
            .admit(req, id.clone(), self.unix_ms(now), state)?;
        if waits {
            self.enter_lobby(key);
        } else if invited.is_some() {
            let invitation = self.invitations.take_identity(&identity).expect("found");
            self.invitation_ended(invitation, InvitationEnd::Accepted, None, now);
            self.enter_room(key, Some(ParticipantState::Ringing), now);
        } else {
            self.enter_room(key, None, now);
        }
        tracing::info!(room = %self.name, participant = %id, lobby = waits, "participant joined");
        Ok(Admitted {
            participant: key,
            participant_id: id,
        })
    }

    pub(super) fn remove_participant(
        &mut self,
        key: ParticipantKey,
        reason: LeaveReason,
        now: Instant,
    ) {
        self.remove_with(key, reason, None, now);
    }

    /// Removes `key`; `message` goes to it in its `left` frame.
    pub(super) fn remove_with(
        &mut self,
        key: ParticipantKey,
        reason: LeaveReason,
        message: Option<String>,
        now: Instant,
    ) {
        let Some(was) = self.participants.get(key).map(|p| p.state) else {
            return;
        };
        // Its last state, with the reason, before it is gone.
        self.change_state(key, ParticipantState::Disconnected, Some(reason));
        let Some(p) = self.participants.remove(key) else {
            return;
        };
        self.setup.cancel(key);
        self.data.left(key);
        self.audio.forget(key);
        for conn in [p.publisher, p.subscriber].into_iter().flatten() {
            self.close_conn(conn, now);
        }
        for id in self.tracks.of_owner(key, |_| true) {
            self.unpublish(&id, now);
        }
        self.last_n.left(key);
        self.last_n_due = true;
        // Its subscriber connection went with every track it received.
        self.dynacast_due.all();
        self.lobby_count_due = true;
        self.update_audio(now);
        if reason != LeaveReason::SignalingClosed {
            self.send(
                Recipients::One(key),
                ServerMessage::Left { reason, message },
            );
        }
        self.outputs.push_back(Output::Departed(key));
        let participant_id = p.id.to_string();
        self.event(WebhookEvent::ParticipantLeft {
            room: self.name.clone(),
            participant_id: participant_id.clone(),
            identity: p.identity.clone(),
            reason,
        });
        if was == ParticipantState::InLobby {
            // Only its admitters knew it (rejected: they were told already).
            if reason != LeaveReason::LobbyRejected {
                self.lobby_left(participant_id.clone(), LobbyOutcome::Left);
            }
        } else {
            self.send(
                Recipients::All,
                ServerMessage::ParticipantLeft {
                    participant_id: participant_id.clone(),
                    identity: p.identity.clone(),
                    reason,
                },
            );
        }
        self.remember_departure(DepartedParticipant {
            participant_id: participant_id.clone(),
            identity: p.identity,
            name: p.name,
            state: ParticipantState::Disconnected,
            reason,
            left_at_ms: self.unix_ms(now),
        });
        tracing::info!(room = %self.name, participant = %participant_id, ?reason, "participant left");
    }

    pub(super) fn close_all(&mut self, reason: LeaveReason, now: Instant) {
        for key in self.participants.keys() {
            self.remove_participant(key, reason, now);
        }
    }
}
