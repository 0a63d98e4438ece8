//! Server → client messages.

use serde::{Deserialize, Serialize};

use super::{IceCandidate, IceServer, PeerTarget};
use crate::{CallState, Grants, LeaveReason, ParticipantInfo, ParticipantState, TrackInfo};

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to `join`.
    Joined {
        room: String,
        participant: ParticipantInfo,
        /// The first page (at most [`ROSTER_PAGE`]) of everyone else already in the
        /// room, with their tracks.
        participants: Vec<ParticipantInfo>,
        /// Whether `participants` is the whole roster; if not, `roster` frames with the
        /// rest follow at once. Absent (older servers) means complete.
        #[serde(default = "complete")]
        roster_complete: bool,
        /// STUN/TURN servers for both peer connections (`RTCConfiguration.iceServers`),
        /// with credentials that expire; absent when the server has none configured.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// The next page of the roster that `joined` began, sent right after it and before
    /// anything else the client hears about those participants.
    Roster {
        participants: Vec<ParticipantInfo>,
        /// This is the last page.
        complete: bool,
    },
    Offer {
        target: PeerTarget,
        sdp: String,
    },
    Answer {
        target: PeerTarget,
        sdp: String,
    },
    Candidate {
        target: PeerTarget,
        candidate: Option<IceCandidate>,
    },
    /// Answer to `publish`: the server-assigned id of the track announced as `cid`.
    PublishAccepted {
        cid: String,
        track: TrackInfo,
    },
    ParticipantJoined {
        participant: ParticipantInfo,
    },
    ParticipantLeft {
        participant_id: String,
        identity: String,
        reason: LeaveReason,
    },
    /// A participant's state changed from `previous` to `state`. On leaving, the last
    /// one says `disconnected` with the `reason` (the same as `participant_left`'s).
    ParticipantState {
        participant_id: String,
        /// Absent from servers before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<ParticipantState>,
        state: ParticipantState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<LeaveReason>,
    },
    /// To the participant only: its own call's state changed (docs/signaling.md has
    /// what moves each). `previous` is absent for the first one of a session that
    /// was not invited; `reason` comes with `disconnecting`.
    CallState {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<CallState>,
        state: CallState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<LeaveReason>,
    },
    /// Answer to `join` in a room with a lobby, for a participant without `can_admit`:
    /// it waits, with no media and no roster, until admitted (then `joined` follows, as
    /// for any join) or rejected (`left` with `lobby_rejected`). Sent again when the
    /// number of participants in the room changes.
    Lobby {
        room: String,
        participant_id: String,
        /// Participants in the room (admitted ones; not those waiting).
        num_participants: u32,
    },
    /// To participants with `can_admit`: someone waits in the lobby (one frame each,
    /// those already waiting right after `joined`).
    LobbyWaiting {
        participant_id: String,
        identity: String,
        name: String,
    },
    /// To participants with `can_admit`: someone no longer waits in the lobby.
    LobbyLeft {
        participant_id: String,
        outcome: LobbyOutcome,
    },
    /// A track of another participant (or the client's own, echoed) was published.
    TrackPublished {
        track: TrackInfo,
    },
    TrackUnpublished {
        participant_id: String,
        track_id: String,
    },
    TrackMuted {
        participant_id: String,
        track_id: String,
        muted: bool,
    },
    /// A published track's description changed after `track_published`: today its
    /// `layers` (a VP9 SVC track's spatial layers become known at its first keyframe,
    /// and change when the encoder adds or drops one). Sent only on a change; `muted`
    /// keeps coming in `track_muted`.
    TrackUpdated {
        track: TrackInfo,
    },
    /// Who is speaking now, longest active first; sent only when the set or that order changes.
    /// An empty list means nobody is speaking.
    ActiveSpeakers {
        speakers: Vec<ActiveSpeaker>,
    },
    /// The client's own grants changed (control API).
    PermissionsChanged {
        grants: Grants,
    },
    /// The client is out of the room; the socket closes after this frame.
    Left {
        reason: LeaveReason,
        /// Why, in words, when the control API removed the client with a message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Pong {
        ts: u64,
    },
    /// The server heard nothing on the client's `target` connection for a while although
    /// the signaling socket is alive: the client should restart ICE there (publisher: a
    /// new offer with `iceRestart`; subscriber: `ice_restart` back, and the server sends
    /// an `offer` with new credentials).
    IceRestart {
        target: PeerTarget,
    },
    /// The `target` connection did not come up (no ICE and DTLS) within `after_ms`, or
    /// stopped carrying anything for that long: media cannot reach the server. `hint`
    /// says what usually causes it. The session continues; a participant whose media
    /// never came up is removed with `media_timeout` (`media.setup_timeout_ms`), one
    /// whose media was up with `connection_lost`.
    MediaUnreachable {
        target: PeerTarget,
        after_ms: u64,
        hint: String,
    },
    /// The server is draining (a rolling restart): it stops within `within_ms`, when
    /// everyone still here leaves with `server_shutdown`. Join again (through the
    /// signaling service, which sends the client to another server) before then.
    Draining {
        within_ms: u64,
    },
    /// The server stopped sending a video the client receives (the track stays on its
    /// subscriber connection, and resumes on a keyframe). Sent only when it changes.
    VideoPaused {
        track_id: String,
        participant_id: String,
        reason: PauseReason,
    },
    /// A paused video is sent again (from its next keyframe).
    VideoResumed {
        track_id: String,
        participant_id: String,
    },
    /// To a publisher: which simulcast layers of its track someone receives. The client
    /// sets `encodings[i].active` of the track's `RTCRtpSender` to each layer's `active`
    /// (`setParameters`), the encoding matched by `rid`. Sent when it changes. Of a VP9
    /// SVC track the layers are its spatial layers (`s0`, `s1`, `s2`): a hint the client
    /// may apply to the one encoding's `scalabilityMode` (as many spatial layers as are
    /// active).
    PublisherLayers {
        track_id: String,
        layers: Vec<PublisherLayer>,
    },
    /// A request failed (`code` is stable, see docs/signaling.md). Fatal errors are
    /// followed by the socket closing.
    Error {
        code: String,
        message: String,
        /// The `request_id` of the client frame this answers, when it carried one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
}

/// How a wait in the lobby ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LobbyOutcome {
    Admitted,
    Rejected,
    /// It left (or its connection did) before anyone decided.
    Left,
}

/// Why a video is paused for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// The publisher is not among the subscriber's last-N (pins and latest speakers).
    LastN,
    /// The bandwidth estimate toward the subscriber leaves no room for it (the least
    /// important videos are paused first, after every video was lowered).
    Bandwidth,
}

/// One layer of [`ServerMessage::PublisherLayers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherLayer {
    pub rid: String,
    pub active: bool,
}

/// One entry of [`ServerMessage::ActiveSpeakers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveSpeaker {
    pub participant_id: String,
    /// Smoothed loudness, 0 (silence) to 1 (loudest).
    pub level: f32,
}

fn complete() -> bool {
    true
}
