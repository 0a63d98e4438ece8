//! What the HTTP layer needs from the rooms, and no more: the [`Rooms`] and
//! [`SessionLink`] traits (implemented by `chorus-room`, and by fakes in tests),
//! who joins ([`JoinRequest`]), the errors rooms answer with, and the room naming rule.
//!
//! It sits below `chorus-api` and `chorus-room` so that the API does not depend
//! on the room actors or the media stack under them.

mod error;
mod metrics;
mod rooms;

pub use error::{JoinError, RoomError};
pub use metrics::{Histogram, RemovalStats, ServerMetrics, WebhookStats};
pub use rooms::{BoxFuture, JoinRequest, JoinedSession, Rooms, SessionLink};

/// Longest room name, in bytes.
pub const MAX_ROOM_NAME: usize = 64;

/// Room names: 1 to [`MAX_ROOM_NAME`] bytes of `A-Z a-z 0-9 - _ .`.
pub fn valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        let cases = [
            ("demo", true),
            ("team-42_a.b", true),
            ("", false),
            ("has space", false),
            ("slash/room", false),
            ("ünïcode", false),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
        ];
        for (name, want) in cases {
            assert_eq!(valid_room_name(name), want, "{name:?}");
        }
    }
}
