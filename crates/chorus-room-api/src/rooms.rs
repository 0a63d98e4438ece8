//! What the HTTP layer needs from the rooms, as traits: `chorus-room`'s registry in
//! the server, a scripted fake in tests (so routes and the signaling pump are tested
//! without a media plane).

use std::future::Future;
use std::pin::Pin;

use chorus_protocol::control::{
    CreateInvitationRequest, CreateRoomRequest, CreateRtpParticipantRequest, DrainStatus,
    InvitationEnd, InvitationInfo, MediaStats, RoomInfo, RtpParticipantInfo,
};
use chorus_protocol::signal::{ClientFrame, ServerMessage};
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use tokio::sync::mpsc;

use crate::{JoinError, RoomError, ServerMetrics};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who joins, as the verified token says.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub identity: String,
    pub name: String,
    pub grants: Grants,
    /// When the token was issued (`iat`, else `nbf`), seconds since the Unix epoch: a
    /// removal refuses tokens issued at or before it.
    pub issued_at: u64,
}

/// Room management and admission, as `chorus_room::RoomRegistry` offers them.
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
        message: Option<String>,
    ) -> BoxFuture<'a, Result<(), RoomError>>;
    /// Puts a participant on hold or takes it off, as its own `hold` / `unhold` do.
    fn hold_participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
        held: bool,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>>;
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
    /// A phone or bot over plain RTP joins an existing room.
    fn create_rtp_participant<'a>(
        &'a self,
        room: &'a str,
        req: CreateRtpParticipantRequest,
    ) -> BoxFuture<'a, Result<RtpParticipantInfo, RoomError>>;
    /// Answers a plain-RTP participant created with `early_media`: `early_media` →
    /// `connected`, and it receives the room's mix from now on.
    fn answer_rtp_participant<'a>(
        &'a self,
        room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>>;
    fn join<'a>(
        &'a self,
        room: &'a str,
        who: JoinRequest,
    ) -> BoxFuture<'a, Result<JoinedSession, JoinError>>;
    /// Rings `req.identity` in the room until it joins, declines, the timeout passes or
    /// the invitation is cancelled.
    fn invite<'a>(
        &'a self,
        room: &'a str,
        req: CreateInvitationRequest,
    ) -> BoxFuture<'a, Result<InvitationInfo, RoomError>>;
    /// Ends a ringing invitation as `declined` or `cancelled`.
    fn end_invitation<'a>(
        &'a self,
        room: &'a str,
        invitation_id: &'a str,
        reason: InvitationEnd,
    ) -> BoxFuture<'a, Result<(), RoomError>>;
    /// Admits (or rejects, with `lobby_rejected`) a participant waiting in the lobby,
    /// named by participant id or identity.
    fn decide_lobby<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        admit: bool,
    ) -> BoxFuture<'a, Result<(), RoomError>>;
    /// The media plane's counters since start; atomics, so no need to wait.
    fn media_stats(&self) -> MediaStats;
    /// Starts draining the server, stopping it `within` at the latest (the configured
    /// drain timeout when `None`); a drain under way goes on unchanged.
    fn drain(&self, within: Option<std::time::Duration>) -> DrainStatus;
    /// The drain under way, if any.
    fn drain_status(&self) -> Option<DrainStatus>;
    /// The server-wide figures for `/metrics` (asks every room).
    fn server_metrics(&self) -> BoxFuture<'_, ServerMetrics>;
}

/// A participant admitted to a room: its event stream and its way back in.
pub struct JoinedSession {
    /// Frames for the client; `None` means the room is gone.
    pub events: mpsc::Receiver<ServerMessage>,
    pub link: Box<dyn SessionLink>,
}

/// The client's side of a session, as `chorus_room::SessionHandle` offers it.
pub trait SessionLink: Send + Sync + 'static {
    /// One frame of the client's, with the `request_id` it may carry. Errors when
    /// the room is gone.
    fn send(&self, frame: ClientFrame) -> BoxFuture<'_, Result<(), RoomError>>;
    fn close(&self, reason: LeaveReason) -> BoxFuture<'_, ()>;
}
