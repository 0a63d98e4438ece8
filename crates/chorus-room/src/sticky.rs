//! What the control API imposes on an identity that outlives its tracks and sessions
//! in the room: removals (who may not come back with an old token, or for a while) and
//! server mutes (which source stays muted whatever the client publishes). Both are
//! kept for the room's lifetime; times are Unix milliseconds, handed in.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chorus_protocol::TrackSource;

#[derive(Debug, Default)]
pub struct Sticky {
    /// When each identity was last removed by the control API.
    removed: HashMap<String, u64>,
    /// How long after a removal even a fresh token is refused (0: only older tokens).
    ban: Duration,
    /// Sources the server muted, by identity: any publication of them starts muted.
    muted: HashSet<(String, TrackSource)>,
}

/// Why a join is refused: when the identity was removed, and until when a fresh
/// token does not help either (`None`: only tokens issued before the removal fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub removed_at_ms: u64,
    pub banned_until_ms: Option<u64>,
}

impl Sticky {
    pub fn new(ban: Duration) -> Self {
        Self {
            ban,
            ..Self::default()
        }
    }

    pub fn removed(&mut self, identity: &str, at_ms: u64) {
        self.removed.insert(identity.to_owned(), at_ms);
    }

    /// Whether `identity` may join now (`now_ms`) with a token issued at `issued_at`
    /// (Unix seconds): not if the token is not newer than its removal (same second
    /// included: the token's clock has no finer grain), nor within the ban.
    pub fn may_join(&self, identity: &str, issued_at: u64, now_ms: u64) -> Result<(), Refusal> {
        let Some(&at) = self.removed.get(identity) else {
            return Ok(());
        };
        let until = at.saturating_add(self.ban.as_millis() as u64);
        let banned = now_ms < until;
        if banned || issued_at.saturating_mul(1000) <= at {
            return Err(Refusal {
                removed_at_ms: at,
                banned_until_ms: (!self.ban.is_zero()).then_some(until),
            });
        }
        Ok(())
    }

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
    fn removal_refuses_older_tokens_and_the_ban() {
        const AT: u64 = 1_700_000_000_500; // ms
        const AT_S: u64 = AT / 1000;
        // (ban secs, token issued at (s), now (ms), may join)
        let cases = [
            (0, AT_S - 60, AT + 1, false),
            (0, AT_S, AT + 1, false),
            (0, AT_S + 1, AT + 1000, true),
            (60, AT_S + 1, AT + 1000, false),
            (60, AT_S + 1, AT + 59_999, false),
            (60, AT_S + 1, AT + 60_000, true),
            (60, AT_S - 1, AT + 120_000, false),
        ];
        for (ban, issued, now, want) in cases {
            let mut s = Sticky::new(Duration::from_secs(ban));
            s.removed("alice", AT);
            assert_eq!(
                s.may_join("alice", issued, now).is_ok(),
                want,
                "ban {ban} issued {issued} now {now}"
            );
            assert!(s.may_join("bob", 0, now).is_ok(), "others are unaffected");
        }
    }

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
