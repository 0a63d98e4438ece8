//! The control API's requests about one participant, each a command to its room.

use chorus_protocol::{Grants, ParticipantInfo, TrackInfo};

use crate::command::RoomCommand;

use chorus_room_api::RoomError;

use super::RoomRegistry;

impl RoomRegistry {
    pub async fn list_participants(&self, room: &str) -> Result<Vec<ParticipantInfo>, RoomError> {
        self.call(room, |reply| RoomCommand::Participants { reply })
            .await
    }

    pub async fn participant(
        &self,
        room: &str,
        identity: &str,
    ) -> Result<ParticipantInfo, RoomError> {
        let identity = identity.to_owned();
        self.call(room, |reply| RoomCommand::Participant { identity, reply })
            .await?
    }

    /// The participant receives `left` with reason `removed_by_server`.
    pub async fn remove_participant(
        &self,
        room: &str,
        identity: &str,
        message: Option<String>,
    ) -> Result<(), RoomError> {
        let identity = identity.to_owned();
        self.call(room, |reply| RoomCommand::Remove {
            identity,
            message,
            reply,
        })
        .await?
    }

    /// Puts a participant on hold (`held`) or takes it off.
    pub async fn hold_participant(
        &self,
        room: &str,
        identity: &str,
        held: bool,
    ) -> Result<ParticipantInfo, RoomError> {
        let identity = identity.to_owned();
        self.call(room, |reply| RoomCommand::Hold {
            identity,
            held,
            reply,
        })
        .await?
    }

    pub async fn mute_track(
        &self,
        room: &str,
        identity: &str,
        track_id: &str,
        muted: bool,
    ) -> Result<TrackInfo, RoomError> {
        let (identity, track_id) = (identity.to_owned(), track_id.to_owned());
        self.call(room, |reply| RoomCommand::MuteTrack {
            identity,
            track_id,
            muted,
            reply,
        })
        .await?
    }

    pub async fn update_permissions(
        &self,
        room: &str,
        identity: &str,
        grants: Grants,
    ) -> Result<ParticipantInfo, RoomError> {
        let identity = identity.to_owned();
        self.call(room, |reply| RoomCommand::UpdatePermissions {
            identity,
            grants,
            reply,
        })
        .await?
    }
}
