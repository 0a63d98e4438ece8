//! Client signaling: JSON text frames on the WebSocket `/v1/rtc`.
//!
//! Every frame is one object with a `type` field. A participant uses two peer
//! connections: on the **publisher** connection the client offers and the server
//! answers; on the **subscriber** connection the server offers and the client
//! answers. Each connection has exactly one offerer, so offers never collide.

use serde::{Deserialize, Serialize};

use crate::{Grants, LeaveReason, ParticipantInfo, ParticipantState, TrackInfo, TrackSource};

/// Which of the participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerTarget {
    Publisher,
    Subscriber,
}

/// An ICE candidate as `RTCIceCandidateInit` spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_mline_index: Option<u16>,
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

/// A STUN or TURN server as `RTCIceServer` spells it. Chorus hands out TURN servers with
/// time-limited credentials (coturn's TURN REST API): pass them to `RTCPeerConnection`
/// as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:`, `turns:` or `stun:` URLs of one server.
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

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
    ParticipantState {
        participant_id: String,
        state: ParticipantState,
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
    /// (`setParameters`), the encoding matched by `rid`. Sent when it changes.
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

/// Participants per roster page (`joined`, then `roster` frames). A WebSocket's write
/// buffer keeps the capacity of the largest frame it ever sent, for the whole session;
/// the whole roster in one frame (about 56 KiB at 350 participants) made that buffer
/// the largest cost per participant on the server. A page of 10, with three tracks
/// each, stays below 8 KiB.
pub const ROSTER_PAGE: usize = 10;

fn complete() -> bool {
    true
}

/// What a participant joining a room is sent first: `joined` with the first page of
/// `others`, then a `roster` frame per further page, in order; the last one is complete.
pub fn joined_frames(
    room: String,
    participant: ParticipantInfo,
    others: Vec<ParticipantInfo>,
) -> Vec<ServerMessage> {
    let mut others = others.into_iter();
    let first = others.by_ref().take(ROSTER_PAGE).collect();
    let mut frames = vec![ServerMessage::Joined {
        room,
        participant,
        participants: first,
        roster_complete: others.as_slice().is_empty(),
        ice_servers: Vec::new(),
    }];
    while !others.as_slice().is_empty() {
        let participants = others.by_ref().take(ROSTER_PAGE).collect();
        frames.push(ServerMessage::Roster {
            participants,
            complete: others.as_slice().is_empty(),
        });
    }
    frames
}

/// The id (and media stream id) of the one audio track every subscriber connection
/// carries: the room's audio, mixed by the server (or relayed in a 1:1 call).
pub const ROOM_AUDIO_TRACK: &str = "mix";

/// One entry of [`ServerMessage::ActiveSpeakers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveSpeaker {
    pub participant_id: String,
    /// Smoothed loudness, 0 (silence) to 1 (loudest).
    pub level: f32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MediaKind, ParticipantState, TrackInfo, TrackSource};

    fn three_layers() -> Vec<String> {
        ["q", "h", "f"].map(str::to_owned).to_vec()
    }

    #[test]
    fn track_info_lists_layers_only_for_simulcast_and_old_json_parses() {
        let old = r#"{"type":"track_published","track":{"track_id":"TR_1",
            "participant_id":"PA_1","source":"camera","kind":"video","muted":false}}"#;
        let ServerMessage::TrackPublished { mut track } = serde_json::from_str(old).unwrap() else {
            panic!("not track_published");
        };
        assert!(track.layers.is_empty());
        let plain = serde_json::to_string(&track).unwrap();
        assert!(!plain.contains("layers"), "{plain}");
        track.layers = three_layers();
        let json = serde_json::to_string(&track).unwrap();
        assert!(json.ends_with(r#""layers":["q","h","f"]}"#), "{json}");
        assert_eq!(serde_json::from_str::<TrackInfo>(&json).unwrap(), track);
    }

    #[test]
    fn track_settings_fields_default_when_left_out() {
        let full = r#"{"type":"track_settings","track_id":"TR_1","width":320,"height":180,
            "visible":false,"max_quality":"medium"}"#;
        assert_eq!(
            serde_json::from_str::<ClientMessage>(full).unwrap(),
            ClientMessage::TrackSettings {
                track_id: "TR_1".into(),
                width: Some(320),
                height: Some(180),
                visible: false,
                max_quality: Some(VideoQuality::Medium),
            }
        );
        let bare = r#"{"type":"track_settings","track_id":"TR_1"}"#;
        assert_eq!(
            serde_json::from_str::<ClientMessage>(bare).unwrap(),
            ClientMessage::TrackSettings {
                track_id: "TR_1".into(),
                width: None,
                height: None,
                visible: true,
                max_quality: None,
            }
        );
        let bad = r#"{"type":"track_settings","track_id":"TR_1","max_quality":"ultra"}"#;
        assert!(serde_json::from_str::<ClientMessage>(bad).is_err());
    }

    #[test]
    fn last_n_pins_pauses_and_publisher_layers_on_the_wire() {
        // (JSON, message) both ways: the names docs/signaling.md gives.
        let client = [
            (
                r#"{"type":"set_last_n","last_n":1}"#,
                ClientMessage::SetLastN { last_n: 1 },
            ),
            (
                r#"{"type":"set_pins","participant_ids":["PA_1","PA_2"]}"#,
                ClientMessage::SetPins {
                    participant_ids: vec!["PA_1".into(), "PA_2".into()],
                },
            ),
        ];
        for (json, msg) in client {
            assert_eq!(serde_json::from_str::<ClientMessage>(json).unwrap(), msg);
            assert_eq!(serde_json::to_string(&msg).unwrap(), json);
        }
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"set_last_n"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"set_last_n","last_n":-1}"#).is_err()
        );
        let server = [
            (
                r#"{"type":"video_paused","track_id":"TR_1","participant_id":"PA_1","reason":"last_n"}"#,
                ServerMessage::VideoPaused {
                    track_id: "TR_1".into(),
                    participant_id: "PA_1".into(),
                    reason: PauseReason::LastN,
                },
            ),
            (
                r#"{"type":"video_resumed","track_id":"TR_1","participant_id":"PA_1"}"#,
                ServerMessage::VideoResumed {
                    track_id: "TR_1".into(),
                    participant_id: "PA_1".into(),
                },
            ),
            (
                r#"{"type":"publisher_layers","track_id":"TR_1","layers":[{"rid":"q","active":true},{"rid":"f","active":false}]}"#,
                ServerMessage::PublisherLayers {
                    track_id: "TR_1".into(),
                    layers: vec![
                        PublisherLayer {
                            rid: "q".into(),
                            active: true,
                        },
                        PublisherLayer {
                            rid: "f".into(),
                            active: false,
                        },
                    ],
                },
            ),
        ];
        for (json, msg) in server {
            assert_eq!(serde_json::to_string(&msg).unwrap(), json);
            assert_eq!(serde_json::from_str::<ServerMessage>(json).unwrap(), msg);
        }
    }

    #[test]
    fn a_frame_carries_its_request_id_beside_the_message() {
        let cases = [
            (
                r#"{"type":"mute","track_id":"t","muted":true,"request_id":"7"}"#,
                Some("7"),
            ),
            (r#"{"type":"ping","ts":1}"#, None),
        ];
        for (json, want) in cases {
            let frame: ClientFrame = serde_json::from_str(json).expect(json);
            assert_eq!(frame.request_id.as_deref(), want, "{json}");
        }
        let frame: ClientFrame =
            serde_json::from_str(r#"{"type":"leave","request_id":"x"}"#).unwrap();
        assert_eq!(frame.msg, ClientMessage::Leave {});
        let error = ServerMessage::Error {
            code: "c".into(),
            message: "m".into(),
            request_id: None,
        };
        // No id asked, none echoed: old clients see the frame they always saw.
        assert!(
            !serde_json::to_string(&error)
                .unwrap()
                .contains("request_id")
        );
    }

    fn someone(n: usize, tracks: usize) -> ParticipantInfo {
        let participant_id = format!("PA_{n:012}");
        ParticipantInfo {
            participant_id: participant_id.clone(),
            identity: format!("user-{n:08}"),
            name: format!("Participant number {n:05}"),
            state: ParticipantState::Connected,
            grants: Grants::default(),
            tracks: TrackSource::ALL[..tracks]
                .iter()
                .map(|&source| TrackInfo {
                    track_id: format!("TR_{n:08}_{}", source.as_str()),
                    participant_id: participant_id.clone(),
                    source,
                    kind: source.kind(),
                    muted: false,
                    // Every video in three simulcast layers: the largest a track gets.
                    layers: match source.kind() {
                        MediaKind::Video => three_layers(),
                        MediaKind::Audio => Vec::new(),
                    },
                })
                .collect(),
            joined_at_ms: 1_700_000_000_000,
        }
    }

    fn pages(frames: &[ServerMessage]) -> Vec<(usize, bool)> {
        frames
            .iter()
            .map(|f| match f {
                ServerMessage::Joined {
                    participants,
                    roster_complete,
                    ..
                } => (participants.len(), *roster_complete),
                ServerMessage::Roster {
                    participants,
                    complete,
                } => (participants.len(), *complete),
                other => panic!("not a roster frame: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_roster_is_split_into_pages_and_only_the_last_is_complete() {
        let frames = |n: usize| {
            let others = (0..n).map(|i| someone(i, 1)).collect();
            joined_frames("r".into(), someone(999, 0), others)
        };
        let p = ROSTER_PAGE;
        assert_eq!(pages(&frames(0)), [(0, true)]);
        assert_eq!(pages(&frames(p)), [(p, true)]);
        assert_eq!(pages(&frames(p + 1)), [(p, false), (1, true)]);
        assert_eq!(
            pages(&frames(2 * p + 3)),
            [(p, false), (p, false), (3, true)]
        );
        assert!(matches!(frames(1)[0], ServerMessage::Joined { .. }));
        // The pages keep the order of the roster.
        let ids: Vec<String> = frames(3 * p)
            .into_iter()
            .flat_map(|f| match f {
                ServerMessage::Joined { participants, .. }
                | ServerMessage::Roster { participants, .. } => participants,
                _ => Vec::new(),
            })
            .map(|p| p.participant_id)
            .collect();
        let want: Vec<String> = (0..3 * p).map(|i| someone(i, 1).participant_id).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn a_full_page_with_every_track_stays_below_8_kib() {
        let others = (0..ROSTER_PAGE).map(|i| someone(i, 3)).collect();
        let frames = joined_frames("a-room-name".into(), someone(999, 3), others);
        let len = serde_json::to_string(&frames[0]).unwrap().len();
        assert!(len <= 8 * 1024, "{len} bytes");
    }

    #[test]
    fn joined_without_roster_complete_is_the_whole_roster() {
        let json = r#"{"type":"joined","room":"r","participant":{"participant_id":"PA_1",
            "identity":"a","name":"a","state":"connecting","grants":{},"tracks":[],
            "joined_at_ms":1},"participants":[]}"#;
        let msg: ServerMessage = serde_json::from_str(json).unwrap();
        assert!(matches!(
            msg,
            ServerMessage::Joined {
                roster_complete: true,
                ..
            }
        ));
        let page = r#"{"type":"roster","participants":[],"complete":true}"#;
        assert_eq!(
            serde_json::from_str::<ServerMessage>(page).unwrap(),
            ServerMessage::Roster {
                participants: Vec::new(),
                complete: true
            }
        );
    }

    /// `ice_servers` is left out when there are none (clients that predate it see the
    /// frame they know) and spelled as `RTCIceServer` when there are.
    #[test]
    fn joined_carries_ice_servers_only_when_there_are_some() {
        let mut frames = joined_frames("r".into(), someone(1, 0), Vec::new());
        let plain = serde_json::to_string(&frames[0]).unwrap();
        assert!(!plain.contains("ice_servers"), "{plain}");
        let ServerMessage::Joined { ice_servers, .. } = &mut frames[0] else {
            panic!("not joined");
        };
        ice_servers.push(IceServer {
            urls: vec!["turn:turn.example.com:3478?transport=udp".into()],
            username: Some("1700000000:alice".into()),
            credential: Some("c2VjcmV0".into()),
        });
        let json = serde_json::to_string(&frames[0]).unwrap();
        assert!(
            json.ends_with(
                r#""ice_servers":[{"urls":["turn:turn.example.com:3478?transport=udp"],"username":"1700000000:alice","credential":"c2VjcmV0"}]}"#
            ),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&json).unwrap(),
            frames[0]
        );
    }
}
