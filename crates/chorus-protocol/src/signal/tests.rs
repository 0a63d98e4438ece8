use super::*;
use crate::{Grants, MediaKind, ParticipantInfo, ParticipantState, TrackInfo, TrackSource};

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
fn track_updated_carries_the_whole_track_info() {
    // As docs/signaling.md shows it.
    let json = r#"{"type":"track_updated","track":{"track_id":"TR_7g2k1x0c9d3ab","participant_id":"PA_4kq2m8c1z0x9a","source":"camera","kind":"video","muted":false,"layers":["s0","s1","s2"]}}"#;
    let msg: ServerMessage = serde_json::from_str(json).unwrap();
    let ServerMessage::TrackUpdated { track } = &msg else {
        panic!("not track_updated: {msg:?}");
    };
    assert_eq!(track.layers, ["s0", "s1", "s2"]);
    assert_eq!(serde_json::to_string(&msg).unwrap(), json);
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
    assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"set_last_n","last_n":-1}"#).is_err());
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
    let frame: ClientFrame = serde_json::from_str(r#"{"type":"leave","request_id":"x"}"#).unwrap();
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
