//! What travels to a room's driver: the commands of the registry, and the session
//! handles through which each participant's signaling reaches its room. Every request
//! that needs an answer carries a oneshot.

use chorus_protocol::control::RoomInfo;
use chorus_protocol::signal::{ClientFrame, ServerMessage};
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use chorus_room_api::{JoinError, JoinRequest, RoomError};
use tokio::sync::{mpsc, oneshot};

use crate::io::{ParticipantKey, RtpAdmitted, RtpJoin};

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
        message: Option<String>,
        reply: Reply<Result<(), RoomError>>,
    },
    Hold {
        identity: String,
        held: bool,
        reply: Reply<Result<ParticipantInfo, RoomError>>,
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
    /// A plain-RTP participant joins; its endpoint runs on `socket`.
    AddRtp {
        join: RtpJoin,
        socket: std::net::UdpSocket,
        remote: std::net::SocketAddr,
        payload_type: u8,
        timeout: std::time::Duration,
        /// The participant's SDES key and Chorus's, with SRTP.
        srtp: Option<(chorus_plainrtp::SdesKey, chorus_plainrtp::SdesKey)>,
        reply: Reply<Result<RtpAdmitted, RoomError>>,
    },
    /// 20 ms of a plain-RTP participant's voice.
    RtpFrame {
        participant: ParticipantKey,
        frame: chorus_plainrtp::InboundFrame,
    },
    Delete {
        reply: Reply<()>,
    },
    /// Invitations and the lobby: a core command, answered with the core's reply.
    Calling {
        cmd: crate::io::Command,
        reply: Reply<Option<crate::io::Reply>>,
    },
    /// The server drains: tell everyone it stops within this time.
    Drain {
        within: std::time::Duration,
    },
    #[cfg(feature = "fault-injection")]
    Panic,
    /// Fault injection: one of the room's egress shards panics in its next run.
    #[cfg(feature = "fault-injection")]
    PanicShard,
}

/// One participant's link to its room's driver.
pub struct Session {
    /// Frames for the client. `None` means the room is gone: if no `left` frame
    /// came before, the room failed and the client should get a `room_closed` error.
    pub events: mpsc::Receiver<ServerMessage>,
    pub handle: SessionHandle,
}

/// Sends the client's messages to the room. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) participant: ParticipantKey,
    pub(crate) participant_id: String,
    pub(crate) room: mpsc::Sender<RoomCommand>,
}

impl SessionHandle {
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    /// Errors when the room is gone.
    pub async fn send(&self, frame: impl Into<ClientFrame>) -> Result<(), RoomError> {
        self.room
            .send(RoomCommand::Signal {
                participant: self.participant,
                frame: frame.into(),
            })
            .await
            .map_err(|_| RoomError::RoomClosed)
    }

    /// The signaling connection ended; `reason` is usually `signaling_closed`.
    pub async fn close(&self, reason: LeaveReason) {
        let _ = self
            .room
            .send(RoomCommand::Close {
                participant: self.participant,
                reason,
            })
            .await;
    }
}
