//! The echo room applied: microphone packets whose delay is up go back to their
//! publisher on its room-audio track (the delay line is `crate::echo`).

use std::time::Instant;

use chorus_core::ConnId;

use super::RoomCore;
use crate::forward::{Outgoing, Payload};

impl RoomCore {
    /// Sends back what the echo line holds that is due by `now`.
    pub(super) fn tick_echo(&mut self, now: Instant) {
        let Some(line) = self.echo.as_mut() else {
            return;
        };
        while let Some(p) = line.pop_due(now) {
            let Some(conn) = self.participants.get(p.owner).and_then(|o| o.subscriber) else {
                continue;
            };
            let out = Outgoing {
                header: p.header,
                seq: p.seq,
                ts: p.ts,
                keyframe: false,
                down: self.room_audio.clone(),
                keyframes_of: None,
                source: 0,
                layered: None,
                payload: Payload::Shared(p.payload),
            };
            self.queue.push(out, &[conn] as &[ConnId]);
        }
    }
}
