//! What the control API imposes on an identity that outlives its tracks and sessions
//! in the room: server mutes (which source stays muted whatever the client publishes).
//! A mute is the call's: it is kept for the room's lifetime, and a room that closes
//! (empty for its empty timeout) starts its next call unmuted. Removals, which concern
//! tokens that outlive any room, are the server's ([`crate::removals`]).

use std::collections::HashSet;

use chorus_protocol::TrackSource;

#[derive(Debug, Default)]
pub struct Sticky {
    /// Sources the server muted, by identity: any publication of them starts muted.
    muted: HashSet<(String, TrackSource)>,
}

impl Sticky {
    pub fn set_muted(&mut self, identity: &str, source: TrackSource, muted: bool) {
        let key = (identity.to_owned(), source);
        if muted {
            self.muted.insert(key);
        } else {
            self.muted.remove(&key);
        }
    }

    pub fn is_muted(&self, identity: &str, source: TrackSource) -> bool {
        // A lookup without allocating would need a borrowed key type; joins are rare.
        self.muted.contains(&(identity.to_owned(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_mutes_by_identity_and_source() {
        let mut s = Sticky::default();
        s.set_muted("alice", TrackSource::Camera, true);
        assert!(s.is_muted("alice", TrackSource::Camera));
        assert!(!s.is_muted("alice", TrackSource::Microphone));
        assert!(!s.is_muted("bob", TrackSource::Camera));
        s.set_muted("alice", TrackSource::Camera, false);
        assert!(!s.is_muted("alice", TrackSource::Camera));
    }
}
