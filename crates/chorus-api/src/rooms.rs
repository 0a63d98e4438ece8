//! What the HTTP layer needs from the rooms, as a trait: [`RoomRegistry`] in the
//! server, a scripted fake in tests (so routes and the signaling pump are tested
//! without a media plane).

use std::future::Future;
use std::pin::Pin;

use chorus_protocol::control::{CreateRoomRequest, MediaStats, RoomInfo};
use chorus_protocol::signal::{ClientMessage, ServerMessage};
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use chorus_room::{JoinError, JoinRequest, RoomError, RoomRegistry, SessionHandle};
use tokio::sync::mpsc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Room management and admission, as [`RoomRegistry`] offers them.
pub trait Rooms: Send + Sync + 'static {
    fn create_room(&self, req: CreateRoomRequest) -> BoxFuture<'_, Result<RoomInfo, RoomError>>;
    fn list_rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>>;
    fn room_info<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<RoomInfo, RoomError>>;
    fn delete_room<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<(), RoomError>>;
    fn list_participants<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ParticipantInfo>, RoomError>>;
    fn participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>>;
    fn remove_participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<(), RoomError>>;
    fn mute_track<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        track_id: &'a str,
        muted: bool,
    ) -> BoxFuture<'a, Result<TrackInfo, RoomError>>;
    fn update_permissions<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        grants: Grants,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>>;
    fn join<'a>(
        &'a self,
        room: &'a str,
        who: JoinRequest,
    ) -> BoxFuture<'a, Result<JoinedSession, JoinError>>;
    /// The media plane's counters since start; atomics, so no need to wait.
    fn media_stats(&self) -> MediaStats;
}

/// A participant admitted to a room: its event stream and its way back in.
pub struct JoinedSession {
    /// Frames for the client; `None` means the room is gone.
    pub events: mpsc::Receiver<ServerMessage>,
    pub link: Box<dyn SessionLink>,
}

/// The client's side of a session, as [`SessionHandle`] offers it.
pub trait SessionLink: Send + Sync + 'static {
    fn send(&self, msg: ClientMessage) -> BoxFuture<'_, Result<(), RoomError>>;
    fn close(&self, reason: LeaveReason) -> BoxFuture<'_, ()>;
}

impl SessionLink for SessionHandle {
    fn send(&self, msg: ClientMessage) -> BoxFuture<'_, Result<(), RoomError>> {
        Box::pin(SessionHandle::send(self, msg))
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
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        Box::pin(RoomRegistry::remove_participant(self, room, identity))
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
    fn media_stats(&self) -> MediaStats {
        RoomRegistry::media_stats(self)
    }
}
