//! Invitations and the lobby, through the control API.

use chorus_protocol::control::{CreateInvitationRequest, InvitationEnd, InvitationInfo};
use chorus_room_api::RoomError;

use super::RoomRegistry;
use crate::command::RoomCommand;
use crate::io::{Command, Reply};

impl RoomRegistry {
    /// Runs one calling command in `room`.
    async fn calling(&self, room: &str, cmd: Command) -> Result<Reply, RoomError> {
        self.call(room, |reply| RoomCommand::Calling { cmd, reply })
            .await?
            .ok_or(RoomError::RoomClosed)
    }

    /// Rings `req.identity` in `room` (the room must exist).
    pub async fn invite(
        &self,
        room: &str,
        req: CreateInvitationRequest,
    ) -> Result<InvitationInfo, RoomError> {
        if self.is_draining() {
            return Err(RoomError::Draining);
        }
        match self.calling(room, Command::Invite(req)).await? {
            Reply::Invited(r) => r,
            _ => Err(RoomError::RoomClosed),
        }
    }

    /// Ends a ringing invitation as declined or cancelled.
    pub async fn end_invitation(
        &self,
        room: &str,
        invitation_id: &str,
        reason: InvitationEnd,
    ) -> Result<(), RoomError> {
        let cmd = Command::EndInvitation {
            invitation_id: invitation_id.to_owned(),
            reason,
        };
        match self.calling(room, cmd).await? {
            Reply::InvitationEnded(r) => r,
            _ => Err(RoomError::RoomClosed),
        }
    }

    /// Admits (or rejects) a participant waiting in the lobby, by id or identity.
    pub async fn decide_lobby(
        &self,
        room: &str,
        participant: &str,
        admit: bool,
    ) -> Result<(), RoomError> {
        let cmd = Command::DecideLobby {
            participant: participant.to_owned(),
            admit,
        };
        match self.calling(room, cmd).await? {
            Reply::LobbyDecided(r) => r,
            _ => Err(RoomError::RoomClosed),
        }
    }
}
