//! What rooms tell the signaling service, POSTed to its webhook URLs (docs/webhooks.md):
//! one JSON object per event, `{"id", "created_at_ms", "event", "room", ...}`.

use serde::{Deserialize, Serialize};

use crate::control::{InvitationEnd, InvitationInfo};
use crate::{LeaveReason, ParticipantInfo, TrackInfo};

/// One event of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WebhookEvent {
    RoomStarted {
        room: String,
    },
    /// The room closed (deleted, empty for `rooms.empty_timeout_secs`, the server
    /// stopping, or failed).
    RoomFinished {
        room: String,
    },
    ParticipantJoined {
        room: String,
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        room: String,
        participant_id: String,
        identity: String,
        reason: LeaveReason,
    },
    TrackPublished {
        room: String,
        track: TrackInfo,
    },
    TrackUnpublished {
        room: String,
        participant_id: String,
        track_id: String,
    },
    /// An invitation rings: the signaling service pushes it to the invitee's devices.
    InvitationRinging {
        room: String,
        invitation: InvitationInfo,
    },
    /// An invitation stopped ringing: the invitee joined, declined, did not answer in
    /// time, or the invitation was cancelled.
    InvitationEnded {
        room: String,
        invitation_id: String,
        identity: String,
        reason: InvitationEnd,
    },
}

impl WebhookEvent {
    /// The `event` field's value.
    pub fn name(&self) -> &'static str {
        match self {
            WebhookEvent::RoomStarted { .. } => "room_started",
            WebhookEvent::RoomFinished { .. } => "room_finished",
            WebhookEvent::ParticipantJoined { .. } => "participant_joined",
            WebhookEvent::ParticipantLeft { .. } => "participant_left",
            WebhookEvent::TrackPublished { .. } => "track_published",
            WebhookEvent::TrackUnpublished { .. } => "track_unpublished",
            WebhookEvent::InvitationRinging { .. } => "invitation_ringing",
            WebhookEvent::InvitationEnded { .. } => "invitation_ended",
        }
    }
}

/// The body of one POST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// Unique per event (`EV_` + 16 hex digits): a receiver that gets an event twice
    /// (a retry after a lost answer) recognises it.
    pub id: String,
    /// When the event happened, Unix ms.
    pub created_at_ms: u64,
    #[serde(flatten)]
    pub event: WebhookEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_flat_json_named_by_its_event() {
        let body = WebhookBody {
            id: "EV_0000000000000001".into(),
            created_at_ms: 1_767_225_600_000,
            event: WebhookEvent::ParticipantLeft {
                room: "standup".into(),
                participant_id: "PA_1".into(),
                identity: "alice".into(),
                reason: LeaveReason::ClientLeft,
            },
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "EV_0000000000000001", "created_at_ms": 1_767_225_600_000u64,
                "event": "participant_left", "room": "standup",
                "participant_id": "PA_1", "identity": "alice", "reason": "client_left"
            })
        );
        assert_eq!(body.event.name(), "participant_left");
        assert_eq!(serde_json::from_value::<WebhookBody>(json).unwrap(), body);
    }
}
