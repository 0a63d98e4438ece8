//! Messages to a room's driver. Every request that needs an answer carries a oneshot.

use chorus_protocol::control::RoomInfo;
use chorus_protocol::signal::ClientFrame;
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use tokio::sync::oneshot;

use crate::io::ParticipantKey;
use crate::{JoinError, JoinRequest, RoomError, Session};

pub(crate) type Reply<T> = oneshot::Sender<T>;

pub(crate) enum RoomCommand {
    Join {
        req: JoinRequest,
        reply: Reply<Result<Session, JoinError>>,
    },
    Signal {
        participant: ParticipantKey,
        frame: ClientFrame,
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
