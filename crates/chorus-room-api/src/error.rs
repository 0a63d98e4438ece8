//! One error enum per operation family, each with a stable `code()` for the wire.

use thiserror::Error;

/// Errors of room and participant management (control API operations).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RoomError {
    #[error("room '{0}' does not exist")]
    RoomNotFound(String),
    #[error("room '{0}' already exists")]
    RoomExists(String),
    #[error("invalid room name: {0}")]
    InvalidRoomName(String),
    #[error("max_participants must be between 1 and {ceiling}, got {got}")]
    InvalidMaxParticipants { got: u32, ceiling: u32 },
    #[error("no participant '{0}' in this room")]
    ParticipantNotFound(String),
    #[error("participant has no track '{0}'")]
    TrackNotFound(String),
    #[error("room is closed")]
    RoomClosed,
    #[error("the server is busy; try again")]
    Busy,
    #[error("too many rooms (limit {0})")]
    TooManyRooms(usize),
    #[error("the server is draining: it takes no new rooms or participants")]
    Draining,
    #[error("no invitation '{0}' rings in this room")]
    InvitationNotFound(String),
    #[error("'{0}' is already invited to this room")]
    AlreadyInvited(String),
    #[error("'{0}' is already in this room")]
    AlreadyInRoom(String),
    #[error("too many invitations ringing in this room (limit {0})")]
    TooManyInvitations(usize),
    #[error("invalid invitation: {0}")]
    InvalidInvitation(String),
    #[error("no participant '{0}' waits in this room's lobby")]
    NotInLobby(String),
    #[error("invalid plain-RTP participant: {0}")]
    InvalidRtpParticipant(String),
    #[error("too many plain-RTP participants in this room (limit {0})")]
    TooManyRtpParticipants(u32),
    #[error("room is full ({0} participants)")]
    RoomFull(u32),
    #[error("identity '{0}' is already in this room")]
    IdentityInUse(String),
    #[error("remote_address not allowed: {0}")]
    RemoteNotAllowed(String),
    #[error("cannot open a UDP port for plain RTP: {0}")]
    RtpSocket(String),
    /// An answer for a plain-RTP participant that is past early media (answered, or
    /// created without `early_media`).
    #[error(
        "plain-RTP participant '{0}' is not in early media: it was answered already or created without early_media"
    )]
    AlreadyAnswered(String),
    /// A hold of a phone whose call is not answered yet.
    #[error("participant '{0}' is in early media: answer it before holding it")]
    NotAnswered(String),
}

impl RoomError {
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::RoomNotFound(_) => "room_not_found",
            RoomError::RoomExists(_) => "room_exists",
            RoomError::InvalidRoomName(_) => "invalid_room_name",
            RoomError::InvalidMaxParticipants { .. } => "invalid_max_participants",
            RoomError::ParticipantNotFound(_) => "participant_not_found",
            RoomError::TrackNotFound(_) => "track_not_found",
            RoomError::RoomClosed => "room_closed",
            RoomError::Busy => "busy",
            RoomError::TooManyRooms(_) => "too_many_rooms",
            RoomError::Draining => "server_draining",
            RoomError::InvitationNotFound(_) => "invitation_not_found",
            RoomError::AlreadyInvited(_) => "already_invited",
            RoomError::AlreadyInRoom(_) => "already_in_room",
            RoomError::TooManyInvitations(_) => "too_many_invitations",
            RoomError::InvalidInvitation(_) => "invalid_invitation",
            RoomError::NotInLobby(_) => "not_in_lobby",
            RoomError::InvalidRtpParticipant(_) => "invalid_rtp_participant",
            RoomError::TooManyRtpParticipants(_) => "too_many_rtp_participants",
            RoomError::RoomFull(_) => "room_full",
            RoomError::IdentityInUse(_) => "identity_in_use",
            RoomError::RtpSocket(_) => "rtp_socket_failed",
            RoomError::RemoteNotAllowed(_) => "remote_address_not_allowed",
            RoomError::AlreadyAnswered(_) => "already_answered",
            RoomError::NotAnswered(_) => "not_answered",
        }
    }
}

/// Errors of joining a room.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JoinError {
    #[error("room '{0}' does not exist")]
    RoomNotFound(String),
    #[error("room is full ({0} participants)")]
    RoomFull(u32),
    #[error("room is closed")]
    RoomClosed,
    #[error("invalid room name: {0}")]
    InvalidRoomName(String),
    #[error("too many rooms (limit {0})")]
    TooManyRooms(usize),
    #[error("media transport failed: {0}")]
    Transport(String),
    #[error("the server is draining: it takes no new rooms or participants")]
    Draining,
    #[error("too many joins a second ({0}); try again in a moment")]
    RateLimited(&'static str),
    /// The identity was removed through the control API; what lets it back in.
    #[error("you were removed from this room; {0}")]
    Removed(String),
}

impl JoinError {
    pub fn code(&self) -> &'static str {
        match self {
            JoinError::RoomNotFound(_) => "room_not_found",
            JoinError::RoomFull(_) => "room_full",
            JoinError::RoomClosed => "room_closed",
            JoinError::InvalidRoomName(_) => "invalid_room_name",
            JoinError::TooManyRooms(_) => "too_many_rooms",
            JoinError::Transport(_) => "transport_error",
            JoinError::Draining => "server_draining",
            JoinError::RateLimited(_) => "join_rate_limited",
            JoinError::Removed(_) => "removed",
        }
    }
}
