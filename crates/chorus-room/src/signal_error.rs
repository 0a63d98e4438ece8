//! What can go wrong with a client's signaling message. Each error is sent back as an
//! `error` frame with a stable `code` (docs/signaling.md lists them) and this message.

use chorus_protocol::TrackSource;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignalError {
    #[error("this session already joined")]
    AlreadyJoined,
    #[error("{0}")]
    BadTarget(&'static str),
    #[error("you may not {0}")]
    PermissionDenied(String),
    #[error("cid must be 1..={max} bytes")]
    BadCid { max: usize },
    #[error("you already publish {}; unpublish it first", .0.as_str())]
    SourceAlreadyPublished(TrackSource),
    #[error("you publish {max} tracks, the most a participant may; unpublish one first")]
    TooManyTracks { max: u32 },
    #[error("you have no track '{0}'")]
    TrackNotFound(String),
    #[error("you receive no video track '{0}'")]
    NotSubscribed(String),
    #[error("the server muted this track; only the server can unmute it")]
    MutedByServer,
    #[error("last_n must be 0..={max}")]
    LastNTooLarge { max: u32 },
    #[error("at most {max} pins")]
    TooManyPins { max: usize },
    #[error("no participant '{0}' in the room")]
    ParticipantNotFound(String),
    #[error("no offer is waiting for an answer")]
    NoOffer,
    #[error("there is no subscriber connection to restart")]
    NoConnection,
    #[error("{0}")]
    BadSdp(String),
    #[error("{0}")]
    Transport(String),
    #[error("you wait in the lobby: no media or roster until admitted (only leave and ping)")]
    InLobby,
    #[error("no participant '{0}' waits in the lobby")]
    NotInLobby(String),
}

impl SignalError {
    pub fn code(&self) -> &'static str {
        match self {
            SignalError::AlreadyJoined => "already_joined",
            SignalError::BadTarget(_) => "bad_target",
            SignalError::PermissionDenied(_) => "permission_denied",
            SignalError::BadCid { .. } => "bad_message",
            SignalError::SourceAlreadyPublished(_) => "source_already_published",
            SignalError::TooManyTracks { .. } => "too_many_tracks",
            SignalError::TrackNotFound(_) => "track_not_found",
            SignalError::NotSubscribed(_) => "not_subscribed",
            SignalError::MutedByServer => "muted_by_server",
            SignalError::LastNTooLarge { .. } | SignalError::TooManyPins { .. } => "bad_message",
            SignalError::ParticipantNotFound(_) => "participant_not_found",
            SignalError::NoOffer => "no_offer",
            SignalError::NoConnection => "no_connection",
            SignalError::BadSdp(_) => "bad_sdp",
            SignalError::Transport(_) => "transport_error",
            SignalError::InLobby => "in_lobby",
            SignalError::NotInLobby(_) => "not_in_lobby",
        }
    }

    pub fn bad_sdp(e: impl std::fmt::Display) -> Self {
        SignalError::BadSdp(e.to_string())
    }
}
