//! The deadlines of the room's connections (DTLS retransmissions, RTCP reports, each
//! connection's ICE liveness). One entry per connection counts: a later schedule
//! supersedes the earlier, and stale heap entries are skipped when they come up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use chorus_core::ConnId;

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
    /// The deadline each connection is filed under.
    current: HashMap<ConnId, Instant>,
}

impl Timers {
    /// Files `conn` under `at` (or under nothing), replacing what it was filed under.
    pub fn schedule(&mut self, conn: ConnId, at: Option<Instant>) {
        match at {
            Some(at) => {
                if self.current.insert(conn, at) != Some(at) {
                    self.heap.push(Reverse((at, conn)));
                }
            }
            None => {
                self.current.remove(&conn);
            }
        }
    }

    pub fn cancel(&mut self, conn: ConnId) {
        self.current.remove(&conn);
    }

    /// The earliest live deadline.
    pub fn next(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// A connection whose deadline is due by `now`, if any; it is no longer filed.
    pub fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        self.skip_stale();
        let Reverse((t, conn)) = *self.heap.peek()?;
        if t > now {
            return None;
        }
        self.heap.pop();
        self.current.remove(&conn);
        Some(conn)
    }

    fn skip_stale(&mut self) {
        while let Some(Reverse((t, conn))) = self.heap.peek() {
            if self.current.get(conn) == Some(t) {
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
