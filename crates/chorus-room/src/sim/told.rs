//! What a client was told, read back from its frames: the questions scenarios ask.

use chorus_protocol::LeaveReason;
use chorus_protocol::signal::ServerMessage;

use super::{ClientId, Sim};

impl Sim {
    /// Why `who` left, as `c` was told (`participant_left`).
    pub fn left_reason(&self, c: ClientId, who: ClientId) -> Option<LeaveReason> {
        let id = self.participant_id(who);
        self.frames(c).iter().find_map(|m| match m {
            ServerMessage::ParticipantLeft {
                participant_id,
                reason,
                ..
            } if participant_id == id => Some(*reason),
            _ => None,
        })
    }

    /// The reason in the `left` frame `c` got about itself.
    pub fn own_left(&self, c: ClientId) -> Option<LeaveReason> {
        self.frames(c).iter().find_map(|m| match m {
            ServerMessage::Left { reason, .. } => Some(*reason),
            _ => None,
        })
    }
}
