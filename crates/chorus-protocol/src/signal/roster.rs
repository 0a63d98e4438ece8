//! The roster in pages: `joined`, then `roster` frames.

use super::ServerMessage;
use crate::ParticipantInfo;

/// Participants per roster page (`joined`, then `roster` frames). A WebSocket's write
/// buffer keeps the capacity of the largest frame it ever sent, for the whole session;
/// the whole roster in one frame (about 56 KiB at 350 participants) made that buffer
/// the largest cost per participant on the server. A page of 10, with three tracks
/// each, stays below 8 KiB.
pub const ROSTER_PAGE: usize = 10;

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
