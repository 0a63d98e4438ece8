//! Wire types shared by the server, the Rust client and the load-test harness.
//!
//! Everything here is plain data with serde derives: the JSON the client signaling
//! WebSocket carries ([`signal`]), the bodies of the control API ([`control`]) and
//! the claims of a user access token ([`token`]). `docs/signaling.md` and the
//! OpenAPI document describe the same shapes for people.

pub mod control;
pub mod data;
pub mod signal;
pub mod token;
pub mod webhook;

use serde::{Deserialize, Serialize};

/// What a published track carries. A client sends at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    Microphone,
    Camera,
    ScreenShare,
    /// The audio a screen share captures (a browser tab's sound), where the browser
    /// gives it: forwarded as a track of its own, not mixed into the room audio.
    ScreenShareAudio,
}

impl TrackSource {
    pub const ALL: [TrackSource; 4] = [
        Self::Microphone,
        Self::Camera,
        Self::ScreenShare,
        Self::ScreenShareAudio,
    ];

    pub fn kind(self) -> MediaKind {
        match self {
            TrackSource::Microphone | TrackSource::ScreenShareAudio => MediaKind::Audio,
            TrackSource::Camera | TrackSource::ScreenShare => MediaKind::Video,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::ScreenShare => "screen_share",
            TrackSource::ScreenShareAudio => "screen_share_audio",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// What a participant may do in a room. Carried in the token and changeable
/// through the control API while the participant is in the room.
///
/// Read from a JSON object only: serde's derived `Deserialize` also takes an array of the
/// fields in order, so `{"grants": []}` used to reset a participant's grants (found by
/// the control API fuzzing). The derive (`remote = "Self"`) gives the inherent
/// `Grants::deserialize` that the map-only impl below calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, remote = "Self")]
pub struct Grants {
    /// May publish tracks at all.
    pub can_publish: bool,
    /// Which sources it may publish; empty means every source.
    pub can_publish_sources: Vec<TrackSource>,
    /// May receive the media of others.
    pub can_subscribe: bool,
    /// May send data messages.
    pub can_publish_data: bool,
    /// May let participants waiting in the room's lobby in (`admit`) or turn them away
    /// (`reject`); joins a room with a lobby without waiting. Default false (absent from
    /// the JSON when false, as before it existed).
    #[serde(skip_serializing_if = "is_false")]
    pub can_admit: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            can_publish: true,
            can_publish_sources: Vec::new(),
            can_subscribe: true,
            can_publish_data: true,
            can_admit: false,
        }
    }
}

impl Serialize for Grants {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Grants::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Grants;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of grants")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Grants, A::Error> {
                Grants::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

impl Grants {
    pub fn subscribe_only() -> Self {
        Self {
            can_publish: false,
            can_publish_data: false,
            ..Self::default()
        }
    }

    pub fn may_publish(&self, source: TrackSource) -> bool {
        self.can_publish
            && (self.can_publish_sources.is_empty() || self.can_publish_sources.contains(&source))
    }
}

/// A participant's state, as the calling SDK shows it and the room sees it. Every change
/// is a `participant_state` event with the previous state (docs/signaling.md has the
/// table of what moves each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantState {
    /// Not in the call yet: the state before `participant_joined` (never in a roster).
    Idle,
    /// Invited through the control API and not answered yet: a roster entry without a
    /// session, until the invitee joins (then `connecting`) or the invitation ends.
    Ringing,
    /// Media flows before the call is answered: a plain-RTP participant created with
    /// `early_media` (a phone gateway's ringback or announcement), heard in the room and
    /// sent nothing, until the control API answers it (then `connected`).
    EarlyMedia,
    /// Waiting in the room's lobby: no media, no roster, until admitted or rejected.
    InLobby,
    /// Signaling is up, media transport not yet connected.
    Connecting,
    /// ICE and DTLS are up on at least one of the participant's connections, and none
    /// of them has gone silent.
    Connected,
    /// The participant holds the call: no media to or from it.
    OnHold,
    /// One of its connections went silent: it recovers if media resumes (e.g. after an
    /// ICE restart), or is removed with `connection_lost`. Also the final state of
    /// everyone who left, with the reason.
    Disconnected,
}

impl ParticipantState {
    pub const ALL: [ParticipantState; 8] = [
        Self::Idle,
        Self::Ringing,
        Self::EarlyMedia,
        Self::InLobby,
        Self::Connecting,
        Self::Connected,
        Self::OnHold,
        Self::Disconnected,
    ];

    /// What the participant's own client shows of its call in this state; `None` for
    /// `idle`. `disconnected` here is a silent connection, which is reconnecting.
    pub fn call_state(self) -> Option<CallState> {
        match self {
            Self::Idle => None,
            Self::Ringing => Some(CallState::Incoming),
            Self::EarlyMedia => Some(CallState::EarlyMedia),
            Self::InLobby | Self::Connecting | Self::Disconnected => Some(CallState::Connecting),
            Self::Connected => Some(CallState::Connected),
            Self::OnHold => Some(CallState::Hold),
        }
    }
}

/// A client's own call, as the calling SDK shows it. The server sends `call_state` to
/// the participant where it knows the state (docs/signaling.md: which event moves each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Invited and not answered (the push the signaling service sent).
    Incoming,
    /// The client called someone who was not answered yet (the client's own state: it
    /// sees the invitee `ringing` in the roster).
    Ringing,
    /// Media before the answer. Only plain-RTP participants are in early media, and they
    /// have no signaling: no client is sent it.
    EarlyMedia,
    /// Joined (or in the lobby) and media not up yet, or reconnecting.
    Connecting,
    Connected,
    Hold,
    /// Leaving: the server sends it just before `left`.
    Disconnecting,
    /// Out of the call: the client's state once the socket closed.
    Disconnected,
    /// It put itself on hold (`hold`, or the control API): no media to or from it; its
    /// connections stay up.
    OnHold,
}

/// Why a participant left a room. Sent to the others and to the participant itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The client sent `leave`.
    ClientLeft,
    /// The signaling connection closed without `leave`.
    SignalingClosed,
    /// ICE/DTLS timed out: the client vanished without saying goodbye.
    ConnectionLost,
    /// Its media never came up (ICE and DTLS) within the setup timeout
    /// (`media.setup_timeout_ms`) of its first connection.
    MediaTimeout,
    /// Removed through the control API.
    RemovedByServer,
    /// The same identity joined again; the older session is replaced.
    DuplicateIdentity,
    /// The room was deleted through the control API.
    RoomDeleted,
    /// The room stopped because of an internal error.
    RoomFailed,
    /// The server is shutting down.
    ServerShutdown,
    /// An invitee declined (its ringing entry leaves the roster).
    Declined,
    /// An invitation was not answered within its timeout.
    NoAnswer,
    /// An invitation was cancelled through the control API.
    Cancelled,
    /// A participant waiting in the lobby was turned away.
    LobbyRejected,
    /// A plain-RTP participant sent no RTP for `plain_rtp.timeout_ms`.
    RtpTimeout,
}

impl LeaveReason {
    pub const ALL: [LeaveReason; 14] = [
        Self::ClientLeft,
        Self::SignalingClosed,
        Self::ConnectionLost,
        Self::MediaTimeout,
        Self::RemovedByServer,
        Self::DuplicateIdentity,
        Self::RoomDeleted,
        Self::RoomFailed,
        Self::ServerShutdown,
        Self::Declined,
        Self::NoAnswer,
        Self::Cancelled,
        Self::LobbyRejected,
        Self::RtpTimeout,
    ];

    /// The name on the wire (and in metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientLeft => "client_left",
            Self::SignalingClosed => "signaling_closed",
            Self::ConnectionLost => "connection_lost",
            Self::MediaTimeout => "media_timeout",
            Self::RemovedByServer => "removed_by_server",
            Self::DuplicateIdentity => "duplicate_identity",
            Self::RoomDeleted => "room_deleted",
            Self::RoomFailed => "room_failed",
            Self::ServerShutdown => "server_shutdown",
            Self::Declined => "declined",
            Self::NoAnswer => "no_answer",
            Self::Cancelled => "cancelled",
            Self::LobbyRejected => "lobby_rejected",
            Self::RtpTimeout => "rtp_timeout",
        }
    }
}

/// Public description of a published track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Server-assigned track id (`TR_…`). On a subscriber connection the track
    /// arrives in a media stream whose id equals this value.
    pub track_id: String,
    pub participant_id: String,
    pub source: TrackSource,
    pub kind: MediaKind,
    pub muted: bool,
    /// A simulcast video's layers: the publisher's RFC 8851 rids (`q`, `h`, `f`, …),
    /// lowest quality first, so a layer's index is its place here (0 the lowest).
    /// Absent (empty) without simulcast, and in JSON from servers before it. Plain
    /// strings, not objects: a roster page with every video in three layers stays
    /// within its 8 KiB (see `signal::ROSTER_PAGE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// Public description of a participant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Server-assigned session id (`PA_…`), unique per join.
    pub participant_id: String,
    /// Stable identity from the token.
    pub identity: String,
    pub name: String,
    pub state: ParticipantState,
    pub grants: Grants,
    pub tracks: Vec<TrackInfo>,
    /// Unix time of the join, in milliseconds.
    pub joined_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_read_from_an_object_only() {
        let cases: [(&str, Option<Grants>); 5] = [
            ("{}", Some(Grants::default())),
            (
                r#"{"can_publish": false, "can_publish_data": false}"#,
                Some(Grants::subscribe_only()),
            ),
            ("[]", None),
            ("[false, [], true, true]", None),
            ("null", None),
        ];
        for (json, want) in cases {
            let got = serde_json::from_str::<Grants>(json).ok();
            assert_eq!(got, want, "{json}");
        }
        let grants = Grants::subscribe_only();
        let text = serde_json::to_string(&grants).unwrap();
        assert!(text.starts_with('{'), "{text}");
        assert_eq!(serde_json::from_str::<Grants>(&text).unwrap(), grants);
    }

    #[test]
    fn leave_reason_names_are_the_wire_names() {
        for reason in LeaveReason::ALL {
            let wire = serde_json::to_string(&reason).expect("serializes");
            assert_eq!(wire, format!("\"{}\"", reason.as_str()));
        }
    }
}
