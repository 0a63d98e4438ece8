//! The registry and session handles as `chorus-room-api`'s traits, so that the
//! HTTP side drives rooms without depending on this crate.

use chorus_protocol::control::{
    CreateInvitationRequest, CreateRoomRequest, DrainStatus, InvitationEnd, InvitationInfo,
    MediaStats, RoomInfo,
};
use chorus_protocol::signal::ClientFrame;
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};

use chorus_room_api::{
    BoxFuture, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, ServerMetrics, SessionLink,
};

use crate::command::SessionHandle;
use crate::registry::RoomRegistry;

impl SessionLink for SessionHandle {
    fn send(&self, frame: ClientFrame) -> BoxFuture<'_, Result<(), RoomError>> {
        Box::pin(SessionHandle::send(self, frame))
    }
    fn close(&self, reason: LeaveReason) -> BoxFuture<'_, ()> {
        Box::pin(SessionHandle::close(self, reason))
    }
}

impl Rooms for RoomRegistry {
    fn create_room(&self, req: CreateRoomRequest) -> BoxFuture<'_, Result<RoomInfo, RoomError>> {
        Box::pin(RoomRegistry::create_room(self, req))
    }
    fn list_rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>> {
        Box::pin(RoomRegistry::list_rooms(self))
    }
    fn room_info<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<RoomInfo, RoomError>> {
        Box::pin(RoomRegistry::room_info(self, room))
    }
    fn delete_room<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<(), RoomError>> {
        Box::pin(RoomRegistry::delete_room(self, room))
    }
    fn list_participants<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ParticipantInfo>, RoomError>> {
        Box::pin(RoomRegistry::list_participants(self, room))
    }
    fn participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        Box::pin(RoomRegistry::participant(self, room, identity))
    }
    fn remove_participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        message: Option<String>,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        Box::pin(RoomRegistry::remove_participant(
            self, room, identity, message,
        ))
    }
    fn hold_participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        held: bool,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        Box::pin(RoomRegistry::hold_participant(self, room, identity, held))
    }
    fn create_rtp_participant<'a>(
        &'a self,
        room: &'a str,
        req: chorus_protocol::control::CreateRtpParticipantRequest,
    ) -> BoxFuture<'a, Result<chorus_protocol::control::RtpParticipantInfo, RoomError>> {
        Box::pin(RoomRegistry::create_rtp_participant(self, room, req))
    }
    fn answer_rtp_participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        Box::pin(RoomRegistry::answer_rtp_participant(self, room, identity))
    }
    fn mute_track<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        track_id: &'a str,
        muted: bool,
    ) -> BoxFuture<'a, Result<TrackInfo, RoomError>> {
        Box::pin(RoomRegistry::mute_track(
            self, room, identity, track_id, muted,
        ))
    }
    fn update_permissions<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        grants: Grants,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        Box::pin(RoomRegistry::update_permissions(
            self, room, identity, grants,
        ))
    }
    fn join<'a>(
        &'a self,
        room: &'a str,
        who: JoinRequest,
    ) -> BoxFuture<'a, Result<JoinedSession, JoinError>> {
        Box::pin(async move {
            let session = RoomRegistry::join(self, room, who).await?;
            Ok(JoinedSession {
                events: session.events,
                link: Box::new(session.handle),
            })
        })
    }
    fn invite<'a>(
        &'a self,
        room: &'a str,
        req: CreateInvitationRequest,
    ) -> BoxFuture<'a, Result<InvitationInfo, RoomError>> {
        Box::pin(RoomRegistry::invite(self, room, req))
    }
    fn end_invitation<'a>(
        &'a self,
        room: &'a str,
        invitation_id: &'a str,
        reason: InvitationEnd,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        Box::pin(RoomRegistry::end_invitation(
            self,
            room,
            invitation_id,
            reason,
        ))
    }
    fn decide_lobby<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        admit: bool,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        Box::pin(RoomRegistry::decide_lobby(self, room, participant, admit))
    }
    fn media_stats(&self) -> MediaStats {
        RoomRegistry::media_stats(self)
    }
    fn drain(&self, within: Option<std::time::Duration>) -> DrainStatus {
        RoomRegistry::drain(self, within)
    }
    fn drain_status(&self) -> Option<DrainStatus> {
        RoomRegistry::drain_status(self)
    }
    fn server_metrics(&self) -> BoxFuture<'_, ServerMetrics> {
        Box::pin(RoomRegistry::server_metrics(self))
    }
}
