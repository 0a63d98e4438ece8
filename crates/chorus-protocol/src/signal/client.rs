//! Client → server messages.

use serde::{Deserialize, Serialize};

use super::{IceCandidate, PeerTarget};
use crate::TrackSource;

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message after the socket opens. Identity, room and grants come from the token.
    Join {},
    /// SDP offer for the publisher connection.
    Offer { target: PeerTarget, sdp: String },
    /// SDP answer to the server's offer on the subscriber connection.
    Answer { target: PeerTarget, sdp: String },
    /// Trickled ICE candidate; `candidate` null/absent means end of candidates.
    Candidate {
        target: PeerTarget,
        #[serde(default)]
        candidate: Option<IceCandidate>,
    },
    /// Announce a track before adding it to the publisher connection.
    /// `cid` is the id of the client's `MediaStreamTrack` (the msid track id in its SDP).
    Publish {
        cid: String,
        source: TrackSource,
        #[serde(default)]
        muted: bool,
    },
    /// Stop publishing a track.
    Unpublish { track_id: String },
    /// Mute or unmute one of the client's own tracks.
    Mute { track_id: String, muted: bool },
    /// Leave the room; the server answers with `left` and closes the socket.
    Leave {},
    /// Asks the server to restart ICE on the **subscriber** connection: it answers with
    /// an `offer` carrying new ICE credentials. (The publisher connection is restarted by
    /// the client itself: a new `offer` with new credentials, `iceRestart`.)
    IceRestart { target: PeerTarget },
    /// Keepalive; the server answers with `pong`.
    Ping {
        #[serde(default)]
        ts: u64,
    },
    /// How the client shows a video it receives: the server picks the simulcast layer
    /// that fits (docs/signaling.md has the rule). Each message replaces the last one
    /// for that track; a field left out takes its default.
    TrackSettings {
        track_id: String,
        /// The size it is shown at, in CSS pixels times the device pixel ratio; absent
        /// means no limit.
        #[serde(default)]
        width: Option<u32>,
        #[serde(default)]
        height: Option<u32>,
        /// False: nothing of the track is sent until it is visible again.
        #[serde(default = "visible")]
        visible: bool,
        /// The best quality wanted whatever the size; absent means no limit.
        #[serde(default)]
        max_quality: Option<VideoQuality>,
    },
    /// How many participants' cameras the client receives at most (last-N): those it
    /// pins, then those who spoke last. Screen shares are always received, outside N.
    /// `0..=`[`MAX_LAST_N`]; the room's default applies until the first one.
    SetLastN { last_n: u32 },
    /// The participants (by `participant_id`) whose cameras the client always receives
    /// first, in this order; replaces the last list (empty unpins everyone). At most
    /// [`MAX_PINS`]; they count within last-N.
    SetPins { participant_ids: Vec<String> },
    /// Lets a participant waiting in the lobby in (needs `can_admit`).
    Admit { participant_id: String },
    /// Turns a participant waiting in the lobby away: it leaves with `lobby_rejected`
    /// (needs `can_admit`).
    Reject { participant_id: String },
    /// Puts the client on hold: the server stops forwarding its media to others and
    /// anything to it; its connections stay up. Others see the state `on_hold`.
    Hold {},
    /// Ends the hold: media flows again both ways, video from a keyframe, without
    /// renegotiation.
    Unhold {},
}

/// The most `set_last_n` may ask for: every camera a room can have.
pub const MAX_LAST_N: u32 = crate::control::MAX_PARTICIPANTS_CEILING;

/// The most participants `set_pins` may name.
pub const MAX_PINS: usize = 8;

fn visible() -> bool {
    true
}

/// A simulcast quality, named as clients name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoQuality {
    Low,
    Medium,
    High,
}

/// One client frame as it arrives: the message, and an optional id of the client's
/// choosing that the server echoes in the `error` answering it (so that a client with
/// several requests in flight knows which one failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub msg: ClientMessage,
}

impl From<ClientMessage> for ClientFrame {
    fn from(msg: ClientMessage) -> Self {
        Self {
            request_id: None,
            msg,
        }
    }
}
