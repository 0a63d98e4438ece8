//! The room core's face: what goes in ([`Input`], with the time), what comes out
//! ([`Reply`] to a command, [`Output`] to poll). Nothing here does I/O.

use std::net::SocketAddr;

use bytes::BytesMut;
use chorus_core::{ConnId, ParticipantId};
use chorus_plainrtp::InboundFrame;
use chorus_plainrtp::PlainCodec;
use chorus_plainrtp::driver::MixFrame;
use chorus_protocol::control::{CreateInvitationRequest, InvitationEnd, InvitationInfo, RoomInfo};
use chorus_protocol::signal::{ClientFrame, ServerMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use chorus_transport::{Datagram, IngressKey};

use chorus_room_api::{JoinError, JoinRequest, RoomError};

/// A participant inside its room; only meaningful to that room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantKey(pub u64);

/// Everything that can happen to a room.
#[derive(Debug)]
pub enum Input {
    /// A request of the registry or the control API; answered by the returned [`Reply`].
    Command(Command),
    /// A frame from a participant's signaling connection.
    Signal {
        participant: ParticipantKey,
        frame: ClientFrame,
    },
    /// A participant's signaling connection ended, or could not take its frames.
    ClientGone {
        participant: ParticipantKey,
        reason: LeaveReason,
    },
    /// A datagram for one of the room's media connections.
    Datagram(Datagram),
    /// 20 ms of a plain-RTP participant's voice, decoded by its endpoint.
    RtpFrame {
        participant: ParticipantKey,
        frame: InboundFrame,
    },
    /// Time passed: whatever is due by `now` runs ([`crate::RoomCore::poll_timeout`]).
    Timeout,
    /// The server drains and stops within this time: everyone is told.
    Drain { within: std::time::Duration },
    /// The server stops: everyone leaves with `server_shutdown`.
    Shutdown,
}

/// Requests that need an answer.
#[derive(Debug)]
pub enum Command {
    Join(JoinRequest),
    Info,
    Participants,
    Participant {
        identity: String,
    },
    Remove {
        identity: String,
        /// Shown to the removed client in its `left` frame.
        message: Option<String>,
    },
    Hold {
        identity: String,
        held: bool,
    },
    MuteTrack {
        identity: String,
        track_id: String,
        muted: bool,
    },
    UpdatePermissions {
        identity: String,
        grants: Grants,
    },
    Invite(CreateInvitationRequest),
    EndInvitation {
        invitation_id: String,
        reason: InvitationEnd,
    },
    /// Admit (or reject) a participant waiting in the lobby, by participant id or
    /// identity.
    DecideLobby {
        participant: String,
        admit: bool,
    },
    /// A phone or bot over plain RTP joins (its socket is the driver's business).
    AddRtpParticipant(RtpJoin),
    /// A plain-RTP participant in early media is answered: `connected`.
    AnswerRtp {
        identity: String,
    },
    Delete,
}

/// Who joins over plain RTP.
#[derive(Debug, Clone)]
pub struct RtpJoin {
    pub identity: String,
    pub name: String,
    pub codec: PlainCodec,
    /// Plain-RTP participants the room takes at most.
    pub max_in_room: u32,
    /// Its call is not answered yet: it enters `early_media`, not `connecting`.
    pub early_media: bool,
}

/// A plain-RTP participant the room let in, and what its endpoint sends with.
#[derive(Debug, Clone)]
pub struct RtpAdmitted {
    pub participant: ParticipantKey,
    pub info: ParticipantInfo,
    pub ssrc: u32,
    pub initial_timestamp: u32,
}

/// The answer to a [`Command`], in the same order of variants.
#[derive(Debug)]
pub enum Reply {
    Joined(Result<Admitted, JoinError>),
    Info(RoomInfo),
    Participants(Vec<ParticipantInfo>),
    Participant(Result<ParticipantInfo, RoomError>),
    Removed(Result<(), RoomError>),
    Held(Result<ParticipantInfo, RoomError>),
    TrackMuted(Result<TrackInfo, RoomError>),
    PermissionsChanged(Result<ParticipantInfo, RoomError>),
    Invited(Result<InvitationInfo, RoomError>),
    InvitationEnded(Result<(), RoomError>),
    LobbyDecided(Result<(), RoomError>),
    RtpAdded(Result<RtpAdmitted, RoomError>),
    RtpAnswered(Result<ParticipantInfo, RoomError>),
    Deleted,
}

/// A participant the room let in. Its frames come as [`Output::ToClient`]; the first
/// one (`joined`) is already queued.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub participant: ParticipantKey,
    pub participant_id: ParticipantId,
}

/// What the room wants done, in order.
#[derive(Debug)]
pub enum Output {
    /// Send one datagram from the media port.
    Transmit { to: SocketAddr, data: BytesMut },
    /// Send a frame to participants' signaling connections.
    ToClient { to: Recipients, msg: ServerMessage },
    /// The participant is out of the room: close its event stream (after the frames
    /// queued before this).
    Departed(ParticipantKey),
    /// Change how the shared demultiplexer routes datagrams to this room.
    Route(RouteChange),
    /// Something the signaling service hears about (webhooks).
    Event(WebhookEvent),
    /// The participant waits in the lobby (`waiting`), or no longer does: while it
    /// waits, frames to `All`/`AllExcept` skip it (it has no roster).
    Lobby {
        participant: ParticipantKey,
        waiting: bool,
    },
    /// A mix frame for a plain-RTP participant's endpoint.
    RtpMix {
        participant: ParticipantKey,
        frame: MixFrame,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipients {
    One(ParticipantKey),
    All,
    AllExcept(ParticipantKey),
}

impl Recipients {
    pub fn includes(self, key: ParticipantKey) -> bool {
        match self {
            Recipients::One(k) => k == key,
            Recipients::All => true,
            Recipients::AllExcept(k) => k != key,
        }
    }
}

/// The demultiplexer's routes to this room's connections (see `chorus_transport::Demux`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// Binding requests naming `ufrag` go to `conn`.
    /// Routes `ufrag` to `conn`; its SRTP is unprotected on the I/O threads with
    /// `ingress` once keyed.
    AddUfrag {
        ufrag: String,
        conn: ConnId,
        ingress: IngressKey,
    },
    /// `ufrag` no longer routes to `conn` (an ICE restart replaced it).
    RemoveUfrag { ufrag: String, conn: ConnId },
    /// The connection with `ufrag` authenticated a request from `addr`: route it there.
    ConfirmAddr { addr: SocketAddr, ufrag: String },
    /// `addr` was silent too long on `conn`.
    ForgetAddr { addr: SocketAddr, conn: ConnId },
    /// The connection closed: drop its ufrag and addresses.
    RemoveConn {
        ufrag: String,
        conn: ConnId,
        addrs: Vec<SocketAddr>,
    },
}
