//! Messages to a room actor. Every request that needs an answer carries a oneshot.

use chorus_protocol::control::RoomInfo;
use chorus_protocol::signal::ClientMessage;
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use tokio::sync::oneshot;

use crate::{JoinError, JoinRequest, RoomError, Session};

/// A participant inside its room; only meaningful to that room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ParticipantKey(pub u64);

pub(crate) type Reply<T> = oneshot::Sender<T>;

pub(crate) enum RoomCommand {
    Join {
        req: JoinRequest,
        reply: Reply<Result<Session, JoinError>>,
    },
    Signal {
        participant: ParticipantKey,
        msg: ClientMessage,
    },
    Close {
        participant: ParticipantKey,
        reason: LeaveReason,
    },
    Info {
        reply: Reply<RoomInfo>,
    },
    Participants {
        reply: Reply<Vec<ParticipantInfo>>,
    },
    Participant {
        identity: String,
        reply: Reply<Result<ParticipantInfo, RoomError>>,
    },
    Remove {
        identity: String,
        reply: Reply<Result<(), RoomError>>,
    },
    MuteTrack {
        identity: String,
        track_id: String,
        muted: bool,
        reply: Reply<Result<TrackInfo, RoomError>>,
    },
    UpdatePermissions {
        identity: String,
        grants: Grants,
        reply: Reply<Result<ParticipantInfo, RoomError>>,
    },
    Delete {
        reply: Reply<()>,
    },
    #[cfg(feature = "fault-injection")]
    Panic,
}
