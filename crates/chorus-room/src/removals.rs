//! Removals that outlive their room: whom the control API removed from which room, and
//! when. A room that empties closes and the next join makes a new one, but the removed
//! identity's tokens are still valid: so the record is the server's, kept here and asked
//! by every room at each join. It is kept as long as a token issued before the removal
//! may still be valid (`keep`, the longest token lifetime, or the ban if longer); past
//! that it refuses nothing and goes. At most `cap` records are kept, the oldest evicted
//! first. Times are Unix milliseconds, handed in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chorus_room_api::RemovalStats;

/// What the store keeps and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovalPolicy {
    /// After a removal even a token issued later is refused this long (zero: only
    /// tokens issued before the removal are).
    pub ban: Duration,
    /// How long a record is kept: the longest lifetime of the tokens the server
    /// accepts (a token issued before the removal has expired by then).
    pub keep: Duration,
    /// Most records kept; one more evicts the oldest.
    pub cap: usize,
}

impl Default for RemovalPolicy {
    fn default() -> Self {
        Self {
            ban: Duration::ZERO,
            // The longest token the server mints (`chorus_api::token::MAX_TTL_SECS`).
            keep: Duration::from_secs(86_400),
            cap: 100_000,
        }
    }
}

/// Why a join is refused: when the identity was removed, and until when a fresh
/// token does not help either (`None`: only tokens issued before the removal fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub removed_at_ms: u64,
    pub banned_until_ms: Option<u64>,
}

/// A room's name and an identity.
type Key = (String, String);

/// The removals of every room of the server. One owner: the registry makes it, each
/// room holds a [`SharedRemovals`] to it.
#[derive(Debug)]
pub struct Removals {
    policy: RemovalPolicy,
    /// When each (room, identity) was last removed, and its place in `order`.
    by_key: HashMap<Key, (u64, u64)>,
    /// The records oldest first: (removed at, a tie breaker) → key.
    order: BTreeMap<(u64, u64), Key>,
    next: u64,
    evicted: u64,
    expired: u64,
}

impl Removals {
    pub fn new(policy: RemovalPolicy) -> Self {
        Self {
            policy,
            by_key: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            evicted: 0,
            expired: 0,
        }
    }

    /// How long a record refuses anything.
    fn lifetime_ms(&self) -> u64 {
        self.policy.keep.max(self.policy.ban).as_millis() as u64
    }

    /// `identity` was removed from `room` at `at_ms`.
    pub fn removed(&mut self, room: &str, identity: &str, at_ms: u64) {
        self.expire(at_ms);
        let key = (room.to_owned(), identity.to_owned());
        if let Some(old) = self.by_key.remove(&key) {
            self.order.remove(&old);
        }
        let place = (at_ms, self.next);
        self.next += 1;
        self.order.insert(place, key.clone());
        self.by_key.insert(key, place);
        while self.by_key.len() > self.policy.cap.max(1) {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.by_key.remove(&oldest);
            self.evicted += 1;
        }
    }

    /// Whether `identity` may join `room` now (`now_ms`) with a token issued at
    /// `issued_at` (Unix seconds): not if the token is not newer than its removal (same
    /// second included: the token's clock has no finer grain), nor within the ban.
    pub fn may_join(
        &mut self,
        room: &str,
        identity: &str,
        issued_at: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        self.expire(now_ms);
        let key = (room.to_owned(), identity.to_owned());
        let Some(&(at, _)) = self.by_key.get(&key) else {
            return Ok(());
        };
        let ban = self.policy.ban.as_millis() as u64;
        let until = at.saturating_add(ban);
        if now_ms < until || issued_at.saturating_mul(1000) <= at {
            return Err(Refusal {
                removed_at_ms: at,
                banned_until_ms: (ban > 0).then_some(until),
            });
        }
        Ok(())
    }

    /// Drops the records that can refuse nothing any more at `now_ms`: every token
    /// issued before them has expired, and their ban has run out.
    fn expire(&mut self, now_ms: u64) {
        let lifetime = self.lifetime_ms();
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0.saturating_add(lifetime) > now_ms {
                break;
            }
            let key = entry.remove();
            self.by_key.remove(&key);
            self.expired += 1;
        }
    }

    pub fn counts(&self) -> RemovalStats {
        RemovalStats {
            records: self.by_key.len() as u64,
            evicted: self.evicted,
            expired: self.expired,
        }
    }
}

/// A handle to the server's [`Removals`], cheap to clone: the registry's, and each
/// room's. Joins and removals are rare; a lock is enough.
#[derive(Debug, Clone)]
pub struct SharedRemovals(Arc<Mutex<Removals>>);

impl SharedRemovals {
    pub fn new(policy: RemovalPolicy) -> Self {
        Self(Arc::new(Mutex::new(Removals::new(policy))))
    }

    fn lock(&self) -> MutexGuard<'_, Removals> {
        // A panic elsewhere while holding it left a consistent map: go on with it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn removed(&self, room: &str, identity: &str, at_ms: u64) {
        self.lock().removed(room, identity, at_ms);
    }

    pub fn may_join(
        &self,
        room: &str,
        identity: &str,
        issued_at: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        self.lock().may_join(room, identity, issued_at, now_ms)
    }

    pub fn counts(&self) -> RemovalStats {
        self.lock().counts()
    }
}

impl Default for SharedRemovals {
    fn default() -> Self {
        Self::new(RemovalPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: u64 = 1_700_000_000_500; // ms
    const AT_S: u64 = AT / 1000;
    const DAY: Duration = Duration::from_secs(86_400);

    fn policy(ban: u64, keep: Duration, cap: usize) -> RemovalPolicy {
        RemovalPolicy {
            ban: Duration::from_secs(ban),
            keep,
            cap,
        }
    }

    #[test]
    fn removal_refuses_older_tokens_and_the_ban() {
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
            let mut r = Removals::new(policy(ban, DAY, 10));
            r.removed("room", "alice", AT);
            assert_eq!(
                r.may_join("room", "alice", issued, now).is_ok(),
                want,
                "ban {ban} issued {issued} now {now}"
            );
            assert!(
                r.may_join("room", "bob", 0, now).is_ok(),
                "others are unaffected"
            );
            assert!(
                r.may_join("other", "alice", 0, now).is_ok(),
                "other rooms are unaffected"
            );
        }
    }

    #[test]
    fn a_record_expires_after_the_longest_token_or_the_ban() {
        // (keep, ban secs, now after the removal (ms), still refuses an old token)
        let cases = [
            (DAY, 0, 86_399_999, true),
            (DAY, 0, 86_400_000, false),
            (Duration::from_secs(60), 0, 59_999, true),
            (Duration::from_secs(60), 0, 60_000, false),
            // A ban longer than the tokens keeps the record for the ban.
            (Duration::from_secs(60), 120, 119_999, true),
            (Duration::from_secs(60), 120, 120_000, false),
        ];
        for (keep, ban, after, refuses) in cases {
            let mut r = Removals::new(policy(ban, keep, 10));
            r.removed("room", "alice", AT);
            let got = r.may_join("room", "alice", AT_S - 1, AT + after);
            assert_eq!(
                got.is_err(),
                refuses,
                "keep {keep:?} ban {ban} after {after}"
            );
            let counts = r.counts();
            assert_eq!(counts.records, u64::from(refuses));
            assert_eq!(counts.expired, u64::from(!refuses));
            assert_eq!(counts.evicted, 0);
        }
    }

    #[test]
    fn expiry_drops_only_the_old_records() {
        let mut r = Removals::new(policy(0, Duration::from_secs(60), 10));
        r.removed("room", "alice", AT);
        r.removed("room", "bob", AT + 30_000);
        // A new removal at a time that expires alice's record drops it on the way.
        r.removed("room", "carol", AT + 60_000);
        assert_eq!(r.counts().records, 2);
        assert_eq!(r.counts().expired, 1);
        assert!(r.may_join("room", "bob", AT_S, AT + 60_000).is_err());
        assert!(r.may_join("room", "alice", AT_S, AT + 60_000).is_ok());
    }

    #[test]
    fn the_cap_evicts_the_oldest_and_counts_it() {
        let mut r = Removals::new(policy(0, DAY, 2));
        r.removed("a", "alice", AT);
        r.removed("b", "bob", AT + 1);
        // Removed again: her record is the newest now.
        r.removed("a", "alice", AT + 2);
        assert_eq!(r.counts().records, 2);
        r.removed("c", "carol", AT + 3);
        let counts = r.counts();
        assert_eq!((counts.records, counts.evicted, counts.expired), (2, 1, 0));
        assert!(
            r.may_join("b", "bob", AT_S, AT + 10).is_ok(),
            "bob's was oldest"
        );
        assert!(r.may_join("a", "alice", AT_S, AT + 10).is_err());
        assert!(r.may_join("c", "carol", AT_S, AT + 10).is_err());
    }

    #[test]
    fn a_second_removal_moves_the_time_on() {
        let mut r = Removals::new(policy(0, DAY, 10));
        r.removed("room", "alice", AT);
        r.removed("room", "alice", AT + 10_000);
        let got = r.may_join("room", "alice", AT_S + 5, AT + 20_000);
        assert_eq!(got.map_err(|e| e.removed_at_ms), Err(AT + 10_000));
        assert_eq!(r.counts().records, 1);
    }
}
