//! Deadlines by key: the room's connections (DTLS retransmissions, RTCP reports, each
//! connection's ICE liveness), and each participant's media setup. One entry per key
//! counts: a later schedule supersedes the earlier, and stale heap entries are skipped
//! when they come up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

use chorus_core::ConnId;

#[derive(Debug)]
pub struct Timers<K = ConnId> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    /// The deadline each key is filed under.
    current: HashMap<K, Instant>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            current: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Timers<K> {
    /// Files `key` under `at` (or under nothing), replacing what it was filed under.
    pub fn schedule(&mut self, key: K, at: Option<Instant>) {
        match at {
            Some(at) => {
                if self.current.insert(key, at) != Some(at) {
                    self.heap.push(Reverse((at, key)));
                }
            }
            None => {
                self.current.remove(&key);
            }
        }
    }

    pub fn cancel(&mut self, key: K) {
        self.current.remove(&key);
    }

    /// The earliest live deadline.
    pub fn next(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// A key whose deadline is due by `now`, if any; it is no longer filed.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.skip_stale();
        let Reverse((t, key)) = *self.heap.peek()?;
        if t > now {
            return None;
        }
        self.heap.pop();
        self.current.remove(&key);
        Some(key)
    }

    fn skip_stale(&mut self) {
        while let Some(Reverse((t, key))) = self.heap.peek() {
            if self.current.get(key) == Some(t) {
                return;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn latest_schedule_wins_and_cancel_forgets() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (a, b, c) = (ConnId(1), ConnId(2), ConnId(3));
        let mut timers = Timers::default();
        timers.schedule(a, Some(ms(10)));
        timers.schedule(b, Some(ms(20)));
        timers.schedule(c, Some(ms(5)));
        timers.schedule(a, Some(ms(30))); // supersedes 10
        timers.cancel(c);
        // (now, due connections in order)
        let cases: [(u64, &[ConnId]); 4] = [(4, &[]), (10, &[]), (25, &[b]), (30, &[a])];
        for (now, want) in cases {
            let mut due = Vec::new();
            while let Some(conn) = timers.pop_due(ms(now)) {
                due.push(conn);
            }
            assert_eq!(due, want, "at {now} ms");
        }
        assert_eq!(timers.next(), None);
        timers.schedule(b, Some(ms(50)));
        timers.schedule(b, None);
        assert_eq!(timers.next(), None);
    }
}
