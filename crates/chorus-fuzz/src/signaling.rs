//! Signaling frames from a client's WebSocket: parsed as the server parses them (before
//! and after `join`), then handled by a room, whose frames back are serialized as the
//! server sends them. SDP in `offer` and `answer` reaches the room's connections.

use std::time::{Duration, Instant};

use chorus_protocol::Grants;
use chorus_protocol::signal::{ClientFrame, ClientMessage};
use chorus_room::io::{Command, Input, Output, Reply};
use chorus_room::{CoreParams, RoomCore};
use chorus_room_api::JoinRequest;

use crate::peers;

/// The input is text, one frame a line. A line from bob starts with `~`, else it is
/// alice's; an empty line lets a second pass (the room's timers run).
pub fn signaling(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let start = Instant::now();
    let mut room = RoomCore::new(
        CoreParams {
            name: "fuzz".to_owned(),
            max_participants: 10,
            empty_timeout: Duration::from_secs(300),
            peers: peers().clone(),
            seed: 1,
            first_conn_id: 1,
            egress_shards: 1,
            created_at_ms: 1_700_000_000_000,
            joins_per_second: 100,
            last_n: 6,
            media_setup_timeout: Duration::from_secs(30),
            max_tracks_per_participant: 4,
            lobby: false,
            data: chorus_room::data::DataLimits::default(),
            removals: chorus_room::removals::SharedRemovals::default(),
            echo: false,
        },
        start,
    );
    let join = |identity: &str, room: &mut RoomCore| {
        let req = JoinRequest {
            identity: identity.to_owned(),
            name: identity.to_owned(),
            grants: Grants::default(),
            issued_at: 0,
        };
        match room.handle_input(Input::Command(Command::Join(req)), start) {
            Some(Reply::Joined(Ok(admitted))) => admitted.participant,
            other => panic!("{identity} could not join: {other:?}"),
        }
    };
    let alice = join("alice", &mut room);
    let bob = join("bob", &mut room);
    drain(&mut room);
    let mut now = start;
    for line in text.lines() {
        if line.is_empty() {
            now += Duration::from_secs(1);
            room.handle_input(Input::Timeout, now);
            drain(&mut room);
            continue;
        }
        let (who, json) = match line.strip_prefix('~') {
            Some(json) => (bob, json),
            None => (alice, line),
        };
        // Before `join` the server reads a bare message; after it, a frame.
        let _ = serde_json::from_str::<ClientMessage>(json);
        let Ok(frame) = serde_json::from_str::<ClientFrame>(json) else {
            continue;
        };
        now += Duration::from_millis(10);
        room.handle_input(
            Input::Signal {
                participant: who,
                frame,
            },
            now,
        );
        drain(&mut room);
    }
}

fn drain(room: &mut RoomCore) {
    while let Some(output) = room.poll_output() {
        if let Output::ToClient { msg, .. } = output {
            serde_json::to_string(&msg).expect("a server frame serializes");
        }
    }
}
